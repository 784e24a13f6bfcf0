"""`redact(text)`: secrets out of text bound for a log. The one rule set for the gateway's log filter
and the structured log formatter.

Masked, each as `[REDACTED]`: deeplocal keys (`dl-<id>-<secret>`: the id stays, it names the key
without granting anything), bearer tokens and Basic credentials (quoted or JSON-escaped too), `x-api-key` /
`api_key` values, other API-key shapes (`sk-...`, `dl-...`, 8+ characters), and PEM private keys
(`[private key redacted]`, to the END line or the end of the text).
"""

from __future__ import annotations

import re

MARK = "[REDACTED]"
_SECRETS = re.compile(
    r"(?P<pem>-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|$))"
    r"|(?P<key_id>\bdl-[0-9a-f]{16}-)[A-Za-z0-9_-]{8,}"
    r"|(?P<bearer>\b(?i:bearer)\s+\\?[\"']?)[^\s'\",\\]+"
    r"|(?P<basic>\b(?i:authorization)\\?[\"']?\s*[:=]\s*\\?[\"']?(?i:basic)\s+)[A-Za-z0-9+/=]+"
    r"|(?P<field>\b(?i:x-api-key|api[_-]key)\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\s'\",\\]+"
    r"|\b(?:sk|dl)-[A-Za-z0-9_\-]{8,}",
    re.DOTALL,
)


def _mask(match: re.Match[str]) -> str:
    if match.group("pem"):
        return "[private key redacted]"
    return (match.group("key_id") or match.group("bearer") or match.group("basic") or match.group("field") or "") + MARK


def redact(text: str) -> str:
    """`text` with every secret it contains masked (one pass)."""
    return _SECRETS.sub(_mask, text)
