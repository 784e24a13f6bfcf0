"""One audit record per request (or per audit event), and its stored form."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened, without what was said: bodies are kept only when enabled, and encrypted.

    `subject` is the data subject the request is about (the `user` of the OpenAI request, or the
    principal when absent); `erase_subject()` removes the bodies of one subject.
    """

    request_id: str
    principal: str
    tenant: str = ""
    model: str = ""
    upstream: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    data_class: str = ""
    finding_types: tuple[str, ...] = ()
    status: int = 200
    latency_ms: float = 0.0
    ts: float = field(default_factory=time.time)
    subject: str | None = None
    event: str = "request"
    error: str | None = None
    detail: str | None = None
    prompt: str | None = field(default=None, repr=False)
    completion: str | None = field(default=None, repr=False)

    @property
    def has_body(self) -> bool:
        return self.prompt is not None or self.completion is not None

    def metadata(self) -> dict[str, Any]:
        """The stored, hashed metadata: every field but the bodies."""
        return {
            "event": self.event, "ts": round(self.ts, 6), "request_id": self.request_id,
            "principal": self.principal, "tenant": self.tenant, "subject": self.subject or self.principal,
            "model": self.model, "upstream": self.upstream, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "data_class": self.data_class,
            "finding_types": sorted(self.finding_types), "status": self.status,
            "latency_ms": round(self.latency_ms, 3), "error": self.error, "detail": self.detail,
        }

    def bodies(self) -> dict[str, str | None]:
        return {"prompt": self.prompt, "completion": self.completion}
