"""Selection v4 of the recipe rule (docs/recipe.md, "Selection v4"): the v3 thresholds (a clean
floor of 1 point, a counter-shortcut margin of 2 points, on means over seeds) widened to one paired
standard error where the validation is too small to resolve them -- the one-standard-error rule of
model selection (Breiman et al. 1984; Hastie et al., *Elements of Statistical Learning*, §7.10).

Recorded in writing before the records it is tested on existed, and applied *offline* to the
per-text validation correctness the selections keep (``choice.json``'s ``clean_correct`` /
``counter_correct``, carried into suite records as ``rule_selections``); v3 stays what the pipeline
trains with until v4 has test results (``scripts/apply_rule.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

from eg_train.experiment.rule import RuleSettings


@dataclass(frozen=True)
class PairedDifference:
    """``mean``: candidate minus CE accuracy; ``se``: its standard error over the ``n`` texts."""

    mean: float
    se: float
    n: int


def _matrix(bits: Mapping[str, str], seeds: Sequence[str]) -> np.ndarray:
    rows = [bits[s] for s in seeds]
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"correctness strings of unequal length across seeds: {[len(r) for r in rows]}")
    return np.array([[c == "1" for c in r] for r in rows], dtype=float)  # [seeds, texts]


def paired_difference(candidate: Mapping[str, str], ce: Mapping[str, str]) -> PairedDifference:
    """Paired by seed and text: per text the mean over seeds of (candidate right) - (CE right), then
    its mean and standard error over texts. The texts are the independent unit: the seeds share them.

    ``candidate``, ``ce``: per seed, the correctness string of :func:`eg_train.experiment.rule.bits`."""
    seeds = sorted(set(candidate) & set(ce))
    if not seeds:
        raise ValueError("no seed is scored for both models")
    d = (_matrix(candidate, seeds) - _matrix(ce, seeds)).mean(axis=0)
    if d.size == 0:
        raise ValueError("empty validation split")
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0
    return PairedDifference(float(d.mean()), se, int(d.size))


def _bits(rows: Mapping[str, Mapping], field: str) -> dict[str, str] | None:
    out = {str(s): r.get(field) for s, r in rows.items()}
    return None if any(v is None for v in out.values()) else out


def choose_one_se(per_seed: Mapping[str, Mapping[str, Mapping]], order: Sequence[str], settings: RuleSettings,
                  has_counter: bool) -> tuple[str, str, dict[str, dict]]:
    """Selection v4 on a selection's ``per_seed`` rows (``choice.json``); ``order``: CE first, then the
    candidates cheapest first. Returns the chosen name, the reason and per candidate its paired
    differences and verdicts.

    A candidate is admissible when its clean loss is at most ``max(clean_tolerance, SE_clean)`` and
    qualifies when its counter-shortcut gain is at least ``max(counter_margin, SE_counter)``; the
    qualifying candidate with the largest gain wins, gains within ``tie`` go to the cheaper one."""
    ce = order[0]
    if not has_counter:
        return ce, "the audit confirmed no feature: no shortcut to fix, CE", {}
    ce_clean, ce_counter = _bits(per_seed[ce], "clean_correct"), _bits(per_seed[ce], "counter_correct")
    if ce_clean is None or ce_counter is None:
        raise ValueError(f"{ce}'s selection rows carry no per-text correctness (written before selections kept it)")
    table: dict[str, dict] = {}
    for name in order[1:]:
        rows = per_seed.get(name)
        if not rows:
            continue
        clean, counter = _bits(rows, "clean_correct"), _bits(rows, "counter_correct")
        if clean is None or counter is None:
            continue
        dc, dk = paired_difference(clean, ce_clean), paired_difference(counter, ce_counter)
        floor, margin = max(settings.clean_tolerance, dc.se), max(settings.counter_margin, dk.se)
        table[name] = {"clean": asdict(dc), "counter": asdict(dk), "clean_floor": -floor, "counter_margin": margin,
                       "admissible": dc.mean >= -floor - 1e-12, "qualifies": dk.mean >= margin - 1e-12}
    ok = [n for n in table if table[n]["admissible"]]
    if not ok:
        return ce, "no candidate keeps its shortcut-free clean validation loss within max(1 point, one paired SE)", table
    good = [n for n in ok if table[n]["qualifies"]]
    if not good:
        best = max(ok, key=lambda n: table[n]["counter"]["mean"])
        t = table[best]
        return ce, (f"no admissible candidate gains max(2 points, one paired SE) of counter-shortcut validation accuracy "
                    f"(best {best}: {100 * t['counter']['mean']:+.2f}, SE {100 * t['counter']['se']:.2f}): CE"), table
    top = max(table[n]["counter"]["mean"] for n in good)
    pick = next(n for n in good if table[n]["counter"]["mean"] >= top - settings.tie)  # ties: the cheaper one
    t = table[pick]
    return pick, (f"{pick}: counter-shortcut validation {100 * t['counter']['mean']:+.1f} points "
                  f"(SE {100 * t['counter']['se']:.1f}), clean {100 * t['clean']['mean']:+.1f} (SE {100 * t['clean']['se']:.1f})"), table


def apply_to_record(record: Mapping) -> dict[str, dict]:
    """Selection v4 on a shortcut-suite record (``results/shortcut_suite/<case>.json``): per rule variant
    whose selection kept per-text correctness, the v3 choice the pipeline made, the v4 choice and both
    choices' test figures (``summary.models``; ``summary.paired`` against CE). Variants without per-text
    correctness are left out."""
    out: dict[str, dict] = {}
    summary = record["summary"]
    for name, sel in (record.get("rule_selections") or {}).items():
        per_seed = sel.get("per_seed") or {}
        order = list(per_seed)
        if not order or _bits(per_seed[order[0]], "clean_correct") is None:
            continue
        v3 = sorted({c["chosen"] for c in record["rule_choices"][name].values()})
        v4, reason, table = choose_one_se(per_seed, order, RuleSettings.from_mapping(sel.get("settings")),
                                          bool(sel.get("confirmed")))
        test = {pick: {"model": summary["models"].get(pick), "vs_ce": summary["paired"].get(pick)}
                for pick in {order[0], *v3, v4}}
        out[name] = {"ce": order[0], "v3": v3[0] if len(v3) == 1 else v3, "v4": v4, "v4_reason": reason,
                     "v4_table": table, "test": test}
    return out
