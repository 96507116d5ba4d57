"""Built-in prior methods; importing this package registers them."""

from priors.methods.cap import CapPrior
from priors.methods.ig import IGPrior
from priors.methods.lime import LimePrior

__all__ = ["CapPrior", "IGPrior", "LimePrior"]
