"""Fixtures for the vLLM backend against the stand-in executable (fake_vllm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vllm_fakes import FakeRun


@pytest.fixture
def fake(tmp_path: Path) -> FakeRun:
    return FakeRun(tmp_path)

