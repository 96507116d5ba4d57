"""Prior quality: competence of the scoring LLM, faithfulness to it, keyword agreement, cost.

One module per metric family (:mod:`~priors.quality.competence`,
:mod:`~priors.quality.faithfulness`, :mod:`~priors.quality.agreement`) and the measurement over
a prior cache (:mod:`~priors.quality.measure`), which ``eg-priors quality`` runs.
"""

from priors.quality.agreement import KeywordSettings, ReferenceKeywords, keyword_precision, mean_spearman, spearman
from priors.quality.competence import competence, label_logprob_matrix
from priors.quality.faithfulness import DeletionResult, deletion_aopc
from priors.quality.measure import QualitySettings, Reference, measure_quality, reference_split, stored_quality

__all__ = [
    "DeletionResult",
    "KeywordSettings",
    "QualitySettings",
    "Reference",
    "ReferenceKeywords",
    "competence",
    "deletion_aopc",
    "keyword_precision",
    "label_logprob_matrix",
    "mean_spearman",
    "measure_quality",
    "reference_split",
    "spearman",
    "stored_quality",
]
