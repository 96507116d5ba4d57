"""What a plain ``pip install .`` brings: every third-party module the packages import, and the
runtime of the embedded default LLM, are default dependencies (not test or optional extras)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _default_requirements() -> set[str]:
    return _names(_project()["dependencies"])


# Imported only inside an optional feature that says which extra to install when it is missing.
OPTIONAL = {"nltk": "wordnet"}


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for pkg in ("eg_train", "priors"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("eg_train", "priors")}


def test_every_imported_package_is_a_default_dependency():
    dists = packages_distributions()
    required = _default_requirements()
    extras = _project()["optional-dependencies"]
    for module, extra in OPTIONAL.items():
        assert module in _names(extras[extra]), f"{module} should be in the [{extra}] extra"
    missing = []
    for module in sorted(_third_party_imports() - set(OPTIONAL)):
        providers = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not providers & required:
            missing.append(f"{module} (from {sorted(providers)})")
    assert missing == [], f"imported but not in [project.dependencies]: {missing}"


def test_default_llm_runtime_is_a_default_dependency():
    from eg_train.foundation.models.resolve import EMBEDDED_MODELS, GGUF_RUNTIME

    assert EMBEDDED_MODELS["smollm2-135m-instruct"].gguf_file  # the default LLM is a GGUF checkpoint
    required = _default_requirements()
    assert set(GGUF_RUNTIME) <= required, f"GGUF runtime {GGUF_RUNTIME} not all in {sorted(required)}"
