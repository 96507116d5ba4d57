"""The shortcut audit: what a trained classifier relies on that the LLM's prior calls irrelevant.

Found (:mod:`.candidates`: word n-grams tied to a class, the model's IG share against the prior's),
proved by counterfactuals on a held-out split (:mod:`.proof`), written as ``audit.json``
(:mod:`.run`), turned into a counter-shortcut validation split (:mod:`.counter`) and a report
section (:mod:`.report`). Entry point: :func:`eg_train.evaluation.api.audit` / ``eg-eval audit``.
"""

from eg_train.evaluation.audit.candidates import Candidate, FeatureTable, feature_table, score_candidates
from eg_train.evaluation.audit.counter import counter_shortcut_split, feature_positions, shortcut_free_split
from eg_train.evaluation.audit.proof import insert_phrase, prove
from eg_train.evaluation.audit.run import AuditConfig, run_audit

__all__ = ["AuditConfig", "Candidate", "FeatureTable", "counter_shortcut_split", "feature_positions", "feature_table",
           "insert_phrase", "prove", "run_audit", "score_candidates", "shortcut_free_split"]
