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
    routed: bool = False            # a routing alias: requests go through services.router


class RoutedModelView:
    """What the API needs of a routing alias before an upstream is chosen: its preferred backend's
    token count and capabilities. Generation itself goes through the Router."""

    def __init__(self, router: Any, alias: str):
        self.name = alias
        self._router = router
        self._alias = alias

    def _primary(self):
        return self._router.primary_backend(self._alias)

    @property
    def capabilities(self):
        from deeplocal.engine.types import Capabilities

        primary = self._primary()
        return primary.capabilities if primary is not None else Capabilities()

    def count_tokens(self, req) -> int:
        primary = self._primary()
        if primary is not None:
            return primary.count_tokens(req)
        text = req.prompt or "".join(m.content for m in req.messages or ())
        return max(1, len(text) // 4)   # estimate for remote-only aliases (quota reservation only)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        primary = self._primary()
        if primary is None:
            from deeplocal.engine.errors import InvalidRequest

            raise InvalidRequest(f"{self._alias} does not serve embeddings", param="model")
        return await primary.embed(texts)

    def stats(self):
        from deeplocal.engine.types import BackendStats

        primary = self._primary()
        return primary.stats() if primary is not None else BackendStats()

    async def start(self) -> None:
        """The router starts its upstreams."""

    async def stop(self) -> None:
        """The router stops its upstreams."""

    def generate(self, req):
        raise RuntimeError("routed models generate through the Router")


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
    privacy: Any = None     # deeplocal.gateway.privacy.PrivacyGuard: PII screening and the audit log
    state: dict[str, Any] = field(default_factory=dict)
