"""The hash chain: canonical bytes of an entry and its link hash. Pure functions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from deeplocal.gateway.audit.crypto import AuditKeys

GENESIS = "0" * 64
FORMAT_VERSION = 1
# Fields of a stored entry that the link hash covers. The body itself is not among them, only its
# commitment "bc", so erasing a body leaves every hash intact.
HASHED_FIELDS = ("v", "seq", "prev", "rec", "bc")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link_hash(entry: dict[str, Any], keys: AuditKeys | None) -> str:
    """HMAC-SHA256 under the audit key when there is one (only its holder can forge), else SHA-256."""
    data = canonical({k: entry.get(k) for k in HASHED_FIELDS})
    return keys.sign(data) if keys is not None else hashlib.sha256(data).hexdigest()


def chain_kind(keys: AuditKeys | None) -> str:
    return "hmac-sha256" if keys is not None else "sha256"
