"""Typed, frozen settings. Sources, lowest first: defaults < deeplocal.yaml < DEEPLOCAL_* env < CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from deeplocal.engine.vllm.config import VllmSettings
from deeplocal.gateway.audit.config import AuditSettings
from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.metrics.config import MetricsSettings
from deeplocal.routing.config import RoutingSettings

CONFIG_ENV = "DEEPLOCAL_CONFIG"
DEFAULT_CONFIG_NAME = "deeplocal.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    request_timeout_s: float = Field(600.0, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)
    cors_origins: tuple[str, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None


class EngineSettings(_Section):
    # KV cells for all sequences together (llama-server's -c). With the per-sequence layout (the
    # default) each of max_num_seqs sequences holds up to n_ctx / max_num_seqs tokens: 2048 here.
    n_ctx: int = Field(32768, ge=64)
    n_threads: int = Field(default_factory=_default_threads, ge=1)
    n_batch: int = Field(512, ge=1)
    n_gpu_layers: int = Field(0, ge=-1)
    max_num_seqs: int = Field(16, ge=1, le=256)
    max_num_batched_tokens: int = Field(512, ge=16)
    max_queue: int = Field(64, ge=0)
    prefix_cache: bool = True
    # false (default): each of max_num_seqs sequences owns n_ctx / max_num_seqs cells in its own KV
    # stream, like llama-server --parallel; attention reads only the sequence's own tokens.
    # true: one pool shared by all sequences (one sequence may use all n_ctx cells), but every
    # token attends over the whole used range of the pool: slower as concurrency grows
    # (`python bench/kv_layout.py`).
    kv_unified: bool = False
    embeddings: bool = True


class ModelConfig(_Section):
    """A model to serve. `source` is a GGUF path, a store id, or a catalog name ("smollm2-135m")."""

    source: str
    id: str | None = None
    backend: str = "llamacpp"
    reasoning: bool | None = None   # split <think>...</think>; None: when the chat template uses it

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            model_id, sep, source = value.partition("=")
            return {"source": source, "id": model_id} if sep and source else {"source": value}
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEEPLOCAL_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    server: ServerSettings = ServerSettings()
    engine: EngineSettings = EngineSettings()
    models: tuple[ModelConfig, ...] = (ModelConfig(source="smollm2-135m"),)
    gateway: GatewaySettings = GatewaySettings()
    database_url: str | None = None     # DEEPLOCAL_DATABASE_URL; default: SQLite under data_dir
    pii: PiiSettings = PiiSettings()
    audit: AuditSettings = AuditSettings()
    vllm: VllmSettings = VllmSettings()
    metrics: MetricsSettings = MetricsSettings()
    routing: RoutingSettings = RoutingSettings()
    data_dir: Path = Path("~/.deeplocal")
    models_dir: Path | None = None      # the model store; default <data_dir>/models
    log_level: str = "info"
    log_json: bool = True

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        allowed = {"debug", "info", "warning", "error", "critical"}
        if value.lower() not in allowed:
            raise ValueError(f"must be one of {sorted(allowed)}")
        return value.lower()

    @field_validator("data_dir", "models_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return Path(value).expanduser() if value is not None else None

    @property
    def store_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # Merging is done in load_settings() so that the YAML path can be chosen at run time.
        return (init_settings,)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def find_config_file(explicit: str | Path | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def _describe(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}' in {origin}")
        else:
            lines.append(f"'{key}': {err['msg']} (in {origin})")
    return "; ".join(lines)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from defaults, the YAML file, DEEPLOCAL_* env and explicit overrides (CLI flags)."""
    path = find_config_file(config_file)
    file_data = read_yaml(path) if path else {}
    origin = str(path) if path else "settings"
    try:
        Settings(**file_data)  # validate the file alone so its errors name the file
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from exc
    env_data = EnvSettingsSource(Settings)()
    merged = _deep_merge(_deep_merge(file_data, env_data), {k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "configuration (file, DEEPLOCAL_* env or flags)")) from exc
