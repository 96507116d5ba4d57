"""One name -> entry registry for everything built by name from a configuration.

Prior methods (``priors.base.PRIOR_REGISTRY``), normalisations and fusions (``priors.fusion``), CAP
targets (``priors.methods.cap``), keyword attacks and model-attack recipes
(``eg_train.evaluation.attacks``) are each a :class:`Registry`::

    RECIPES: Registry[Callable[..., ModelAttack]] = Registry("model attack recipe")

    @RECIPES.register("pwws")
    def _pwws(config, resources): ...

    RECIPES.build("pwws", config, resources)   # calls the entry
    RECIPES["pwws"], "pwws" in RECIPES, sorted(RECIPES)   # a read-only mapping

A name registered twice is an error; an unknown name raises :class:`UnknownNameError` with one
message format everywhere: ``unknown prior method 'x'; registered: ['cap', 'ig', 'lime']``. It is
a :class:`~eg_train.foundation.errors.ConfigError` (the tools report it in one line, exit 2) and a
``KeyError`` (what a mapping lookup raises).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Callable, Generic, TypeVar

from eg_train.foundation.errors import ConfigError

T = TypeVar("T")


class UnknownNameError(ConfigError, KeyError):
    """A name that no entry of a registry has; the message lists the registered names."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class Registry(Mapping[str, T], Generic[T]):
    """Entries of type ``T`` by name, in registration order (``names()``, iteration)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name``; a second registration is an error."""

        def decorate(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorate

    def unregister(self, name: str) -> T:
        """Remove ``name`` (tests that register a throw-away entry); unknown names raise."""
        entry = self[name]
        del self._entries[name]
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def unknown_message(self, names: Iterable[str], also: Iterable[str] = ()) -> str:
        """``unknown <kind> 'a', 'b'; registered: [...]`` (``also``: accepted names outside the registry)."""
        listed = ", ".join(repr(n) for n in names)
        return f"unknown {self.kind} {listed}; registered: {[*also, *sorted(self._entries)]}"

    def check(self, names: Iterable[str], also: Iterable[str] = ()) -> None:
        """Raise :class:`UnknownNameError` naming every unknown entry of ``names`` (or when it is empty)."""
        names, also = list(names), list(also)
        if not names:
            raise UnknownNameError(f"no {self.kind} given; registered: {[*also, *sorted(self._entries)]}")
        unknown = [n for n in names if n not in self._entries and n not in also]
        if unknown:
            raise UnknownNameError(self.unknown_message(unknown, also))

    def build(self, name: str, *args, **kwargs):
        """Call the entry ``name`` with the given arguments (entries that are builders or classes)."""
        return self[name](*args, **kwargs)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message([name])) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"
