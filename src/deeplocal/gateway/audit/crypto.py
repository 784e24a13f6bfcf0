"""The audit key: loading it, deriving sub-keys, encrypting bodies, keyed hashes. Never logged."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from deeplocal.errors import DeeplocalError
from deeplocal.gateway.audit.config import KEY_ENV

KEY_BYTES = 32


class AuditKeyError(DeeplocalError):
    """The audit key is missing, malformed or not the one the log was written with."""

    code = "audit_key_error"


def generate_key() -> str:
    """A fresh key, base64, for DEEPLOCAL_AUDIT_KEY or a key file."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _decode(raw: bytes, origin: str) -> bytes:
    if len(raw) == KEY_BYTES:
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuditKeyError(f"the audit key from {origin} is not base64") from None
    if len(key) != KEY_BYTES:
        raise AuditKeyError(f"the audit key from {origin} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def load_key(key_file: Path | str | None = None, *, env: dict[str, str] | None = None) -> bytes | None:
    """The master key from DEEPLOCAL_AUDIT_KEY (base64) or else `key_file`; None when neither is set."""
    environ = os.environ if env is None else env
    if environ.get(KEY_ENV):
        return _decode(environ[KEY_ENV].encode(), f"${KEY_ENV}")
    if key_file is not None:
        path = Path(key_file).expanduser()
        try:
            return _decode(path.read_bytes(), str(path))
        except OSError as exc:
            raise AuditKeyError(f"cannot read the audit key file {path}: {exc.strerror}") from None
    return None


def _derive(master: bytes, label: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=b"deeplocal-audit-v1 " + label).derive(master)


@dataclass(frozen=True, slots=True)
class AuditKeys:
    """Sub-keys of one master key: body encryption, chain/marker MAC, and a public key id."""

    enc: bytes = field(repr=False)
    mac: bytes = field(repr=False)
    kid: str

    @classmethod
    def from_master(cls, master: bytes) -> AuditKeys:
        if len(master) != KEY_BYTES:
            raise AuditKeyError(f"the audit key must be {KEY_BYTES} bytes")
        return cls(enc=_derive(master, b"enc"), mac=_derive(master, b"mac"),
                   kid=_derive(master, b"kid", 8).hex())

    def sign(self, data: bytes) -> str:
        return hmac.new(self.mac, data, hashlib.sha256).hexdigest()

    def encrypt(self, plaintext: bytes, aad: bytes) -> dict[str, str]:
        nonce = secrets.token_bytes(12)
        ct = AESGCM(self.enc).encrypt(nonce, plaintext, aad)
        return {"n": base64.b64encode(nonce).decode(), "c": base64.b64encode(ct).decode()}

    def decrypt(self, body: dict[str, str], aad: bytes) -> bytes:
        return AESGCM(self.enc).decrypt(base64.b64decode(body["n"]), base64.b64decode(body["c"]), aad)


def body_commitment(body: dict[str, str]) -> str:
    """What the chain hashes for a body: the ciphertext's digest, so erasing it keeps the chain."""
    return hashlib.sha256((body["n"] + "." + body["c"]).encode()).hexdigest()
