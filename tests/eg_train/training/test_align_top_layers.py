"""align_top_layers: the same IG and CE, the alignment gradient of the top blocks and the head only."""

from __future__ import annotations

import pytest
import torch

from eg_train.foundation.attribution import IGConfig
from eg_train.foundation.errors import ConfigError
from eg_train.training.module import EGModule
from eg_train.training.second_order import lower_parameters, transformer_blocks

from tests.eg_train.training.test_module import LABELS, make_batch, random_priors


def _names(model, params) -> set[str]:
    ids = {id(p) for p in params}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_lower_parameters_are_the_embeddings_and_the_lower_blocks():
    model = EGModule("all-minilm-l6-v2", LABELS).model
    assert len(transformer_blocks(model)) == 6
    six = _names(model, lower_parameters(model, 6))
    assert six and all(n.startswith("bert.embeddings.") for n in six)
    four = _names(model, lower_parameters(model, 4))
    assert four == six | {n for n, _ in model.named_parameters() if n.startswith(("bert.encoder.layer.0.", "bert.encoder.layer.1."))}
    none = _names(model, lower_parameters(model, 0))
    assert not any(n.startswith(("bert.pooler", "classifier")) for n in none)
    assert len(none) == len(list(model.parameters())) - 4  # all but the pooler's and the classifier's weight and bias


def test_top_layers_keep_the_ig_and_ce_and_drop_only_the_lower_alignment_gradient():
    torch.manual_seed(0)
    top = 2
    module = EGModule("all-minilm-l6-v2", LABELS, ig=IGConfig(steps=2, length_buckets=2)).eval()
    batch = make_batch(module, random_priors())
    names, params = zip(*[(n, p) for n, p in module.named_parameters() if p.requires_grad])
    exact = module.compute_losses(batch)
    g_ce = torch.autograd.grad(exact.ce, params, retain_graph=True)
    g_al = torch.autograd.grad(exact.align, params, allow_unused=True)  # the classifier's bias has none
    g_al = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_al)]
    module.options.align_top_layers = top
    approx = module.compute_losses(batch)
    torch.testing.assert_close(approx.align, exact.align, atol=1e-7, rtol=1e-6)  # the same IG
    torch.testing.assert_close(approx.ce, exact.ce, atol=1e-7, rtol=1e-6)
    module.zero_grad(set_to_none=True)
    module.backward(approx.loss)  # Lightning's hook: restricted to the weights
    lower = _names(module.model, lower_parameters(module.model, top))
    assert len(lower) > 0
    for name, p, c, a in zip(names, params, g_ce, g_al):
        expected = c if name.removeprefix("model.") in lower else c + module.options.beta * a
        torch.testing.assert_close(p.grad, expected, atol=1e-5, rtol=1e-4, msg=name)
    module.options.align_top_layers = None


def test_bad_top_layers():
    with pytest.raises(ConfigError, match="align_top_layers"):
        EGModule("all-minilm-l6-v2", LABELS, align_top_layers=-1)
    with pytest.raises(ConfigError, match=r"align_top_layers must be in \[0, 6\]"):
        EGModule("all-minilm-l6-v2", LABELS, align_top_layers=7)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_top_layers_train_through_lightning(tmp_path, precision):
    """Lightning calls EGModule.backward (restricted to the weights); every weight still moves (CE)."""
    import lightning as L

    torch.manual_seed(0)
    m = EGModule("all-minilm-l6-v2", LABELS, align_top_layers=1, ig=IGConfig(steps=2, method="gausslegendre"), lr=1e-3)
    batch = make_batch(m, random_priors())
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    loader = torch.utils.data.DataLoader([batch], batch_size=None)
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, precision=precision)
    trainer.fit(m, loader)
    moved = {n for n, p in m.named_parameters() if not torch.equal(before[n], p)}
    assert "model.bert.encoder.layer.0.attention.self.query.weight" in moved  # the CE gradient reaches the lower blocks
    assert "model.classifier.weight" in moved
    assert all(p.requires_grad for p in m.parameters())  # held_constant restored the flags
