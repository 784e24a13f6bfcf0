"""Exposure rules: loopback default, no auth off the loopback, TLS / mTLS / CORS checks."""

from __future__ import annotations

import ssl

import pytest

from deeplocal.config import ServerSettings
from deeplocal.gateway.transport import (
    ExposureError,
    allowed_hosts,
    check_exposure,
    cors_options,
    exposure_findings,
    is_loopback,
    uvicorn_kwargs,
)


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False), ("", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_defaults_bind_loopback_and_start_without_auth():
    server = ServerSettings()
    assert server.host == "127.0.0.1"
    levels = [f.level for f in check_exposure(server, auth_enabled=False)]
    assert "error" not in levels


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7"])
def test_public_bind_without_auth_refuses_to_start(host):
    with pytest.raises(ExposureError, match="not a loopback address and API-key auth is off"):
        check_exposure(ServerSettings(host=host), auth_enabled=False)


def test_public_bind_with_auth_starts_but_warns_about_plain_http():
    findings = check_exposure(ServerSettings(host="0.0.0.0"), auth_enabled=True)
    warnings = [f.message for f in findings if f.level == "warning"]
    assert any("plain HTTP" in w for w in warnings)


def test_tls_pairs_files_and_mtls_need_tls(tmp_path):
    cert, key, ca = (tmp_path / n for n in ("c.pem", "k.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("x")
    with pytest.raises(ExposureError, match="both --tls-cert and --tls-key"):
        check_exposure(ServerSettings(tls_cert=str(cert)), auth_enabled=True)
    with pytest.raises(ExposureError, match="not found"):
        check_exposure(ServerSettings(tls_cert=str(cert), tls_key=str(tmp_path / "nope.pem")), auth_enabled=True)
    with pytest.raises(ExposureError, match="needs TLS"):
        check_exposure(ServerSettings(tls_client_ca=str(ca)), auth_enabled=True)
    ok = ServerSettings(host="0.0.0.0", tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(ca))
    findings = check_exposure(ok, auth_enabled=True)
    assert not [f for f in findings if f.level == "warning"]
    kwargs = uvicorn_kwargs(ok)
    assert kwargs["ssl_certfile"] == str(cert) and kwargs["ssl_keyfile"] == str(key)
    assert kwargs["ssl_ca_certs"] == str(ca) and kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED


def test_plain_uvicorn_kwargs_have_no_tls():
    kwargs = uvicorn_kwargs(ServerSettings())
    assert not any(k.startswith("ssl_") for k in kwargs) and kwargs["h11_max_incomplete_event_size"] == 16384


def test_cors_is_closed_by_default_and_a_wildcard_needs_auth():
    assert cors_options(ServerSettings()) is None
    with pytest.raises(ExposureError, match="CORS"):
        check_exposure(ServerSettings(cors_origins=("*",)), auth_enabled=False)
    options = cors_options(ServerSettings(cors_origins=("https://app.example",)))
    assert options["allow_origins"] == ["https://app.example"] and options["allow_credentials"] is False
    assert "x-ratelimit-remaining-tokens" in options["expose_headers"]


def test_host_allowlist_only_when_auth_is_off_on_loopback():
    assert "localhost" in allowed_hosts(ServerSettings(), auth_enabled=False)
    assert allowed_hosts(ServerSettings(), auth_enabled=True) is None
    assert allowed_hosts(ServerSettings(host="0.0.0.0"), auth_enabled=True) is None


def test_every_error_is_reported_at_once():
    findings = exposure_findings(ServerSettings(host="0.0.0.0", cors_origins=("*",)), auth_enabled=False)
    assert len([f for f in findings if f.level == "error"]) == 2
