"""API keys: format, hashing, and the key store (create / get / list / revoke / rotate).

A key reads `dl-<key id>-<secret>`: the id (16 hex digits) is public and indexes the row, the secret
(256 random bits) is shown once and stored only as a salted SHA-256. A fast hash is enough because the
secret is random, not a password; comparison is constant time (hmac.compare_digest).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from deeplocal.engine.errors import InvalidRequest
from deeplocal.errors import DeeplocalError
from deeplocal.gateway.pii.policy import PiiPolicy
from deeplocal.gateway.principal import DATA_CLASSES, SCOPES, Limits, Principal
from deeplocal.store.tables import api_keys

KEY_PREFIX = "dl"
_KEY_RE = re.compile(r"dl-([0-9a-f]{16})-([A-Za-z0-9_-]{43})")
_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:@/+-]{0,127}")
_DURATION_RE = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class InvalidKeySpec(InvalidRequest):
    code = "invalid_key_spec"


class KeyNotFound(DeeplocalError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "key_not_found"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    key_id: str
    secret: str = field(repr=False)


def parse_key(text: str) -> ParsedKey | None:
    """Split a presented key into id and secret; None when it is not shaped like one of ours."""
    match = _KEY_RE.fullmatch(text)
    return ParsedKey(match.group(1), match.group(2)) if match else None


def hash_secret(secret: str, salt: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, salt: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret, salt), expected_hash)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key, without its secret (the hash and salt stay out of repr)."""

    key_id: str
    quota_id: str
    tenant: str
    name: str
    scopes: frozenset[str]
    models: tuple[str, ...]
    limits: Limits
    data_class: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    rotated_from: str | None
    secret_hash: str = field(repr=False)
    salt: str = field(repr=False)
    pii_policy: str | None = None

    def state(self, now: float) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def principal(self) -> Principal:
        return Principal(key_id=self.key_id, tenant=self.tenant, name=self.name, scopes=self.scopes,
                         models=self.models, limits=self.limits, data_class=self.data_class,
                         quota_id=self.quota_id, pii_policy=self.pii_policy)

    def public_dict(self, now: float) -> dict[str, Any]:
        return {
            "key_id": self.key_id, "tenant": self.tenant, "name": self.name,
            "scopes": sorted(self.scopes), "models": list(self.models),
            "rpm": self.limits.rpm, "tpm": self.limits.tpm, "monthly_tokens": self.limits.monthly_tokens,
            "max_streams": self.limits.max_streams, "data_class": self.data_class, "pii_policy": self.pii_policy,
            "created_at": self.created_at, "expires_at": self.expires_at, "revoked_at": self.revoked_at,
            "rotated_from": self.rotated_from, "state": self.state(now),
        }


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: KeyRecord
    key: str = field(repr=False)  # the full secret key: show once, never store or log


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        key_id=row.key_id, quota_id=row.quota_id, tenant=row.tenant, name=row.name,
        scopes=frozenset(row.scopes), models=tuple(row.models),
        limits=Limits(rpm=row.rpm, tpm=row.tpm, monthly_tokens=row.monthly_tokens, max_streams=row.max_streams),
        data_class=row.data_class, created_at=row.created_at, expires_at=row.expires_at,
        revoked_at=row.revoked_at, rotated_from=row.rotated_from, secret_hash=row.secret_hash, salt=row.salt,
        pii_policy=row.pii_policy,
    )


def _check_label(what: str, value: str) -> str:
    if not _LABEL_RE.fullmatch(value):
        raise InvalidKeySpec(f"{what} must be 1-128 characters: letters, digits, space and ._:@/+- "
                             f"(starting with a letter or digit)", param=what)
    return value


def _check_spec(tenant: str, name: str, scopes: Iterable[str], models: Iterable[str], limits: Limits,
                data_class: str | None) -> tuple[frozenset[str], tuple[str, ...]]:
    _check_label("tenant", tenant)
    _check_label("name", name)
    scope_set = frozenset(scopes)
    if not scope_set or not scope_set <= SCOPES:
        raise InvalidKeySpec(f"scopes must be a non-empty subset of {sorted(SCOPES)}", param="scopes")
    model_list = tuple(dict.fromkeys(m.strip() for m in models if m.strip()))
    if any(len(m) > 256 or not m.isprintable() for m in model_list):
        raise InvalidKeySpec("model names must be printable and at most 256 characters", param="models")
    for name_, value in (("rpm", limits.rpm), ("tpm", limits.tpm),
                         ("monthly_tokens", limits.monthly_tokens), ("max_streams", limits.max_streams)):
        if value is not None and value <= 0:
            raise InvalidKeySpec(f"{name_} must be a positive integer (omit it for no limit)", param=name_)
    if data_class is not None and data_class not in DATA_CLASSES:
        raise InvalidKeySpec(f"data_class must be one of {sorted(DATA_CLASSES)}", param="data_class")
    return scope_set, model_list


def parse_expires(text: str, now: float) -> float:
    """'30d', '12h', '90m', '2w', or an ISO date/time (UTC if no zone) -> Unix time."""
    text = text.strip()
    parts = _DURATION_RE.findall(text.lower())
    if parts and "".join(f"{n}{u}" for n, u in parts) == re.sub(r"\s+", "", text.lower()):
        return now + sum(int(n) * _UNIT_S[u] for n, u in parts)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidKeySpec("expires must be a duration like 30d / 12h or an ISO date", param="expires") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment.timestamp() <= now:
        raise InvalidKeySpec("expires is in the past", param="expires")
    return moment.timestamp()


class KeyStore:
    """Keys in the database. `tenant=` on get/revoke/rotate confines an operation to one tenant."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float]):
        self._engine = engine
        self._clock = clock

    def create(self, *, tenant: str, name: str, scopes: Iterable[str] = ("inference",),
               models: Iterable[str] = (), limits: Limits | None = None, expires_at: float | None = None,
               data_class: str | None = None, rotated_from: str | None = None,
               quota_id: str | None = None, pii_policy: str | None = None) -> CreatedKey:
        """`pii_policy`: "ENTITY=action,..." over the tenant's policy (checked, stored normalised)."""
        limits = limits or Limits()
        scope_set, model_list = _check_spec(tenant, name, scopes, models, limits, data_class)
        if pii_policy is not None:
            try:
                pii_policy = PiiPolicy.check_spec(pii_policy)
            except ValueError as exc:
                raise InvalidKeySpec(str(exc), param="pii_policy") from None
        key_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
        record = KeyRecord(
            key_id=key_id, quota_id=quota_id or key_id, tenant=tenant, name=name, scopes=scope_set,
            models=model_list, limits=limits, data_class=data_class, created_at=self._clock(),
            expires_at=expires_at, revoked_at=None, rotated_from=rotated_from,
            secret_hash=hash_secret(secret, salt), salt=salt, pii_policy=pii_policy,
        )
        with self._engine.begin() as conn:
            conn.execute(api_keys.insert().values(
                key_id=record.key_id, quota_id=record.quota_id, tenant=tenant, name=name,
                secret_hash=record.secret_hash, salt=salt, scopes=sorted(scope_set), models=list(model_list),
                rpm=limits.rpm, tpm=limits.tpm, monthly_tokens=limits.monthly_tokens,
                max_streams=limits.max_streams, data_class=data_class, created_at=record.created_at,
                expires_at=expires_at, revoked_at=None, rotated_from=rotated_from, pii_policy=pii_policy,
            ))
        return CreatedKey(record=record, key=f"{KEY_PREFIX}-{key_id}-{secret}")

    def get(self, key_id: str, *, tenant: str | None = None) -> KeyRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None or (tenant is not None and row.tenant != tenant):
            return None
        return _record(row)

    def list(self, *, tenant: str | None = None, include_inactive: bool = False) -> list[KeyRecord]:
        query = select(api_keys).order_by(api_keys.c.tenant, api_keys.c.created_at)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        with self._engine.connect() as conn:
            records = [_record(row) for row in conn.execute(query)]
        now = self._clock()
        return records if include_inactive else [r for r in records if r.state(now) == "active"]

    def revoke(self, key_id: str, *, tenant: str | None = None, at: float | None = None) -> KeyRecord:
        record = self._require(key_id, tenant)
        when = self._clock() if at is None else at
        if record.revoked_at is not None and record.revoked_at <= when:
            return record
        with self._engine.begin() as conn:
            conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=when))
        return replace(record, revoked_at=when)

    def rotate(self, key_id: str, *, tenant: str | None = None, grace_s: float = 0.0) -> CreatedKey:
        """Issue a new key with the same grants and counters; the old one stops after `grace_s`."""
        old = self._require(key_id, tenant)
        if old.state(self._clock()) != "active":
            raise InvalidKeySpec(f"key {key_id} is {old.state(self._clock())}; only an active key can be rotated")
        created = self.create(tenant=old.tenant, name=old.name, scopes=old.scopes, models=old.models,
                              limits=old.limits, expires_at=old.expires_at, data_class=old.data_class,
                              rotated_from=old.key_id, quota_id=old.quota_id, pii_policy=old.pii_policy)
        self.revoke(key_id, at=self._clock() + max(0.0, grace_s))
        return created

    def _require(self, key_id: str, tenant: str | None) -> KeyRecord:
        record = self.get(key_id, tenant=tenant)
        if record is None:
            raise KeyNotFound(f"no key with id {key_id!r}", param="key_id")
        return record
