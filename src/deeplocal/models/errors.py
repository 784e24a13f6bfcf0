"""Typed errors of the model store, import, pull, conversion, quantization and evaluation."""

from __future__ import annotations

from deeplocal.engine import errors as engine_errors
from deeplocal.errors import DeeplocalError


class ModelError(DeeplocalError):
    """Base of every models/ error."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "model_error"


class ModelNotFound(ModelError, engine_errors.ModelNotFound):
    """No model by that id, catalog name or path (HTTP 404, code model_not_found). One error for
    "unknown model" everywhere: it is also the engine's ModelNotFound."""

    status_code = 404
    code = "model_not_found"


class ModelExists(ModelError):
    status_code = 409
    code = "model_exists"


class InvalidModelFile(ModelError):
    """The file or folder is not a usable model: truncated GGUF, no config.json, bad weights."""

    code = "invalid_model"


class UnsupportedArchitecture(ModelError):
    code = "unsupported_architecture"


class VerificationFailed(ModelError):
    """A downloaded file's sha256 (or git blob hash) does not match what the hub published."""

    status_code = 502
    error_type = "server_error"
    code = "verification_failed"


class HubError(ModelError):
    """The hub could not be reached, or refused, or the model is not in the offline cache."""

    status_code = 502
    error_type = "server_error"
    code = "hub_error"


class StoreFull(ModelError):
    """The disk filled up while writing; nothing half-written was kept."""

    status_code = 507
    error_type = "server_error"
    code = "insufficient_storage"


class BackendMissing(ModelError):
    """An optional dependency (llama_cpp, the finetune extra) is not installed."""

    status_code = 501
    error_type = "server_error"
    code = "backend_missing"
