"""Evaluate a checkpoint on the clean test split and on attacked copies; write ``metrics.json``.

Output folder layout::

    metrics.json        accuracy / macro-F1 / confused pairs (clean and per attack), the drop from
                        clean accuracy, comprehensiveness / sufficiency, run and dataset identity;
                        ``model_attacks``: TextAttack's summary per model-aware recipe (adaptive:
                        this model attacked itself); ``transfer``: accuracy on texts generated
                        against another model (``--transfer``)
    predictions.jsonl   per test example: id, gold label, clean and attacked predictions
    attributions.jsonl  per faithfulness example: words, the model's IG word scores, target
    model_attacks/      the adaptive attacked texts (one split per recipe; usable as transfer texts)

Every attack entry carries ``warning`` (None, or a sentence when the attack changed no or very
few texts, so that an unchanged accuracy is never read as robustness).

Nothing is written before every input has been checked, and an existing ``metrics.json`` is
never replaced unless ``overwrite`` is set.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from eg_train.foundation.data.source import DataError, LabelledSplit
from eg_train.evaluation.attacks.build import attack_metadata, fingerprint_split, load_attacks
from eg_train.evaluation.attacks.flags import change_note
from eg_train.evaluation.attribution import encode_texts, predict_proba
from eg_train.evaluation.faithfulness import DEFAULT_BINS, faithfulness
from eg_train.evaluation.metrics import accuracy, classification_metrics
from eg_train.foundation.device import autocast, resolve_device
from eg_train.foundation.io import atomic_write_text
from eg_train.foundation.words import split_words

if TYPE_CHECKING:
    from eg_train.evaluation.attacks.recipes import ModelAttackConfig

log = logging.getLogger(__name__)


class CheckpointLabelError(ValueError):
    """The checkpoint's label list is missing or differs from the dataset's."""


@dataclass
class EvalConfig:
    """Evaluation settings. ``faithfulness_examples``: seeded subset size (0 skips, -1 = all).

    Attributes:
        batch_size: texts per forward.
        max_length: tokens per text (longer texts are truncated).
        faithfulness_target: the class comprehensiveness and sufficiency are measured for:
            ``predicted`` (ERASER) or ``gold``.
        ig_steps: IG steps of the word ranking behind comprehensiveness and sufficiency.
        ig_batch_size: texts per IG batch.
        bins: removal bins, as fractions of the words.
        top_pairs: the most confused class pairs listed in the metrics and the report.
        seed: seed of the faithfulness subset.
    """

    batch_size: int = 64
    max_length: int = 128
    faithfulness_examples: int = 500
    faithfulness_target: str = "predicted"
    ig_steps: int = 50
    ig_batch_size: int = 8
    bins: tuple[float, ...] = DEFAULT_BINS
    top_pairs: int = 10
    seed: int = 0
    device: str = "cpu"  # where the model runs (predictions and IG): cpu | cuda | cuda:N
    # fp32 | bf16 (autocast: the model's matrix products in bf16, probabilities and IG sums in
    # float32) | auto (bf16 where the hardware has native bf16; docs/precision.md)
    precision: str = "fp32"


def checkpoint_label_names(checkpoint: str | Path) -> list[str]:
    """Label names from a checkpoint's ``config.id2label`` (error when absent or generic)."""
    from transformers import AutoConfig

    from eg_train.foundation.models.resolve import resolve_model

    location = resolve_model(str(checkpoint)).location
    if not Path(location).is_dir():
        raise FileNotFoundError(f"{checkpoint}: checkpoint folder not found")
    config = AutoConfig.from_pretrained(location)
    id2label = getattr(config, "id2label", None) or {}
    names = [id2label[i] for i in sorted(id2label)]
    if not names or all(str(n).startswith("LABEL_") for n in names):
        raise CheckpointLabelError(
            f"{checkpoint}: config.json has no label names (id2label is {names[:3]}...); "
            "export the fine-tuned model with config.id2label set to the dataset's labels"
        )
    return names


def check_labels(checkpoint: str | Path, test: LabelledSplit) -> list[str]:
    """Raise :class:`CheckpointLabelError` when the checkpoint and the dataset label lists differ."""
    names = checkpoint_label_names(checkpoint)
    if names != list(test.label_names):
        theirs, ours = names, list(test.label_names)
        diff = sorted(set(theirs) ^ set(ours))[:5]
        detail = f"labels in one list only: {diff}" if diff else "same labels in a different order"
        raise CheckpointLabelError(
            f"{checkpoint}: checkpoint labels ({len(theirs)}) differ from the test set's "
            f"{test.source} ({len(ours)}); {detail}"
        )
    return names


def _predict(model, tokenizer, texts: Sequence[str], cfg: EvalConfig) -> np.ndarray:
    enc = encode_texts(tokenizer, texts, cfg.max_length)
    return predict_proba(model, [e.input_ids for e in enc], tokenizer.pad_token_id, cfg.batch_size).argmax(-1)


def attacked_metrics(
    gold: Sequence[int], clean_pred: np.ndarray, pred: np.ndarray, changed: np.ndarray, names: Sequence[str], top_pairs: int = 10
) -> dict:
    """Metrics on one attacked copy of the test set, next to the clean predictions."""
    gold = np.asarray(gold)
    clean_acc = accuracy(gold, clean_pred)
    m = classification_metrics(gold, pred, names, top_pairs)
    correct_clean = clean_pred == gold
    m.update(
        drop=clean_acc - m["accuracy"],
        n_changed=int(changed.sum()),
        accuracy_changed=accuracy(gold[changed], pred[changed]) if changed.any() else None,
        clean_accuracy_changed=accuracy(gold[changed], clean_pred[changed]) if changed.any() else None,
        # Attack success rate: of the texts the model got right, the share the attack flipped.
        success_rate=float((correct_clean & (pred != gold)).sum() / max(1, correct_clean.sum())),
        warning=change_note(int(changed.sum()), len(gold)),
    )
    return m


def _evaluate_attack_sets(model, tokenizer, attack_sets, gold, clean_pred, names, cfg, kind: str) -> tuple[dict, dict]:
    metrics, preds = {}, {}
    for name, ds in attack_sets.items():
        pred = _predict(model, tokenizer, list(ds["text"]), cfg)
        m = attacked_metrics(gold, clean_pred, pred, np.asarray(ds["changed"], dtype=bool), names, cfg.top_pairs)
        meta = attack_metadata(ds)
        if meta.get("kind") == "model":  # transfer texts: say which model they were generated against
            m.update(source_checkpoint=meta.get("source_checkpoint"), source_fingerprint=meta.get("source_fingerprint"))
        metrics[name], preds[name] = m, pred
        log.info("%s %s: accuracy %.4f (drop %.4f)%s", kind, name, m["accuracy"], m["drop"],
                 f" WARNING: {m['warning']}" if m["warning"] else "")
    return metrics, preds


def evaluate_transfer(
    checkpoint: str | Path, test: LabelledSplit, transfer: str | Path, config: EvalConfig | None = None
) -> dict[str, dict]:
    """Metrics of ``checkpoint`` on saved transfer texts (``run_model_attacks(..., out_dir=...)`` of
    another model), one entry per recipe, without writing anything."""
    cfg = config or EvalConfig()
    with autocast(cfg.precision, cfg.device):
        return _evaluate_transfer(checkpoint, test, transfer, cfg)


def _evaluate_transfer(checkpoint: str | Path, test: LabelledSplit, transfer: str | Path, cfg: EvalConfig) -> dict[str, dict]:
    from eg_train.foundation.models.resolve import load_sequence_classifier

    check_labels(checkpoint, test)
    sets = load_attacks(transfer, test)
    model, tokenizer = load_sequence_classifier(str(checkpoint))
    model.to(resolve_device(cfg.device)).eval()
    gold = list(test.dataset["label"])
    clean_pred = _predict(model, tokenizer, list(test.dataset["text"]), cfg)
    return _evaluate_attack_sets(model, tokenizer, sets, gold, clean_pred, list(test.label_names), cfg, "transfer")[0]


def evaluate_checkpoint(
    checkpoint: str | Path,
    test: LabelledSplit,
    out_dir: str | Path,
    attacks: str | Path | None = None,
    method: str | None = None,
    run_seed: int | None = None,
    config: EvalConfig | None = None,
    overwrite: bool = False,
    transfer: str | Path | None = None,
    model_attacks: "ModelAttackConfig | None" = None,
) -> dict:
    """Evaluate ``checkpoint`` on ``test``; return the metrics (also written to ``out_dir``).

    ``attacks``: keyword attack folder (``eg-eval attack``); ``transfer``: texts generated against
    another model (a ``model_attacks/`` folder of its evaluation); ``model_attacks``: run the
    model-aware recipes against this checkpoint (adaptive), their texts saved under ``out_dir``.
    ``config.precision`` bf16 runs every model call (predictions, attacks, IG) under bf16 autocast.
    """
    cfg = config or EvalConfig()
    with autocast(cfg.precision, cfg.device):
        return _evaluate_checkpoint(checkpoint, test, out_dir, attacks, method, run_seed, cfg, overwrite, transfer, model_attacks)


def _evaluate_checkpoint(
    checkpoint: str | Path,
    test: LabelledSplit,
    out_dir: str | Path,
    attacks: str | Path | None,
    method: str | None,
    run_seed: int | None,
    cfg: EvalConfig,
    overwrite: bool,
    transfer: str | Path | None,
    model_attacks: "ModelAttackConfig | None",
) -> dict:
    from eg_train.foundation.models.resolve import load_sequence_classifier

    out = Path(out_dir)
    metrics_path = out / "metrics.json"
    if metrics_path.exists() and not overwrite:
        raise FileExistsError(f"{metrics_path} exists; pass --overwrite true to replace it")
    if len(test) == 0:
        raise DataError(f"{test.source}: the test split is empty; nothing to evaluate")
    check_labels(checkpoint, test)
    attack_sets = load_attacks(attacks, test) if attacks else {}
    transfer_sets = load_attacks(transfer, test) if transfer else {}

    started = time.time()
    model, tokenizer = load_sequence_classifier(str(checkpoint))
    model.to(resolve_device(cfg.device)).eval()
    texts, gold = list(test.dataset["text"]), list(test.dataset["label"])
    names = list(test.label_names)
    clean_pred = _predict(model, tokenizer, texts, cfg)
    clean = classification_metrics(gold, clean_pred, names, cfg.top_pairs)
    log.info("clean accuracy %.4f macro-F1 %.4f (n=%d)", clean["accuracy"], clean["macro_f1"], len(texts))

    attack_metrics, attack_preds = _evaluate_attack_sets(model, tokenizer, attack_sets, gold, clean_pred, names, cfg, "attack")
    transfer_metrics, transfer_preds = _evaluate_attack_sets(model, tokenizer, transfer_sets, gold, clean_pred, names, cfg, "transfer")
    adaptive = None
    if model_attacks is not None:
        from eg_train.evaluation.attacks.run_model import run_model_attacks
        from eg_train.evaluation.attacks.victim import VictimModel

        victim = VictimModel(model, tokenizer, max_length=cfg.max_length, batch_size=model_attacks.batch_size)
        # metrics.json is absent (checked above), so a model_attacks/ folder here is our own unfinished output.
        adaptive = run_model_attacks(checkpoint, test, model_attacks, out / "model_attacks", overwrite=True, victim=victim).as_dict()

    faith = None
    faith_rows: list[dict] = []
    n_faith = len(texts) if cfg.faithfulness_examples < 0 else min(cfg.faithfulness_examples, len(texts))
    if n_faith > 0:
        rng = np.random.default_rng(cfg.seed)
        idx = np.sort(rng.choice(len(texts), size=n_faith, replace=False))
        res = faithfulness(
            model, tokenizer, [texts[i] for i in idx], [gold[i] for i in idx],
            target=cfg.faithfulness_target, bins=cfg.bins, n_steps=cfg.ig_steps,
            batch_size=cfg.ig_batch_size, max_length=cfg.max_length,
        )
        faith = res.summary()
        ids = test.dataset["id"]
        for j, i in enumerate(idx):
            faith_rows.append({
                "id": ids[i],
                "words": list(split_words(texts[i]).words),
                "attribution": [round(float(v), 6) for v in res.attributions[j]],
                "target": names[res.targets[j]],
                "label": names[gold[i]],
                "comprehensiveness": res.per_example_comprehensiveness[j],
                "sufficiency": res.per_example_sufficiency[j],
            })
        log.info("comprehensiveness %.4f sufficiency %.4f (n=%d)", faith["comprehensiveness"], faith["sufficiency"], n_faith)

    ckpt = Path(str(checkpoint))
    metrics = {
        "checkpoint": str(ckpt.resolve()) if ckpt.exists() else str(checkpoint),
        "method": method or (ckpt.parent.name if ckpt.name == "model" else ckpt.name),
        "seed": run_seed,
        "dataset": {"source": test.source, "fingerprint": fingerprint_split(test), "n": len(test), "num_labels": len(names)},
        "clean": clean,
        "attacks": attack_metrics,
        "attack_path": str(Path(attacks).resolve()) if attacks else None,
        "transfer": transfer_metrics,
        "transfer_path": str(Path(transfer).resolve()) if transfer else None,
        "model_attacks": adaptive,
        "faithfulness": faith,
        "config": asdict(cfg),
        "seconds": round(time.time() - started, 2),
    }
    out.mkdir(parents=True, exist_ok=True)
    ids = test.dataset["id"]
    lines = []
    for i in range(len(texts)):
        row = {"id": ids[i], "label": int(gold[i]), "clean": int(clean_pred[i])}
        row.update({k: int(p[i]) for k, p in attack_preds.items()})
        row.update({f"transfer/{k}": int(p[i]) for k, p in transfer_preds.items()})
        lines.append(json.dumps(row))
    atomic_write_text(out / "predictions.jsonl", "\n".join(lines) + "\n")
    atomic_write_text(out / "attributions.jsonl", "".join(json.dumps(r) + "\n" for r in faith_rows))
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")  # last: its presence means "complete"
    return metrics
