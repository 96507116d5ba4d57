"""``docs/configuration.md`` is generated from the configuration dataclasses and must match them."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "scripts" / "gen_config_reference.py")
gen = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gen  # dataclasses resolve string annotations through sys.modules
_spec.loader.exec_module(gen)

SAMPLE = '''
from dataclasses import dataclass, field


@dataclass
class Sample:
    """A sample config.

    Args:
        alpha: from the Args section,
            continued on a second line.

    ``gamma``: from a docstring clause. ``delta`` is described by its own sentence.
    """

    alpha: int = 1
    # Above the field,
    # over two lines.
    beta: float = 0.5  # and beside it
    gamma: list[int] = field(default_factory=lambda: [1, 2])
    delta: str | None = None

    epsilon: bool = False  # beside only
    zeta: int = 3
'''


def _sample(tmp_path: Path, monkeypatch):
    (tmp_path / "sample_cfg_mod.py").write_text(textwrap.dedent(SAMPLE))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("sample_cfg_mod", None)
    import sample_cfg_mod

    return sample_cfg_mod.Sample


def test_field_descriptions_come_from_comments_and_docstring(tmp_path, monkeypatch):
    Sample = _sample(tmp_path, monkeypatch)
    assert gen.describe_fields(Sample) == {
        "alpha": "from the Args section, continued on a second line.",
        "beta": "Above the field, over two lines. and beside it",
        "gamma": "from a docstring clause.",
        "delta": "``delta`` is described by its own sentence.",
        "epsilon": "beside only",
        "zeta": "",
    }
    assert gen.field_annotations(Sample)["delta"] == "str | None"


def test_defaults_show_factories_and_only_changed_nested_fields(tmp_path, monkeypatch):
    Sample = _sample(tmp_path, monkeypatch)
    by_name = {f.name: f for f in dataclasses.fields(Sample)}
    assert gen.default_of(by_name["gamma"]) == "[1, 2]"
    assert gen.default_of(by_name["delta"]) == "None"
    assert gen.format_value(Sample(zeta=4)) == "Sample(zeta=4)"
    assert gen.format_value("x" * 200, limit=10).endswith("…'")


def test_every_field_of_every_class_is_on_the_page():
    page = gen.render()
    for entry in gen.ENTRIES:
        cls = gen.load(entry)
        section = page.split(f"## `{entry.name}`", 1)[1].split("\n## ", 1)[0]
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in section, f"{entry.name}.{f.name} missing from the reference"


def test_docs_configuration_md_is_up_to_date():
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == gen.render(), (
        f"docs/configuration.md is out of date with the configuration dataclasses; regenerate it with `{gen.REGENERATE}`"
    )


def test_a_dataclass_made_at_run_time_is_documented_from_its_docstring():
    Made = dataclasses.make_dataclass("Made", [("steps", int, dataclasses.field(default=3))])
    Made.__doc__ = "Made at run time.\n\nAttributes:\n    steps: how many steps.\n"
    assert gen.describe_fields(Made) == {"steps": "how many steps."}
    assert gen.field_annotations(Made) == {}
