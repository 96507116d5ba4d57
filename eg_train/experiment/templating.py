"""The experiment layer's results files as jinja2 templates (``eg_train/experiment/templates``).

The renderers build a context of values; the templates lay them out. Number formats are filters
(``cell``, ``pct``, ``interval``) so every table formats a value the same way.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


def cell(stat: dict | None, scale: float = 100.0, signed: bool = False) -> str:
    """``mean ± std`` of a statistic, scaled (``–`` when missing; no ± for a single value)."""
    if not stat:
        return "–"
    fmt = "+.2f" if signed else ".2f"
    s = f"{scale * stat['mean']:{fmt}}"
    return s + (f" ± {scale * stat['std']:.2f}" if stat["n"] > 1 else "")


def interval(mean: float, bounds: list[float] | None) -> str:
    """``+m [+lo, +hi]`` in points (just ``+m`` without bounds)."""
    out = f"{100 * mean:+.2f}"
    return out + (f" [{100 * bounds[0]:+.2f}, {100 * bounds[1]:+.2f}]" if bounds else "")


def pct(stat: dict | None, signed: bool = False) -> str:
    """A statistic in % with one decimal: ``m ± sd``, or signed ``+m [+lo, +hi]`` with its t interval."""
    if not stat:
        return "–"
    fmt = "+.1f" if signed else ".1f"
    s = f"{100 * stat['mean']:{fmt}}"
    if signed and stat.get("ci95"):
        lo, hi = stat["ci95"]
        return s + f" [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    return s + (f" ± {100 * stat['std']:.1f}" if stat["n"] > 1 else "")


@lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("eg_train.experiment", "templates"), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                             autoescape=False)  # markdown, not HTML
    env.filters.update(cell=cell, interval=interval, pct=pct)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return _environment().get_template(template).render(**context)
