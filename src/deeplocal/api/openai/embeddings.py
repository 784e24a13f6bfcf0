"""POST /v1/embeddings."""

from __future__ import annotations

import base64
import struct

from fastapi import APIRouter

from deeplocal.api.deps import CallerDep, ServicesDep
from deeplocal.api.openai.protocol import EmbeddingRequest
from deeplocal.engine.errors import InvalidRequest
from deeplocal.engine.types import GenerationRequest

router = APIRouter()


@router.post("/v1/embeddings")
async def create_embeddings(body: EmbeddingRequest, services: ServicesDep, caller: CallerDep):
    served = services.models.get(body.model)
    if services.gateway is not None and caller.principal is not None:
        services.gateway.require_model(caller.principal, served.id)
    if not served.backend.capabilities.embeddings:
        raise InvalidRequest(f"model {served.id} does not serve embeddings", param="model")
    if body.dimensions is not None:
        raise InvalidRequest("dimensions is not supported by this model", param="dimensions")
    inputs = body.input
    if inputs and isinstance(inputs[0], int) or (inputs and isinstance(inputs[0], list)):
        raise InvalidRequest("token-id inputs are not supported; send text", param="input")
    vectors = await served.backend.embed(list(inputs))
    data = []
    for i, vec in enumerate(vectors):
        emb = (base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
               if body.encoding_format == "base64" else vec)
        data.append({"object": "embedding", "index": i, "embedding": emb})
    n_tokens = sum(served.backend.count_tokens(
        GenerationRequest(request_id=caller.request_id, model=served.id, prompt=t)) for t in inputs)
    return {"object": "list", "data": data, "model": served.id,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}
