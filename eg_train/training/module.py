"""LightningModule: ``L = CE + beta * MSE(norm(IG_self), norm(prior))`` (docs/design.md#alignment-loss),
plus, with ``penalty_weight``, a targeted word penalty (:mod:`eg_train.training.penalty`).

``IG_self`` is the classifier's own Integrated Gradients attribution to the gold label, computed
inside the training step with ``create_graph=True`` (:mod:`eg_train.foundation.attribution`), summed per
word and normalised per example over the words that have tokens; the squared error is averaged
over those words, then over the examples that have a prior. Without priors in a batch (or with
``beta = 0``) the step is plain cross-entropy through the same code path.

Two options change what the alignment does (issue 13: a prior that should pull a model off a
class-correlated artefact barely did, because the alignment gradient at a CE-like model was ~0.3x
CE's and a relative target leaves the artefact's absolute contribution free):

- ``grad_ratio > 0`` sets the alignment weight from a target gradient ratio instead of a constant:
  ``beta_t = grad_ratio * ||grad CE|| / ||grad align||`` (norms over all trainable weights, measured
  every ``grad_ratio_every`` steps on the training batch itself, smoothed by an exponential moving
  average, capped at ``beta_max``). The measuring step computes the two gradients separately and
  combines them, so it costs one extra CE backward, not a second double backward.
- ``alignment_loss = "rrr"`` replaces the MSE of normalised attributions by a right-for-the-right-
  reasons penalty (Ross et al. 2017, soft mask): ``mean_w (1 - norm(prior)_w) * IG_w^2`` on the raw
  (unnormalised) word attributions, so a word the prior calls irrelevant is pushed towards zero
  contribution in absolute terms, not only relative to the text's other words.

Traps handled here (docs/design.md#known-traps): the model is loaded with eager attention (fused SDPA kernels have
no double backward); the IG path is its own leaf when the embeddings are frozen (LoRA); the
total loss is returned to Lightning for one backward, so DDP all-reduces the second-order
gradient like any other.
"""

from __future__ import annotations

from contextlib import contextmanager

import copy
import logging
import inspect
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from eg_train.foundation.attribution import IGConfig, integrated_gradients, masked_normalise, path_profile, word_attributions
from eg_train.foundation.device import at_least_float32
from eg_train.foundation.encoding import length_groups, ungroup
from eg_train.foundation.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class LoraSpec:
    """LoRA adapters (peft); ``target_modules`` None uses peft's defaults for the architecture."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | None = None


ALIGNMENT_LOSSES = ("mse", "rrr")


@dataclass
class ModelOptions:
    """The hyper-parameters of :class:`EGModule` (all but ``label_names``, which the data give): the
    one place an option is declared, defaulted, documented and validated.

    :class:`EGModule`'s constructor signature is generated from these fields (so LightningCLI's
    ``--model.*`` flags and a checkpoint's ``hparams`` carry the same names), and the typed API
    (:class:`eg_train.training.config.TrainConfig`) holds one of these.

    Args:
        model_name: embedded alias, local directory or hub id of the SLM.
        beta: weight of the alignment loss (the paper's: 1; docs/design.md#alignment-weight).
        beta_warmup_ratio: ramp ``beta`` linearly from 0 over this fraction of the training steps
            (0: constant ``beta`` from the first step, as in the paper).
        ig: how the training-time IG is computed (:class:`IGConfig`).
        normalisation: per-example normalisation of both attribution and prior (minmax, l1, softmax).
        ig_dropout: run the IG forward with dropout active (default off: the attribution of the
            deterministic model is what is aligned, and what captum computes).
        lr: AdamW learning rate (linear schedule with warm-up).
        weight_decay: AdamW weight decay.
        warmup_ratio: share of the training steps of the learning-rate warm-up.
        lora: LoRA adapters, or None to fine-tune every weight.
        alignment_loss: ``mse`` (the paper's MSE of normalised attributions) or ``rrr`` (the
            artefact-style penalty ``mean_w (1 - norm(prior)_w) * IG_w^2`` on raw attributions).
        grad_ratio: 0 for a constant ``beta``; > 0 sets the alignment weight each measured step to
            ``grad_ratio * ||grad CE|| / ||grad align||`` (``beta`` is then unused), so that the
            alignment gradient is ``grad_ratio`` times CE's whatever the two losses' scales.
        grad_ratio_every: measure the two gradient norms every this many optimisation steps.
        grad_ratio_smoothing: exponential moving average factor of the measured ratio (0: the last
            measurement only).
        beta_max: the largest weight ``grad_ratio`` may set (a guard where the alignment gradient
            vanishes, e.g. a prior equal to the model's own attribution).
        align_fraction: share of a batch's rows with a prior that get the alignment term at each
            step (a draw seeded by the step; at least one row). The double backward costs in
            proportion to the aligned rows, CE still sees the whole batch; with ``grad_ratio`` the
            alignment gradient keeps its size relative to CE's.
        length_buckets: the classifier's forward (CE, validation) sorts a batch's rows by length
            and runs them in this many groups, each trimmed to its own longest row: the padded
            forward's logits at a fraction of its cost (1: one padded forward). Under dropout the
            masks are drawn per group, so a run is not bit-identical to one with another value.
            The IG path has its own ``ig.length_buckets``.
        align_top_layers: None (default): the alignment's gradient reaches every trainable weight
            (exact). N: it reaches only the top N transformer blocks and the head; the embeddings
            and the lower blocks are held constant in the IG's graph, so the IG values and every
            weight's CE gradient are unchanged, and most of the double backward of the lower blocks
            is skipped (an approximation of the alignment gradient, measured by
            ``scripts/bench_train.py``: cost and cosine with the exact gradient;
            :mod:`eg_train.training.second_order`).
        penalty_weight: weight ``lambda`` of the word penalty (0: off): ``lambda * mean_rows
            sum_{w in penalty_words} a_w^2`` with ``a_w`` the word's input-gradient x input
            attribution of the log-probabilities summed over classes (Ross et al. 2017, RRR), on the
            words each training example lists in its ``penalty_words`` (the gold-mask oracle of a
            shortcut dataset, or audit-confirmed features). :mod:`eg_train.training.penalty`.
    """

    model_name: str = "all-minilm-l6-v2"
    beta: float = 1.0
    beta_warmup_ratio: float = 0.0
    ig: IGConfig = field(default_factory=IGConfig)
    normalisation: str = "minmax"
    ig_dropout: bool = False
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    lora: LoraSpec | None = None
    alignment_loss: str = "mse"
    grad_ratio: float = 0.0
    grad_ratio_every: int = 1
    grad_ratio_smoothing: float = 0.5
    beta_max: float = 100.0
    align_fraction: float = 1.0
    length_buckets: int = 4
    penalty_weight: float = 0.0
    align_top_layers: int | None = None

    def __post_init__(self) -> None:
        # Dataclass options may arrive as mappings (a checkpoint's hparams, plain dict configs).
        if self.ig is None:
            self.ig = IGConfig()
        elif isinstance(self.ig, dict):
            self.ig = IGConfig(**self.ig)
        if isinstance(self.lora, dict):
            self.lora = LoraSpec(**self.lora)
        if self.beta < 0:
            raise ConfigError(f"model.beta must be >= 0, got {self.beta}")
        if not 0.0 <= self.beta_warmup_ratio <= 1.0:
            raise ConfigError(f"model.beta_warmup_ratio must be in [0, 1], got {self.beta_warmup_ratio}")
        if self.alignment_loss not in ALIGNMENT_LOSSES:
            raise ConfigError(f"model.alignment_loss must be one of {list(ALIGNMENT_LOSSES)}, got {self.alignment_loss!r}")
        if self.grad_ratio < 0 or self.beta_max <= 0:
            raise ConfigError(f"model.grad_ratio must be >= 0 and model.beta_max > 0, got {self.grad_ratio} and "
                              f"{self.beta_max}")
        if self.grad_ratio_every < 1 or not 0.0 <= self.grad_ratio_smoothing < 1.0:
            raise ConfigError("model.grad_ratio_every must be >= 1 and model.grad_ratio_smoothing in [0, 1), got "
                              f"{self.grad_ratio_every} and {self.grad_ratio_smoothing}")
        if not 0.0 < self.align_fraction <= 1.0:
            raise ConfigError(f"model.align_fraction must be in (0, 1], got {self.align_fraction}")
        if self.length_buckets < 1:
            raise ConfigError(f"model.length_buckets must be >= 1, got {self.length_buckets}")
        if self.penalty_weight < 0:
            raise ConfigError(f"model.penalty_weight must be >= 0, got {self.penalty_weight}")
        if self.align_top_layers is not None and self.align_top_layers < 0:
            raise ConfigError(f"model.align_top_layers must be >= 0 or null, got {self.align_top_layers}")

    def as_hparams(self) -> dict[str, Any]:
        """The options as a checkpoint stores them: plain values, ``ig`` / ``lora`` as mappings (so
        checkpoints load with torch's ``weights_only=True``, the default)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["ig"] = asdict(self.ig)
        out["lora"] = asdict(self.lora) if self.lora is not None else None
        return out


def _init_signature() -> inspect.Signature:
    """``EGModule.__init__``'s signature: ``model_name, label_names``, then every other option, each
    with its :class:`ModelOptions` type and default (a factory default shows as ``None``: the
    constructor builds it), so LightningCLI and ``inspect`` see the options by name."""
    hints = typing.get_type_hints(ModelOptions)
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter("self", kind)]
    for f in fields(ModelOptions):
        default = None if f.default is MISSING else f.default
        annotation = hints[f.name] | None if f.default is MISSING else hints[f.name]
        params.append(inspect.Parameter(f.name, kind, default=default, annotation=annotation))
        if f.name == "model_name":
            params.append(inspect.Parameter("label_names", kind, default=None, annotation=list[str] | None))
    return inspect.Signature(params, return_annotation=None)


@dataclass
class AlignmentLosses:
    """One step's losses: ``loss = ce + penalty_weight * penalty + beta * align``."""

    loss: Tensor
    ce: Tensor
    align: Tensor
    acc: Tensor
    n_aligned: int
    penalty: Tensor | None = None  # the unweighted word penalty (None: off or no penalised word)
    base_loss: Tensor | None = None  # ``loss`` without the alignment term (None: the same as ``loss``)

    @property
    def base(self) -> Tensor:
        """The loss without the alignment term (what ``grad_ratio`` measures the alignment against)."""
        return self.base_loss if self.base_loss is not None else self.loss


@dataclass
class _Calibration:
    profile: np.ndarray | None = None
    rule: tuple[np.ndarray, np.ndarray] | None = None
    at_step: int = -1
    history: list[int] = field(default_factory=list)


@dataclass
class _RatioState:
    """The smoothed ``||grad CE|| / ||grad align||`` of the ``grad_ratio`` weight (None: not measured)."""

    ce_over_align: float | None = None
    at_step: int = -1
    last_ratio: float = float("nan")  # the last measured ||grad align|| / ||grad CE|| at weight 1


class EGModule(L.LightningModule):
    """Sequence classifier trained with cross-entropy plus IG-to-prior alignment.

    ``EGModule(model_name, label_names, **options)``: ``label_names`` are the dataset's labels in id
    order (linked from the datamodule by the CLI); every other argument is a :class:`ModelOptions`
    field, documented, defaulted and validated there (the signature is generated from it).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        bound = _SIGNATURE.bind(self, *args, **kwargs)  # unknown or doubled arguments: TypeError, as usual
        bound.apply_defaults()
        given = dict(bound.arguments)
        given.pop("self")
        label_names = given.pop("label_names")
        # Not super(): without a ``__class__`` cell in this frame, Lightning's save_hyperparameters
        # does not read this frame's locals by the (generated) signature's names, which are not
        # locals here; it stores the mapping given below instead.
        L.LightningModule.__init__(self)
        if not label_names:
            raise ValueError("label_names is required (the CLI links it from data.label_names)")
        options = ModelOptions(**given)
        # The options in effect: every step reads these (``hparams`` is what a checkpoint stores).
        self.options = options
        hparams = options.as_hparams()
        # The names and order a checkpoint has always stored (label_names after model_name).
        self.save_hyperparameters({"model_name": hparams.pop("model_name"), "label_names": list(label_names), **hparams})
        from eg_train.foundation.models import load_sequence_classifier

        self.ig = options.ig
        lora = options.lora
        self.label_names = list(label_names)
        # Eager attention: the fused SDPA / flash kernels have no double backward.
        self.model, self.tokenizer = load_sequence_classifier(options.model_name, self.label_names,
                                                              attn_implementation="eager")
        if lora is not None:
            from peft import LoraConfig, TaskType, get_peft_model

            self.model = get_peft_model(
                self.model,
                LoraConfig(
                    task_type=TaskType.SEQ_CLS,
                    r=lora.r,
                    lora_alpha=lora.alpha,
                    lora_dropout=lora.dropout,
                    target_modules=lora.target_modules,
                ),
            )
        if options.align_top_layers is not None:
            from eg_train.training.second_order import lower_parameters

            lower_parameters(self.model, options.align_top_layers)  # a bad value fails here, not at the first step
        # from_pretrained returns eval mode; Lightning keeps module modes, so switch dropout on here.
        self.model.train()
        self._calib = _Calibration()
        self._ratio = _RatioState()

    @classmethod
    def from_options(cls, options: ModelOptions, label_names: list[str]) -> "EGModule":
        """The module of the typed API: ``options`` plus the dataset's labels."""
        return cls(label_names=list(label_names), **{f.name: getattr(options, f.name) for f in fields(ModelOptions)})

    # -- losses -------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor], embeds: Tensor | None = None) -> Tensor:
        """The logits of every row of ``batch``, in ``length_buckets`` length-sorted groups.

        ``embeds``: the word-embedding rows of ``batch["input_ids"]`` when the caller has looked
        them up (the aligned step shares one lookup with the IG); the model adds the position and
        token-type embeddings to them as it does to its own lookup.
        """
        mask, types = batch["attention_mask"], batch.get("token_type_ids")
        groups = length_groups(mask, self.options.length_buckets)
        if embeds is None and len(groups) > 1 and torch.is_grad_enabled():
            # One lookup for all groups: one embedding backward, which writes a dense
            # vocabulary-sized gradient each time (~10 % of a CE step in 4 groups otherwise).
            embeds = self.model.get_input_embeddings()(batch["input_ids"])
        logits = [
            self.model(
                **({"input_ids": batch["input_ids"][rows, :width]} if embeds is None
                   else {"inputs_embeds": embeds[rows, :width]}),
                attention_mask=mask[rows, :width],
                token_type_ids=None if types is None else types[rows, :width],
            ).logits
            for rows, width in groups
        ]
        # Under bf16 autocast (trainer.precision bf16-mixed) the classifier head returns bf16:
        # the loss, its softmax and the accuracy are computed from float32 logits.
        return at_least_float32(ungroup(logits, groups))

    def _ig_rows(self, batch: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
        from eg_train.foundation.attribution import baseline_input_ids, ig_baseline_token_id

        sub = {k: v[rows] for k, v in batch.items() if isinstance(v, Tensor) and v.shape[:1] == batch["labels"].shape}
        pad = ig_baseline_token_id(self.tokenizer)  # no silent id 0: a tokenizer without a pad token is an error
        sub["baseline_ids"] = baseline_input_ids(sub["input_ids"], sub["attention_mask"], sub["special_tokens_mask"], pad)
        return sub

    def maybe_calibrate(self, batch: dict[str, Tensor], step: int) -> None:
        """Measure the IG path profile for the warped rule (first step, then every N steps)."""
        if not self.ig.needs_calibration:
            return
        if self._calib.rule is not None and (step - self._calib.at_step) < self.ig.recalibrate_every:
            return
        rows = torch.nonzero(batch["has_prior"]).flatten()
        if len(rows) == 0:
            rows = torch.arange(len(batch["labels"]), device=batch["labels"].device)
        sub = self._ig_rows(batch, rows[: self.ig.calibration_examples])
        with self._attribution_mode(dropout=False):
            profile = path_profile(
                self.model,
                sub["input_ids"],
                sub["attention_mask"],
                sub["labels"],
                sub["baseline_ids"],
                sub.get("token_type_ids"),
                resolution=self.ig.calibration_resolution,
                output=self.ig.output,
                chunk_size=self.ig.chunk_size,
            )
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Every rank must use the same rule, or the ranks would optimise different losses.
            t = torch.as_tensor(profile, device=self.device)
            torch.distributed.all_reduce(t)
            profile = (t / torch.distributed.get_world_size()).cpu().numpy()
        self._calib.profile = profile
        self._calib.rule = self.ig.rule(profile)
        self._calib.at_step = step
        self._calib.history.append(step)
        log.debug("IG rule recalibrated at step %d: alphas %s", step, np.round(self._calib.rule[0], 3))

    @property
    def ig_rule(self) -> tuple[np.ndarray, np.ndarray]:
        """The quadrature rule the next alignment step uses."""
        return self._calib.rule if self._calib.rule is not None else self.ig.rule()

    def self_attributions(self, batch: dict[str, Tensor], create_graph: bool = True) -> tuple[Tensor, Tensor]:
        """Word-level IG of the model to the gold labels for every row: ``(attr, word_mask)``."""
        rows = torch.arange(len(batch["labels"]), device=batch["labels"].device)
        words, _ = self._word_attributions(batch, rows, create_graph)
        return words, batch["word_mask"]

    @contextmanager
    def _attribution_mode(self, dropout: bool):
        """Run the attribution forward with dropout off (unless asked), restoring the mode after."""
        was_training = self.model.training
        if not dropout:
            self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    def _word_attributions(self, batch: dict[str, Tensor], rows: Tensor, create_graph: bool,
                           sub: dict[str, Tensor] | None = None,
                           embeds: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, dict]:
        """IG of ``rows`` aggregated to words (dropout off unless ``ig_dropout``); also the sub-batch.

        ``sub`` / ``embeds``: the rows' sub-batch and their ``(x, x')`` word embeddings, when the
        caller has them (:meth:`compute_losses`)."""
        sub = self._ig_rows(batch, rows) if sub is None else sub
        with self._attribution_mode(dropout=self.options.ig_dropout):
            token_attr = integrated_gradients(
                self.model,
                sub["input_ids"],
                sub["attention_mask"],
                sub["labels"],
                sub["baseline_ids"],
                sub.get("token_type_ids"),
                config=self.ig,
                create_graph=create_graph,
                rule=self.ig_rule,
                embeds=embeds,
            )
        return word_attributions(token_attr, sub["word_ids"], sub["word_mask"].shape[1]), sub

    def compute_losses(self, batch: dict[str, Tensor], beta: float | None = None) -> AlignmentLosses:
        """CE on the batch plus ``beta`` (default :attr:`current_beta`) times the alignment loss on
        the rows that have a prior."""
        has_prior = batch.get("has_prior")
        n = int(has_prior.sum()) if has_prior is not None else 0
        beta = self.current_beta if beta is None else beta
        aligning = beta != 0 and n > 0 and torch.is_grad_enabled()
        embeds = sub = None
        if aligning:
            rows = self.aligned_rows(torch.nonzero(has_prior).flatten())
            sub = self._ig_rows(batch, rows)
            # One word-embedding lookup for the CE forward, the IG inputs and the IG baselines:
            # the same rows as separate lookups (one per length group and side), but one
            # embedding backward, which writes a dense vocabulary-sized gradient each time
            # (~7 % of an aligned step in the profile, docs/benchmarks.md#aligned-step-profile).
            b = len(batch["labels"])
            both = self.model.get_input_embeddings()(torch.cat([batch["input_ids"], sub["baseline_ids"]]))
            embeds = (both[:b][rows], both[b:])
            logits = self(batch, embeds=both[:b])
        else:
            logits = self(batch)
        ce = F.cross_entropy(logits, batch["labels"])
        acc = (logits.argmax(-1) == batch["labels"]).float().mean()
        base, penalty = ce, self.word_penalty(batch)
        if penalty is not None:
            base = ce + self.options.penalty_weight * penalty
        if not aligning:
            return AlignmentLosses(base, ce, ce.new_zeros(()), acc, 0, penalty)
        if self.options.align_top_layers is None:
            words, sub = self._word_attributions(batch, rows, create_graph=True, sub=sub, embeds=embeds)
        else:
            from eg_train.training.second_order import held_constant, lower_parameters

            # The IG's graph holds the embeddings and the lower blocks constant: the same IG, the
            # alignment's gradient of the top blocks and the head only (see :meth:`backward`).
            with held_constant(lower_parameters(self.model, self.options.align_top_layers)):
                words, sub = self._word_attributions(batch, rows, create_graph=True, sub=sub,
                                                     embeds=(embeds[0].detach(), embeds[1].detach()))
        align = self.alignment_loss(words, sub["prior"], sub["word_mask"])
        return AlignmentLosses(base + beta * align, ce, align, acc, len(rows), penalty, base)

    def word_penalty(self, batch: dict[str, Tensor]) -> Tensor | None:
        """The unweighted targeted penalty (:mod:`eg_train.training.penalty`) of the batch's
        ``penalty_mask`` words, when ``penalty_weight > 0``, gradients are on and a row has one."""
        if self.options.penalty_weight <= 0 or "penalty_mask" not in batch or not torch.is_grad_enabled():
            return None
        from eg_train.training.penalty import penalty_loss

        with self._attribution_mode(dropout=self.options.ig_dropout):
            value, n = penalty_loss(self.model, batch, create_graph=True)
        return value if n else None

    def aligned_rows(self, rows: Tensor) -> Tensor:
        """The rows (of those with a prior) that get the alignment term at this step: all of them,
        or an ``align_fraction`` share drawn with a generator seeded by the step (the global RNG,
        which dropout and data order use, is left alone)."""
        fraction = self.options.align_fraction
        if fraction >= 1.0:
            return rows
        k = max(1, round(fraction * len(rows)))
        step = self.trainer.global_step if self._trainer is not None else 0
        pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(step))[:k]
        return rows[pick.sort().values.to(rows.device)]

    def alignment_loss(self, words: Tensor, prior: Tensor, mask: Tensor) -> Tensor:
        """The alignment term for word attributions ``words`` against ``prior`` (both ``[b, w]``).

        ``mse``: mean squared error of the two after the per-example ``normalisation``.
        ``rrr``: ``mean_w (1 - minmax(prior)_w) * words_w^2``: an absolute penalty on the words the
        prior ranks low (a word with prior weight 1 is free, one at the text's minimum costs its
        squared attribution).
        """
        counts = mask.sum(-1).clamp_min(1)
        if self.options.alignment_loss == "rrr":
            irrelevance = 1.0 - masked_normalise(prior, mask, "minmax")
            per_example = (irrelevance * words.pow(2) * mask).sum(-1) / counts
        else:
            how = self.options.normalisation
            diff = masked_normalise(words, mask, how) - masked_normalise(prior, mask, how)
            per_example = (diff.pow(2) * mask).sum(-1) / counts
        return per_example.mean()

    @property
    def aligns(self) -> bool:
        """Whether the alignment term is on at all (``beta > 0`` or a ``grad_ratio``)."""
        return self.options.beta > 0 or self.options.grad_ratio > 0

    @property
    def current_beta(self) -> float:
        """The alignment weight for this step, times the warm-up ramp (linear from 0 over the first
        ``beta_warmup_ratio`` of training).

        The weight is ``beta``, or with ``grad_ratio`` the smoothed ``grad_ratio * ||grad CE|| /
        ||grad align||`` (0 until the first measurement, which :meth:`training_step` makes on its
        first aligned step). At initialisation the alignment gradient can dwarf the CE gradient
        (6.4x on Banking77 5-shot with MiniLM, ``scripts/diagnose_alignment.py``), which slows the
        classifier's learning; the ramp lets CE lead first.
        """
        if self.options.grad_ratio > 0:
            c = self._ratio.ce_over_align
            beta = 0.0 if c is None else min(self.options.beta_max, self.options.grad_ratio * c)
        else:
            beta = self.options.beta
        ratio = self.options.beta_warmup_ratio
        if ratio <= 0 or beta == 0 or self._trainer is None:
            return beta
        ramp = max(1.0, ratio * float(self.trainer.estimated_stepping_batches))
        return beta * min(1.0, (self.global_step + 1) / ramp)

    def _ratio_due(self, step: int) -> bool:
        if self.options.grad_ratio <= 0:
            return False
        return self._ratio.ce_over_align is None or step - self._ratio.at_step >= self.options.grad_ratio_every

    def ratio_step(self, batch: dict[str, Tensor], step: int) -> tuple[AlignmentLosses, Tensor]:
        """One ``grad_ratio`` measuring step: the CE and alignment gradients separately, the new
        weight from their norms, and a surrogate loss whose gradient is ``grad CE + beta_t * grad
        align`` (its value is not a loss; the returned :class:`AlignmentLosses` holds the real one).
        """
        out = self.compute_losses(batch, beta=1.0)
        if out.n_aligned == 0 or not out.align.requires_grad:
            return out, out.loss
        params = [p for p in self.parameters() if p.requires_grad]
        # The penalty (if any) rides with CE: grad_ratio sizes the alignment against both.
        g_ce = torch.autograd.grad(out.base, params, retain_graph=True, allow_unused=True)
        g_al = torch.autograd.grad(out.align, params, allow_unused=True)
        n_ce = torch.sqrt(sum((g.float().pow(2).sum() for g in g_ce if g is not None), torch.zeros((), device=self.device)))
        n_al = torch.sqrt(sum((g.float().pow(2).sum() for g in g_al if g is not None), torch.zeros((), device=self.device)))
        measured = float(n_ce) / max(float(n_al), 1e-12)
        s, prev = self.options.grad_ratio_smoothing, self._ratio.ce_over_align
        self._ratio.ce_over_align = measured if prev is None else s * prev + (1 - s) * measured
        self._ratio.at_step = step
        self._ratio.last_ratio = float(n_al) / max(float(n_ce), 1e-12)
        beta = self.current_beta
        surrogate = out.ce.new_zeros(())
        for p, a, b in zip(params, g_ce, g_al):
            g = (a if a is not None else 0) + (beta * b if b is not None else 0)
            if isinstance(g, Tensor):
                surrogate = surrogate + (p * g.detach()).sum()
        loss = (out.base + beta * out.align).detach()
        penalty = out.penalty.detach() if out.penalty is not None else None
        return AlignmentLosses(loss, out.ce.detach(), out.align.detach(), out.acc, out.n_aligned, penalty), surrogate

    def _uses_priors(self, batch: dict[str, Tensor]) -> bool:
        # Decided per run (not per batch) when a datamodule is attached, so that all DDP ranks
        # calibrate at the same steps even when one rank's batch has no prior.
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if dm is not None and hasattr(dm, "prior"):
            return dm.prior is not None
        return bool(batch["has_prior"].any())

    # -- Lightning hooks ----------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        uses_priors = self._uses_priors(batch)
        if self.aligns and uses_priors:
            # Called on every rank at the same steps (the profile is all-reduced under DDP).
            self.maybe_calibrate(batch, self.global_step)
        if uses_priors and self._ratio_due(self.global_step):
            # Norms are per rank under DDP (each rank's weight follows its own batch).
            out, backward_loss = self.ratio_step(batch, self.global_step)
        else:
            out = self.compute_losses(batch)
            backward_loss = out.loss
        bs = len(batch["labels"])
        # Per step in metrics.csv (the names every reader uses); the progress bar shows epoch means
        # (the last batch of an epoch may hold one example) and the alignment weight in effect:
        # 0 for a run without priors (the CE baseline), whatever model.beta says.
        beta = self.current_beta if uses_priors else 0.0
        logged = {"train_loss": out.loss, "train_ce": out.ce, "train_align": out.align, "train_acc": out.acc,
                  "train_beta": beta}
        if out.penalty is not None:
            logged["train_penalty"] = out.penalty
        if self.options.grad_ratio > 0 and uses_priors:
            logged["train_grad_ratio"] = self._ratio.last_ratio  # ||grad align|| / ||grad CE|| at weight 1
        self.log_dict(logged, on_step=True, on_epoch=False, prog_bar=False, batch_size=bs, sync_dist=False)
        self.log_dict(
            {"train_loss_epoch": out.loss, "train_acc_epoch": out.acc},
            on_step=False, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True,
        )
        self.log("beta", beta, on_step=True, on_epoch=False, prog_bar=True, logger=False, batch_size=bs)
        return backward_loss

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Lightning's backward; with ``align_top_layers`` restricted to the trainable weights, so
        the engine does not differentiate the IG's path (a leaf there), which would run the double
        backward of the lower blocks that the option skips."""
        if self.options.align_top_layers is not None and "inputs" not in kwargs:
            kwargs["inputs"] = [p for p in self.parameters() if p.requires_grad]
        L.LightningModule.backward(self, loss, *args, **kwargs)

    def _eval_step(self, batch: dict[str, Tensor], prefix: str) -> None:
        logits = self(batch)
        ce = F.cross_entropy(logits, batch["labels"])
        acc = (logits.argmax(-1) == batch["labels"]).float().mean()
        self.log_dict({f"{prefix}_ce": ce, f"{prefix}_acc": acc}, prog_bar=True, batch_size=len(batch["labels"]), sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        params = [p for p in self.parameters() if p.requires_grad]
        # The fused kernel updates all parameters in one pass (the default loops over tensors).
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
        opt = torch.optim.AdamW(params, lr=self.options.lr, weight_decay=self.options.weight_decay, fused=fused)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        sched = get_linear_schedule_with_warmup(opt, int(self.options.warmup_ratio * total), total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- export -------------------------------------------------------------------------------
    def export(self, directory: str | Path) -> Path:
        """Write the fine-tuned classifier + tokenizer with ``save_pretrained`` (LoRA merged)."""
        directory = Path(directory)
        model = self.model
        if hasattr(model, "merge_and_unload"):
            # Merge a copy: the live module keeps its adapters (training may resume).
            model = copy.deepcopy(model).merge_and_unload()
        model.config.id2label = dict(enumerate(self.label_names))
        model.config.label2id = {n: i for i, n in enumerate(self.label_names)}
        directory.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        return directory


_SIGNATURE = _init_signature()
EGModule.__init__.__signature__ = _SIGNATURE
EGModule.__init__.__annotations__ = {p.name: p.annotation for p in list(_SIGNATURE.parameters.values())[1:]} | {"return": None}
# jsonargparse (LightningCLI's --help) reads the options' documentation from the class docstring.
EGModule.__doc__ = (
    f"{EGModule.__doc__.rstrip()}\n\n    Args:\n        label_names: the dataset's labels in id order.\n"
    + ModelOptions.__doc__.split("    Args:\n", 1)[1]
)


class ExportModel(L.Callback):
    """After ``fit``, save ``<run dir>/model`` (rank 0 only)."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: EGModule) -> None:
        # trainer.log_dir is a collective under DDP: every rank must ask for it.
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)
        if trainer.is_global_zero:
            path = pl_module.export(run_dir / "model")
            log.info("fine-tuned model written to %s", path)
