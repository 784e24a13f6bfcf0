"""Helpers for the audit tests: a log with a few records, and line-level edits of its segments."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deeplocal.gateway.audit import AuditLog, AuditRecord

KEY = bytes(range(32))


def make_record(i: int, *, subject: str = "alice", ts: float | None = None, prompt: str | None = None) -> AuditRecord:
    return AuditRecord(request_id=f"req-{i}", principal="key-1", tenant="acme", model="smollm2-135m",
                       upstream="local", prompt_tokens=10 + i, completion_tokens=5, data_class="internal",
                       finding_types=("EMAIL_ADDRESS",), status=200, latency_ms=12.5,
                       ts=ts if ts is not None else 1_790_000_000.0 + i, subject=subject,
                       prompt=prompt, completion=None if prompt is None else f"answer {i}")


def segment_lines(directory: Path) -> list[str]:
    return (directory / "audit-000001.jsonl").read_text(encoding="utf-8").splitlines()


def write_lines(directory: Path, lines: list[str]) -> None:
    (directory / "audit-000001.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(params=["keyed", "unkeyed"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, bytes | None]:
    key = KEY if request.param == "keyed" else None
    with AuditLog(tmp_path / "audit", key=key, fsync="never") as log:
        for i in range(1, 6):
            log.append(make_record(i))
    return tmp_path / "audit", key


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPLOCAL_AUDIT_KEY", raising=False)


def edit_entry(line: str, **changes: object) -> str:
    entry = json.loads(line)
    entry["rec"].update(changes)
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


assert os.name == "posix", "the audit log's file lock is POSIX flock"
