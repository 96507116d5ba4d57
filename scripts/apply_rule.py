"""Apply the recipe rule's selection v4 (docs/recipe.md) offline to shortcut-suite records and
compare it with v3, the selection the pipeline made, on the records' test figures.

    python scripts/apply_rule.py [--records results/shortcut_suite] [--out results/shortcut_suite/rule_v4_offline.json]

Writes the JSON and a markdown table next to it. Records written before selections kept per-text
correctness (``rule_selections``) are listed as skipped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eg_train.experiment.paired_selection import apply_to_record
from eg_train.foundation.io import atomic_write_json, atomic_write_text


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _row(case: str, variant: str, res: dict) -> list[str]:
    ce = res["test"].get(res["ce"], {}).get("model") or {}
    cells = []
    for which in ("v3", "v4"):
        pick = res[which]
        m = res["test"].get(pick, {}).get("model") or {}
        paired = res["test"].get(pick, {}).get("vs_ce") or {}
        clean = paired.get("clean") or {}
        ci = clean.get("ci95")
        cells += [str(pick), _pct(m.get("clean_accuracy")),
                  (f"{100 * clean['mean']:+.1f} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "0"),
                  _pct(m.get("counter_accuracy")), _pct(m.get("worst_group_accuracy"))]
    return [case, variant, _pct(ce.get("shortcut_reliance"))] + cells


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=Path, default=Path("results/shortcut_suite"))
    ap.add_argument("--out", type=Path, default=Path("results/shortcut_suite/rule_v4_offline.json"))
    args = ap.parse_args(argv)
    results, skipped = {}, []
    for path in sorted(args.records.glob("*.json")):
        record = json.loads(path.read_text())
        if "summary" not in record or "case" not in record:
            continue
        applied = apply_to_record(record)
        if applied:
            results[record["case"]["name"]] = applied
        else:
            skipped.append(record["case"]["name"])
    doc = {"selection": "v4 (one paired SE; docs/recipe.md)", "cases": results, "skipped_no_per_text_validation": skipped}
    atomic_write_json(args.out, doc)
    head = ["case", "variant", "CE reliance"] + [f"{v} {c}" for v in ("v3", "v4")
                                                 for c in ("choice", "clean", "Δ clean [95 % CI]", "counter", "worst-group")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_row(c, v, r)) + " |" for c, per in results.items() for v, r in per.items()]
    lines += ["", f"Skipped (records without per-text validation correctness): {', '.join(skipped) or 'none'}."]
    atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return doc


if __name__ == "__main__":
    main()
