from __future__ import annotations

from pathlib import Path

import pytest

from deeplocal.models.tiny import write_tiny_llama


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama.F32.gguf")


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"
