"""Typed planner errors. They subclass DeeplocalError so an API edge can map them to HTTP 400."""

from __future__ import annotations

from deeplocal.errors import DeeplocalError


class PlannerError(DeeplocalError):
    status_code = 400
    error_type = "invalid_request_error"


class UnknownModel(PlannerError):
    code = "unknown_model"


class UnknownGpu(PlannerError):
    code = "unknown_gpu"


class UnknownPrecision(PlannerError):
    code = "unknown_precision"


class IncompatibleOptions(PlannerError):
    """A combination the chosen engine cannot run (e.g. a q8_0 KV cache on vLLM)."""

    code = "incompatible_options"


class ModelFileError(PlannerError):
    """A config.json or GGUF file could not be read as a model description."""

    code = "bad_model_file"
