"""The gateway's screen hands its findings to the remote pseudonymizer: a text that leaves as it was
scanned is not scanned again."""

from __future__ import annotations

from deeplocal.engine.types import GenerationRequest, Message
from deeplocal.gateway.audit.config import AuditSettings
from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.gateway.principal import Principal
from deeplocal.gateway.privacy import PrivacyGuard

TEXT = "Mail zhang.san@example.com, 手机号是13812345678。"


def _principal(tenant: str) -> Principal:
    return Principal(key_id="k", tenant=tenant, name="n", scopes=frozenset({"inference"}))


def test_an_internal_request_is_not_scanned_again_for_the_remote(tmp_path, monkeypatch):
    from deeplocal.gateway.pii.analyzer import PiiScanner
    from deeplocal.routing.stream import pseudonymize_request

    guard = PrivacyGuard(PiiSettings(), AuditSettings(enabled=False), data_dir=tmp_path)
    req = GenerationRequest(request_id="r", model="m", messages=(Message("user", TEXT),))
    screened = guard.screen(req, principal=_principal("shop"), header="internal")
    scans = []
    real_scan = PiiScanner.scan
    monkeypatch.setattr(PiiScanner, "scan", lambda self, text: scans.append(text) or real_scan(self, text))
    out = pseudonymize_request(screened.request, screened.pseudonymizer_factory())
    sent = out.messages[0].content
    assert scans == [] and "zhang.san@example.com" not in sent and "13812345678" not in sent
    # A policy that redacted first changes the text: that one is scanned again.
    redacting = PrivacyGuard(PiiSettings(policy={"EMAIL_ADDRESS": "redact"}), AuditSettings(enabled=False),
                             data_dir=tmp_path)
    screened = redacting.screen(req, principal=_principal("shop"), header="internal")
    scans.clear()
    pseudonymize_request(screened.request, screened.pseudonymizer_factory())
    assert scans == ["Mail <EMAIL_ADDRESS_1>, 手机号是13812345678。"]
