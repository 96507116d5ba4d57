"""One trained model of a pipeline config: its name, its priors and its training options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainedVariant:
    """One trained model: a name, the priors it aligns to (empty list = CE baseline), and training
    options of its own merged over the pipeline's ``train`` (e.g. ``{model: {beta_warmup_ratio: 0.5}}``).

    ``init_from_ce``: start from the CE baseline of the same seed (trained anyway, for the IG prior
    and the comparison) instead of the pretrained SLM, so the alignment acts on a model whose
    classifier has already learned the task (at initialisation the alignment gradient dwarfs CE's;
    at the CE model it is a fraction of it: ``scripts/diagnose_alignment.py``).

    Attributes:
        name: the variant's name: its run folders (``runs/<name>-seed<k>``) and its rows in the results.
        priors: the cached prior methods fused into its alignment target (``lime``, ``cap``, ``ig``); empty:
            the CE baseline.
        fusion: how the normalised priors combine (``mean``, ``max``).
        train: training options merged over the pipeline's ``train``, in the training config's layout.
    """

    name: str
    priors: list[str] = field(default_factory=list)
    fusion: str = "mean"
    train: dict[str, Any] = field(default_factory=dict)
    init_from_ce: bool = False
    # Seeds of this variant, a subset of the pipeline's (None: all of them): e.g. 5 seeds for CE and
    # the headline variant, 3 for the others. The CE baseline always runs every pipeline seed.
    seeds: list[int] | None = None
    # ``rule``: chosen by the recipe rule among candidates (eg_train/experiment/rule.py, docs/recipe.md);
    # ``fixed``: trained as written. None: ``rule`` for a variant with priors and no ``train``.
    recipe: str | None = None
    # Set on the candidates a rule variant expands into (the rule variant's name); not for users.
    candidate_of: str | None = None


__all__ = ["TrainedVariant"]
