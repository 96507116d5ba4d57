"""The audit of one classifier: candidates from the training texts, proof on a held-out split.

:func:`run_audit` returns the ``audit.json`` document:

- ``candidates``: the best-scored (feature, class) pairs (``list_per_class`` per class), each
  ``{feature, class, label, position, count, count_total, association, association_ci95,
  model_share, prior_share, uniform_share, score}`` and, for the ``candidates_per_class`` tested
  ones, the counterfactual figures ``{flip_rate, flip_rate_control, flip_ci95, delta_log_p,
  delta_log_p_control, removal_accuracy_drop, confirmed, ...}`` (:mod:`.proof`);
- ``confirmed``: the tested candidates whose flip-rate interval lies above 0 and that neither the
  prior's share, the LLM counterfactual (``llm_evidence``) nor, when on, the label names
  (``label_evidence``, :mod:`.label_check`) call class evidence;
- ``examples``: a few training texts per confirmed feature with the model's IG and the prior;
- ``positions``: for every training text that contains a confirmed feature, its id, fingerprint and
  the word indices the features cover (what a targeted penalty needs);
- ``settings``, ``counts`` and ``seconds``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from eg_train.evaluation.audit.candidates import feature_table, score_candidates, top_per_class
from eg_train.evaluation.audit.counter import feature_positions
from eg_train.evaluation.audit.label_check import label_check
from eg_train.evaluation.audit.llm_check import LLMLogProb, TimedLogProb, cap_log_prob
from eg_train.evaluation.audit.proof import prove
from eg_train.foundation.data.source import LabelledSplit
from eg_train.foundation.errors import ConfigError
from eg_train.foundation.words import split_words

FORMAT = "eg-train-audit/1"
# AuditConfig fields added after audits were keyed, at their defaults (AuditConfig.keyed).
LATER_DEFAULTS = {"label_encoder": None, "label_alpha": 0.05}


@dataclass
class AuditConfig:
    """The audit's settings (none of them is chosen on a test split).

    max_n: longest word n-gram considered. min_count: training texts of a class that must contain a
    feature. position_share: share of occurrences at the first / last word for a position tag.
    candidates_per_class: best candidates of each class proved by counterfactuals.
    list_per_class: candidates of each class listed in ``audit.json``.
    max_texts_per_class: training texts per class whose IG is computed (seeded; None: all).
    n_controls: matched control features per candidate. n_boot: bootstrap resamples.
    ig_steps: Gauss-Legendre IG steps. examples_per_feature: training texts shown per confirmed
    feature (words, the model's IG and the prior: the report's heatmaps), ``max_examples`` in all.
    seed: every random choice.
    llm: the frozen LLM of the LLM counterfactual (:mod:`.llm_check`: an embedded alias, a folder or a
    hub id; the pipeline passes its own ``llm``); None turns the check off. llm_instruction: the task
    instruction of its class-aware prompt (None: the priors' default). llm_contrast: ``none`` (CAP's
    ``log p``) or ``full`` (renormalised over the labels). llm_max_texts: insertion texts per candidate
    it scores (None: all). llm_scope: ``flipping`` (candidates whose flip interval lies above 0, the
    only ones whose verdict it can change) or ``tested`` (every tested candidate).
    label_encoder: the sentence encoder of the label-relatedness check (:mod:`.label_check`: a feature
    among the ``label_alpha`` share of the data's features closest to its label's name is evidence,
    not confirmed); None (the default) turns it off.
    """

    max_n: int = 3
    min_count: int = 2
    position_share: float = 0.8
    candidates_per_class: int = 3
    list_per_class: int = 20
    max_texts_per_class: int | None = 64
    n_controls: int = 3
    n_boot: int = 2000
    ig_steps: int = 8
    ig_batch_size: int = 16
    batch_size: int = 64
    max_length: int = 128
    examples_per_feature: int = 1
    max_examples: int = 12
    seed: int = 0
    llm: str | None = "gemma3-270m"
    llm_instruction: str | None = None
    llm_contrast: str = "none"
    llm_max_texts: int | None = 8
    llm_scope: str = "flipping"
    label_encoder: str | None = None
    label_alpha: float = 0.05

    def keyed(self) -> dict:
        """The settings as an audit's key holds them: every field, but those added after audits were
        keyed (:data:`LATER_DEFAULTS`) only when set, so existing audits keep their keys."""
        d = asdict(self)
        return {k: v for k, v in d.items() if k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k]}

    def __post_init__(self) -> None:
        from eg_train.evaluation.audit.llm_check import LLM_CONTRASTS
        from eg_train.evaluation.audit.proof import LLM_SCOPES

        if self.llm_contrast not in LLM_CONTRASTS:
            raise ConfigError(f"audit llm_contrast must be one of {LLM_CONTRASTS}, got {self.llm_contrast!r}")
        if self.llm_scope not in LLM_SCOPES:
            raise ConfigError(f"audit llm_scope must be one of {LLM_SCOPES}, got {self.llm_scope!r}")
        if self.llm_max_texts is not None and int(self.llm_max_texts) < 2:
            raise ConfigError(f"audit llm_max_texts must be >= 2 (a bootstrap interval needs pairs) or null, got {self.llm_max_texts}")
        for name in ("max_n", "min_count", "candidates_per_class", "n_controls", "ig_steps", "n_boot"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"audit {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < float(self.label_alpha) < 1.0:
            raise ConfigError(f"audit label_alpha must lie in (0, 1), got {self.label_alpha}")
        if not 0.5 < float(self.position_share) <= 1.0:
            raise ConfigError(f"audit position_share must lie in (0.5, 1], got {self.position_share}")


def _ig_rows(labels: np.ndarray, n_classes: int, per_class: int | None, seed: int) -> list[int]:
    rng = np.random.default_rng([seed, 7])
    rows: list[int] = []
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)
        if per_class is not None and len(idx) > per_class:
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        rows.extend(idx.tolist())
    return sorted(rows)


def run_audit(
    model,
    tokenizer,
    train: LabelledSplit,
    priors: Sequence[np.ndarray | None],
    heldout: LabelledSplit,
    cfg: AuditConfig = AuditConfig(),
    llm: LLMLogProb | None = None,
) -> dict:
    """Audit ``model`` (a sequence classifier on its device) trained on ``train``.

    ``priors[i]``: the prior of training text ``i`` (None: none cached); ``heldout``: texts the model
    was not trained on (validation, or reserved from the training data; never the test split).
    ``llm``: the LLM counterfactual's scorer (:func:`~.llm_check.cap_log_prob`) when already held;
    otherwise ``cfg.llm`` is loaded (None: no LLM check).
    """
    from eg_train.evaluation.attribution import encode_texts, predict_proba, word_integrated_gradients

    if list(heldout.label_names) != list(train.label_names):
        raise ConfigError(f"{heldout.source} and {train.source} have different label lists")
    if len(priors) != len(train):
        raise ValueError(f"{len(priors)} priors for {len(train)} training texts")
    t0 = time.perf_counter()
    names = list(train.label_names)
    texts, labels = list(train.dataset["text"]), np.asarray(train.dataset["label"], dtype=np.int64)
    table = feature_table(texts, labels, len(names), cfg.max_n)

    rows = _ig_rows(labels, len(names), cfg.max_texts_per_class, cfg.seed)
    enc = encode_texts(tokenizer, [texts[i] for i in rows], cfg.max_length)
    ig = word_integrated_gradients(model, enc, [int(labels[i]) for i in rows], tokenizer.pad_token_id,
                                   n_steps=cfg.ig_steps, batch_size=cfg.ig_batch_size)
    model_scores: list[np.ndarray | None] = [None] * len(texts)
    for i, s in zip(rows, ig):
        model_scores[i] = s
    t_ig = time.perf_counter()

    scored = score_candidates(table, model_scores, priors, min_count=cfg.min_count, position_share=cfg.position_share)
    tested = top_per_class(scored, cfg.candidates_per_class)

    def predict(batch: Sequence[str]) -> np.ndarray:
        e = encode_texts(tokenizer, list(batch), cfg.max_length)
        return predict_proba(model, [x.input_ids for x in e], tokenizer.pad_token_id, cfg.batch_size)

    t_llm_load = time.perf_counter()
    if llm is None and cfg.llm:
        llm = cap_log_prob(cfg.llm, names, cfg.llm_instruction, cfg.llm_contrast, str(next(model.parameters()).device))
    timed = TimedLogProb(llm) if llm is not None else None
    t_llm_load = time.perf_counter() - t_llm_load
    prove(tested, table, heldout.dataset["text"], heldout.dataset["label"], predict,
          n_controls=cfg.n_controls, n_boot=cfg.n_boot, seed=cfg.seed, llm=timed,
          llm_max_texts=cfg.llm_max_texts, llm_scope=cfg.llm_scope)
    t_proof = time.perf_counter()
    if cfg.label_encoder:
        from eg_train.evaluation.attacks.similarity import SentenceEncoder

        label_check(tested, table, names, SentenceEncoder(cfg.label_encoder).embed, alpha=cfg.label_alpha, seed=cfg.seed)
    t_label = time.perf_counter()

    tested_ids = {id(c) for c in tested}
    listed, per_class = [], {}
    for cand in scored:
        if cand.score <= 0 and id(cand) not in tested_ids:
            continue
        if id(cand) in tested_ids or per_class.get(cand.label, 0) < cfg.list_per_class:
            per_class[cand.label] = per_class.get(cand.label, 0) + 1
            listed.append(cand)
    confirmed = [c for c in tested if c.proof.get("confirmed")]
    confirmed.sort(key=lambda c: (c.label, -c.score))
    ids = list(train.dataset["id"]) if "id" in train.dataset.column_names else [str(i) for i in range(len(train))]

    def entry(c) -> dict:
        d = c.as_dict(names)
        d["tested"] = id(c) in tested_ids
        d["texts"] = [ids[i] for i in c.texts]
        return d

    examples = []
    for j, c in enumerate(confirmed):
        for i in [i for i in c.texts if model_scores[i] is not None][: cfg.examples_per_feature]:
            if len(examples) >= cfg.max_examples:
                break
            examples.append({"feature": c.feature, "class": names[c.label], "confirmed_index": j, "id": ids[i],
                             "words": list(split_words(texts[i]).words), "positions": table.word_positions(c.words, i),
                             "model": np.asarray(model_scores[i], dtype=float).round(6).tolist(),
                             "prior": None if priors[i] is None else np.asarray(priors[i], dtype=float).round(6).tolist()})
    return {
        "format": FORMAT,
        "class_names": names,
        "settings": asdict(cfg),
        "counts": {"train": len(texts), "heldout": len(heldout), "features": len(table.occurrences),
                   "scored": len(scored), "tested": len(tested), "confirmed": len(confirmed),
                   "train_with_prior": sum(p is not None for p in priors), "train_with_ig": len(rows),
                   "llm_tested": sum(bool(c.proof.get("llm_tested")) for c in tested),
                   "llm_evidence": sum(bool(c.proof.get("llm_evidence")) for c in tested),
                   "llm_pairs": timed.pairs if timed else 0,
                   "label_evidence": sum(bool(c.proof.get("label_evidence")) for c in tested)},
        "heldout_source": heldout.source,
        "candidates": [entry(c) for c in listed],
        "confirmed": [entry(c) for c in confirmed],
        "positions": feature_positions(train, [c.words for c in confirmed]),
        "examples": examples,
        "seconds": {"ig": round(t_ig - t0, 2), "proof": round(t_proof - t_ig - t_llm_load - (timed.seconds if timed else 0.0), 2),
                    "llm_load": round(t_llm_load, 2), "llm": round(timed.seconds, 2) if timed else 0.0,
                    "label": round(t_label - t_proof, 2),
                    "total": round(time.perf_counter() - t0, 2)},
    }


__all__ = ["AuditConfig", "FORMAT", "run_audit"]
