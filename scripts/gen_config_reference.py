"""Write ``docs/configuration.md``: every configuration dataclass, its fields, types, defaults and docs.

    python scripts/gen_config_reference.py            # rewrite docs/configuration.md
    python scripts/gen_config_reference.py --check    # exit 1 when the file is out of date

The page is generated, never edited by hand: a field's description is taken from the code, in this
order of precedence:

1. an entry ``name: text`` in the class docstring (Google-style ``Attributes:`` / ``Args:`` or a bare
   list), with its indented continuation lines: it names the field, so it wins;
2. the ``#`` comment block directly above the field and the comment at the end of its line (joined);
3. an entry in the docstring of a class listed in ``EXTRA_DOCS`` (``ModelOptions`` mirrors
   ``EGModule``'s constructor and ``DataOptions`` / ``DataSpec`` / ``SampleSpec`` the data module's,
   whose docstrings document the arguments);
4. a docstring sentence or clause that starts with ````name```` (the class's own, then the others').

Comments are read with :mod:`tokenize` and fields located with :mod:`ast` on
:func:`inspect.getsource` of the class, so nothing depends on the layout beyond "a comment above or
beside a field belongs to it". Types are the annotations as written; defaults are evaluated from the
dataclass (``default`` or ``default_factory()``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import io
import re
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "configuration.md"
REGENERATE = "python scripts/gen_config_reference.py"


@dataclass(frozen=True)
class Entry:
    """One documented class: where it lives and where a user meets it."""

    module: str
    name: str
    where: str


# Order: the pipeline a user writes first, then what it nests, then the per-stage tools' configs.
ENTRIES: tuple[Entry, ...] = (
    Entry("eg_train.experiment.pipeline_config", "PipelineConfig",
          "The top level of a pipeline config: `eg-train pipeline --config F`, `scripts/run_experiment.py --config F`, "
          "`run_pipeline(PipelineConfig)`."),
    Entry("eg_train.experiment.variant", "TrainedVariant", "Each entry of a pipeline config's `variants:` list."),
    Entry("eg_train.experiment.showcase", "ShowcaseConfig",
          "The demo: `eg-train demo [--config configs/showcase.yaml]`, `run_showcase(ShowcaseConfig)`."),
    Entry("eg_train.experiment.showcase", "ShowcaseCase", "Each entry of the demo config's `cases:` list."),
    Entry("eg_train.evaluation.audit.run", "AuditConfig",
          "`eg-eval audit --params.*`; a pipeline config's `audit_params:` (docs/audit.md)."),
    Entry("eg_train.experiment.shortcut", "ShortcutBenchmarkConfig",
          "The top level of a shortcut-benchmark config: `scripts/run_shortcut.py --config F`, "
          "`run_shortcut_benchmark(ShortcutBenchmarkConfig)`."),
    Entry("eg_train.foundation.data.shortcut", "ShortcutConfig", "`shortcut:` of a shortcut-benchmark config."),
    Entry("eg_train.experiment.suite", "SuiteConfig",
          "The top level of a shortcut-suite config: `eg-train suite --config F`, "
          "`python -m eg_train.experiment.suite --config F`, `run_suite(SuiteConfig)` (docs/shortcut_suite.md)."),
    Entry("eg_train.experiment.suite", "SuiteCase", "Each entry of a suite config's `extra_cases:` list."),
    Entry("eg_train.training.config", "TrainConfig",
          "One training run: `eg-train fit --config F` (a LightningCLI config with `seed_everything`, `model`, `data`, "
          "`trainer`), `eg_train.training.api.fit(TrainConfig)`. A pipeline's `train:` mapping and a variant's `train:` "
          "are merged over this layout."),
    Entry("eg_train.training.module", "ModelOptions", "`model:` of a training config; `--model.*` on `eg-train fit`."),
    Entry("eg_train.foundation.attribution.integrated_gradients", "IGConfig",
          "`model.ig`: the differentiable IG computed inside the training step."),
    Entry("eg_train.training.module", "LoraSpec", "`model.lora` (null: every weight is fine-tuned)."),
    Entry("eg_train.training.datamodule", "DataOptions", "`data:` of a training config; `--data.*` on `eg-train fit`."),
    Entry("eg_train.training.datamodule", "PriorSpec",
          "`data.prior` of a training config (`none`: the CE baseline); set by the pipeline for aligned variants."),
    Entry("eg_train.training.config", "TrainerOptions", "`trainer:` of a training config; `--trainer.*`."),
    Entry("eg_train.foundation.data.fewshot", "SampleSpec",
          "The training sample shared by the prior and training stages (`data.sample` of `DataOptions`)."),
    Entry("eg_train.foundation.data.source", "DataSpec",
          "Where a dataset comes from: `data:` of a pipeline or prior config, `--data.*` on every tool."),
    Entry("priors.config", "PriorsConfig",
          "`eg-priors compute|fuse|report|quality --config F`; a pipeline's `priors:` mapping sets these fields by name."),
    Entry("priors.focus", "FocusConfig", "`focus:` of a prior config (Focus-LIME for long inputs); `--focus.*`."),
    Entry("eg_train.evaluation.evaluate", "EvalConfig", "`eg-eval evaluate --params.*`."),
    Entry("eg_train.evaluation.attacks.build", "AttackConfig", "`eg-eval attack --params.*` (the keyword attacks)."),
    Entry("eg_train.evaluation.attacks.recipes.base", "ModelAttackConfig",
          "`eg-eval model_attack --params.*` (DeepWordBug, PWWS, TextFooler-style)."),
)

# Classes whose docstrings also document a class's fields (by the same names).
EXTRA_DOCS: dict[str, tuple[tuple[str, str], ...]] = {
    "ModelOptions": (("eg_train.training.module", "EGModule"),),
    # The data module's docstring documents the data-source and loader arguments it takes.
    "DataOptions": (("eg_train.training.datamodule", "EGDataModule"),),
    "DataSpec": (("eg_train.training.datamodule", "EGDataModule"),),
    "SampleSpec": (("eg_train.training.datamodule", "EGDataModule"),),
}


# -- reading the source -------------------------------------------------------------------------


def _comments(source: str) -> dict[int, tuple[str, bool]]:
    """Line number -> (comment text, whether the line holds nothing but the comment)."""
    out: dict[int, tuple[str, bool]] = {}
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            own_line = not lines[row - 1][:col].strip()
            out[row] = (tok.string.lstrip("#").strip(), own_line)
    return out


def _class_source(cls: type) -> str | None:
    """The class's source, or None for a class made at run time (``make_dataclass``): no comments then."""
    try:
        return textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None


def field_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from the comment block above each field and the comment beside it."""
    source = _class_source(cls)
    if source is None:
        return {}
    comments = _comments(source)
    tree = ast.parse(source)
    klass = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    out: dict[str, str] = {}
    for node in klass.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        row = node.lineno - 1
        while row >= 1 and row in comments and comments[row][1]:  # contiguous comment-only lines
            above.insert(0, comments[row][0])
            row -= 1
        beside = [comments[r][0] for r in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                  if r in comments and not comments[r][1]]
        text = " ".join(part for part in above + beside if part)
        if text:
            out[node.target.id] = text
    return out


def field_annotations(cls: type) -> dict[str, str]:
    """``{field: annotation as written in the source}`` (empty for a class without source)."""
    source = _class_source(cls)
    if source is None:
        return {}
    klass = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef))
    return {n.target.id: ast.get_source_segment(source, n.annotation) or ""
            for n in klass.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


def docstring_entries(doc: str | None, names: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """From a docstring: ``name: text`` entries (with their indented continuation lines), and sentences or
    clauses that start with ````name```` -- two ``{field: text}`` maps, the entries being the more precise."""
    entries: dict[str, str] = {}
    clauses: dict[str, str] = {}
    if not doc:
        return entries, clauses
    doc = inspect.cleandoc(doc)
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(\w+)(?: \([^)]*\))?: (.*)$", lines[i])
        if m and m.group(2) in names:
            indent, parts = len(m.group(1)), [m.group(3)]
            i += 1
            while i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > indent:
                parts.append(lines[i].strip())
                i += 1
            entries.setdefault(m.group(2), " ".join(parts))
            continue
        i += 1
    for para in re.split(r"\n\s*\n", doc):
        text = " ".join(para.split())
        for clause in re.split(r"(?<=[.;])\s+", text):
            m = re.match(r"^``(\w+)``(:?)\s*(.*)$", clause)
            if m and m.group(1) in names and m.group(1) not in clauses:
                body = m.group(3) if m.group(2) else clause
                clauses[m.group(1)] = body[:-1] + "." if body.endswith(";") else body
    return entries, clauses


def describe_fields(cls: type, extra: tuple[type, ...] = ()) -> dict[str, str]:
    """The description of every field of the dataclass ``cls`` ('' where the code documents none)."""
    names = {f.name for f in dataclasses.fields(cls)}
    own_entries, own_clauses = docstring_entries(cls.__doc__, names)
    others = [docstring_entries(c.__doc__, names) for c in extra]
    layers = [own_entries, field_comments(cls), *(e for e, _ in others), own_clauses, *(c for _, c in others)]
    found: dict[str, str] = {}
    for layer in layers:  # the first layer that documents a field wins
        for name, text in layer.items():
            found.setdefault(name, text)
    return {name: found.get(name, "") for name in (f.name for f in dataclasses.fields(cls))}


# -- rendering ------------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Docstring / comment text as one markdown table cell."""
    text = re.sub(r":(?:class|func|meth|mod|attr):`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    parts = text.split("`")  # even parts are prose: a bare <name> would read as an HTML tag there
    parts[::2] = [p.replace("<", "&lt;").replace(">", "&gt;") for p in parts[::2]]
    return "`".join(parts).replace("|", "\\|").replace("\n", " ").strip()


def format_value(value: Any, limit: int = 70) -> str:
    """A default as it reads in a config: dataclasses show only their fields that differ from their own defaults."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = []
        for f in dataclasses.fields(value):
            mine = getattr(value, f.name)
            if f.default is not dataclasses.MISSING:
                same = mine == f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                same = mine == f.default_factory()  # type: ignore[misc]
            else:  # a required field: always shown
                same = False
            if not same:
                parts.append(f"{f.name}={format_value(mine, limit)}")
        return f"{type(value).__name__}({', '.join(parts)})"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(format_value(v, limit) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v, limit)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return repr(value)
    text = repr(value)
    if isinstance(value, str) and len(text) > limit:  # long prompts: the start, then the closing quote
        return text[: limit - 1] + "…" + text[0]
    return text


def default_of(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return format_value(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return format_value(f.default_factory())  # type: ignore[misc]
    return "required"


def _anchor(name: str) -> str:
    return name.lower()


def _cell_code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`" if text else ""


def load(entry: Entry) -> type:
    try:
        cls = getattr(importlib.import_module(entry.module), entry.name)
    except (ImportError, AttributeError) as err:
        raise SystemExit(f"gen_config_reference: {entry.module}.{entry.name} not found ({err}); update ENTRIES") from None
    if not dataclasses.is_dataclass(cls):
        raise SystemExit(f"gen_config_reference: {entry.module}.{entry.name} is not a dataclass; update ENTRIES")
    return cls


def render() -> str:
    """The whole page."""
    classes = [(entry, load(entry)) for entry in ENTRIES]
    known = {entry.name for entry, _ in classes}
    out = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{REGENERATE}` from the configuration dataclasses. Do not edit by hand. -->",
        "",
        "Every option of every configuration, generated from the dataclasses that hold them: the field, its type as",
        "written in the code, its default and the description the code gives it (a comment at the field or the",
        "class docstring). A field without a description is documented by its name and type only. Defaults are",
        "Python values: `None` is YAML `null`, a tuple is a YAML list. A type naming another class on this page",
        "links to it; nested options are written as mappings (`model: {ig: {steps: 2}}`) or, on the command line,",
        "with dots (`--model.ig.steps 2`).",
        "",
        "| class | where you meet it |",
        "|---|---|",
    ]
    out += [f"| [`{e.name}`](#{_anchor(e.name)}) | {_md(e.where)} |" for e, _ in classes]
    for entry, cls in classes:
        extra = tuple(getattr(importlib.import_module(m), n) for m, n in EXTRA_DOCS.get(entry.name, ())
                      if hasattr(importlib.import_module(m), n))
        descriptions = describe_fields(cls, extra)
        annotations = field_annotations(cls)
        summary = (inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0]) if cls.__doc__ else ""
        out += ["", f"## `{entry.name}`", "", f"`{entry.module}.{entry.name}`. {entry.where}", ""]
        if summary:
            out += [_md(" ".join(summary.split())), ""]
        out += ["| field | type | default | description |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            ann = annotations.get(f.name) or (f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type)))
            linked = [n for n in sorted(known) if re.search(rf"\b{n}\b", ann) and n != entry.name]
            type_cell = _cell_code(ann) + "".join(f" → [{n}](#{_anchor(n)})" for n in linked)
            out.append(f"| `{f.name}` | {type_cell} | {_cell_code(default_of(f))} | {_md(descriptions[f.name])} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/configuration.md is out of date")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date; regenerate it with `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the repository's packages, also when run from elsewhere
    raise SystemExit(main())
