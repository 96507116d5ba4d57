"""Differentiable Integrated Gradients on the input embeddings of a sequence classifier.

``IG_t = sum_h (x - x')_{t,h} * sum_s w_s * d f_y(x' + a_s (x - x')) / d x_{t,h}``

with ``x`` the word-embedding rows of the input (position and token-type embeddings are added
inside the model, so interpolating ``inputs_embeds`` interpolates exactly what captum
interpolates), ``x'`` the embeddings of ``[CLS] [PAD] ... [SEP]`` (docs/design.md#ig-prior: special tokens kept),
``f_y`` the gold-label output and ``(a_s, w_s)`` a quadrature rule (:mod:`.quadrature`).

Mixed precision: under ``torch.autocast(dtype=torch.bfloat16)`` (Lightning's ``bf16-mixed``) the
model's matrix products run in bf16, the double backward included; the path, the attributed
output, the gradients w.r.t. the path and the sums over steps and the hidden size stay float32.

With ``create_graph=True`` the result is differentiable w.r.t. the model parameters through the
gradients themselves (second order), which is what the alignment loss trains.

Cost (measured by ``scripts/bench_train.py``): per linear layer a CE step runs 3 matmuls
(forward, input grad, weight grad); each IG step runs 6 (forward, input grad with graph, and 4
in the backward through that graph), so the alignment step costs about ``(6 S + 3) / 3`` CE
steps at equal padding. What is done about it: all steps run as one batch of ``B * S`` rows;
the embedding lookups and ``x - x'`` are computed once (or passed in: the training step shares one
lookup with its CE forward); the quadrature weights are folded into
the differentiated scalar, so one ``autograd.grad`` returns the weighted sum over steps; the
examples are grouped by length (cut where the groups carry the fewest padded tokens) so that the
``S``-fold expanded rows carry little padding; and
the default rule is a calibrated warped Gauss-Legendre rule whose 3 nodes rank words like a
50-step reference (:mod:`.quadrature`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eg_train.foundation.attribution.quadrature import METHODS, quadrature, warped_gauss_legendre
from eg_train.foundation.device import at_least_float32
from eg_train.foundation.encoding import length_groups, ungroup

OUTPUTS = ("logits", "probs", "log_probs")


@dataclass
class IGConfig:
    """How the training-time IG is computed.

    ``chunk_size`` bounds the number of interpolated rows (``batch * steps``) per forward; None
    runs all steps in one forward. ``output`` is the scalar attributed: the gold-label logit,
    probability or log-probability. ``length_buckets``: the examples are sorted by length and
    split into that many groups, each trimmed to its own longest example before the steps are
    expanded (padding to the batch maximum would multiply the cost of the double backward by
    the padding ratio, ~2.5x on Banking77); the groups are cut where they carry the fewest padded
    tokens (:func:`~eg_train.foundation.encoding.length_groups` with ``min_padding``: 1.15x the
    real tokens on Banking77 batches of 32 against 1.34x for equal-count groups). The ``calibration_*``, ``recalibrate_every`` and ``floor``
    fields only matter for ``warped_gausslegendre`` (see :mod:`.quadrature`): its profile is
    measured with ``calibration_resolution`` path points on ``calibration_examples`` training
    examples, every ``recalibrate_every`` optimisation steps.

    Attributes:
        steps: quadrature nodes along the path from the baseline.
        method: the quadrature rule: ``warped_gausslegendre``, ``gausslegendre`` or a captum Riemann rule
            (``riemann_left``, ``riemann_right``, ``riemann_middle``, ``riemann_trapezoid``).
        calibration_resolution: path points at which the attribution-mass profile is measured.
        calibration_examples: training examples the profile is measured on.
        recalibrate_every: optimisation steps between two profile measurements.
        floor: share of a uniform density mixed into the warped rule's density, so no part of the path is skipped.
    """

    steps: int = 3
    method: str = "warped_gausslegendre"
    output: str = "logits"
    chunk_size: int | None = None
    length_buckets: int = 4
    calibration_resolution: int = 32
    calibration_examples: int = 8
    recalibrate_every: int = 100
    floor: float = 0.05

    def __post_init__(self) -> None:
        quadrature(self.method, self.steps)  # validates method/steps with a clear message
        if self.output not in OUTPUTS:
            raise ValueError(f"IG output must be one of {OUTPUTS}, got {self.output!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"IG chunk_size must be >= 1 or None, got {self.chunk_size}")
        if self.length_buckets < 1:
            raise ValueError(f"IG length_buckets must be >= 1, got {self.length_buckets}")
        if self.calibration_resolution < 2 or self.calibration_examples < 1 or self.recalibrate_every < 1:
            raise ValueError("IG calibration_resolution >= 2, calibration_examples >= 1, recalibrate_every >= 1")

    @property
    def needs_calibration(self) -> bool:
        return self.method == "warped_gausslegendre"

    def rule(self, profile: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(alphas, weights)``: the fixed rule, or the warped rule for a measured ``profile``."""
        if self.needs_calibration and profile is not None:
            return warped_gauss_legendre(profile, self.steps, self.floor)
        return quadrature(self.method, self.steps)


def baseline_input_ids(
    input_ids: Tensor, attention_mask: Tensor, special_tokens_mask: Tensor, pad_token_id: int
) -> Tensor:
    """``[CLS] [PAD] ... [SEP]``: keep special tokens (and padding), replace every other token by PAD."""
    keep = special_tokens_mask.bool() | ~attention_mask.bool()
    return torch.where(keep, input_ids, torch.full_like(input_ids, pad_token_id))


def _select_output(logits: Tensor, target: Tensor, output: str) -> Tensor:
    # float32 under bf16 autocast: the attributed scalar and its softmax are not rounded to bf16
    # (the gradients w.r.t. the float32 embeddings path come back float32 as well).
    logits = at_least_float32(logits)
    if output == "probs":
        logits = logits.softmax(-1)
    elif output == "log_probs":
        logits = logits.log_softmax(-1)
    return logits.gather(-1, target[:, None]).squeeze(-1)


def integrated_gradients(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    target: Tensor,
    baseline_ids: Tensor,
    token_type_ids: Tensor | None = None,
    config: IGConfig | None = None,
    create_graph: bool = True,
    rule: tuple[np.ndarray, np.ndarray] | None = None,
    embeds: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Token-level IG attributions ``(batch, seq)`` to ``target`` (summed over the hidden size).

    ``rule`` = ``(alphas, weights)`` overrides the config's fixed rule (a calibrated warped rule).
    ``embeds`` = ``(x, x')``: the word-embedding rows of ``input_ids`` and ``baseline_ids``
    (``(batch, seq, hidden)``), when the caller has looked them up already (the training step
    shares one lookup with its CE forward: one embedding backward instead of one per group and
    side); None looks them up here.
    Padding and special tokens get exactly 0 (their embedding equals the baseline's). The model
    must run an attention implementation with a double backward (eager) when ``create_graph``.
    """
    cfg = config or IGConfig()
    alphas, weights = rule if rule is not None else cfg.rule()
    t = input_ids.shape[1]
    out = []
    groups = length_groups(attention_mask, cfg.length_buckets, min_padding=True)
    embed = model.get_input_embeddings()

    def lookup(rows: Tensor, width: int) -> tuple[Tensor, Tensor]:
        if embeds is not None:
            return embeds[0][rows, :width], embeds[1][rows, :width]
        return embed(input_ids[rows, :width]), embed(baseline_ids[rows, :width])

    for rows, width in groups:
        x, x_base = lookup(rows, width)
        attr = _ig_dense(
            model, x, x_base, attention_mask[rows, :width], target[rows],
            None if token_type_ids is None else token_type_ids[rows, :width], alphas, weights, cfg, create_graph,
        )
        out.append(F.pad(attr, (0, t - width)))
    return ungroup(out, groups)


def _ig_dense(
    model: nn.Module,
    x: Tensor,
    x_base: Tensor,
    attention_mask: Tensor,
    target: Tensor,
    token_type_ids: Tensor | None,
    alphas_np: np.ndarray,
    weights_np: np.ndarray,
    cfg: IGConfig,
    create_graph: bool,
) -> Tensor:
    """IG of one group of examples (``x``, ``x'``: its word embeddings): all (chunks of) steps
    expanded into one batch."""
    delta = x - x_base
    b = x.shape[0]
    alphas = torch.as_tensor(alphas_np, dtype=x.dtype, device=x.device)
    weights = torch.as_tensor(weights_np, dtype=x.dtype, device=x.device)

    n_steps = len(alphas_np)
    per_chunk = n_steps if cfg.chunk_size is None else max(1, cfg.chunk_size // max(b, 1))
    grad_sum = None
    for start in range(0, n_steps, per_chunk):
        a = alphas[start : start + per_chunk]
        w = weights[start : start + per_chunk]
        s = a.shape[0]
        # (s, B, T, H) -> (s*B, T, H): step-major so that row s*B + i is example i at step s.
        path = (x_base.unsqueeze(0) + a.view(s, 1, 1, 1) * delta.unsqueeze(0)).flatten(0, 1)
        if not path.requires_grad:
            # Frozen embeddings (LoRA): the path still needs a gradient w.r.t. itself.
            path = path.detach().requires_grad_(True)
        out = model(
            inputs_embeds=path,
            attention_mask=attention_mask.repeat(s, 1),
            token_type_ids=None if token_type_ids is None else token_type_ids.repeat(s, 1),
        ).logits
        f = _select_output(out, target.repeat(s), cfg.output).view(s, b)
        # Folding the weights into the scalar gives sum_s w_s * grad_s from one grad call.
        (g,) = torch.autograd.grad((f * w[:, None]).sum(), path, create_graph=create_graph)
        g = g.view(s, b, *g.shape[1:]).sum(0)
        grad_sum = g if grad_sum is None else grad_sum + g
    attr = (delta * grad_sum).sum(-1)
    return attr * attention_mask.to(attr.dtype)


def path_profile(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    target: Tensor,
    baseline_ids: Tensor,
    token_type_ids: Tensor | None = None,
    resolution: int = 32,
    output: str = "logits",
    chunk_size: int | None = None,
) -> np.ndarray:
    """Attribution mass along the path: ``resolution`` cells of [0, 1] (midpoints), no graph kept.

    Per example, ``sum_t |(x - x')_t . grad f(x' + a (x - x'))_t|`` at each cell midpoint,
    normalised to sum 1 over the cells, then averaged over examples.
    """
    ((_, width),) = length_groups(attention_mask, 1)
    input_ids, attention_mask, baseline_ids = input_ids[:, :width], attention_mask[:, :width], baseline_ids[:, :width]
    token_type_ids = None if token_type_ids is None else token_type_ids[:, :width]
    embed = model.get_input_embeddings()
    with torch.no_grad():
        x_base = embed(baseline_ids)
        delta = embed(input_ids) - x_base
    b = input_ids.shape[0]
    alphas = (torch.arange(resolution, dtype=delta.dtype, device=delta.device) + 0.5) / resolution
    per_chunk = resolution if chunk_size is None else max(1, chunk_size // max(b, 1))
    masses = []
    for start in range(0, resolution, per_chunk):
        a = alphas[start : start + per_chunk]
        s = a.shape[0]
        path = (x_base.unsqueeze(0) + a.view(s, 1, 1, 1) * delta.unsqueeze(0)).flatten(0, 1).requires_grad_(True)
        with torch.enable_grad():
            out = model(
                inputs_embeds=path,
                attention_mask=attention_mask.repeat(s, 1),
                token_type_ids=None if token_type_ids is None else token_type_ids.repeat(s, 1),
            ).logits
            f = _select_output(out, target.repeat(s), output)
            (g,) = torch.autograd.grad(f.sum(), path)
        contrib = (g.view(s, b, *g.shape[1:]) * delta.unsqueeze(0)).sum(-1).abs().sum(-1)  # (s, B)
        masses.append(contrib.detach())
    mass = torch.cat(masses).double()  # (resolution, B)
    mass = mass / mass.sum(0, keepdim=True).clamp_min(1e-30)
    return mass.mean(1).cpu().numpy()


def word_attributions(token_attr: Tensor, word_ids: Tensor, n_words: int) -> Tensor:
    """Sum token attributions over the sub-words of each word: ``(B, T) -> (B, n_words)``.

    ``word_ids`` holds each token's word index, -1 for special/padding/punctuation tokens.
    """
    valid = word_ids >= 0
    index = word_ids.clamp(min=0)
    out = token_attr.new_zeros(token_attr.shape[0], n_words)
    return out.scatter_add(1, index, token_attr * valid.to(token_attr.dtype))


def masked_normalise(scores: Tensor, mask: Tensor, how: str = "minmax", eps: float = 1e-8) -> Tensor:
    """Per-row normalisation over the words where ``mask`` is true (differentiable).

    ``minmax`` -> [0, 1]; ``l1`` -> ``s / sum|s|``; ``softmax`` over the masked words. Masked-out
    entries are 0.
    """
    m = mask.bool()
    if how == "minmax":
        big = torch.finfo(scores.dtype).max
        lo = scores.masked_fill(~m, big).amin(-1, keepdim=True)
        hi = scores.masked_fill(~m, -big).amax(-1, keepdim=True)
        out = (scores - lo) / (hi - lo).clamp_min(eps)
    elif how == "l1":
        out = scores / (scores.abs() * m).sum(-1, keepdim=True).clamp_min(eps)
    elif how == "softmax":
        # A finite fill keeps rows without words NaN-free (in value and gradient).
        out = scores.masked_fill(~m, torch.finfo(scores.dtype).min).softmax(-1)
    else:
        raise ValueError(f"unknown normalisation {how!r}; choose minmax, l1 or softmax")
    return torch.where(m, out, torch.zeros_like(out))


__all__ = [
    "IGConfig",
    "METHODS",
    "OUTPUTS",
    "baseline_input_ids",
    "integrated_gradients",
    "masked_normalise",
    "path_profile",
    "word_attributions",
]
