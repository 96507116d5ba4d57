"""A small name -> builder registry: attack recipes are constructed from config through it.

``register("name")`` decorates a builder; ``build("name", *args)`` calls it. An unknown name is an
error that lists the registered ones, so a typo in a config never silently picks a default.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Builders of ``T`` by name (insertion order is the listing order)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register ``builder`` under ``name`` (a second registration is an error)."""

        def decorate(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            return builder

        return decorate

    def names(self) -> tuple[str, ...]:
        return tuple(self._builders)

    def check(self, names) -> None:
        """Raise ``ValueError`` naming the unknown entries of ``names`` (and when it is empty)."""
        unknown = [n for n in names if n not in self._builders]
        if unknown or not names:
            raise ValueError(f"unknown {self.kind}(s) {unknown}; choose from {list(self._builders)}")

    def build(self, name: str, *args, **kwargs) -> T:
        self.check([name])
        return self._builders[name](*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._builders
