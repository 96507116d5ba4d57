"""Training precision: fp32 is today's numbers; bf16 autocast (Lightning ``bf16-mixed``) runs the
differentiable IG and its double backward, close to fp32, with the loss in float32."""

from __future__ import annotations

import numpy as np
import torch

from eg_train.foundation.attribution import IGConfig
from eg_train.foundation.device import autocast
from eg_train.training.module import EGModule

from tests.eg_train.training.test_module import LABELS, make_batch, random_priors

# EGModule.compute_losses on test_module's batch before the precision option existed (10bd07e).
BEFORE_CE, BEFORE_ALIGN, BEFORE_EMBED_GRAD_L1 = 1.0868732929229736, 0.2884078621864319, 117.7982177734375


def _module() -> EGModule:
    torch.manual_seed(0)
    m = EGModule("all-minilm-l6-v2", LABELS, ig=IGConfig(steps=2, method="gausslegendre"))
    return m.eval()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def test_fp32_is_todays_numbers():
    m = _module()
    batch = make_batch(m, random_priors())
    with autocast("fp32"):
        out = m.compute_losses(batch)
    assert abs(float(out.ce) - BEFORE_CE) < 1e-6 and abs(float(out.align) - BEFORE_ALIGN) < 1e-6
    out.loss.backward()
    assert abs(float(m.model.get_input_embeddings().weight.grad.abs().sum()) - BEFORE_EMBED_GRAD_L1) < 1e-3


def test_bf16_autocast_runs_the_double_backward_close_to_fp32():
    m = _module()
    batch = make_batch(m, random_priors())
    params = [p for p in m.parameters() if p.requires_grad]

    def losses_and_grads(precision):
        with autocast(precision):
            out = m.compute_losses(batch)
            attr, mask = m.self_attributions(batch, create_graph=False)
        grads = torch.autograd.grad(out.align, params, allow_unused=True)
        flat = torch.cat([g.flatten() for g in grads if g is not None])
        return out, attr.detach(), mask, flat

    o32, a32, mask, g32 = losses_and_grads("fp32")
    o16, a16, _, g16 = losses_and_grads("bf16")
    assert o16.loss.dtype == torch.float32 and a16.dtype == torch.float32 and g16.dtype == torch.float32
    assert abs(float(o16.ce) - float(o32.ce)) < 0.02
    assert abs(float(o16.align) - float(o32.align)) < 0.1 * float(o32.align)
    for i in range(len(a32)):  # the words' IG ranking survives bf16
        n = int(mask[i].sum())
        assert _spearman(a16[i, :n].numpy(), a32[i, :n].numpy()) >= 0.8
    # The alignment gradient (through the double backward) points the same way.
    assert float(torch.nn.functional.cosine_similarity(g16, g32, dim=0)) > 0.9


def test_lightning_bf16_mixed_trains_the_aligned_step(tmp_path):
    import lightning as L

    torch.manual_seed(0)
    m = EGModule("all-minilm-l6-v2", LABELS, beta=1.0, ig=IGConfig(steps=2, method="gausslegendre"), lr=1e-3)
    batch = make_batch(m, random_priors())
    before = [p.detach().clone() for p in m.parameters()]
    loader = torch.utils.data.DataLoader([batch], batch_size=None)
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, precision="bf16-mixed")
    trainer.fit(m, loader)
    assert all(p.dtype == torch.float32 for p in m.parameters())  # mixed: fp32 master weights
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))
    assert torch.isfinite(trainer.callback_metrics["train_loss_epoch"])


def test_trainer_precision_auto_resolves_per_hardware(tmp_path):
    from eg_train.foundation.device import lightning_precision
    from eg_train.training.api import build_trainer
    from eg_train.training.config import TrainerOptions

    trainer = build_trainer(TrainerOptions(accelerator="cpu", precision="auto", enable_progress_bar=False), tmp_path)
    assert trainer.precision == lightning_precision("auto", "cpu")
    assert build_trainer(TrainerOptions(accelerator="cpu", precision="32-true", enable_progress_bar=False), tmp_path).precision == "32-true"
