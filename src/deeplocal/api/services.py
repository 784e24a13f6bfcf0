"""What create_app() is given: the served models and the optional gateway, router and metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from deeplocal.engine.backend import Backend
from deeplocal.engine.errors import ModelNotFound


@dataclass(frozen=True, slots=True)
class SamplingDefaults:
    """Per-model defaults used when a request omits a parameter (like a model's generation_config)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0


@dataclass(frozen=True, slots=True)
class ServedModel:
    id: str
    backend: Backend
    defaults: SamplingDefaults = SamplingDefaults()
    created: int = field(default_factory=lambda: int(time.time()))
    owned_by: str = "deeplocal"
    reasoning: bool | None = None   # split <think>...</think>; None: ask the backend


class ModelRegistry:
    def __init__(self, models: list[ServedModel]):
        self._by_id = {m.id: m for m in models}

    def get(self, model_id: str) -> ServedModel:
        try:
            return self._by_id[model_id]
        except KeyError:
            raise ModelNotFound(f"The model '{model_id}' does not exist or is not served here",
                                param="model") from None

    def ids(self) -> list[str]:
        return list(self._by_id)

    def all(self) -> list[ServedModel]:
        return list(self._by_id.values())

    def backends(self) -> dict[str, Backend]:
        return {m.id: m.backend for m in self._by_id.values()}


@dataclass
class Services:
    models: ModelRegistry
    gateway: Any = None     # deeplocal.gateway.service.Gateway when security is on
    metrics: Any = None     # deeplocal.metrics.registry.Metrics
    router: Any = None      # deeplocal.routing.router.Router for hybrid routing
    audit: Any = None       # deeplocal.gateway.audit.AuditLog
    state: dict[str, Any] = field(default_factory=dict)
