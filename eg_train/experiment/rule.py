"""The recipe rule (docs/recipe.md): what a pipeline variant with priors and no training overrides
trains with, chosen on what a user has -- clean validation and the shortcut audit's automatic
counter-shortcut validation -- never on a test split or a planted artefact.

A rule variant ``{name: eg, priors: [lime, cap]}`` expands into *candidates*, ordinary variants of
the same pipeline (so they are trained, keyed and reused like any other):

- ``eg~penalty_<w>`` for every ``penalty_weights`` entry: CE plus the targeted word penalty
  (:mod:`eg_train.training.penalty`) on the features the audit of the CE model *confirmed*
  (``data.penalty_positions: audit``; with nothing confirmed it is the CE model itself);
- ``eg~prior_gr<r>``: the variant's priors with the gradient-ratio weight ``prior_grad_ratio``.

The **rule audit** (one per pipeline) audits the CE model of ``ig_prior_seed`` with the config's LLM
priors on training's own validation split. The **selection** (:func:`choose`) then reads every
candidate's and CE's clean validation accuracy and its accuracy on the audit's counter-shortcut
validation (:func:`eg_train.evaluation.audit.counter_shortcut_split`), means over the variant's
seeds, and the rule variant's run folders become links to the chosen model of each seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from eg_train.foundation.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("eg_train.experiment.rule")

RECIPES = ("rule", "fixed")
# The selection's version, in every rule model's key: bumped when what the selection reads or does
# changes (2: the counter-shortcut validation moves the confirmed features instead of adding them;
# 3: clean accuracy is read on the validation texts without the confirmed features).
RULE_VERSION = 3
AUDIT_POSITIONS = "audit"  # data.penalty_positions of a variant: the rule audit's confirmed features
CANDIDATE_SEP = "~"


@dataclass(frozen=True)
class RuleSettings:
    """The rule's fixed settings (docs/recipe.md); a pipeline's ``rule`` mapping overrides them.

    penalty_weights: the targeted penalty's weights tried on the audit's confirmed features.
    prior_grad_ratio: ``model.grad_ratio`` of the prior candidate (no warm-up).
    clean_tolerance: the clean validation accuracy a candidate may lose against CE.
    counter_margin: what a candidate must gain over CE on the counter-shortcut validation.
    tie: counter-shortcut accuracies this close are a tie, won by the earlier (cheaper) candidate.
    """

    penalty_weights: tuple[float, ...] = (1e3, 1e4)
    prior_grad_ratio: float = 3.0
    clean_tolerance: float = 0.01
    counter_margin: float = 0.02
    tie: float = 0.005

    def __post_init__(self) -> None:
        object.__setattr__(self, "penalty_weights", tuple(float(w) for w in self.penalty_weights))
        if any(w <= 0 for w in self.penalty_weights):
            raise ConfigError(f"rule.penalty_weights must be positive, got {list(self.penalty_weights)}")
        if self.prior_grad_ratio <= 0:
            raise ConfigError(f"rule.prior_grad_ratio must be > 0, got {self.prior_grad_ratio}")

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any] | None) -> "RuleSettings":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(mapping or {}) - known)
        if unknown:
            raise ConfigError(f"rule: unknown option(s) {unknown}; known: {sorted(known)}")
        return cls(**(mapping or {}))


def resolved_recipe(variant) -> str:
    """``rule`` or ``fixed``: a variant's own ``recipe``, else ``rule`` for a variant with priors and
    no ``train`` overrides (the recommended recipe), ``fixed`` otherwise."""
    if variant.recipe is not None:
        if variant.recipe not in RECIPES:
            raise ConfigError(f"variant {variant.name}: recipe must be one of {list(RECIPES)}, got {variant.recipe!r}")
        return variant.recipe
    return "rule" if variant.priors and not variant.train and not variant.init_from_ce and not variant.candidate_of else "fixed"


def is_rule(variant) -> bool:
    return resolved_recipe(variant) == "rule"


def penalty_weight(variant) -> float:
    """The targeted penalty weight a variant trains with (0: none)."""
    return float(((variant.train or {}).get("model") or {}).get("penalty_weight") or 0.0)


def uses_audit_positions(variant) -> bool:
    return ((variant.train or {}).get("data") or {}).get("penalty_positions") == AUDIT_POSITIONS


def candidate_name(rule_name: str, what: str) -> str:
    return f"{rule_name}{CANDIDATE_SEP}{what}"


def candidates(variant, settings: RuleSettings) -> list:
    """The candidates of rule variant ``variant``, cheapest first (CE is always the first candidate
    and is the pipeline's baseline, not listed here)."""
    from eg_train.experiment.variant import TrainedVariant

    out = []
    if any(m in ("lime", "cap") for m in variant.priors):  # the audit needs an LLM prior
        for w in settings.penalty_weights:
            out.append(TrainedVariant(candidate_name(variant.name, f"penalty_{w:.0e}"), [],
                                      train={"model": {"penalty_weight": w},
                                             "data": {"penalty_positions": AUDIT_POSITIONS}},
                                      seeds=variant.seeds, candidate_of=variant.name, recipe="fixed"))
    r = settings.prior_grad_ratio
    out.append(TrainedVariant(candidate_name(variant.name, f"prior_gr{r:g}"), list(variant.priors), variant.fusion,
                              train={"model": {"grad_ratio": r, "beta_warmup_ratio": 0.0}},
                              seeds=variant.seeds, candidate_of=variant.name, recipe="fixed"))
    return out


def expand(variants: Sequence, settings: RuleSettings) -> list:
    """``variants`` with every rule variant's candidates after it (idempotent: present ones are kept)."""
    names = {v.name for v in variants}
    out = []
    for v in variants:
        out.append(v)
        if v.candidate_of is None and v.priors and is_rule(v):
            out += [c for c in candidates(v, settings) if c.name not in names]
    return out


def choose(scores: dict[str, dict[str, float | None]], order: Sequence[str], settings: RuleSettings,
           has_counter: bool) -> tuple[str, str]:
    """The rule (docs/recipe.md) on mean validation scores ``{name: {clean, counter}}``; ``order``:
    CE first, then the candidates cheapest first. Returns the chosen name and the reason, one line."""
    ce = order[0]
    if not has_counter:
        return ce, "the audit confirmed no feature: no shortcut to fix, CE"
    floor = scores[ce]["clean"] - settings.clean_tolerance
    ok = [n for n in order[1:] if n in scores and scores[n]["clean"] is not None and scores[n]["clean"] >= floor - 1e-12
          and scores[n]["counter"] is not None and not math.isnan(scores[n]["counter"])]
    if not ok:
        return ce, (f"no candidate keeps its shortcut-free clean validation accuracy within {100 * settings.clean_tolerance:g} "
                    "point(s) of CE's")
    best = max(scores[n]["counter"] for n in ok)
    pick = next(n for n in ok if scores[n]["counter"] >= best - settings.tie)  # ties: the cheaper one
    gain = scores[pick]["counter"] - scores[ce]["counter"]
    if gain < settings.counter_margin:
        return ce, (f"best candidate {pick} gains {100 * gain:+.2f} points of counter-shortcut validation accuracy, "
                    f"less than {100 * settings.counter_margin:g}: CE")
    return pick, (f"{pick}: counter-shortcut validation {100 * scores[pick]['counter']:.1f} vs CE "
                  f"{100 * scores[ce]['counter']:.1f}, clean {100 * scores[pick]['clean']:.1f} vs CE {100 * scores[ce]['clean']:.1f}")


# -- the rule audit and the selection, as jobs of the pipeline's graph --------------------------------

RULE_AUDIT_JOB = "audit:rule"


def rule_audit_key(cfg, ce_model_key: str, prior_keys: dict, methods: list[str]) -> dict:
    """What the rule audit depends on: the CE model, the priors it reads, the audit's settings and
    the validation split it verifies on (training's own)."""
    from eg_train.experiment.audit_jobs import resolved_audit_params

    return {"model": ce_model_key, "priors": {m: prior_keys[m] for m in methods},
            "params": resolved_audit_params(cfg), "heldout": "training validation"}


def rule_audit_file(cfg, key: dict) -> Path:
    from eg_train.experiment.layout import short_key

    return Path(cfg.out_dir) / "select" / f"audit-{short_key(key)}" / "audit.json"


def train_and_validation(data_options, model_name: str):
    """The training examples and training's own validation split of the CE baseline's training
    config (``data_options``: its :class:`~eg_train.training.datamodule.DataOptions`)."""
    from eg_train.training.datamodule import EGDataModule

    dm = EGDataModule.from_options(data_options, None, model_name=model_name)
    train, val = dm.train_validation()
    if val is None or len(val) == 0:
        raise ConfigError("the recipe rule needs a validation split (data.val_per_class > 0, or a validation file)")
    return train, val


def rule_audit_job(cfg, ce_run_dir: str, methods: list[str], key: dict, data_options, model_name: str
                   ) -> tuple[dict[str, float], str]:
    """Audit the CE model on training's validation split into :func:`rule_audit_file` (reused by key)."""
    from eg_train.evaluation.audit import AuditConfig
    from eg_train.experiment.audit_jobs import audit_params
    from eg_train.experiment.layout import check_key, write_key
    from eg_train.foundation.io import atomic_write_json

    target = rule_audit_file(cfg, key)
    if target.is_file() and check_key(target.parent, key):
        return {}, str(target)
    t = time.perf_counter()
    train, val = train_and_validation(data_options, model_name)
    doc = audit_ce_model(Path(ce_run_dir) / "model", train, val, str(Path(cfg.out_dir) / "prior_cache"), methods,
                         AuditConfig(**audit_params(cfg)), cfg.device)
    atomic_write_json(target, doc)
    write_key(target.parent, key)
    log.info("rule audit: %d confirmed of %d tested candidates", doc["counts"]["confirmed"], doc["counts"]["tested"])
    return {"audit_rule_s": time.perf_counter() - t}, str(target)


def audit_ce_model(model_dir: Path, train, val, prior_cache: str, methods: list[str], params, device: str,
                   normalisation: str = "minmax") -> dict:
    """The rule audit's document: the CE model at ``model_dir`` audited with the ``methods`` priors of
    ``prior_cache`` (fused by mean) on training's validation split ``val``."""
    import torch

    from eg_train.evaluation.audit import run_audit
    from eg_train.evaluation.audit.prior_lookup import priors_by_fingerprint
    from eg_train.foundation.models.resolve import load_sequence_classifier

    priors = priors_by_fingerprint(prior_cache, train.dataset["text"], methods, "mean", normalisation)
    model, tok = load_sequence_classifier(str(model_dir))
    model.to(torch.device(device)).eval()
    doc = run_audit(model, tok, train, priors, val, params)
    doc.update({"checkpoint": str(model_dir), "prior": {"methods": methods, "fusion": "mean"}})
    return doc


def confirmed_positions(audit_file: str | Path) -> int:
    """How many training texts the rule audit's confirmed features cover."""
    return len(json.loads(Path(audit_file).read_text()).get("positions") or [])


def _correct(model_dir: Path, split, device: str) -> "np.ndarray":
    """Whether the model predicts each text of ``split`` right (bool, in the split's order)."""
    import numpy as np
    import torch

    from eg_train.evaluation.attribution import encode_texts, predict_proba
    from eg_train.foundation.models.resolve import load_sequence_classifier

    model, tok = load_sequence_classifier(str(model_dir))
    model.to(torch.device(device)).eval()
    enc = encode_texts(tok, list(split.dataset["text"]), 128)
    with torch.inference_mode():
        probs = predict_proba(model, [e.input_ids for e in enc], tok.pad_token_id, 64)
    return probs.argmax(-1) == np.asarray(split.dataset["label"])


def bits(correct) -> str:
    """A correctness vector as a compact string (``"0110..."``): kept in ``choice.json`` so that any later
    rule can be applied to the same validation predictions (paired, per text)."""
    return "".join("1" if c else "0" for c in correct)


def link_model(run_dir: Path, chosen_run_dir: Path, key: dict, choice: dict) -> None:
    """Make ``run_dir`` the run of the chosen model: ``model`` (and ``metrics.csv``) link to it."""
    from eg_train.experiment.layout import write_key
    from eg_train.foundation.io import atomic_write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("model", "metrics.csv", "config.yaml"):
        src, dst = chosen_run_dir / name, run_dir / name
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        if src.exists():
            os.symlink(os.path.relpath(src, run_dir), dst)
    atomic_write_json(run_dir / "choice.json", choice)
    write_key(run_dir, key)


def validation_scores(run_dirs: dict[str, dict[int, str]], order: Sequence[str], seeds: Sequence[int], audit: dict,
                      val, device: str) -> tuple[dict[str, dict], dict[str, dict[int, dict]], int]:
    """Every model's accuracy on training's validation split ``val``: plain (``validation``), without the
    audit's confirmed features (``clean``) and on the audit's counter-shortcut validation (``counter``, None
    when nothing is confirmed). Returns the means over ``seeds`` per name, the per-seed rows (with the
    per-text correctness of ``clean`` and ``counter`` as :func:`bits`) and the size of the counter-shortcut
    split; models not trained (yet) are left out."""
    import numpy as np

    from eg_train.evaluation.audit import counter_shortcut_split, shortcut_free_split

    counter = counter_shortcut_split(audit, val) if audit.get("confirmed") else None
    # Clean accuracy without the shortcuts: the validation texts carry them as training does, and a
    # model that fits them would win a plain validation (the floor would protect the shortcut).
    free = shortcut_free_split(audit, val)
    per_seed: dict[str, dict[int, dict]] = {}
    for name in order:
        for s in seeds:
            model = Path(run_dirs[name][s]) / "model"
            if not (model / "config.json").is_file():
                continue
            right = {"clean": _correct(model, free, device), "validation": _correct(model, val, device),
                     "counter": _correct(model, counter, device) if counter is not None else None}
            per_seed.setdefault(name, {})[s] = {
                **{k: (float(np.mean(v)) if v is not None else None) for k, v in right.items()},
                "clean_correct": bits(right["clean"]),
                "counter_correct": bits(right["counter"]) if right["counter"] is not None else None}
    means = {n: {k: (float(np.mean([r[k] for r in rows.values()])) if all(r[k] is not None for r in rows.values()) else None)
                 for k in ("clean", "validation", "counter")} for n, rows in per_seed.items()}
    return means, per_seed, 0 if counter is None else len(counter)


def choice_document(rule_name: str, pick: str, reason: str, settings: RuleSettings, audit: dict, n_val: int,
                    n_counter: int, means: dict, per_seed: dict) -> dict:
    """What ``choice.json`` holds: the choice, its reason, the confirmed features and every score."""
    return {"variant": rule_name, "chosen": pick, "reason": reason, "settings": asdict(settings),
            "confirmed": [{k: c.get(k) for k in ("feature", "class", "position", "flip_rate", "flip_rate_control")}
                          for c in audit.get("confirmed", [])],
            "validation": {"n_clean": n_val, "n_counter": n_counter},
            "scores": means, "per_seed": {n: {str(s): r for s, r in rows.items()} for n, rows in per_seed.items()}}


def select_job(cfg, rule_name: str, order: list[str], run_dirs: dict[str, dict[int, str]], audit_file: str | None,
               targets: dict[int, str], keys: dict[int, dict], choice_file: str, data_options, model_name: str
               ) -> tuple[dict[str, float], str]:
    """Score CE and every candidate on clean and counter-shortcut validation, apply :func:`choose`,
    write ``choice_file`` and link each seed's run folder of the rule variant to the chosen model."""
    from eg_train.foundation.io import atomic_write_json

    t = time.perf_counter()
    settings = RuleSettings.from_mapping(cfg.rule)
    seeds = sorted(targets)
    _, val = train_and_validation(data_options, model_name)
    audit = json.loads(Path(audit_file).read_text()) if audit_file else {"confirmed": []}
    means, per_seed, n_counter = validation_scores(run_dirs, order, seeds, audit, val, cfg.device)
    pick, reason = choose(means, [n for n in order if n in means], settings, bool(audit.get("confirmed")))
    log.info("rule %s: %s", rule_name, reason)
    atomic_write_json(Path(choice_file), choice_document(rule_name, pick, reason, settings, audit, len(val), n_counter,
                                                         means, per_seed))
    for s in seeds:
        link_model(Path(targets[s]), Path(run_dirs[pick][s]), keys[s], {"chosen": pick, "reason": reason,
                                                                      "selection": str(choice_file)})
    return {f"select_{rule_name}_s": time.perf_counter() - t}, pick


def same_as_ce(run_dir: Path, ce_run_dir: Path, key: dict) -> None:
    """A penalty candidate whose audit confirmed nothing penalises no word: it *is* the CE model."""
    link_model(run_dir, ce_run_dir, key, {"chosen": "ce", "reason": "the audit confirmed no feature: no word to penalise"})


__all__ = ["AUDIT_POSITIONS", "RECIPES", "RULE_AUDIT_JOB", "RuleSettings", "audit_ce_model", "candidates", "choose", "expand",
           "is_rule", "link_model", "penalty_weight", "resolved_recipe", "rule_audit_file", "rule_audit_job",
           "rule_audit_key", "select_job", "uses_audit_positions"]
