"""No secret (API key, bearer token, PEM private key) reaches the logs."""

from __future__ import annotations

import logging

import pytest

from deeplocal.gateway.auth import AuthenticationError, SecretLogFilter
from deeplocal.gateway.keys import parse_key
from deeplocal.redaction import redact

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


def test_redact_covers_keys_bearer_tokens_and_pem():
    key = "dl-0123456789abcdef-" + "S" * 43
    text = redact(f"got {key}; headers={{'authorization': 'Bearer tok-123'}} cert={PEM} up=sk-{'U' * 20}")
    assert "S" * 10 not in text and "dl-0123456789abcdef-[REDACTED]" in text   # the key id stays
    assert "tok-123" not in text and "MIIEvQ" not in text and "U" * 8 not in text
    assert "Bearer [REDACTED]" in text and "[private key redacted]" in text
    assert redact("sk-short and Bearer-less text stay") == "sk-short and Bearer-less text stay"


def test_filter_rewrites_formatted_records(caplog):
    logger = logging.getLogger("deeplocal.test.redact")
    handler_filter = SecretLogFilter()
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="deeplocal.test.redact"):
            logger.info("auth header %s", "Bearer dl-0123456789abcdef-" + "Z" * 43)
    finally:
        logger.removeFilter(handler_filter)
    assert "Z" * 8 not in caplog.text and "Bearer [REDACTED]" in caplog.text


async def test_a_full_flow_logs_no_secret(gateway, caplog):
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # even with SQL echo on
        try:
            created = gateway.keys.create(tenant="acme", name="bot")
            principal = await gateway.authenticate(f"Bearer {created.key}")
            reservation = await gateway.reserve(principal, model="m", prompt_tokens=1, max_tokens=1)
            await gateway.settle(reservation, prompt_tokens=1, completion_tokens=1, upstream="u", status="ok")
            with pytest.raises(AuthenticationError):
                await gateway.authenticate(f"Bearer {created.key[:-2]}xx")
            gateway.keys.revoke(created.record.key_id)
        finally:
            logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    secret = parse_key(created.key).secret
    assert caplog.records, "the flow should have logged something to check"
    assert secret not in caplog.text and created.key not in caplog.text


@pytest.mark.parametrize("text,secret", [
    ('Authorization: Bearer "tok123abc"', "tok123abc"),
    ('{"headers": "Bearer \\"tok123abc\\""}', "tok123abc"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ('{"authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
    ("x-api-key: abc123secret", "abc123secret"),
    ('{"api_key": "abc123secret"}', "abc123secret"),
])
def test_redact_quoted_basic_and_api_key_fields(text, secret):
    out = redact(text)
    assert secret not in out and "[REDACTED]" in out
    assert redact("Basic configuration is done") == "Basic configuration is done"
