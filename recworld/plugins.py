"""Pluggable parts by name: a built-in name or a ``package.module:ClassName`` path, instantiated with params."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from recworld.errors import ConfigError


def unknown_plugin(kind: str, builtin: Mapping[str, str], name: str) -> str | None:
    """The one-line error for ``name`` if it is neither a built-in nor a ``module:Class`` path, else None."""
    if ":" in builtin.get(name, name):
        return None
    return f"unknown {kind} {name!r}; expected one of {', '.join(sorted(builtin))} or 'package.module:ClassName'"


def make_plugin(kind: str, builtin: Mapping[str, str], name: str, params: dict[str, Any] | None = None) -> Any:
    """Instantiate ``name`` (a key of ``builtin`` or a ``module:Class`` path) with ``params``.

    Args:
        kind: what is built, for the error messages ("recommender", "conversational agent").
        builtin: built-in names mapped to their ``module:Class`` paths.

    Raises:
        ConfigError: unknown name, unimportable path or bad parameters (one line, naming the fix).
    """
    error = unknown_plugin(kind, builtin, name)
    if error is not None:
        raise ConfigError(error)
    target = builtin.get(name, name)
    mod_name, _, cls_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError):
        raise ConfigError(f"{kind} {name!r}: cannot import {target}; check the module path and class name") from None
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise ConfigError(f"{kind} {name!r}: bad params ({exc}); see its docstring for accepted params") from None


__all__ = ["make_plugin", "unknown_plugin"]
