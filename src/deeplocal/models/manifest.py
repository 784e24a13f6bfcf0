"""The manifest stored beside every model: what it is, where it came from, and its checksums."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")

ModelFormat = Literal["gguf", "safetensors"]


def slugify(text: str) -> str:
    """A valid store id from any name: lower case, runs of other characters become '-'."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return slug[:128] or "model"


def check_id(model_id: str) -> str:
    if not ID_PATTERN.match(model_id):
        raise ValueError(
            f"invalid model id {model_id!r}: use lower-case letters, digits, '.', '_' or '-' (max 128)"
        )
    return model_id


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    size: int = Field(ge=0)
    sha256: str


class Manifest(BaseModel):
    """One model in the store. `files` are relative to the model's folder, or to `external_path`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest_version: int = MANIFEST_VERSION
    id: str
    source: str
    revision: str | None = None
    format: ModelFormat
    architecture: str
    parameters: int = Field(ge=0)
    size_bytes: int = Field(ge=0)
    quantization: str
    sha256: str
    license: str | None = None
    created: str
    name: str | None = None
    context_length: int | None = None
    primary: str = Field(description="the GGUF file, or '.' for a safetensors folder")
    files: tuple[FileEntry, ...] = ()
    external_path: str | None = Field(None, description="registered in place, not copied")
    parent: str | None = Field(None, description="the store id this was converted or quantized from")

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return check_id(value)

    def model_path(self, model_dir: Path) -> Path:
        """The path a backend loads: the GGUF file, or the safetensors folder."""
        base = Path(self.external_path) if self.external_path else model_dir
        if self.external_path and base.is_file():
            return base
        return base if self.primary == "." else base / self.primary


def read_manifest(path: Path) -> Manifest:
    return Manifest.model_validate_json(path.read_text(encoding="utf-8"))


def dump_manifest(manifest: Manifest) -> str:
    return manifest.model_dump_json(indent=2, exclude_none=False) + "\n"
