"""The demo: what eg-train buys, measured on one screen.

    eg-train demo [--config configs/showcase.yaml] [--out_dir outputs/demo]

The same Banking77 intents, trained and evaluated the same way, in two cases:

- ``clean``: the k-shot sample as it is;
- ``planted``: every training and validation text of a class carries one ordinary word unrelated to
  the intents (the shortcut benchmark's ``word`` artefact), so a model can fit the word instead of
  the intent — the case of a template phrase or an annotator's habit in real data.

Each case runs the shortcut benchmark (:func:`~eg_train.experiment.shortcut.run_shortcut_benchmark`):
CE and the recommended recipe, DeepWordBug against each model (adaptive), the counter-shortcut
test (every test text with another class's artefact) and the shortcut audit of the CE model,
which is not told the artefact. The demo then writes ``<out_dir>/demo.md``, ``demo.json`` and one
plot, ``demo.png``. Every step resumes from its outputs.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from eg_train.experiment.shortcut import ShortcutBenchmarkConfig, run_shortcut_benchmark
from eg_train.experiment.pipeline import is_baseline
from eg_train.foundation.data.shortcut import ShortcutConfig
from eg_train.foundation.errors import ConfigError
from eg_train.foundation.io import atomic_write_json, atomic_write_text

log = logging.getLogger("eg_train.experiment.showcase")


@dataclass
class ShowcaseCase:
    """One case of the demo: a name (its folder and column) and the artefact planted (``none``: clean)."""

    name: str
    shortcut: ShortcutConfig = field(default_factory=lambda: ShortcutConfig(kind="none"))


def _default_cases() -> list[ShowcaseCase]:
    return [ShowcaseCase("clean", ShortcutConfig(kind="none")),
            ShowcaseCase("planted", ShortcutConfig(kind="word", strength=1.0, rest="clean", seed=0))]


@dataclass
class ShowcaseConfig:
    """The demo: a shortcut-benchmark template run once per case.

    Attributes:
        out_dir: where the cases (one folder each) and ``demo.{md,json,png}`` go.
        benchmark: the shortcut benchmark every case runs (data, its pipeline: variants, seeds, attacks,
            audit); each case replaces its ``shortcut``, ``out_dir`` and ``results``.
        cases: the cases, side by side in the table and the plot.
        recipe: the variant shown against the CE baseline (one of the benchmark's variants).
        case_workers: cases run at once, each in a worker process of its own (its pipeline then runs
            its jobs one at a time in that process); 1: one case after the other, each pipeline with
            the benchmark's ``pipeline.workers``. One case's jobs wait on each other (the aligned model
            on its prior), so two cases side by side keep two cores busier than one case on two workers.
    """

    out_dir: str = "outputs/demo"
    benchmark: ShortcutBenchmarkConfig = field(default_factory=ShortcutBenchmarkConfig)
    cases: list[ShowcaseCase] = field(default_factory=_default_cases)
    recipe: str = "eg"
    case_workers: int = 2


def _case_config(cfg: ShowcaseConfig, case: ShowcaseCase) -> ShortcutBenchmarkConfig:
    out = Path(cfg.out_dir) / case.name
    bench = replace(copy.deepcopy(cfg.benchmark), out_dir=str(out), shortcut=case.shortcut, results=str(out / "results"))
    if min(cfg.case_workers, len(cfg.cases)) > 1:  # the case's own worker process runs its jobs
        bench.pipeline.workers = 1
    return bench


def _case_job(bench: ShortcutBenchmarkConfig, name: str, command: str) -> tuple[dict[str, float], dict]:
    """One case's shortcut benchmark, as a job of the demo's graph."""
    t = time.perf_counter()
    res = run_shortcut_benchmark(bench, command=command)
    return {f"demo_{name}_s": time.perf_counter() - t}, res


def check_showcase_config(cfg: ShowcaseConfig) -> None:
    """Refuse a demo that cannot show its comparison (before anything runs)."""
    names = [v.name for v in cfg.benchmark.pipeline.variants]
    baselines = [v.name for v in cfg.benchmark.pipeline.variants if is_baseline(v)]
    if cfg.recipe not in names:
        raise ConfigError(f"recipe {cfg.recipe!r} is not one of the benchmark's variants {names}")
    if not baselines:
        raise ConfigError("the demo compares against a CE baseline: add a variant without priors")
    dup = sorted({c.name for c in cfg.cases if [d.name for d in cfg.cases].count(c.name) > 1})
    if dup or not cfg.cases:
        raise ConfigError(f"the demo needs cases with distinct names, got {[c.name for c in cfg.cases]}")
    if cfg.case_workers < 1:
        raise ConfigError(f"case_workers must be >= 1, got {cfg.case_workers}")


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else float("nan")


def _pipeline_metrics(case_out: Path, label: str, attack: str | None) -> dict[str, Any]:
    """The pipeline's own evaluation of one model (``<variant>-seed<k>``): accuracy under the model-aware
    ``attack`` made against the model itself (adaptive) and against the CE model (transfer), its audit."""
    for path in sorted((case_out / "pipeline").glob("summary*.json")):
        keys = json.loads(path.read_text()).get("keys", {})
        model = keys.get("models", {}).get(label)
        if model:
            metrics = json.loads((Path(model["eval"]) / "metrics.json").read_text())
            recipes = (metrics.get("model_attacks") or {}).get("recipes", {})
            adaptive = recipes.get(attack, {}).get("accuracy_under_attack") if attack else None
            transfer = (metrics.get("transfer") or {}).get(attack, {}).get("accuracy") if attack else None
            choice = Path(model.get("run") or ".") / "choice.json"  # a rule variant: the candidate it chose, and why
            return {"adaptive": adaptive, "transfer": transfer,
                    "audit": model.get("audit") or (str(Path(keys["rule_audit"]).parent) if keys.get("rule_audit") else None),
                    "choice": json.loads(choice.read_text()) if choice.is_file() else None}
    return {"adaptive": None, "transfer": None, "audit": None, "choice": None}


def _audit_findings(path: str | None) -> list[dict]:
    if not path or not (Path(path) / "audit.json").is_file():
        return []
    audit = json.loads((Path(path) / "audit.json").read_text())
    return [{k: c.get(k) for k in ("feature", "class", "position", "flip_rate", "flip_rate_control", "flip_ci95")}
            for c in audit.get("confirmed", [])]


def collect(cfg: ShowcaseConfig, results: dict[str, dict]) -> dict:
    """The demo's table: per case and model, clean / counter-shortcut / attacked accuracy, reliance,
    and the audit's confirmed features of the CE model (means over seeds)."""
    ce = next(v.name for v in cfg.benchmark.pipeline.variants if is_baseline(v))
    attack = (cfg.benchmark.pipeline.model_attacks or [None])[0]
    out: dict[str, Any] = {"recipe": cfg.recipe, "baseline": ce, "attack": attack, "cases": {}}
    for case in cfg.cases:
        res = results[case.name]
        case_out = Path(cfg.out_dir) / case.name
        rows = {}
        planted = bool(res.get("shortcut", {}).get("artefacts"))
        for name in (ce, cfg.recipe):
            per_seed = res["models"].get(name, {}).get("per_seed", {})
            seeds = sorted(per_seed, key=int)
            pipe = {s: _pipeline_metrics(case_out, f"{name}-seed{s}", attack) for s in seeds}

            def mean(key: str, seeds=seeds, per_seed=per_seed) -> float | None:
                # without a planted artefact the counter-shortcut texts are the clean ones: not shown
                return _mean([per_seed[s].get(key) for s in seeds]) if planted else None

            rows[name] = {
                "seeds": [int(s) for s in seeds],
                "clean_accuracy": _mean([per_seed[s].get("clean_accuracy") for s in seeds]),
                "counter_accuracy": mean("counter_accuracy"),
                "worst_group_accuracy": mean("worst_group_accuracy"),
                "shortcut_reliance": mean("shortcut_reliance"),
                "attack_adaptive_accuracy": _mean([pipe[s]["adaptive"] for s in seeds]),
                # the texts made against CE are, for CE itself, its adaptive attack
                "attack_transfer_accuracy": _mean([pipe[s]["adaptive" if name == ce else "transfer"] for s in seeds]),
                "audit_confirmed": [f for s in seeds for f in _audit_findings(pipe[s]["audit"])] if name == ce else [],
                "rule_choice": [pipe[s]["choice"] for s in seeds if pipe[s].get("choice")],
                "per_seed": {s: {k: v for k, v in per_seed[s].items() if k != "predictions"} | {"attack": pipe[s]}
                             for s in seeds},
            }
        out["cases"][case.name] = {"shortcut": asdict(case.shortcut),
                                   "artefacts": res.get("shortcut", {}).get("artefacts", {}),
                                   "models": rows, "timings": res.get("timings", {})}
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _feature(f: dict) -> str:
    return " ".join(f["feature"]) if isinstance(f["feature"], (list, tuple)) else str(f["feature"])


def render_markdown(table: dict, seconds: float) -> str:
    """``demo.md``: the table a reader takes in first, then what the audit found."""
    ce, recipe, attack = table["baseline"], table["recipe"], table["attack"] or "attack"
    lines = ["# eg-train demo", "",
             f"CE against the recommended recipe (`{recipe}`), on clean data and with a planted shortcut; "
             f"accuracy in %, mean over seeds {table['cases'][next(iter(table['cases']))]['models'][ce]['seeds']}. "
             f"Wall time {seconds / 60:.1f} min.", "",
             f"| case | model | clean acc. | counter-shortcut acc. | worst-group acc. | reliance on the artefact ↓ | "
             f"{attack}, adaptive | {attack}, texts made against CE |",
             "|---|---|---|---|---|---|---|---|"]
    for name, case in table["cases"].items():
        for model in (ce, recipe):
            r = case["models"][model]
            lines.append(f"| {name} | {model} | {_pct(r['clean_accuracy'])} | {_pct(r['counter_accuracy'])} | "
                         f"{_pct(r['worst_group_accuracy'])} | {_pct(r['shortcut_reliance'])} | "
                         f"{_pct(r['attack_adaptive_accuracy'])} | {_pct(r['attack_transfer_accuracy'])} |")
    lines += ["", "Counter-shortcut: every test text carries another class's artefact (— where none is planted). "
              "Reliance: the share of those texts predicted as the artefact's class. Worst group: the lowest "
              "accuracy over class × (artefact agrees / disagrees). Adaptive: DeepWordBug against the model "
              "itself; the last column: the texts DeepWordBug made against the CE model.", "",
              "## What the recipe rule chose", "",
              f"`{recipe}` is the recipe rule (docs/recipe.md): it audits the CE model, builds a counter-shortcut "
              "validation from what the audit confirmed, and keeps CE unless a candidate (the targeted penalty on the "
              "confirmed features, or the fused priors) beats it there without losing clean validation accuracy.", ""]
    for name, case in table["cases"].items():
        for c in case["models"][recipe].get("rule_choice") or []:
            lines.append(f"- **{name}**: `{c['chosen']}` — {c['reason']}")
    lines += ["", "## What the audit found in the CE model", "",
              "The audit is not told the artefact; the planted words are marked here for the reader only.", ""]
    for name, case in table["cases"].items():
        found = case["models"][ce]["audit_confirmed"]
        planted = {w.lower() for w in case.get("artefacts", {}).values()}
        hits = sum(_feature(f).lower() in planted for f in found)
        head = f"- **{name}**: {len(found)} confirmed feature(s)"
        if planted:
            head += f", {hits} of the {len(planted)} planted words among them"
        lines.append(head + (":" if found else "."))
        for f in found:
            mark = " (planted)" if _feature(f).lower() in planted else ""
            lines.append(f"  - `{_feature(f)}` → {f['class']}{mark}: flip rate {_pct(f['flip_rate'])} % "
                         f"against {_pct(f['flip_rate_control'])} % for matched controls")
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path) -> Path:
    """``demo.png``: one panel per case, CE against the recipe on each accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ce, recipe = table["baseline"], table["recipe"]
    metrics = [("clean_accuracy", "clean"), ("counter_accuracy", "counter-\nshortcut"),
               ("attack_transfer_accuracy", f"{table['attack'] or 'attack'}\n(texts made against CE)")]
    cases = list(table["cases"])
    fig, axes = plt.subplots(1, len(cases), figsize=(5 * len(cases), 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], cases):
        rows = table["cases"][name]["models"]
        xs = range(len(metrics))
        for k, (model, colour) in enumerate(((ce, "#9e9e9e"), (recipe, "#1f77b4"))):
            raw = [rows[model][m] for m, _ in metrics]
            missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in raw]
            vals = [0.0 if gone else 100 * v for v, gone in zip(raw, missing)]
            bars = ax.bar([x + (k - 0.5) * 0.38 for x in xs], vals, 0.38, label=model, color=colour)
            ax.bar_label(bars, labels=["n/a" if gone else f"{v:.0f}" for v, gone in zip(vals, missing)], fontsize=8)
        ax.set_xticks(list(xs), [label for _, label in metrics])
        ax.set_title(f"{name}: " + ("no artefact" if not table["cases"][name]["artefacts"]
                                    else "one planted word per class"))
        ax.set_ylim(0, 110)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][-1].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_showcase(cfg: ShowcaseConfig, command: str = "eg-train demo") -> dict:
    """Run every case (each resumes from its outputs) and write ``demo.{md,json,png}``."""
    check_showcase_config(cfg)
    started = time.perf_counter()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from eg_train.experiment.jobs import Job, run_jobs

    jobs = [Job(f"demo:{c.name}", _case_job, (_case_config(cfg, c), c.name, command)) for c in cfg.cases]
    case_seconds: dict[str, float] = {}
    values = run_jobs(jobs, min(cfg.case_workers, len(cfg.cases)), lambda key, spent: case_seconds.update(spent))
    results = {c.name: values[f"demo:{c.name}"] for c in cfg.cases}
    seconds = time.perf_counter() - started
    table = collect(cfg, results)
    table["case_seconds"] = {k: round(v, 1) for k, v in case_seconds.items()}
    table.update(command=command, seconds=round(seconds, 1), config=json.loads(json.dumps(asdict(cfg))))
    atomic_write_json(out / "demo.json", table)
    atomic_write_text(out / "demo.md", render_markdown(table, seconds))
    plot(table, out / "demo.png")
    return table


def _refuse_pipeline_config(argv: list[str]) -> None:
    """A pipeline config given to ``eg-train demo`` (its top level has ``variants``): say where it goes."""
    import yaml

    if "--config" not in argv or argv.index("--config") + 1 >= len(argv):
        return
    path = Path(argv[argv.index("--config") + 1])
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    if isinstance(doc, dict) and "variants" in doc and "benchmark" not in doc:
        raise ConfigError(f"{path} is a pipeline config: run it with `eg-train pipeline --config {path}` "
                          "(`eg-train demo` runs the demo, configs/showcase.yaml)")


def parse_config(argv: list[str]) -> ShowcaseConfig:
    """``ShowcaseConfig`` from ``--config FILE`` and ``--key value`` flags (jsonargparse)."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    _refuse_pipeline_config(argv)
    parser = ArgumentParser(prog="eg-train demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(ShowcaseConfig, None, as_group=False)
    cfg = parser.instantiate_classes(parser.parse_args(argv))
    return ShowcaseConfig(out_dir=cfg.out_dir, benchmark=cfg.benchmark, cases=list(cfg.cases), recipe=cfg.recipe,
                          case_workers=cfg.case_workers)


def main(argv: list[str] | None = None) -> dict:
    """``eg-train demo``: run the demo and print where its table and plot are."""
    argv = list(sys.argv[1:] if argv is None else argv)
    table = run_showcase(parse_config(argv), command=" ".join(["eg-train demo", *argv]))
    out = Path(table["config"]["out_dir"])
    print(f"demo: {out / 'demo.md'}, {out / 'demo.png'} ({table['seconds'] / 60:.1f} min)")
    return table
