"""Routing settings: the `routing:` section of deeplocal.yaml. Frozen, unknown keys are errors.

    routing:
      upstreams:
        local:   {kind: local, engine: deepseek-r1-distill-qwen-7b, device: cpu}
        gpu-box: {kind: local, base_url: "http://10.0.0.5:8000/v1", device: gpu}
        deepseek:
          kind: remote
          base_url: https://api.deepseek.com/v1
          api_key_env: DEEPSEEK_API_KEY
          price: {input_per_mtok: 0.27, output_per_mtok: 1.10}
          may_receive: [public, internal]
      aliases:
        deepseek-chat:
          - {upstream: local}
          - {upstream: gpu-box, model: deepseek-r1-distill-qwen-7b}
          - {upstream: deepseek, model: deepseek-chat}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DataClass = Literal["restricted", "internal", "public"]
DATA_CLASSES: tuple[DataClass, ...] = ("public", "internal", "restricted")  # least to most sensitive


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimeoutSettings(_Section):
    connect_s: float = Field(5.0, gt=0)
    first_token_s: float = Field(60.0, gt=0)
    idle_s: float = Field(60.0, gt=0)
    total_s: float = Field(600.0, gt=0)


class PriceSettings(_Section):
    """USD per million tokens, for cost accounting of what went out."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)


class UpstreamSettings(_Section):
    """`kind: local` is on premises (preferred, trusted); `kind: remote` is someone else's cloud.

    A local upstream is either an in-process engine (`engine:` a served model id) or another
    deeplocal / vLLM replica reached by `base_url`. A remote one always has a `base_url`.
    """

    kind: Literal["local", "remote"]
    engine: str | None = None
    base_url: str | None = None
    model: str | None = None                 # default upstream model name for alias entries
    api_key_env: str | None = None           # the NAME of the env var holding the key, never the key
    headers: dict[str, str] = Field(default_factory=dict)
    device: Literal["cpu", "gpu"] | None = None
    weight: float = Field(1.0, gt=0)
    may_receive: tuple[DataClass, ...] | None = None   # default: local all, remote only public
    price: PriceSettings = PriceSettings()
    timeouts: TimeoutSettings = TimeoutSettings()

    @model_validator(mode="after")
    def _target(self) -> UpstreamSettings:
        if (self.engine is None) == (self.base_url is None):
            raise ValueError("an upstream has exactly one of `engine` (in-process) or `base_url`")
        if self.kind == "remote" and self.engine is not None:
            raise ValueError("a remote upstream needs `base_url`, not `engine`")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError("`base_url` must start with http:// or https://")
        return self

    @property
    def allowed(self) -> frozenset[str]:
        if self.may_receive is not None:
            return frozenset(self.may_receive)
        return frozenset(DATA_CLASSES) if self.kind == "local" else frozenset({"public"})


class AliasTarget(_Section):
    upstream: str
    model: str | None = None   # upstream model name; default: the upstream's `model`, else the alias


class OverflowSettings(_Section):
    """Send to an allowed remote instead of a local upstream that is this busy."""

    max_queue: int = Field(8, ge=0)                # waiting requests on the local upstream
    ttft_slo_s: float | None = Field(None, gt=0)    # predicted time to first token


class RetrySettings(_Section):
    per_upstream: int = Field(1, ge=0)       # extra tries on the same upstream before failing over
    max_attempts: int = Field(4, ge=1)       # all tries for one request, across upstreams
    backoff_base_s: float = Field(0.1, ge=0)
    backoff_max_s: float = Field(2.0, ge=0)


class BreakerSettings(_Section):
    failure_threshold: int = Field(3, ge=1)   # consecutive failures that open the circuit
    open_s: float = Field(15.0, gt=0)         # how long it stays open before one trial request


class HealthSettings(_Section):
    interval_s: float = Field(10.0, ge=0)     # 0 disables probing
    timeout_s: float = Field(2.0, gt=0)


class PolicySettings(_Section):
    default_data_class: DataClass = "internal"
    selection: Literal["ordered", "weighted", "least_loaded"] = "ordered"
    overflow: OverflowSettings = OverflowSettings()
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    health: HealthSettings = HealthSettings()


class EnergySettings(_Section):
    """When CPU and GPU replicas serve one alias: low load to the CPU, bursts to the GPU."""

    enabled: bool = False
    cpu_max_in_flight: int = Field(1, ge=0)     # CPU first while it has fewer than this in flight
    burst_rps: float = Field(1.0, gt=0)         # ... and the alias sees at most this many requests/s
    window_s: float = Field(10.0, gt=0)


class RoutingSettings(_Section):
    upstreams: dict[str, UpstreamSettings] = Field(default_factory=dict)
    aliases: dict[str, tuple[AliasTarget, ...]] = Field(default_factory=dict)
    policy: PolicySettings = PolicySettings()
    energy: EnergySettings = EnergySettings()

    @field_validator("aliases", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        """`- local` is short for `- {upstream: local}`."""
        if isinstance(value, dict):
            return {
                alias: [{"upstream": t} if isinstance(t, str) else t for t in targets]
                if isinstance(targets, list | tuple) else targets
                for alias, targets in value.items()
            }
        return value

    @model_validator(mode="after")
    def _references(self) -> RoutingSettings:
        for alias, targets in self.aliases.items():
            if not targets:
                raise ValueError(f"alias {alias!r} lists no upstreams")
            for target in targets:
                if target.upstream not in self.upstreams:
                    raise ValueError(f"alias {alias!r} names unknown upstream {target.upstream!r}")
        return self
