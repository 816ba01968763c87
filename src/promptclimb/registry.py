"""Name -> factory registries, as data: "open_clip:ViT-B-16/openai" picks the factory registered
as "open_clip" and hands it the rest. Entries are import paths, so heavy backends load only
when chosen."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A registry name that does not exist; the message lists the ones that do."""


class Registry(Generic[T]):
    def __init__(self, kind: str, entries: dict[str, str], help: dict[str, str] | None = None):
        self.kind = kind
        # name -> "module:function" (imported when chosen) or the factory itself
        self._entries: dict[str, str | Callable[..., T]] = dict(entries)
        self.help = dict(help or {})

    def names(self) -> list[str]:
        return sorted(self._entries)

    def register(self, name: str, target: str | Callable[..., T], help: str = "") -> None:
        self._entries[name] = target
        if help:
            self.help[name] = help

    def split(self, spec: str) -> tuple[str, str]:
        name, _, arg = spec.partition(":")
        if name not in self._entries:
            known = ", ".join(self.names())
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}")
        return name, arg

    def factory(self, spec: str) -> Callable[..., T]:
        name, _ = self.split(spec)
        target = self._entries[name]
        if callable(target):
            return target
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def create(self, spec: str, *args: Any, **kwargs: Any) -> T:
        """Build the object for ``spec``; the factory gets the part after the first ':'."""
        _, arg = self.split(spec)
        return self.factory(spec)(arg, *args, **kwargs)
