"""The data path of the gateway for one request: scan for PII, apply the caller's policy, classify
the data, and write the audit record when the request ends (on a background writer that appends
queued records together; `close()` writes what is left)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeplocal.engine.types import GenerationRequest
from deeplocal.gateway.audit.config import AuditSettings
from deeplocal.gateway.audit.log import AuditLog
from deeplocal.gateway.audit.records import AuditRecord
from deeplocal.gateway.pii.analyzer import PiiScanner
from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.gateway.pii.data_class import classify
from deeplocal.gateway.pii.policy import PiiPolicy, apply_policy
from deeplocal.gateway.pii.pseudonymize import Pseudonymizer
from deeplocal.gateway.writer import BatchWriter, WriterClosed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Screened:
    """A request after screening: the text the model may see, its data class, what was found."""

    request: GenerationRequest
    data_class: str
    finding_types: tuple[str, ...]
    pseudonymizer_factory: Callable[[], Pseudonymizer] | None


class PrivacyGuard:
    def __init__(self, pii: PiiSettings, audit: AuditSettings, *, data_dir: Path):
        self.pii_settings = pii
        self.scanner = PiiScanner.from_settings(pii) if pii.enabled else None
        self.base_policy = PiiPolicy.from_mapping(pii.policy, default=pii.default_action)
        self.audit = AuditLog.from_settings(audit, data_dir=data_dir) if audit.enabled else None
        self._sync_append = audit.fsync == "always"   # the request waits until its record is durable
        self._writer: BatchWriter[AuditRecord] | None = None
        if self.audit is not None:
            self.audit.prepare()   # a wrong audit key fails the start, not a request
            self._writer = BatchWriter(self.audit.append_many, flush_s=audit.batch_s, on_error=_log_lost,
                                       name="deeplocal-audit-writer")
        self._tenant_policies = {tenant: PiiPolicy.layer(policy, base=self.base_policy)
                                 for tenant, policy in pii.tenants.items()}
        self._policies: dict[tuple[str | None, str], PiiPolicy] = {}
        # Leaving the machine: every finding is pseudonymized, whatever the caller's policy.
        self._pseudonymizer = (functools.partial(Pseudonymizer, self.scanner)
                               if self.scanner is not None and pii.pseudonymize_remote else None)

    def _policy(self, principal: Any) -> PiiPolicy:
        """The caller's policy: the global one, under the tenant's (pii.tenants), under the key's own."""
        tenant = getattr(principal, "tenant", None)
        base = self._tenant_policies.get(tenant, self.base_policy) if tenant is not None else self.base_policy
        spec = getattr(principal, "pii_policy", None)
        if not spec:
            return base
        policy = self._policies.get((tenant, spec))
        if policy is None:
            policy = self._policies[(tenant, spec)] = PiiPolicy.parse(spec, base=base)
        return policy

    def screen(self, req: GenerationRequest, *, principal: Any, header: str | None) -> Screened:
        """Blocked entity types -> 400; redacted ones become typed placeholders for every upstream."""
        default = getattr(principal, "data_class", None)
        if self.scanner is None:
            return Screened(req, classify([], header=header, principal_default=default), (), None)
        texts = _texts_of(req)
        findings = self.scanner.scan_many(texts)
        policy = self._policy(principal)
        outcome = apply_policy(texts, findings, policy)
        outcome.raise_if_blocked()
        if outcome.redacted:
            req = _with_texts(req, outcome.texts)
        flat = [f for fs in findings for f in fs] if self.pii_settings.restricted_on_findings else []
        data_class = classify(flat, header=header, principal_default=default)
        pseudonymizer = self._pseudonymizer
        if pseudonymizer is not None:   # a text that leaves as it was scanned is not scanned again
            pseudonymizer = functools.partial(pseudonymizer, known=dict(zip(texts, findings, strict=True)))
        return Screened(req, data_class, outcome.finding_types, pseudonymizer)

    async def record(self, *, request_id: str, principal: Any, model: str, upstream: str, usage: Any,
                     status: str, data_class: str | None, finding_types: tuple[str, ...], started: float,
                     subject: str | None, prompt: str | None, completion: str | None) -> None:
        if self.audit is None:
            return
        rec = AuditRecord(
            request_id=request_id, principal=getattr(principal, "key_id", "") or "",
            tenant=getattr(principal, "tenant", "") or "", model=model, upstream=upstream,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            data_class=data_class or "", finding_types=finding_types,
            status=int(status) if str(status).isdigit() else 500,
            latency_ms=round((time.monotonic() - started) * 1000, 3), subject=subject,
            prompt=prompt if self.audit.store_bodies else None,
            completion=completion if self.audit.store_bodies else None)
        assert self._writer is not None
        try:
            if self._sync_append:
                await self._writer.submit(rec)
            else:
                self._writer.defer(rec)
        except WriterClosed:   # a request finishing after close(): append it here rather than lose it
            self.audit.append(rec)

    @property
    def stores_bodies(self) -> bool:
        return self.audit is not None and self.audit.store_bodies

    def flush(self) -> None:
        """Write every audit record accepted so far (blocks)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Write what is queued, then close the log."""
        if self._writer is not None:
            self._writer.close()
        if self.audit is not None:
            self.audit.close()


def _log_lost(records: list[AuditRecord], error: BaseException) -> None:
    for rec in records:
        log.error("could not append the audit record of request %s: %r", rec.request_id, error)


def _arguments(call: Any) -> str | None:
    function = call.get("function") if isinstance(call, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    return arguments if isinstance(arguments, str) else None


def _texts_of(req: GenerationRequest) -> list[str]:
    """What the policy screens, in order: each message's content and its tool calls' arguments (an
    earlier assistant turn can carry PII there too), or the prompt."""
    if req.messages is None:
        return [req.prompt or ""]
    texts: list[str] = []
    for m in req.messages:
        texts.append(m.content)
        texts.extend(a for c in m.tool_calls if (a := _arguments(c)) is not None)
    return texts


def _with_texts(req: GenerationRequest, texts: tuple[str, ...]) -> GenerationRequest:
    """`req` with the texts of `_texts_of` replaced, in the same order."""
    if req.messages is None:
        return dataclasses.replace(req, prompt=texts[0])
    rest = iter(texts)
    msgs = []
    for m in req.messages:
        content = next(rest)
        calls = tuple({**c, "function": {**c["function"], "arguments": next(rest)}}
                      if _arguments(c) is not None else c for c in m.tool_calls)
        msgs.append(dataclasses.replace(m, content=content, tool_calls=calls))
    return dataclasses.replace(req, messages=tuple(msgs))