"""Settings for the `metrics:` section of deeplocal.yaml (frozen; unknown keys are an error)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class MetricsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    path: str = "/metrics"
    # None: serve /metrics on the API port. A number: also serve it on this port (0 picks a free one).
    port: int | None = Field(None, ge=0, le=65535)
    host: str = "127.0.0.1"
    # Only callers with the admin scope may scrape the API-port /metrics (the lead wires the dependency).
    require_admin: bool = False
    gpu: bool = True                      # NVML collector; reports deeplocal_gpu_available 0 without a GPU
    host_metrics: bool = True             # host CPU and RAM, process RSS and CPU
    rapl: bool = True                     # CPU package energy from Linux powercap, where readable
    rapl_root: Path = Path("/sys/class/powercap")
    tenant_label: bool = False            # add a `tenant` label to the usage and spend counters
    max_label_values: int = Field(64, ge=1, le=10_000)  # per label; later values are reported as "other"

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value
