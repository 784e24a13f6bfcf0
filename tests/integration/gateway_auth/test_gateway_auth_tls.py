"""TLS and mutual TLS on a real uvicorn server, with certificates made in the test."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, issuer_key, issuer_name, *, ca: bool, usage=None, san=None):  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name or _name(subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, key, cert) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


@pytest.fixture
def pki(tmp_path):
    ca_key, ca_cert = _issue("deeplocal test CA", None, None, ca=True)
    ca_path, _ = _write(tmp_path / "ca", ca_key, ca_cert)
    server = _issue("127.0.0.1", ca_key, ca_cert.subject, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH,
                    san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = _issue("client-1", ca_key, ca_cert.subject, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return {"ca": ca_path, "server": _write(tmp_path / "server", *server),
            "client": _write(tmp_path / "client", *client)}


def _context(ca: str, client: tuple[str, str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    if client:
        context.load_cert_chain(*client)
    return context


def test_tls_serves_https_and_the_key_is_usable(make_server, pki):
    cert, key = pki["server"]
    live = make_server(tls_cert=cert, tls_key=key)
    api_key = live.gateway.keys.create(tenant="acme", name="bot").key
    assert live.url.startswith("https://")
    with httpx.Client(base_url=live.url, verify=_context(pki["ca"])) as client:
        assert client.get("/v1/models", headers={"Authorization": f"Bearer {api_key}"}).status_code == 200
    with pytest.raises(httpx.ConnectError):  # a client that does not trust our CA
        httpx.get(f"{live.url}/v1/models", verify=ssl.create_default_context())
    with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP to the TLS port
        httpx.get(f"http://127.0.0.1:{live.port}/v1/models")


def test_mtls_requires_a_client_certificate_from_the_ca(make_server, pki):
    cert, key = pki["server"]
    live = make_server(host="127.0.0.1", tls_cert=cert, tls_key=key, tls_client_ca=pki["ca"])
    api_key = live.gateway.keys.create(tenant="acme", name="bot").key
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=live.url, verify=_context(pki["ca"], pki["client"])) as client:
        assert client.get("/v1/models", headers=headers).status_code == 200
    with (pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
          httpx.Client(base_url=live.url, verify=_context(pki["ca"])) as client):
        client.get("/v1/models", headers=headers)
