"""Typed engine errors. The API layer maps each to one OpenAI-shaped HTTP error."""

from __future__ import annotations

from deeplocal.errors import DeeplocalError


class EngineError(DeeplocalError):
    """Base class: every error a backend raises to the API is one of these."""


class InvalidRequest(EngineError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class ContextTooLong(InvalidRequest):
    code = "context_length_exceeded"


class ModelNotFound(EngineError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class Overloaded(EngineError):
    """The engine's waiting queue is full: retry later (429 with Retry-After)."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "engine_overloaded"


class BackendUnavailable(EngineError):
    """The engine is down, stopping or unreachable (503 with Retry-After)."""

    status_code = 503
    error_type = "server_error"
    code = "backend_unavailable"


class UpstreamError(EngineError):
    """A remote upstream failed in a way that is not the caller's fault."""

    status_code = 502
    error_type = "server_error"
    code = "upstream_error"


class GenerationTimeout(EngineError):
    """The request ran past its time limit; the generation was stopped."""

    status_code = 504
    error_type = "server_error"
    code = "timeout"
