"""GET /v1/models and /v1/models/{id}: what this server serves (and the caller may use)."""

from __future__ import annotations

from fastapi import APIRouter

from deeplocal.api.deps import CallerDep, ServicesDep
from deeplocal.engine.errors import ModelNotFound

router = APIRouter()


def _visible(services, caller) -> list:
    models = services.models.all()
    if services.gateway is not None and caller.principal is not None:
        allowed = set(services.gateway.visible_models(caller.principal, [m.id for m in models]))
        models = [m for m in models if m.id in allowed]
    return models


def _card(m) -> dict:
    return {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}


@router.get("/v1/models")
async def list_models(services: ServicesDep, caller: CallerDep):
    return {"object": "list", "data": [_card(m) for m in _visible(services, caller)]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, services: ServicesDep, caller: CallerDep):
    for m in _visible(services, caller):
        if m.id == model_id:
            return _card(m)
    raise ModelNotFound(f"The model '{model_id}' does not exist or is not served here", param="model")
