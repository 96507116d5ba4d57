"""Reports people can read: markdown + one self-contained HTML file (inline CSS, base64 PNGs).

Sections: methods × metrics (mean ± std over the runs of a method), a PNG plot of clean vs
adversarial accuracy per method, the most confused class pairs, per-example heatmaps of the
fused prior next to the model's own attribution, and random original/attacked pairs.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from eg_train.evaluation.attacks.flags import change_note

log = logging.getLogger(__name__)


@dataclass
class HeatmapExample:
    """One example's words with the fused prior (may be None) and the model's attribution."""

    title: str
    words: list[str]
    model: np.ndarray
    prior: np.ndarray | None = None


@dataclass
class AttackPair:
    attack: str
    gold: str
    target: str
    original: str
    attacked: str
    edits: list[dict]


# ---------------------------------------------------------------------------------------------
# loading and aggregation
def load_runs(paths: Sequence[str | Path]) -> list[dict]:
    """Read ``metrics.json`` from each path (a file or a folder holding one)."""
    if not paths:
        raise ValueError("no runs given; pass one or more evaluation folders (each with metrics.json)")
    runs = []
    for p in paths:
        p = Path(p)
        f = p / "metrics.json" if p.is_dir() else p
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no metrics.json (run `eg-eval evaluate` first)")
        m = json.loads(f.read_text(encoding="utf-8"))
        m["_dir"] = str(f.parent)
        runs.append(m)
    fps = {r["dataset"]["fingerprint"] for r in runs}
    if len(fps) > 1:
        raise ValueError(f"runs were evaluated on different test sets (fingerprints {sorted(fps)}); compare like with like")
    return runs


def run_values(run: dict) -> dict[str, float]:
    """Flat metric name -> value of one run (fractions; None-valued metrics are left out)."""
    v = {"accuracy": run["clean"]["accuracy"], "macro_f1": run["clean"]["macro_f1"]}
    for name, a in sorted(run.get("attacks", {}).items()):
        v[f"{name}/accuracy"] = a["accuracy"]
        v[f"{name}/drop"] = a["drop"]
    for name, a in sorted((run.get("transfer") or {}).items()):
        v[f"transfer:{name}/accuracy"] = a["accuracy"]
        v[f"transfer:{name}/drop"] = a["drop"]
    for name, r in sorted(((run.get("model_attacks") or {}).get("recipes") or {}).items()):
        if r.get("accuracy_under_attack") is not None:
            v[f"adaptive:{name}/accuracy"] = r["accuracy_under_attack"]
        if r.get("attack_success_rate") is not None:
            v[f"adaptive:{name}/success_rate"] = r["attack_success_rate"]
    f = run.get("faithfulness")
    if f:
        v["comprehensiveness"] = f["comprehensiveness"]
        v["sufficiency"] = f["sufficiency"]
    return v


def aggregate(runs: Sequence[dict]) -> tuple[list[str], list[str], dict[str, dict[str, tuple[float, float, int]]]]:
    """``(methods, metric names, table[method][metric] = (mean, std, n))``; std is the sample std (0 for n = 1)."""
    by_method: dict[str, list[dict[str, float]]] = {}
    for r in runs:
        by_method.setdefault(r["method"], []).append(run_values(r))
    metrics: list[str] = []
    for vals in by_method.values():
        for v in vals:
            metrics.extend(k for k in v if k not in metrics)
    table = {}
    for method, vals in by_method.items():
        table[method] = {}
        for k in metrics:
            xs = np.array([v[k] for v in vals if k in v], dtype=float)
            if xs.size:
                table[method][k] = (float(xs.mean()), float(xs.std(ddof=1)) if xs.size > 1 else 0.0, int(xs.size))
    return list(by_method), metrics, table


def confused_pairs_by_method(runs: Sequence[dict], top: int = 5) -> dict[str, list[dict]]:
    """Clean-set confused pairs of each method, counts summed over its runs."""
    out: dict[str, dict[tuple[str, str], int]] = {}
    for r in runs:
        acc = out.setdefault(r["method"], {})
        for p in r["clean"]["confused_pairs"]:
            key = (p["gold"], p["predicted"])
            acc[key] = acc.get(key, 0) + p["count"]
    return {
        m: [{"gold": g, "predicted": p, "count": c} for (g, p), c in sorted(d.items(), key=lambda x: (-x[1], x[0]))[:top]]
        for m, d in out.items()
    }


def sample_attack_pairs(attack_path: str | Path, n: int = 8, seed: int = 0, prefix: str = "") -> list[AttackPair]:
    """``n`` random changed examples per attack split (seeded) for a person to read (named ``prefix + split``)."""
    import datasets

    from eg_train.evaluation.attacks.build import attack_metadata

    loaded = datasets.load_from_disk(str(attack_path))
    pairs = []
    for name in sorted(loaded):
        ds = loaded[name]
        labels = attack_metadata(ds)["label_names"]
        changed = np.flatnonzero(np.asarray(ds["changed"], dtype=bool))
        rng = np.random.default_rng(seed)
        for i in np.sort(rng.choice(changed, size=min(n, changed.size), replace=False)):
            r = ds[int(i)]
            pairs.append(AttackPair(prefix + name, labels[r["label"]], labels[r["target_label"]], r["original_text"], r["text"], json.loads(r["edits"])))
    return pairs


# ---------------------------------------------------------------------------------------------
# plots (matplotlib Agg, PNG bytes)
def _png(fig) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def accuracy_plot(methods: Sequence[str], table: dict, attacks: Sequence[str]) -> bytes:
    """Grouped bars: clean and per-attack accuracy of each method (error bars: std over runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = ["accuracy"] + [f"{a}/accuracy" for a in attacks]
    names = ["clean"] + list(attacks)
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(methods) + 2), 3.6))
    x = np.arange(len(methods))
    for j, (key, label) in enumerate(zip(series, names)):
        means = [100 * table[m].get(key, (np.nan, 0, 0))[0] for m in methods]
        stds = [100 * table[m].get(key, (0, 0, 0))[1] for m in methods]
        bars = ax.bar(x + (j - (len(series) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(x, methods)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Clean vs adversarial accuracy")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def heatmap_plot(ex: HeatmapExample) -> bytes:
    """Two rows (fused prior, model IG), one column per word, each row min-max normalised."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from priors.fusion import normalise

    rows, labels = [], []
    if ex.prior is not None:
        rows.append(normalise(np.asarray(ex.prior, dtype=float), "minmax"))
        labels.append("fused prior")
    rows.append(normalise(np.asarray(ex.model, dtype=float), "minmax"))
    labels.append("model IG")
    data = np.vstack(rows) if ex.words else np.zeros((len(rows), 1))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.62 * len(ex.words) + 1.4), 0.55 * len(rows) + 0.9))
    ax.imshow(data, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(ex.words)), ex.words, rotation=40, ha="right", fontsize=9)
    ax.set_yticks(range(len(rows)), labels, fontsize=9)
    for (r, c), v in np.ndenumerate(data):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black")
    ax.set_title(ex.title, fontsize=9, loc="left")
    return _png(fig)


# ---------------------------------------------------------------------------------------------
# rendering
def _fmt(cell: tuple[float, float, int] | None, percent: bool = True) -> str:
    if cell is None:
        return "–"
    mean, std, n = cell
    scale = 100 if percent else 1
    return f"{scale * mean:.2f} ± {scale * std:.2f}" if n > 1 else f"{scale * mean:.2f}"


def _highlight(original: str, attacked: str, edits: list[dict]) -> str:
    """HTML of an attacked text with the inserted / replaced words marked.

    Edits are replayed on per-word flags: an edit's position refers to the text after the edits
    before it, so inserting shifts the flags of the words that follow.
    """
    from eg_train.foundation.words import split_words

    flags = [False] * len(split_words(original).words)
    for e in edits:
        if e["op"] == "insert":
            flags.insert(e["position"], True)
        else:
            flags[e["position"]] = True
    w = split_words(attacked)
    if len(flags) != len(w.words):  # cannot align (should not happen): show the text unmarked
        return html.escape(attacked)
    out, cursor = [], 0
    for flag, (s, e) in zip(flags, w.spans):
        out.append(html.escape(attacked[cursor:s]))
        word = html.escape(attacked[s:e])
        out.append(f"<mark>{word}</mark>" if flag else word)
        cursor = e
    out.append(html.escape(attacked[cursor:]))
    return "".join(out)


def _metric_label(k: str) -> str:
    if "/" in k:
        attack, what = k.split("/", 1)
        attack = attack.replace("transfer:", "transfer ")
        return f"{attack.replace('_', ' ')} {'adv. acc.' if what == 'accuracy' else 'drop'}"
    return k.replace("_", "-") if k == "macro_f1" else k


def attack_warnings(runs: Sequence[dict]) -> dict[str, dict[str, str]]:
    """``{method: {metric prefix: warning}}`` for every attack that changed (almost) nothing."""
    out: dict[str, dict[str, str]] = {}
    for r in runs:
        for kind, prefix in (("attacks", ""), ("transfer", "transfer:")):
            for name, a in (r.get(kind) or {}).items():
                note = a.get("warning")
                if note is None and "n_changed" in a and "n" in a:  # metrics written before warnings existed
                    note = change_note(a["n_changed"], a["n"])
                if note:
                    out.setdefault(r["method"], {})[prefix + name] = note
        for name, a in ((r.get("model_attacks") or {}).get("recipes") or {}).items():
            if a.get("warning"):
                out.setdefault(r["method"], {})["adaptive:" + name] = a["warning"]
    return out


def model_attack_rows(runs: Sequence[dict]) -> list[dict]:
    """Adaptive model-aware results per (method, recipe), mean ± std over the method's runs."""
    # (field, shown in percent from a fraction?)
    fields = [("clean_accuracy", True), ("accuracy_under_attack", True), ("attack_success_rate", True),
              ("avg_perturbed_word_pct", False), ("avg_queries", False), ("skipped", False)]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        for name, a in ((r.get("model_attacks") or {}).get("recipes") or {}).items():
            groups.setdefault((r["method"], name), []).append(a)
    rows = []
    for (method, recipe), vals in groups.items():
        cells = []
        for f, percent in fields:
            xs = np.array([v[f] for v in vals if v.get(f) is not None], dtype=float)
            cell = (float(xs.mean()), float(xs.std(ddof=1)) if xs.size > 1 else 0.0, int(xs.size)) if xs.size else None
            cells.append(_fmt(cell, percent))
        rows.append({
            "method": method, "recipe": recipe, "runs": len(vals), "cells": cells,
            "warning": next((v["warning"] for v in vals if v.get("warning")), None),
            "source": next((v.get("synonym_source") for v in vals if v.get("synonym_source")), None),
        })
    return rows


def _environment():
    """The jinja2 environment of the report templates (HTML autoescaped, markdown not)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("eg_train.evaluation", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = lambda text: str(text).replace("|", "/").replace("\n", " ")  # markdown table cell
    return env


def report_context(
    runs: Sequence[dict],
    heatmaps: Sequence[HeatmapExample],
    attack_pairs: Sequence[AttackPair],
    title: str,
    plots: dict[str, bytes],
) -> dict:
    """Everything both templates render (markdown and HTML read the same context)."""
    from markupsafe import Markup

    methods, metrics, table = aggregate(runs)
    warnings = attack_warnings(runs)
    n_runs = {m: sum(1 for r in runs if r["method"] == m) for m in methods}
    dataset = runs[0]["dataset"]
    rows = []
    for m in methods:
        cells = []
        for k in metrics:
            prefix = k.split("/")[0] if "/" in k else None
            flagged = prefix is not None and prefix in warnings.get(m, {})
            cells.append(_fmt(table[m].get(k)) + (" †" if flagged else ""))
        rows.append({"method": m, "runs": n_runs[m], "cells": cells})
    notes = [f"{m}, {k.replace(':', ' ')}: {w}" for m, ws in warnings.items() for k, w in ws.items()]
    images = {name: f"data:image/png;base64,{base64.b64encode(data).decode('ascii')}" for name, data in plots.items()}
    return {
        "title": title,
        "intro": (f"Test set: {dataset['source']} ({dataset['n']} examples, {dataset['num_labels']} labels, "
                  f"fingerprint {dataset['fingerprint']}). Values in %, mean ± sample std over runs where a method has several."),
        "header": ["method", "runs"] + [_metric_label(k) for k in metrics],
        "rows": rows,
        "warnings": notes,
        "legend": ("Adv. acc.: accuracy on the attacked test set; drop: clean minus adversarial accuracy (points); "
                   "transfer: texts generated against another model (see below). Comprehensiveness (higher is better) "
                   "and sufficiency (lower is better): ERASER AOPC over 1/5/10/20/50 % of words."),
        "accuracy_plot": {"path": "plots/accuracy.png", "uri": images["accuracy.png"]},
        "confused": confused_pairs_by_method(runs),
        "model_attack_header": ["method", "recipe", "runs", "clean acc.", "acc. under attack", "success rate",
                                "perturbed words %", "queries", "skipped"],
        "model_attacks": model_attack_rows(runs),
        "heatmaps": [{"title": ex.title, "path": f"plots/heatmap_{i:02d}.png", "uri": images[f"heatmap_{i:02d}.png"]}
                     for i, ex in enumerate(heatmaps)],
        "heatmaps_model_only": bool(heatmaps) and all(ex.prior is None for ex in heatmaps),
        "pairs": [{"attack": p.attack, "gold": p.gold, "target": p.target, "original": p.original, "attacked": p.attacked,
                   "attacked_html": Markup(_highlight(p.original, p.attacked, p.edits))} for p in attack_pairs],
        "css": Markup(CSS),
    }


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1150px;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em} h2{font-size:1.25em;margin-top:1.6em;color:#333}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:.35em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
img{max-width:100%;border:1px solid #eee;margin:.4em 0} mark{background:#ffd54f;padding:0 .15em}
.note{color:#666;font-size:.88em} .pairs td{max-width:420px} .warn{color:#a33;font-weight:600}
"""


def write_report(
    runs: Sequence[dict],
    out_dir: str | Path,
    heatmaps: Sequence[HeatmapExample] = (),
    attack_pairs: Sequence[AttackPair] = (),
    title: str = "eg-train evaluation report",
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` under ``out_dir`` (two templates, one context)."""
    out = Path(out_dir)
    md_path, html_path = out / "report.md", out / "report.html"
    if (md_path.exists() or html_path.exists()) and not overwrite:
        raise FileExistsError(f"{out} already holds a report; pass --overwrite true to replace it")
    methods, metrics, table = aggregate(runs)
    attacks = sorted({k.split("/")[0] for k in metrics if "/" in k})
    plots: dict[str, bytes] = {"accuracy.png": accuracy_plot(methods, table, attacks)}
    for i, ex in enumerate(heatmaps):
        plots[f"heatmap_{i:02d}.png"] = heatmap_plot(ex)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    for name, data in plots.items():
        (out / "plots" / name).write_bytes(data)
    context = report_context(runs, heatmaps, attack_pairs, title, plots)
    env = _environment()
    md_path.write_text(env.get_template("report.md.j2").render(context), encoding="utf-8")
    html_path.write_text(env.get_template("report.html.j2").render(context), encoding="utf-8")
    return {"markdown": md_path, "html": html_path, "plots": out / "plots"}


def saved_heatmaps(run: dict, n: int = 6, seed: int = 0) -> list[HeatmapExample]:
    """Model-only heatmaps from a run's ``attributions.jsonl`` (no recomputation, no prior)."""
    path = Path(run["_dir"]) / "attributions.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        return []
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(rows), size=min(n, len(rows)), replace=False).tolist())
    return [
        HeatmapExample(f"{rows[i]['id']} · gold: {rows[i]['label']} · attributed to: {rows[i]['target']}",
                       rows[i]["words"], np.asarray(rows[i]["attribution"], dtype=float))
        for i in chosen
    ]


def model_heatmaps(
    checkpoint: str | Path,
    split,
    priors: Sequence[np.ndarray | None] | None,
    n: int = 6,
    seed: int = 0,
    ig_steps: int = 50,
) -> list[HeatmapExample]:
    """Heatmap examples: the checkpoint's IG (to the gold label) next to the given fused priors.

    ``priors`` holds one array (or None) per example of ``split``; examples with a prior are
    sampled (seeded), or any examples when ``priors`` is None.
    """
    from eg_train.evaluation.attribution import encode_texts, word_integrated_gradients
    from eg_train.foundation.models.resolve import load_sequence_classifier
    from eg_train.foundation.words import split_words

    eligible = list(range(len(split))) if priors is None else [i for i, p in enumerate(priors) if p is not None]
    if not eligible:
        return []
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, size=min(n, len(eligible)), replace=False).tolist())
    model, tok = load_sequence_classifier(str(checkpoint))
    texts = [split.dataset[i]["text"] for i in chosen]
    labels = [split.dataset[i]["label"] for i in chosen]
    attrs = word_integrated_gradients(model, encode_texts(tok, texts), labels, tok.pad_token_id, n_steps=ig_steps)
    out = []
    for i, text, y, a in zip(chosen, texts, labels, attrs):
        prior = None if priors is None else np.asarray(priors[i], dtype=float)
        words = list(split_words(text).words)
        if prior is not None and prior.shape != (len(words),):
            raise ValueError(f"example {split.dataset[i]['id']}: prior has {prior.shape} scores, text has {len(words)} words")
        out.append(HeatmapExample(f"{split.dataset[i]['id']} · gold: {split.label_names[y]}", words, a, prior))
    return out
