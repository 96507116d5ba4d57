"""The package's import graph: no module cycles, and dependencies pointing one way
(foundation -> priors -> training / evaluation -> experiment). Imports inside functions count too:
a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("eg_train", "priors")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules imported by ``name`` (resolved to the deepest known module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def add(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                full = f"{mod}.{a.name}"
                add(full if full in known else mod)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _stage(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "priors":
        return "priors"
    if len(parts) == 1:
        return "root"
    return parts[1] if parts[1] in ("foundation", "training", "evaluation", "experiment") else parts[1]


# Which stages a stage may import (besides itself).
ALLOWED = {
    "foundation": set(),
    "priors": {"foundation"},
    "training": {"foundation", "priors"},
    "evaluation": {"foundation", "priors"},
    "experiment": {"foundation", "priors", "training", "evaluation"},
    "cli": {"foundation", "training", "experiment"},
    "root": set(),
}


def test_graph_sees_the_packages():
    graph = _graph()
    assert "eg_train.foundation.words" in graph and "priors.cache" in graph
    # The walker resolves real edges (a broken walker would make the checks below vacuous).
    assert "eg_train.foundation.words" in graph["priors.cache"]
    assert "eg_train.foundation.data.source" in graph["eg_train.foundation.data.fewshot"]


def test_no_module_import_cycle():
    assert _cycles(_graph()) == []


def test_cycle_detector_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_dependencies_point_one_way(stage):
    graph = _graph()
    bad = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if _stage(m) == stage
        for t in targets
        if _stage(t) != stage and _stage(t) not in ALLOWED[stage] and t != "eg_train"
    )
    assert bad == []
