"""Who is calling: the Principal a key resolves to, and the limits attached to it."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

SCOPE_INFERENCE = "inference"
SCOPE_ADMIN = "admin"
SCOPES: frozenset[str] = frozenset({SCOPE_INFERENCE, SCOPE_ADMIN})
DATA_CLASSES: frozenset[str] = frozenset({"restricted", "internal", "public"})
ANONYMOUS_KEY_ID = "local"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-key limits; None means unlimited."""

    rpm: int | None = None             # requests per minute (token bucket, burst = rpm)
    tpm: int | None = None             # tokens per minute (prompt + completion; bucket, burst = tpm)
    monthly_tokens: int | None = None  # tokens per calendar month (UTC)
    max_streams: int | None = None     # requests in flight at once

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.monthly_tokens is None and self.max_streams is None


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str                    # public key id, never the secret
    tenant: str
    name: str
    scopes: frozenset[str]
    models: tuple[str, ...] = ()   # allowed model ids or glob patterns; empty = all models
    limits: Limits = Limits()
    data_class: str | None = None  # default data class for routing: restricted/internal/public
    quota_id: str = ""             # counters are shared by a key and the keys rotated from it
    pii_policy: str | None = None  # the key's own PII policy, "ENTITY=action,...", over its tenant's

    def may_use(self, model: str) -> bool:
        return not self.models or any(fnmatchcase(model, pattern) for pattern in self.models)


def anonymous_principal() -> Principal:
    """The caller when auth is off (loopback only): every scope, every model, no limits."""
    return Principal(key_id=ANONYMOUS_KEY_ID, tenant="local", name="local", scopes=SCOPES,
                     quota_id=ANONYMOUS_KEY_ID)
