"""The gateway screens the arguments of earlier tool calls too, not only message contents."""

from __future__ import annotations

import json

import pytest

from deeplocal.engine.types import GenerationRequest, Message
from deeplocal.gateway.audit.config import AuditSettings
from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.gateway.principal import Principal
from deeplocal.gateway.privacy import PrivacyGuard

CALL = {"id": "c1", "type": "function",
        "function": {"name": "send_mail", "arguments": json.dumps({"to": "zhang.san@example.com"})}}
REQ = GenerationRequest(request_id="r", model="m", messages=(
    Message("user", "Mail the report."),
    Message("assistant", "", tool_calls=(CALL, {"id": "c2", "type": "function", "function": {"name": "noop"}})),
    Message("tool", "sent", tool_call_id="c1"),
))


def _guard(tmp_path, **pii) -> PrivacyGuard:
    return PrivacyGuard(PiiSettings(**pii), AuditSettings(enabled=False), data_dir=tmp_path)


def _principal(pii_policy: str | None = None) -> Principal:
    return Principal(key_id="k", tenant="t", name="n", scopes=frozenset({"inference"}), pii_policy=pii_policy)


def test_pii_in_tool_call_arguments_is_redacted_blocked_and_classified(tmp_path):
    screened = _guard(tmp_path, policy={"EMAIL_ADDRESS": "redact"}).screen(REQ, principal=_principal(), header=None)
    sent = screened.request.messages[1].tool_calls
    assert "zhang.san@example.com" not in json.dumps(sent) and "<EMAIL_ADDRESS_1>" in sent[0]["function"]["arguments"]
    assert sent[1] == REQ.messages[1].tool_calls[1]   # a call without arguments is left as it is
    assert screened.data_class == "restricted" and screened.finding_types == ("EMAIL_ADDRESS",)
    with pytest.raises(Exception) as refused:
        _guard(tmp_path).screen(REQ, principal=_principal("EMAIL_ADDRESS=block"), header=None)
    assert getattr(refused.value, "status_code", None) == 400
