from __future__ import annotations

import pytest
from pydantic import ValidationError

from deeplocal.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("DEEPLOCAL_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults():
    s = load_settings()
    assert s.server.host == "127.0.0.1" and s.server.port == 8000
    assert s.engine.n_ctx == 32768 and s.engine.kv_unified is False
    assert s.models[0].source == "smollm2-135m"


def test_precedence_file_env_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "deeplocal.yaml"
    cfg.write_text("server:\n  port: 9000\n  host: 127.0.0.2\nengine:\n  n_ctx: 2048\n")
    assert load_settings().server.port == 9000             # picked up from the working directory
    monkeypatch.setenv("DEEPLOCAL_SERVER__PORT", "9100")
    s = load_settings()
    assert s.server.port == 9100 and s.server.host == "127.0.0.2" and s.engine.n_ctx == 2048
    s = load_settings(server={"port": 9200})
    assert s.server.port == 9200 and s.server.host == "127.0.0.2"


def test_unknown_key_is_named(tmp_path):
    cfg = tmp_path / "x.yaml"
    cfg.write_text("server:\n  prot: 1\n")
    with pytest.raises(ConfigError, match="unknown key 'server.prot'"):
        load_settings(cfg)


def test_bad_value_is_named(tmp_path):
    cfg = tmp_path / "x.yaml"
    cfg.write_text("engine:\n  n_ctx: -5\n")
    with pytest.raises(ConfigError, match="engine.n_ctx"):
        load_settings(cfg)


def test_model_strings_with_ids():
    s = load_settings(models=["a=/tmp/a.gguf", "smollm2"])
    assert (s.models[0].id, s.models[0].source) == ("a", "/tmp/a.gguf")
    assert s.models[1].id is None


def test_settings_are_frozen():
    s = load_settings()
    with pytest.raises(ValidationError):
        s.server.port = 1
