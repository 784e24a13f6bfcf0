"""The composition root: Settings in, Services out (models resolved, backends built)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deeplocal.api.services import ModelRegistry, RoutedModelView, SamplingDefaults, ServedModel, Services
from deeplocal.config import ModelConfig, Settings
from deeplocal.engine.errors import InvalidRequest
from deeplocal.engine.registry import load_backend_class
from deeplocal.models import catalog

# SmolLM2's recommended generation settings; used only when a request leaves them unset.
BUNDLED_DEFAULTS = SamplingDefaults(temperature=0.2, top_p=0.9, repetition_penalty=1.1)


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    id: str
    path: Path
    defaults: SamplingDefaults


def resolve_source(entry: ModelConfig, settings: Settings) -> ResolvedSource:
    """A catalog name, a store id or a GGUF path -> a local file (the model store decides)."""
    from deeplocal.models.resolve import resolve_model

    resolved = resolve_model(entry.source, store_dir=settings.store_dir)
    if entry.backend == "llamacpp" and resolved.format != "gguf":
        raise InvalidRequest(f"model {entry.source!r} is {resolved.format}; the llama.cpp backend needs GGUF: "
                             f"run `deeplocal models convert {resolved.id}` first")
    bundled = catalog.bundled_model_path()
    defaults = BUNDLED_DEFAULTS if bundled is not None and Path(resolved.path) == bundled else SamplingDefaults()
    return ResolvedSource(entry.id or resolved.id, Path(resolved.path), defaults)


def build_gateway(settings: Settings):
    """Always built: with auth off it admits a local principal and still writes the usage ledger."""
    from deeplocal.gateway.service import Gateway
    from deeplocal.store.db import resolve_database_url

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Gateway(settings.gateway, resolve_database_url(settings.database_url, settings.data_dir))


def build_services(settings: Settings) -> Services:
    served = []
    seen: set[str] = set()
    for entry in settings.models:
        if entry.backend == "vllm":   # a Hugging Face folder or id, served by the vLLM child process
            model_id = entry.id or entry.source.rstrip("/").split("/")[-1].lower()
            backend = load_backend_class("vllm").from_config(model_id, entry.source, settings)
            served.append(ServedModel(id=model_id, backend=backend, reasoning=entry.reasoning))
            seen.add(model_id)
            continue
        src = resolve_source(entry, settings)
        if src.id in seen:
            raise ValueError(f"two models share the id {src.id!r}; give one an explicit id (ID=PATH)")
        seen.add(src.id)
        backend_cls = load_backend_class(entry.backend)
        backend = backend_cls.from_config(src.id, src.path, settings)
        served.append(ServedModel(id=src.id, backend=backend, defaults=src.defaults, reasoning=entry.reasoning))
    router = None
    if settings.routing.aliases:
        from deeplocal.routing.router import Router

        router = Router(settings.routing, local_backends={m.id: m.backend for m in served})
        aliases = set(settings.routing.aliases)
        served = [m for m in served if m.id not in aliases]
        served += [ServedModel(id=a, backend=RoutedModelView(router, a), routed=True) for a in aliases]
    registry = ModelRegistry(served)
    from deeplocal.gateway.privacy import PrivacyGuard

    services = Services(models=registry, router=router, gateway=build_gateway(settings),
                        privacy=PrivacyGuard(settings.pii, settings.audit, data_dir=settings.data_dir))
    if settings.metrics.enabled:
        from deeplocal.metrics.registry import Metrics

        breakers = None
        if router is not None:
            def breakers() -> dict[str, str]:
                return {s.name: s.breaker for s in router.upstream_states()}
        services.metrics = Metrics(settings.metrics, backends=registry.backends, breakers=breakers)
    return services
