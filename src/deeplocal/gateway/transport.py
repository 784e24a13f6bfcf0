"""Transport and exposure: where the server may listen, TLS / mTLS, CORS, and the checks `serve`
runs before it starts (and `doctor` reports). The request-level guard lives in guard.py.

Rules: bind loopback by default; a non-loopback bind without API-key auth refuses to start; TLS needs
both cert and key; client-certificate verification (mTLS) needs TLS; a CORS wildcard needs auth.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from typing import Any, Protocol

from deeplocal.errors import DeeplocalError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
EXPOSED_HEADERS = (
    "retry-after", "x-request-id", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)


class ServerLike(Protocol):
    """The fields of `deeplocal.config.ServerSettings` this module reads."""

    host: str
    port: int
    max_body_bytes: int
    request_timeout_s: float
    cors_origins: tuple[str, ...]
    tls_cert: str | None
    tls_key: str | None
    tls_client_ca: str | None


class ExposureError(DeeplocalError):
    """The server configuration would expose it unsafely; `serve` refuses to start."""

    status_code = 500
    error_type = "server_error"
    code = "unsafe_exposure"


@dataclass(frozen=True, slots=True)
class Finding:
    level: str    # "error" (serve refuses), "warning", "ok"
    message: str


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def _file_problem(what: str, path: str) -> str | None:
    if not os.path.isfile(path):
        return f"{what} file not found: {path}"
    if not os.access(path, os.R_OK):
        return f"{what} file is not readable: {path}"
    return None


def exposure_findings(server: ServerLike, *, auth_enabled: bool) -> list[Finding]:
    """Everything `serve` and `doctor` say about exposure. Any "error" means do not start."""
    out: list[Finding] = []
    loopback = is_loopback(server.host)
    tls = bool(server.tls_cert or server.tls_key)
    if not loopback and not auth_enabled:
        out.append(Finding("error", (
            f"refusing to listen on {server.host}: it is not a loopback address and API-key auth is off. "
            "Enable auth (gateway.auth: true, then `deeplocal keys create`) or bind 127.0.0.1.")))
    if bool(server.tls_cert) != bool(server.tls_key):
        out.append(Finding("error", "TLS needs both --tls-cert and --tls-key."))
    for what, path in (("TLS certificate", server.tls_cert), ("TLS key", server.tls_key),
                       ("TLS client CA", server.tls_client_ca)):
        problem = _file_problem(what, path) if path else None
        if problem:
            out.append(Finding("error", problem))
    if server.tls_client_ca and not tls:
        out.append(Finding("error", "client-certificate verification (--tls-client-ca) needs TLS."))
    if "*" in server.cors_origins and not auth_enabled:
        out.append(Finding("error", "CORS origin '*' lets any web page call this server; enable auth first."))
    if not loopback and not tls:
        out.append(Finding("warning", (
            f"plain HTTP on {server.host}: keys and prompts cross the network unencrypted. "
            "Use --tls-cert/--tls-key or a TLS-terminating proxy.")))
    if loopback and not auth_enabled:
        out.append(Finding("ok", "listening on loopback only; auth is off (every local user can call it)."))
    if tls:
        out.append(Finding("ok", "TLS on" + (" with client-certificate verification." if server.tls_client_ca
                                             else "; clients are not asked for certificates.")))
    return out


def check_exposure(server: ServerLike, *, auth_enabled: bool) -> list[Finding]:
    """Raise ExposureError on any error finding; return the rest (warnings to log)."""
    findings = exposure_findings(server, auth_enabled=auth_enabled)
    errors = [f.message for f in findings if f.level == "error"]
    if errors:
        raise ExposureError("; ".join(errors))
    return findings


def uvicorn_kwargs(server: ServerLike, *, max_header_bytes: int = 16 * 1024) -> dict[str, Any]:
    """TLS / mTLS and header-size arguments for `uvicorn.Config`. The key path is passed, never read."""
    kwargs: dict[str, Any] = {"h11_max_incomplete_event_size": max_header_bytes, "server_header": False}
    if server.tls_cert and server.tls_key:
        kwargs.update(ssl_certfile=server.tls_cert, ssl_keyfile=server.tls_key)
        if server.tls_client_ca:
            kwargs.update(ssl_ca_certs=server.tls_client_ca, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return kwargs


def cors_options(server: ServerLike) -> dict[str, Any] | None:
    """Keyword arguments for Starlette's CORSMiddleware, or None: CORS is closed unless origins are set."""
    if not server.cors_origins:
        return None
    return {
        "allow_origins": list(server.cors_origins),
        "allow_methods": ["GET", "POST", "DELETE", "OPTIONS"],
        "allow_headers": ["authorization", "content-type", "x-request-id", "openai-organization",
                          "openai-project"],
        "allow_credentials": False,
        "expose_headers": list(EXPOSED_HEADERS),
        "max_age": 600,
    }


def allowed_hosts(server: ServerLike, *, auth_enabled: bool) -> tuple[str, ...] | None:
    """Host headers to accept. With auth off on loopback, only loopback names (blocks DNS rebinding from
    a browser); otherwise None (any host: the key is the protection)."""
    if auth_enabled or not is_loopback(server.host):
        return None
    return ("localhost", "127.0.0.1", "[::1]", "::1")
