"""Helpers shared by the generation routes."""

from __future__ import annotations

from deeplocal.api.deps import Caller
from deeplocal.api.openai.serving import GenerationCall
from deeplocal.api.services import ServedModel, Services
from deeplocal.engine.types import GenerationRequest, Usage
from deeplocal.gateway.pii.data_class import parse_data_class


async def open_call(services: Services, served: ServedModel, req: GenerationRequest,
                    caller: Caller, *, stream: bool = True) -> GenerationCall:
    """Check access, then start the generation and wait for its first chunk (errors stay HTTP).
    `stream`: whether the client streams (a non-streaming one lets a remote upstream answer whole)."""
    if services.gateway is not None and caller.principal is not None:
        services.gateway.require_model(caller.principal, served.id)
    data_class, findings, pseudonymizer = None, (), None
    if services.privacy is not None:
        screened = services.privacy.screen(req, principal=caller.principal, header=caller.data_class_header)
        req, data_class = screened.request, screened.data_class
        findings, pseudonymizer = screened.finding_types, screened.pseudonymizer_factory
    elif caller.data_class_header:
        data_class = parse_data_class(caller.data_class_header)
    settings = services.state.get("settings")
    timeout = settings.server.request_timeout_s if settings is not None else None
    call = GenerationCall(services, served, req, principal=caller.principal, data_class=data_class,
                          timeout_s=timeout, finding_types=findings, pseudonymizer_factory=pseudonymizer,
                          stream=stream)
    await call.open()
    return call


def usage_dict(usage: Usage) -> dict:
    out = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
           "total_tokens": usage.total_tokens}
    if usage.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return out
