"""Backends register through the entry-point group `deeplocal.backends`; ours use the same door."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from deeplocal.engine.errors import InvalidRequest

GROUP = "deeplocal.backends"


def available_backends() -> dict[str, Any]:
    """Name -> entry point, for every installed backend plugin."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_backend_class(name: str) -> type:
    eps = available_backends()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise InvalidRequest(f"unknown backend {name!r}; installed backends: {known}")
    return eps[name].load()
