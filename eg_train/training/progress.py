"""Training progress that reads well in a terminal and in a log file.

On a terminal Lightning's tqdm bar redraws one line in place. Written to a file (``eg-train pipeline
> log``, a pipeline worker) those redraws are carriage returns that most viewers show as a single
line, or nothing until the epoch ends; there :class:`LineProgress` logs a plain line every
``every_n_steps`` training steps and one per epoch with the epoch's metrics.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

log = logging.getLogger("eg_train.training.progress")


def _fmt(metrics: dict[str, Any]) -> str:
    parts = []
    for k, v in metrics.items():
        if k == "v_num":
            continue
        try:
            parts.append(f"{k} {float(v):.3f}")
        except (TypeError, ValueError):
            parts.append(f"{k} {v}")
    return " ".join(parts)


class LineProgress(ProgressBar):
    """Progress as log lines: ``epoch 2/8 step 10/40 (25%) 3.1 s/step train_loss_epoch ...``."""

    def __init__(self, every_n_steps: int = 10) -> None:
        super().__init__()
        self.every_n_steps = max(1, int(every_n_steps))
        self._enabled = True
        self._t0 = 0.0
        self._loss_sum, self._seen = 0.0, 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()
        self._loss_sum, self._seen = 0.0, 0

    def _step_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        # Epoch-level values on the bar belong to the previous epoch: a step line shows this epoch's
        # running mean loss and the per-step values only.
        out = {k: v for k, v in self.get_metrics(trainer, pl_module).items()
               if not (k.endswith("_epoch") or k.startswith(("val_", "test_")))}
        if self._seen:
            out = {"train_loss (epoch so far)": self._loss_sum / self._seen, **out}
        return out

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        n = batch_idx + 1
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            # Weighted by examples, as the epoch mean Lightning logs (the last batch may be short).
            size = len(batch["labels"]) if isinstance(batch, dict) and "labels" in batch else 1
            self._loss_sum += float(loss) * size
            self._seen += size
        total = self.total_train_batches
        if not self._enabled or not trainer.is_global_zero or (n % self.every_n_steps and n != total):
            return
        known = isinstance(total, (int, float)) and math.isfinite(total) and total > 0
        where = f"{n}/{int(total)} ({100 * n / total:.0f}%)" if known else str(n)
        rate = (time.perf_counter() - self._t0) / n
        log.info("epoch %d/%s step %s %.2f s/step %s", trainer.current_epoch + 1, trainer.max_epochs, where, rate,
                 _fmt(self._step_metrics(trainer, pl_module)))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._enabled and trainer.is_global_zero:
            log.info("epoch %d/%s done in %.1f s: %s", trainer.current_epoch + 1, trainer.max_epochs,
                     time.perf_counter() - self._t0, _fmt(self.get_metrics(trainer, pl_module)))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._enabled and trainer.is_global_zero:
            log.info("test: %s", _fmt(self.get_metrics(trainer, pl_module)))


def progress_callback(stream: Any = None, every_n_steps: int = 10) -> ProgressBar:
    """tqdm on a terminal, :class:`LineProgress` when ``stream`` (stderr) is a file or a pipe."""
    stream = sys.stderr if stream is None else stream
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    return TQDMProgressBar() if is_tty else LineProgress(every_n_steps)
