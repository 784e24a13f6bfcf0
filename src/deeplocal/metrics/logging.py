"""Structured logs on the `deeplocal` logger: one JSON object per line, no prompt text, no secrets.

`configure_logging` touches only the `deeplocal` logger (never the root logger) and is safe to call
again (it replaces the handler it installed). `request_log_line` writes the one line per request.
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from deeplocal.metrics.requests import RequestSummary
from deeplocal.redaction import redact

LOGGER = "deeplocal"
ACCESS_LOGGER = "deeplocal.access"
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Types json.dumps would hand to `default=str` are handed to it by orjson too.
_ORJSON_AS_JSON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key != "fields" and not key.startswith("_"):
                out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        try:   # the same text as json.dumps(out, default=str, ensure_ascii=False), several times faster
            return orjson.dumps(out, default=str, option=_ORJSON_AS_JSON).decode()
        except (orjson.JSONEncodeError, TypeError):   # e.g. an int past 64 bits
            return jsonlib.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return redact(text)


def configure_logging(level: str = "info", json: bool = True, *, stream: IO[str] | None = None) -> None:
    """Send `deeplocal.*` records to stderr (or `stream`) as JSON lines or text, at `level`."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "_deeplocal", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._deeplocal = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def request_log_line(*, request_id: str, principal_id: str | None, model: str, upstream: str,
                     prompt_tokens: int, completion_tokens: int, latency_s: float, status: str,
                     ttft_s: float | None = None, finish_reason: str | None = None,
                     tenant: str | None = None, logger: logging.Logger | None = None) -> dict[str, Any]:
    """Log the one line for a finished request and return its fields. Takes no free text by design."""
    fields: dict[str, Any] = {
        "event": "request", "request_id": request_id, "principal_id": principal_id, "tenant": tenant,
        "model": model, "upstream": upstream, "status": str(status), "finish_reason": finish_reason,
        "prompt_tokens": int(prompt_tokens), "completion_tokens": int(completion_tokens),
        "latency_ms": round(latency_s * 1000.0, 3),
        "ttft_ms": None if ttft_s is None else round(ttft_s * 1000.0, 3),
    }
    (logger or logging.getLogger(ACCESS_LOGGER)).info("request", extra={"fields": fields})
    return fields


def log_request(summary: RequestSummary, *, request_id: str, principal_id: str | None,
                tenant: str | None = None, logger: logging.Logger | None = None) -> dict[str, Any]:
    """`request_log_line` from what a `RequestTimer.finish()` returned."""
    return request_log_line(request_id=request_id, principal_id=principal_id, model=summary.model,
                            upstream=summary.upstream, prompt_tokens=summary.prompt_tokens,
                            completion_tokens=summary.completion_tokens, latency_s=summary.e2e_s,
                            status=summary.status, ttft_s=summary.ttft_s,
                            finish_reason=summary.finish_reason, tenant=tenant, logger=logger)
