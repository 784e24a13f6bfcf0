"""A full disk while importing: a typed error, and no half-written model left in the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deeplocal.models.errors import StoreFull
from deeplocal.models.importer import import_path
from deeplocal.models.store import ModelStore


def leftovers(store_dir: Path) -> list[str]:
    names = [p.name for p in store_dir.iterdir() if not p.name.startswith(".")]
    staging = store_dir / ".staging"
    return names + ([f".staging/{p.name}" for p in staging.iterdir()] if staging.exists() else [])


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                            check=False, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); RLIMIT_FSIZE test covers it")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_full_tmpfs_leaves_nothing(tiny_gguf: Path, small_tmpfs: Path) -> None:
    store_dir = small_tmpfs / "models"
    with pytest.raises(StoreFull, match="no space left"):
        import_path(ModelStore(store_dir), tiny_gguf)  # 5.3 MB into 2 MB
    assert leftovers(store_dir) == []
    assert os.statvfs(small_tmpfs).f_bfree * os.statvfs(small_tmpfs).f_frsize > 1_900_000


def test_file_size_limit_leaves_nothing(tiny_gguf: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "models"
    script = textwrap.dedent(f"""
        import json, resource, signal, sys
        from pathlib import Path
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        from deeplocal.models.importer import import_path
        from deeplocal.models.store import ModelStore
        try:
            import_path(ModelStore(Path({str(store_dir)!r})), Path({str(tiny_gguf)!r}))
        except Exception as exc:
            print(json.dumps({{"type": type(exc).__name__, "code": getattr(exc, "code", None),
                              "message": str(exc)}}))
            sys.exit(0)
        sys.exit(3)
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr
    error = json.loads(result.stdout)
    assert error["type"] == "StoreFull" and error["code"] == "insufficient_storage"
    assert "file size limit" in error["message"]
    assert leftovers(store_dir) == []
