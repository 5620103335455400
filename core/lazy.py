"""Lazy package exports: a package names what it offers; the submodule is imported on first use."""

from __future__ import annotations

import importlib


def lazy_exports(exports: dict[str, str]):
    """A module-level `__getattr__` resolving each name in `exports` (name -> module path) on first access."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(name)

    return __getattr__
