"""The audit's report section (markdown and HTML): confirmed features per class with their figures,
and example training texts with the model's and the prior's heatmaps side by side.

The HTML heatmaps are :func:`priors.report.heatmap_rows` (the prior report's word cells); the
markdown links the PNGs of :func:`eg_train.evaluation.report.heatmap_plot` (the evaluation report's).
Both templates (``templates/audit.{md,html}.j2``) render one context, so they show the same figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


# The word cells of priors.report.heatmap_rows.
_HEATMAP_CSS = ("td.m{width:110px;font-weight:600;font-size:13px;color:#333;border:none}"
                "span.w{display:inline-block;padding:1px 4px;margin:1px;border-radius:3px;font-size:15px}"
                "table.hm td{border:none}")


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _ci(x) -> str:
    return "n/a" if not x else f"[{100 * x[0]:+.1f}, {100 * x[1]:+.1f}]"


def _llm_cell(c: dict) -> str:
    """The LLM counterfactual in one cell: Δ log p of the feature vs its controls, and the verdict."""
    if not c.get("llm_tested"):
        return "n/a"
    if c.get("llm_delta_log_p") is None or c.get("llm_delta_log_p_control") is None:
        return "no texts"
    verdict = "evidence" if c.get("llm_evidence") else "not evidence"
    return f"{c['llm_delta_log_p']:+.2f} vs {c['llm_delta_log_p_control']:+.2f}: {verdict}"


def _label_cell(c: dict) -> str:
    """The label-relatedness check in one cell: its rank p-value and the verdict."""
    if c.get("label_p") is None:
        return "n/a"
    return f"p {c['label_p']:.3f}: {'evidence' if c.get('label_evidence') else 'not evidence'}"


def audit_context(audit: dict, image_dir: str | None = "plots") -> dict:
    """What both templates render: rows per confirmed feature, the candidates tested, the examples."""
    from markupsafe import Markup

    from priors.report import heatmap_rows

    def row(c: dict) -> dict:
        return {"class": c["class"], "feature": c["feature"], "position": c["position"], "count": c["count"],
                "count_total": c["count_total"], "association": f"{c['association']:.2f}",
                "association_ci95": f"[{c['association_ci95'][0]:.2f}, {c['association_ci95'][1]:.2f}]",
                "model_share": _pct(c["model_share"]), "prior_share": _pct(c["prior_share"]),
                "uniform_share": _pct(c["uniform_share"]), "score": f"{c['score']:.3f}",
                "flip_rate": _pct(c.get("flip_rate")), "flip_rate_control": _pct(c.get("flip_rate_control")),
                "flip_ci95": _ci(c.get("flip_ci95")),
                "delta_log_p": "n/a" if c.get("delta_log_p") is None else f"{c['delta_log_p']:+.2f}",
                "removal": "n/a" if c.get("removal_accuracy_drop") is None
                else f"{100 * c['removal_accuracy_drop']:+.1f} (n={c['removal_n']})",
                "singled_out": "yes" if c.get("prior_singles_out") else "no",
                "llm": _llm_cell(c), "label": _label_cell(c),
                "confirmed": "yes" if c.get("confirmed") else "no"}

    examples = []
    for k, ex in enumerate(audit.get("examples", [])):
        words = ex["words"]
        model = np.asarray(ex["model"], dtype=float)
        rows = {"model IG": model}
        if ex.get("prior") is not None:
            rows = {"prior": np.asarray(ex["prior"], dtype=float), **rows}
        marked = " ".join(f"**{w}**" if i in ex["positions"] else w for i, w in enumerate(words))
        examples.append({"title": f"{ex['id']} · {ex['class']} · feature “{ex['feature']}”", "marked": marked,
                         "html": Markup(heatmap_rows(words, rows)),
                         "image": f"{image_dir}/audit_{k:02d}.png" if image_dir else None})
    tested = [c for c in audit["candidates"] if c.get("tested")]
    return {"counts": audit["counts"], "heldout": audit.get("heldout_source", ""),
            "confirmed": [row(c) for c in audit["confirmed"]], "tested": [row(c) for c in tested],
            "examples": examples, "seconds": audit.get("seconds", {}),
            "label_check": any(c.get("label_p") is not None for c in tested)}


def render_audit_section(audit: dict, fmt: str = "markdown", image_dir: str | None = "plots") -> str:
    """The section as ``markdown`` or ``html`` (an HTML fragment, to embed in a report)."""
    from eg_train.evaluation.report import _environment

    if fmt not in ("markdown", "html"):
        raise ValueError(f"fmt must be 'markdown' or 'html', got {fmt!r}")
    env = _environment()
    name = "audit.md.j2" if fmt == "markdown" else "audit.html.j2"
    return env.get_template(name).render(audit_context(audit, image_dir))


def write_audit_report(audit: dict, out_dir: str | Path) -> dict[str, Path]:
    """``audit.md`` (with ``plots/audit_*.png``) and a self-contained ``audit.html`` under ``out_dir``."""
    from eg_train.evaluation.report import CSS, HeatmapExample, heatmap_plot

    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for k, ex in enumerate(audit.get("examples", [])):
        png = heatmap_plot(HeatmapExample(f"{ex['id']} · {ex['class']} · “{ex['feature']}”", ex["words"],
                                          np.asarray(ex["model"]), None if ex.get("prior") is None else np.asarray(ex["prior"])))
        (out / "plots" / f"audit_{k:02d}.png").write_bytes(png)
    md = out / "audit.md"
    md.write_text("# Shortcut audit\n\n" + render_audit_section(audit, "markdown"), encoding="utf-8")
    html_doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>Shortcut audit</title>"
                f"<style>{CSS}{_HEATMAP_CSS}</style></head><body><h1>Shortcut audit</h1>"
                f"{render_audit_section(audit, 'html')}</body></html>")
    html = out / "audit.html"
    html.write_text(html_doc, encoding="utf-8")
    return {"markdown": md, "html": html}


__all__ = ["audit_context", "render_audit_section", "write_audit_report"]
