"""Configuration of the prior stage and construction of the configured prior methods."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eg_train.foundation.data.source import DataSpec, LabelledSplit, load_split
from eg_train.foundation.data.fewshot import sample_k_per_class
from priors.base import BuildContext, PriorMethod
from priors.focus import FocusConfig
from priors.prompts import DEFAULT_INSTRUCTION, plain_template

log = logging.getLogger(__name__)


@dataclass
class PriorsConfig:
    """Everything ``eg-priors compute`` needs; saved beside the cache for reproducibility.

    Attributes:
        data: where the dataset comes from.
        split: the split the priors are computed for.
        sample_seed: seed of the ``k_shot`` sample (the training stage draws the same one).
        methods: the prior methods to compute (``lime``, ``cap``, ``ig``).
        instruction: the task instruction of CAP's class-aware prompt.
        n_samples: perturbation masks per example for LIME and CAP (the all-ones mask included).
        ridge_lambda: ridge strength of the LIME / CAP regression.
        kernel_width: width of LIME's cosine kernel over masks.
        seed: seed of the perturbation masks (combined with each example's id).
        contrast_m: confusable labels per example with ``contrast: top_m``.
        calibrate: subtract the content-free label bias before the contrast.
        demonstration_sets: fixed demonstration sets (at least 2, so every example has one without it).
        demonstration_seed: seed of the demonstration draw.
        ig_steps: integration steps of the IG prior (captum).
        focus: the Focus-LIME schedule.
        cache_dir: the prior cache folder.
        rank: this process's shard (None: ``RANK`` as torchrun sets it, else 0).
        world_size: the number of shards (None: ``WORLD_SIZE``, else 1).
        skip_invalid: skip (and report) invalid rows instead of stopping at the first.
    """

    data: DataSpec = field(default_factory=lambda: DataSpec(preset="banking77"))
    split: str = "train"
    k_shot: int | None = None  # few-shot subset (k per class), seeded by sample_seed
    sample_seed: int = 0
    limit: int | None = None  # first N examples after sampling (quick runs)
    methods: list[str] = field(default_factory=lambda: ["lime", "cap", "ig"])
    # The default scoring was chosen by scripts/bench_prior_quality.py on the training side
    # (results/bench/bench_prior_quality.md, n = 100): Gemma 3 270M (Gemma Terms of Use) with one
    # demonstration per class ranks the gold intent first for 34 % of Banking77 5-shot texts
    # against 8 % for SmolLM2-135M-Instruct without, at 2.3x its cost. The previous default is
    # llm: smollm2-135m-instruct, demonstrations_per_class: 0 (still supported).
    llm: str = "gemma3-270m"
    instruction: str = DEFAULT_INSTRUCTION
    n_samples: int = 100
    ridge_lambda: float = 1.0
    kernel_width: float = 0.25
    seed: int = 0
    renormalise: bool = False  # legacy spelling of contrast: full
    # Scoring (priors/SCORING.md). contrast: none (raw log p) | full (renormalised over all
    # labels) | top_m (over the gold label and the contrast_m labels the LLM finds most
    # confusable on the unmasked text); calibrate: subtract the content-free label bias first.
    contrast: str = "none"
    contrast_m: int = 8
    calibrate: bool = False
    cap_transform: str = "auto"  # auto | neg_inv_log | inv_one_minus_log | log_p
    # Labelled demonstrations in CAP's prompt: per class, in demonstration_sets fixed sets; an
    # example is scored under a set drawn without it (priors/demonstrations.py). 0 = none.
    demonstrations_per_class: int = 1
    demonstration_sets: int = 2
    demonstration_seed: int = 0
    max_text_tokens: int = 512  # the LLM's text budget: longer texts are attributed over the words that fit
    scorer_batch_size: int = 64  # rows per LLM forward at most
    scorer_batch_tokens: int = 4096  # padded tokens per LLM forward at most (bounds memory for long rows)
    slm_checkpoint: str | None = None  # CE-trained classifier for the IG prior
    ig_steps: int = 50
    device: str = "cpu"  # where the LLM and the IG prior's classifier run: cpu | cuda | cuda:N
    # bfloat16: the LLM's weights in bf16 (log-probabilities accumulated in float32) and the IG
    # prior under bf16 autocast; auto: bf16 where the hardware has native bf16 (docs/precision.md).
    # Part of the prior's cache key when not float32.
    dtype: str = "float32"  # auto | bfloat16 | float32
    # Focus-LIME (long inputs): with a proxy, LIME and CAP attribute inputs longer than
    # focus.min_words inside the focus the proxy selects.
    focus_proxy: str | None = None  # classifier checkpoint (e.g. the CE model) or causal LM name
    focus_proxy_kind: str = "classifier"  # classifier | causal_lm
    focus: FocusConfig = field(default_factory=FocusConfig)
    cache_dir: str = "outputs/prior_cache"
    batch_size: int = 4  # examples per cache part
    rank: int | None = None
    world_size: int | None = None
    skip_invalid: bool = False

    def __post_init__(self) -> None:
        from eg_train.foundation.device import normalise_precision
        from eg_train.foundation.errors import ConfigError

        try:
            normalise_precision(self.dtype)
        except ValueError as err:
            raise ConfigError(f"dtype: {err}") from None


def load_examples(cfg: PriorsConfig) -> LabelledSplit:
    """The split the priors are computed for (few-shot sampled and limited as configured)."""
    split = load_split(cfg.data, cfg.split)
    if cfg.k_shot:
        split = sample_k_per_class(split, cfg.k_shot, cfg.sample_seed)
    if cfg.limit:
        split = LabelledSplit(split.dataset.select(range(min(cfg.limit, len(split)))), split.label_names, split.source)
    return split


def build_methods(cfg: PriorsConfig, label_names: list[str], examples: LabelledSplit | None = None) -> list[PriorMethod]:
    """Build the configured methods through the prior registry (each method's ``from_config``).

    Resources are made on first use and shared: the LLM is loaded once for LIME and CAP, the
    focus selector once. ``examples`` is the split being attributed (the demonstration pool);
    loaded with :func:`load_examples` when a method needs it and it is not given."""
    from priors.methods import build_from_config

    def llm():
        from eg_train.foundation.device import resolve_device, resolve_precision, torch_dtype
        from eg_train.foundation.models import load_causal_lm

        model, tok = load_causal_lm(cfg.llm)
        dtype = torch_dtype(resolve_precision(cfg.dtype, cfg.device))
        return model.to(resolve_device(cfg.device), dtype=dtype), tok

    ctx = BuildContext(
        cfg,
        list(label_names),
        factories={
            "llm": llm,
            "focus": lambda: build_focus(cfg, label_names),
            "examples": lambda: examples if examples is not None else load_examples(cfg),
        },
    )
    return [build_from_config(name, ctx) for name in cfg.methods]


def build_focus(cfg: PriorsConfig, label_names: list[str]):
    """The Focus-LIME selector over the configured proxy, or None when no proxy is configured."""
    if not cfg.focus_proxy:
        return None
    from eg_train.foundation.models import load_causal_lm, load_sequence_classifier
    from priors.focus import FocusSelector
    from priors.proxy import ClassifierScorer
    from priors.scorer import LabelScorer

    if cfg.focus_proxy_kind == "classifier":
        model, tok = load_sequence_classifier(cfg.focus_proxy, label_names)
        proxy = ClassifierScorer(model.eval(), tok, model_id=cfg.focus_proxy, chunking="sentence")
    elif cfg.focus_proxy_kind == "causal_lm":
        # A plain prompt keeps the proxy cheap; long inputs must not be truncated by the proxy.
        proxy = LabelScorer(*load_causal_lm(cfg.focus_proxy), plain_template(), label_names, max_text_tokens=1 << 20)
    else:
        raise ValueError(f"focus_proxy_kind must be 'classifier' or 'causal_lm', got {cfg.focus_proxy_kind!r}")
    return FocusSelector(proxy, cfg.focus, proxy_id=cfg.focus_proxy)
