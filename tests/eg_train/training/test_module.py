"""EGModule: the loss, its training signal, LoRA and the export contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eg_train.foundation.attribution import IGConfig, masked_normalise
from eg_train.training.datamodule import EncodedDataset, collate
from eg_train.training.module import EGModule, LoraSpec

TEXTS = ["My card got blocked, help!", "How long do transfers take?", "I forgot my PIN.", "Reset my PIN please"]
LABELS = ["card_blocked", "transfer_timing", "forgot_pin"]
Y = [0, 1, 2, 2]


def make_batch(module: EGModule, priors: list[np.ndarray | None] | None) -> dict:
    import datasets

    from eg_train.foundation.data.source import LabelledSplit

    split = LabelledSplit(
        datasets.Dataset.from_dict({"id": [f"t-{i}" for i in range(len(TEXTS))], "text": TEXTS, "label": Y}), LABELS, "test"
    )
    ds = EncodedDataset(split, module.tokenizer, 64, priors)
    return collate([ds[i] for i in range(len(ds))], module.tokenizer.pad_token_id)


def random_priors(seed=0):
    from eg_train.foundation.words import split_words

    rng = np.random.default_rng(seed)
    return [rng.random(len(split_words(t))).astype(np.float32) for t in TEXTS]


@pytest.fixture(scope="module")
def module():
    torch.manual_seed(0)
    return EGModule("all-minilm-l6-v2", LABELS, ig=IGConfig(steps=2, method="gausslegendre"))


def test_loss_is_ce_plus_beta_alignment(module):
    batch = make_batch(module, random_priors())
    module.eval()  # deterministic CE for the comparison
    out = module.compute_losses(batch)
    assert out.n_aligned == len(TEXTS) and out.align > 0
    assert torch.isclose(out.loss, out.ce + module.hparams.beta * out.align)
    no_prior = module.compute_losses(make_batch(module, None))
    assert no_prior.n_aligned == 0 and no_prior.align == 0 and torch.equal(no_prior.loss, no_prior.ce)
    assert torch.isclose(no_prior.ce, out.ce)


def test_alignment_is_zero_for_the_model_s_own_attribution(module):
    module.eval()
    batch = make_batch(module, random_priors())
    attr, mask = module.self_attributions(batch, create_graph=False)
    own = [a[: int(m.sum())].detach().numpy() for a, m in zip(attr, mask)]
    out = module.compute_losses(make_batch(module, own))
    assert out.align.item() < 1e-10


def test_partial_priors_align_only_those_rows(module):
    module.eval()
    priors = random_priors()
    partial = make_batch(module, [priors[0], None, priors[2], None])
    only = make_batch(module, priors)
    out = module.compute_losses(partial)
    assert out.n_aligned == 2
    # The mean over the two rows with priors, computed from the full-prior batch row by row.
    attr, mask = module.self_attributions(only, create_graph=False)
    a = masked_normalise(attr, mask)
    p = masked_normalise(only["prior"], mask)
    per_row = ((a - p) ** 2 * mask).sum(-1) / mask.sum(-1)
    assert torch.isclose(out.align, per_row[[0, 2]].mean(), atol=1e-6)


def test_training_steps_reduce_the_alignment_loss():
    torch.manual_seed(0)
    m = EGModule("all-minilm-l6-v2", LABELS, beta=1.0, ig=IGConfig(steps=2, method="gausslegendre"), lr=1e-3)
    m.model.eval()  # no dropout: the decrease is the optimiser's, not noise
    batch = make_batch(m, random_priors(1))
    opt = torch.optim.AdamW(m.parameters(), lr=2e-4)
    losses = []
    for _ in range(6):
        out = m.compute_losses(batch)
        losses.append(out.align.item())
        opt.zero_grad()
        (out.align * 10).backward()
        opt.step()
    assert losses[-1] < 0.6 * losses[0], losses


def test_lora_alignment_trains_adapters_and_export_merges(tmp_path):
    from eg_train.foundation.models import load_sequence_classifier

    torch.manual_seed(0)
    m = EGModule("all-minilm-l6-v2", LABELS, ig=IGConfig(steps=2, method="gausslegendre"), lora=LoraSpec(r=4))
    m.eval()
    batch = make_batch(m, random_priors())
    out = m.compute_losses(batch)
    lora_params = {n: p for n, p in m.named_parameters() if "lora_" in n}
    assert lora_params and not m.model.get_input_embeddings().weight.requires_grad
    grads = torch.autograd.grad(out.align, list(lora_params.values()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    with torch.no_grad():  # make the adapters non-trivial (lora_B starts at zero)
        for n, p in lora_params.items():
            p.add_(0.05 * torch.randn_like(p))
    with torch.no_grad():
        expected = m(batch)
    path = m.export(tmp_path / "model")
    assert "lora_" in "".join(n for n, _ in m.named_parameters())  # live module keeps its adapters
    model, tok = load_sequence_classifier(str(path), LABELS)
    model.eval()
    with torch.no_grad():
        got = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert [model.config.id2label[i] for i in range(3)] == LABELS


def test_export_writes_labels_in_order(module, tmp_path):
    from transformers import AutoConfig

    path = module.export(tmp_path / "model")
    cfg = AutoConfig.from_pretrained(path)
    assert [cfg.id2label[i] for i in range(len(LABELS))] == LABELS
    assert (path / "tokenizer.json").is_file()


def test_warped_rule_calibration(module):
    m = EGModule("all-minilm-l6-v2", LABELS, ig=IGConfig(steps=3, recalibrate_every=5))
    batch = make_batch(m, random_priors())
    m.maybe_calibrate(batch, 0)
    first = m.ig_rule
    assert len(first[0]) == 3 and not np.allclose(first[0], IGConfig(steps=3, method="gausslegendre").rule()[0])
    m.maybe_calibrate(batch, 3)  # not due yet
    assert m._calib.history == [0]
    m.maybe_calibrate(batch, 5)
    assert m._calib.history == [0, 5]


def test_length_buckets_give_the_padded_forward_s_logits_and_gradients():
    torch.manual_seed(0)
    grouped = EGModule("all-minilm-l6-v2", LABELS, length_buckets=3).eval()
    padded = EGModule("all-minilm-l6-v2", LABELS, length_buckets=1).eval()
    padded.load_state_dict(grouped.state_dict())
    batch = make_batch(grouped, None)
    assert len({int(n) for n in batch["attention_mask"].sum(-1)}) > 1  # lengths differ: the groups trim
    a, b = grouped(batch), padded(batch)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for m, logits in ((grouped, a), (padded, b)):
        torch.nn.functional.cross_entropy(logits, batch["labels"]).backward()
    for (name, p), q in zip(grouped.named_parameters(), padded.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_bad_arguments():
    with pytest.raises(ValueError, match="label_names"):
        EGModule("all-minilm-l6-v2", None)
    with pytest.raises(ValueError, match="quadrature"):
        IGConfig(method="simpson")
    with pytest.raises(ValueError, match="beta"):
        EGModule("all-minilm-l6-v2", LABELS, beta=-1)
    with pytest.raises(ValueError, match="length_buckets"):
        EGModule("all-minilm-l6-v2", LABELS, length_buckets=0)


def test_beta_warmup_ramps_the_alignment_weight_linearly():
    from types import SimpleNamespace

    m = EGModule("all-minilm-l6-v2", LABELS, beta=2.0, beta_warmup_ratio=0.5, ig=IGConfig(steps=2, method="gausslegendre"))
    assert m.current_beta == 2.0  # no trainer attached: the configured beta
    for step, expected in [(0, 2.0 / 50), (24, 1.0), (49, 2.0), (80, 2.0)]:
        m._trainer = SimpleNamespace(estimated_stepping_batches=100, global_step=step)
        assert m.current_beta == pytest.approx(expected)
    m.eval()
    m._trainer = SimpleNamespace(estimated_stepping_batches=100, global_step=24)
    out = m.compute_losses(make_batch(m, random_priors()))
    assert torch.isclose(out.loss, out.ce + 1.0 * out.align)
    with pytest.raises(ValueError, match="beta_warmup_ratio"):
        EGModule("all-minilm-l6-v2", LABELS, beta_warmup_ratio=1.5)


def test_rrr_loss_penalises_raw_attribution_of_low_prior_words(module):
    m = EGModule("all-minilm-l6-v2", LABELS, ig=IGConfig(steps=2, method="gausslegendre"), alignment_loss="rrr")
    m.load_state_dict(module.state_dict())
    m.eval()
    priors = random_priors(2)
    batch = make_batch(m, priors)
    out = m.compute_losses(batch)
    attr, mask = m.self_attributions(batch, create_graph=False)
    weight = 1 - masked_normalise(batch["prior"], mask, "minmax")
    expected = ((weight * attr.pow(2) * mask).sum(-1) / mask.sum(-1)).mean()
    assert torch.isclose(out.align, expected, rtol=1e-5)
    # Absolute, not relative: scaling every attribution scales the penalty (the MSE of min-max
    # normalised attributions is invariant to it), and a prior peaked where the model attributes
    # most costs less than the reversed prior.
    assert not torch.isclose(out.align, m.alignment_loss(2 * attr, batch["prior"], mask))
    assert torch.isclose(m.alignment_loss(2 * attr, batch["prior"], mask), 4 * out.align, rtol=1e-5)
    own = attr.abs()
    assert m.alignment_loss(attr, own, mask) < m.alignment_loss(attr, -own, mask)


def _norm(grads) -> float:
    return float(torch.sqrt(sum(g.pow(2).sum() for g in grads if g is not None)))


def test_grad_ratio_sets_beta_from_the_gradient_norms_and_the_step_gradient_is_their_sum():
    torch.manual_seed(0)
    m = EGModule("all-minilm-l6-v2", LABELS, beta=0.0, grad_ratio=2.0, grad_ratio_smoothing=0.0,
                 ig=IGConfig(steps=2, method="gausslegendre"))
    m.eval()
    assert m.aligns and m.current_beta == 0.0  # nothing measured yet
    batch = make_batch(m, random_priors())
    params = [p for p in m.parameters() if p.requires_grad]
    ref = m.compute_losses(batch, beta=1.0)
    g_ce = torch.autograd.grad(ref.ce, params, retain_graph=True, allow_unused=True)
    g_al = torch.autograd.grad(ref.align, params, allow_unused=True)
    out, surrogate = m.ratio_step(batch, step=0)
    beta = m.current_beta
    assert beta == pytest.approx(2.0 * _norm(g_ce) / _norm(g_al), rel=1e-4)
    assert m._ratio.last_ratio == pytest.approx(_norm(g_al) / _norm(g_ce), rel=1e-4)
    assert torch.isclose(out.loss, out.ce + beta * out.align)
    got = torch.autograd.grad(surrogate, params, allow_unused=True)
    want = [(a if a is not None else 0) + beta * (b if b is not None else 0) for a, b in zip(g_ce, g_al)]
    for g, w in zip(got, want):
        if isinstance(w, torch.Tensor):
            assert torch.allclose(g, w, atol=1e-6)
    # The alignment part of the step is grad_ratio times the CE part.
    assert _norm([beta * b for b in g_al if b is not None]) / _norm(g_ce) == pytest.approx(2.0, rel=1e-4)
    assert not m._ratio_due(0) and m._ratio_due(1)


def test_grad_ratio_smooths_caps_and_honours_the_warmup():
    from types import SimpleNamespace

    m = EGModule("all-minilm-l6-v2", LABELS, grad_ratio=1.0, grad_ratio_smoothing=0.5, beta_max=3.0,
                 beta_warmup_ratio=0.5, ig=IGConfig(steps=2, method="gausslegendre"))
    m._ratio.ce_over_align = 2.0
    assert m.current_beta == 2.0  # no trainer: no ramp
    m._trainer = SimpleNamespace(estimated_stepping_batches=100, global_step=24)
    assert m.current_beta == pytest.approx(1.0)
    m._trainer = None
    m._ratio.ce_over_align = 10.0
    assert m.current_beta == 3.0  # capped at beta_max
    m.eval()
    m._ratio.ce_over_align = 2.0
    m.ratio_step(make_batch(m, random_priors()), step=4)
    measured = m._ratio.ce_over_align
    assert measured != 2.0 and m._ratio.at_step == 4
    assert (measured - 0.5 * 2.0) / 0.5 == pytest.approx(1.0 / m._ratio.last_ratio, rel=1e-4)


def test_grad_ratio_trains_through_lightning(tmp_path):
    import lightning as L

    torch.manual_seed(0)
    m = EGModule("all-minilm-l6-v2", LABELS, beta=0.0, grad_ratio=1.0, grad_ratio_every=2,
                 ig=IGConfig(steps=2, method="gausslegendre"), lr=1e-3)
    batch = make_batch(m, random_priors())
    before = [p.detach().clone() for p in m.parameters()]
    loader = torch.utils.data.DataLoader([batch], batch_size=None)
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(m, loader)
    assert m._ratio.at_step == 2 and m.current_beta > 0  # measured at steps 0 and 2
    assert any(not torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_bad_alignment_options():
    with pytest.raises(ValueError, match="alignment_loss"):
        EGModule("all-minilm-l6-v2", LABELS, alignment_loss="kl")
    with pytest.raises(ValueError, match="grad_ratio"):
        EGModule("all-minilm-l6-v2", LABELS, grad_ratio=-1)
    with pytest.raises(ValueError, match="grad_ratio_every"):
        EGModule("all-minilm-l6-v2", LABELS, grad_ratio=1, grad_ratio_every=0)


def test_align_fraction_aligns_a_per_step_draw_of_the_rows():
    from types import SimpleNamespace

    m = EGModule("all-minilm-l6-v2", LABELS, align_fraction=0.5, ig=IGConfig(steps=2, method="gausslegendre"))
    m.eval()
    batch = make_batch(m, random_priors())
    m._trainer = SimpleNamespace(global_step=3, estimated_stepping_batches=10)
    rows = m.aligned_rows(torch.arange(4))
    assert len(rows) == 2 and torch.equal(rows, m.aligned_rows(torch.arange(4)))  # seeded by the step
    out = m.compute_losses(batch, beta=1.0)
    words, sub = m._word_attributions(batch, rows, create_graph=False)
    assert out.n_aligned == 2
    assert torch.isclose(out.align, m.alignment_loss(words, sub["prior"], sub["word_mask"]), atol=1e-6)
    assert torch.isclose(out.ce, torch.nn.functional.cross_entropy(m(batch), batch["labels"]))  # CE: every row
    draws = set()
    for step in range(10):
        m._trainer.global_step = step
        draws.add(tuple(m.aligned_rows(torch.arange(4)).tolist()))
    assert len(draws) > 1
    # at least one row
    assert len(EGModule("all-minilm-l6-v2", LABELS, align_fraction=0.1).aligned_rows(torch.arange(4))) == 1
    with pytest.raises(ValueError, match="align_fraction"):
        EGModule("all-minilm-l6-v2", LABELS, align_fraction=0.0)


def test_options_are_declared_once_and_old_checkpoint_hparams_still_build_the_module():
    """ModelOptions is the one definition: the constructor's signature, defaults and hparams names
    come from it; a checkpoint's hparams from before newer options (no length_buckets, no
    penalty_weight) still build a module, the missing options at their defaults."""
    import inspect
    from dataclasses import MISSING, fields

    from eg_train.foundation.errors import ConfigError
    from eg_train.training.module import ModelOptions

    params = inspect.signature(EGModule).parameters
    assert list(params)[:2] == ["model_name", "label_names"]
    for f in fields(ModelOptions):
        assert params[f.name].default == (None if f.default is MISSING else f.default), f.name
    with pytest.raises(ConfigError, match="beta"):
        ModelOptions(beta=-1)  # validated where declared, before any model is loaded
    with pytest.raises(TypeError, match="no_such_option"):
        EGModule("all-minilm-l6-v2", LABELS, no_such_option=1)
    old = {"model_name": "all-minilm-l6-v2", "label_names": LABELS, "beta": 0.5, "beta_warmup_ratio": 0.0,
           "ig": {"steps": 2, "method": "gausslegendre"}, "normalisation": "minmax", "ig_dropout": False, "lr": 5e-5,
           "weight_decay": 0.01, "warmup_ratio": 0.1, "lora": None, "alignment_loss": "mse"}
    m = EGModule(**old)
    assert m.options.length_buckets == 4 and m.options.penalty_weight == 0.0 and m.options.beta == 0.5
    assert m.ig.steps == 2 and m.hparams["ig"]["steps"] == 2
    assert set(m.hparams) == {"label_names"} | {f.name for f in fields(ModelOptions)}


def _separate_lookups_loss(module: EGModule, batch: dict) -> torch.Tensor:
    """The aligned loss composed as before the shared lookup and the min-padding IG groups: the
    model's own word-embedding lookup in each CE length group, and one padded IG group that looks
    up its own inputs and baselines."""
    import dataclasses

    import torch.nn.functional as F

    from eg_train.foundation.attribution import integrated_gradients, word_attributions
    from eg_train.foundation.encoding import length_groups, ungroup

    groups = length_groups(batch["attention_mask"], module.options.length_buckets)
    logits = ungroup([
        module.model(input_ids=batch["input_ids"][r, :w], attention_mask=batch["attention_mask"][r, :w],
                     token_type_ids=batch["token_type_ids"][r, :w]).logits
        for r, w in groups
    ], groups)
    sub = module._ig_rows(batch, torch.nonzero(batch["has_prior"]).flatten())
    attr = integrated_gradients(module.model, sub["input_ids"], sub["attention_mask"], sub["labels"], sub["baseline_ids"],
                                sub["token_type_ids"], dataclasses.replace(module.ig, length_buckets=1), create_graph=True,
                                rule=module.ig_rule)
    words = word_attributions(attr, sub["word_ids"], sub["word_mask"].shape[1])
    return F.cross_entropy(logits, batch["labels"]) + module.options.beta * module.alignment_loss(
        words, sub["prior"], sub["word_mask"])


def test_shared_embedding_lookup_and_min_padding_ig_groups_keep_the_loss_and_its_gradients():
    torch.manual_seed(0)
    module = EGModule("all-minilm-l6-v2", LABELS, length_buckets=2, ig=IGConfig(steps=3, length_buckets=2)).eval()
    priors = random_priors()
    priors[1] = None  # a row without a prior: the IG rows are a subset of the CE rows
    batch = make_batch(module, priors)
    names, params = zip(*[(n, p) for n, p in module.named_parameters() if p.requires_grad])
    shared = module.compute_losses(batch)
    g_shared = torch.autograd.grad(shared.loss, params)
    reference = _separate_lookups_loss(module, batch)
    g_ref = torch.autograd.grad(reference, params)
    assert shared.n_aligned == 3 and shared.align > 0
    torch.testing.assert_close(shared.loss, reference, atol=1e-6, rtol=1e-6)
    for name, a, b in zip(names, g_shared, g_ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)
