"""Deferred imports of the wire models, so a call pays only for the models it uses.

Importing every `shared.protocol` module builds ~100 pydantic models (and the e-mail
validator's tables): most of a CLI command's start-up. Each endpoint module of the client
names the one protocol module of its noun through `protocol("users")`; the module is
imported the first time an attribute is read from it, then kept.

Invariant: a `LazyModule` behaves like the module for attribute reads only; type checkers
see the real module (endpoint modules bind the name under `TYPE_CHECKING` to it).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A module imported on first attribute access (`importlib.import_module`, then cached)."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name!r} ({state})>"


def protocol(noun: str) -> Any:
    """Return `shared.protocol.<noun>`, imported when first used."""
    return LazyModule(f"shared.protocol.{noun}")
