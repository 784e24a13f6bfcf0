"""GET /health (the process is alive) and GET /ready (every model is loaded and admitting)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from deeplocal.api.deps import ServicesDep

router = APIRouter()


@router.get("/health")
async def health():
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep):
    draining = services.state.get("draining", False)
    stats = {m.id: m.backend.stats() for m in services.models.all()}
    models = {mid: s.healthy for mid, s in stats.items()}
    ok = bool(models) and all(models.values()) and not draining
    load = {mid: {"waiting": s.waiting, "running": s.running, "kv_used": s.kv_used, "kv_total": s.kv_total}
            for mid, s in stats.items()}
    body = {"status": "ready" if ok else "not_ready", "models": models, "load": load, "draining": draining}
    return JSONResponse(body, status_code=200 if ok else 503)
