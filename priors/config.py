"""Configuration of the prior stage and construction of the configured prior methods."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eg_train.foundation.data.source import DataSpec, LabelledSplit, load_split
from eg_train.foundation.data.fewshot import sample_k_per_class
from priors.base import PriorMethod, build_prior
from priors.focus import FocusConfig
from priors.prompts import DEFAULT_INSTRUCTION, class_aware_template, plain_template

log = logging.getLogger(__name__)


@dataclass
class PriorsConfig:
    """Everything ``eg-priors compute`` needs; saved beside the cache for reproducibility."""

    data: DataSpec = field(default_factory=lambda: DataSpec(preset="banking77"))
    split: str = "train"
    k_shot: int | None = None  # few-shot subset (k per class), seeded by sample_seed
    sample_seed: int = 0
    limit: int | None = None  # first N examples after sampling (quick runs)
    methods: list[str] = field(default_factory=lambda: ["lime", "cap", "ig"])
    llm: str = "smollm2-135m-instruct"
    instruction: str = DEFAULT_INSTRUCTION
    n_samples: int = 100
    ridge_lambda: float = 1.0
    kernel_width: float = 0.25
    seed: int = 0
    renormalise: bool = False
    max_text_tokens: int = 512
    scorer_batch_size: int = 64
    slm_checkpoint: str | None = None  # CE-trained classifier for the IG prior
    ig_steps: int = 50
    device: str = "cpu"  # where the IG prior's classifier runs: cpu | cuda | cuda:N
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


def load_examples(cfg: PriorsConfig) -> LabelledSplit:
    """The split the priors are computed for (few-shot sampled and limited as configured)."""
    split = load_split(cfg.data, cfg.split)
    if cfg.k_shot:
        split = sample_k_per_class(split, cfg.k_shot, cfg.sample_seed)
    if cfg.limit:
        split = LabelledSplit(split.dataset.select(range(min(cfg.limit, len(split)))), split.label_names, split.source)
    return split


def build_methods(cfg: PriorsConfig, label_names: list[str]) -> list[PriorMethod]:
    """Instantiate the configured methods (the LLM is loaded once and shared)."""
    from eg_train.foundation.models import load_causal_lm, load_sequence_classifier
    from priors.scorer import LabelScorer

    methods: list[PriorMethod] = []
    llm = None
    common = dict(n_samples=cfg.n_samples, ridge_lambda=cfg.ridge_lambda, seed=cfg.seed, model_id=cfg.llm)
    focus = build_focus(cfg, label_names) if any(m in ("lime", "cap") for m in cfg.methods) else None
    for name in cfg.methods:
        if name in ("lime", "cap"):
            if llm is None:
                llm = load_causal_lm(cfg.llm)
            template = plain_template() if name == "lime" else class_aware_template(label_names, cfg.instruction)
            scorer = LabelScorer(
                *llm, template, label_names,
                renormalise=cfg.renormalise, batch_size=cfg.scorer_batch_size, max_text_tokens=cfg.max_text_tokens,
            )
            extra = {"kernel_width": cfg.kernel_width} if name == "lime" else {}
            methods.append(build_prior(name, scorer=scorer, focus=focus, **common, **extra))
        elif name == "ig":
            if not cfg.slm_checkpoint:
                raise ValueError(
                    "the ig prior needs slm_checkpoint: a classifier fine-tuned with plain cross-entropy "
                    "(e.g. the model/ folder of an `eg-train fit` run with prior: none)"
                )
            model, tok = load_sequence_classifier(cfg.slm_checkpoint, label_names)
            methods.append(build_prior("ig", model=model, tokenizer=tok, model_id=cfg.slm_checkpoint, n_steps=cfg.ig_steps, device=cfg.device))
        else:
            methods.append(build_prior(name))
    return methods


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
