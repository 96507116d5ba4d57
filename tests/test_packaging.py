"""What the README's install brings: every third-party module the code can import is declared.

* ``eg_train`` and ``priors`` (what ``pip install .`` ships): every import, lazy ones inside
  function bodies included, is a default dependency (``[project.dependencies]``).
* ``scripts/`` (benchmarks and tools run from a checkout): every import is a default dependency or
  in an extra that ``scripts/run.sh`` installs (the README's install), except the TextAttack worker,
  which runs in the environment ``scripts/textattack_env.py`` builds.

Import names map to distributions through ``importlib.metadata.packages_distributions()``
(``yaml`` -> ``pyyaml``); a module not installed here maps to its own name.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"eg_train", "priors"}
# Runs with TextAttack's interpreter (scripts/textattack_env.py), never the project's .venv.
OTHER_ENVIRONMENT = {"scripts/bench_attacks_textattack.py"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of ``requirements``, with what their extras bring (``dask[distributed]``
    declares ``distributed``), read from the installed distributions' metadata."""
    out: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        m = _REQUIREMENT.match(todo.pop())
        name = _norm(m.group(1))
        extras = frozenset(e.strip() for e in (m.group(2) or "").split(",") if e.strip())
        out.add(name)
        if not extras or (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for req in requires:
            marker = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
            if marker and marker.group(1) in extras:
                todo.append(req.split(";")[0])
    return out


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _default_requirements() -> set[str]:
    return _names(_project()["dependencies"])


def _run_sh_extras() -> set[str]:
    """The extras ``scripts/run.sh`` installs with the project (``pip install -e ".[a,b]"``)."""
    text = (ROOT / "scripts" / "run.sh").read_text()
    return {e.strip() for group in re.findall(r'-e\s+"?\.\[([^\]]+)\]', text) for e in group.split(",")}


def _run_sh_requirements() -> set[str]:
    extras = _project().get("optional-dependencies", {})
    out = set(_default_requirements())
    for extra in _run_sh_extras():
        out |= _names(extras.get(extra, []))
    return out


def imported_modules(source: str) -> set[str]:
    """Top-level names of every absolute import in ``source``, at any depth (function bodies too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party(paths: list[Path], local: set[str] = frozenset()) -> dict[str, list[str]]:
    """Third-party module -> files importing it."""
    out: dict[str, list[str]] = {}
    for path in paths:
        for name in imported_modules(path.read_text(encoding="utf-8")):
            if name in sys.stdlib_module_names or name in FIRST_PARTY or name in local:
                continue
            out.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return out


def _undeclared(modules: dict[str, list[str]], declared: set[str]) -> list[str]:
    dists = packages_distributions()
    missing = []
    for module, files in sorted(modules.items()):
        providers = {_norm(d) for d in dists.get(module, [module])}
        if not providers & declared:
            missing.append(f"{module} (distribution {sorted(providers)}; imported in {files[0]})")
    return missing


def _package_files() -> list[Path]:
    return [p for pkg in sorted(FIRST_PARTY) for p in sorted((ROOT / pkg).rglob("*.py"))]


def _script_files() -> list[Path]:
    return [p for p in sorted((ROOT / "scripts").glob("*.py")) if str(p.relative_to(ROOT)) not in OTHER_ENVIRONMENT]


def test_import_walk_sees_lazy_imports():
    src = "import os\n\ndef f():\n    import nltk.corpus\n    from yaml import safe_load\n    from . import sibling\n"
    assert imported_modules(src) == {"os", "nltk", "yaml"}


def test_a_requirements_extras_declare_what_they_bring():
    names = _names(["jsonargparse[signatures]>=4.27", "PyYAML>=6"])  # both default dependencies
    assert {"jsonargparse", "pyyaml", "docstring-parser"} <= names  # docstring-parser: its [signatures] extra
    assert "docstring-parser" not in _names(["jsonargparse>=4.27"])


def test_run_sh_installs_the_test_extra():
    assert "test" in _run_sh_extras()  # the parse of run.sh's install line works


def test_every_package_import_is_a_default_dependency():
    modules = _third_party(_package_files())
    assert "nltk" in modules  # the lazy import inside eg_train/evaluation/attacks/wordnet.py is seen
    missing = _undeclared(modules, _default_requirements())
    assert missing == [], f"imported by eg_train/priors but not in [project.dependencies]: {missing}"


def test_every_script_import_is_installed_by_run_sh():
    local = {p.stem for p in (ROOT / "scripts").glob("*.py")}
    missing = _undeclared(_third_party(_script_files(), local), _run_sh_requirements())
    assert missing == [], (f"imported by scripts/ but neither a default dependency nor in an extra "
                           f"scripts/run.sh installs ({sorted(_run_sh_extras())}): {missing}")


def test_default_llm_runtime_is_a_default_dependency():
    from eg_train.foundation.models.resolve import EMBEDDED_MODELS, GGUF_RUNTIME

    assert EMBEDDED_MODELS["smollm2-135m-instruct"].gguf_file  # the default LLM is a GGUF checkpoint
    required = _default_requirements()
    assert set(GGUF_RUNTIME) <= required, f"GGUF runtime {GGUF_RUNTIME} not all in {sorted(required)}"
