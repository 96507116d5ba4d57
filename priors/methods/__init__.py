"""Built-in prior methods; importing this package registers them.

:func:`build_from_config` builds a registered method from the stage configuration (each method's
``from_config``); :func:`build_prior` instantiates one with explicit arguments.
"""

from __future__ import annotations

from typing import Any

from priors.base import PRIOR_REGISTRY, BuildContext, PriorMethod
from priors.methods.cap import CapPrior
from priors.methods.ig import IGPrior
from priors.methods.lime import LimePrior

__all__ = ["CapPrior", "IGPrior", "LimePrior", "build_from_config", "build_prior", "prior_class"]


def prior_class(name: str) -> type[PriorMethod]:
    """The registered class of ``name`` (a clear error naming the registered ones)."""
    return PRIOR_REGISTRY[name]


def build_prior(name: str, **kwargs: Any) -> PriorMethod:
    """Instantiate a registered prior method with explicit constructor arguments."""
    return prior_class(name)(**kwargs)


def build_from_config(name: str, ctx: BuildContext) -> PriorMethod:
    """Build a registered prior method from ``ctx.cfg`` (a ``PriorsConfig``)."""
    return prior_class(name).from_config(ctx.cfg, ctx)
