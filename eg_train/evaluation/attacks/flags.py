"""Flag attacks that changed (almost) nothing, wherever their numbers appear.

An attack that changed 0 of 320 texts reports adversarial accuracy equal to clean accuracy and a
drop of 0.00: that is not robustness, the attack simply did nothing. :func:`change_note` returns
the sentence that ``metrics.json``, the ``eg-eval evaluate`` line and the report carry with such
an attack's numbers.
"""

from __future__ import annotations

# Below this share of changed texts an attack's accuracy says little about robustness.
LOW_CHANGE_FRACTION = 0.10


def change_note(n_changed: int, n: int, min_fraction: float = LOW_CHANGE_FRACTION) -> str | None:
    """None when enough texts changed, else a short warning naming the counts."""
    if n <= 0:
        return None
    if n_changed == 0:
        return f"changed 0 of {n} texts: its accuracy equals clean accuracy by construction"
    if n_changed < min_fraction * n:
        return (f"changed only {n_changed} of {n} texts ({100 * n_changed / n:.1f}%): "
                "its drop from clean accuracy measures almost nothing")
    return None
