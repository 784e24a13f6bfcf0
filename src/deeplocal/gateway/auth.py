"""Authentication: Authorization header -> verified key record, with a short-lived lookup cache.

Only a presented secret that matches the stored hash learns anything about the key (revoked,
expired); every other failure reads the same "invalid API key". Secrets never enter messages or logs.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from deeplocal.errors import DeeplocalError
from deeplocal.gateway.keys import KeyRecord, KeyStore, ParsedKey, parse_key, secret_matches
from deeplocal.redaction import redact

_BEARER = "bearer "


class AuthenticationError(DeeplocalError):
    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"

    def __init__(self, message: str):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="deeplocal"'})


class PermissionDenied(DeeplocalError):
    status_code = 403
    error_type = "permission_error"
    code = "insufficient_scope"


class ModelNotAllowed(PermissionDenied):
    code = "model_not_allowed"


class SecretLogFilter(logging.Filter):
    """Attach to handlers: masks any key, bearer token or PEM private key in a record (deeplocal.redaction)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def parse_authorization(authorization: str | None, *, max_bytes: int) -> ParsedKey:
    """Strictly parse `Bearer dl-<id>-<secret>`; raise AuthenticationError on anything else."""
    if authorization is None or not authorization.strip():
        raise AuthenticationError("Missing API key: send the header 'Authorization: Bearer <key>'.")
    if len(authorization) > max_bytes or not authorization.isascii() or not authorization.isprintable():
        raise AuthenticationError("Malformed Authorization header.")
    if authorization[: len(_BEARER)].lower() != _BEARER:
        raise AuthenticationError("Malformed Authorization header: expected 'Bearer <key>'.")
    parsed = parse_key(authorization[len(_BEARER):].strip())
    if parsed is None:
        raise AuthenticationError("Invalid API key.")
    return parsed


class KeyCache:
    """Key id -> record (or None for unknown ids), each entry valid for its own TTL; LRU bounded; thread-safe."""

    def __init__(self, *, ttl_s: float, negative_ttl_s: float, size: int, clock: Callable[[], float]):
        self._ttl, self._negative_ttl, self._size, self._clock = ttl_s, negative_ttl_s, size, clock
        self._entries: OrderedDict[str, tuple[float, KeyRecord | None]] = OrderedDict()
        self._lock = threading.Lock()  # filled from the database thread, read on the event loop

    def get(self, key_id: str) -> tuple[bool, KeyRecord | None]:
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is None:
                return False, None
            if entry[0] <= self._clock():
                del self._entries[key_id]
                return False, None
            self._entries.move_to_end(key_id)
            return True, entry[1]

    def put(self, key_id: str, record: KeyRecord | None) -> None:
        ttl = self._ttl if record is not None else self._negative_ttl
        if ttl <= 0 or self._size <= 0:
            return
        with self._lock:
            self._entries[key_id] = (self._clock() + ttl, record)
            self._entries.move_to_end(key_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._entries.pop(key_id, None)


class Authenticator:
    """Verifies a parsed key against its record. Loading the record is the caller's choice of thread."""

    def __init__(self, store: KeyStore, cache: KeyCache, *, clock: Callable[[], float]):
        self.store, self.cache, self._clock = store, cache, clock

    def load(self, key_id: str) -> KeyRecord | None:
        """Read the record from the database and cache it (blocking: run off the event loop)."""
        record = self.store.get(key_id)
        self.cache.put(key_id, record)
        return record

    def verify(self, parsed: ParsedKey, record: KeyRecord | None) -> KeyRecord:
        if record is None or not secret_matches(parsed.secret, record.salt, record.secret_hash):
            raise AuthenticationError("Invalid API key.")
        state = record.state(self._clock())
        if state == "revoked":
            raise AuthenticationError("This API key has been revoked.")
        if state == "expired":
            raise AuthenticationError("This API key has expired.")
        return record
