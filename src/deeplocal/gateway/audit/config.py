"""Settings of the audit log. Wired into `Settings.audit` by the lead."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

KEY_ENV = "DEEPLOCAL_AUDIT_KEY"


class AuditSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # Segment directory; None: <data_dir>/audit.
    dir: Path | None = None
    # Prompt and completion bodies are kept only when this is on, and then only encrypted
    # (AES-256-GCM). Turning it on without a key is a configuration error.
    store_bodies: bool = False
    # The key: base64 of 32 random bytes, from the env var DEEPLOCAL_AUDIT_KEY or from this file
    # (base64 text, or the 32 raw bytes). With a key the hash chain is keyed (HMAC-SHA256), so only
    # its holder can rewrite history, and retention can sign its truncation marker.
    key_file: Path | None = None
    # always: fsync every record (durable, ~ms on disks); interval: at most every fsync_interval_s;
    # never: leave it to the OS.
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_s: float = Field(1.0, gt=0)
    # The server appends records on a background thread, several per write: a record waits at most
    # this long for company (with fsync "always" the request waits until its record is durable).
    # Shutdown writes everything still queued.
    batch_s: float = Field(0.02, ge=0, le=5)
    segment_max_bytes: int = Field(64 * 1024 * 1024, ge=4096)
    # Records older than this many days are removed by `deeplocal audit prune` (None: keep all).
    retention_days: int | None = Field(None, ge=1)
