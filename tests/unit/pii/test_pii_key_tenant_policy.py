"""PII policy per key and per tenant over the global one (global < tenant < key), and key specs checked."""

from __future__ import annotations

import pytest

from deeplocal.engine.types import GenerationRequest, Message
from deeplocal.gateway.audit.config import AuditSettings
from deeplocal.gateway.keys import InvalidKeySpec, KeyStore
from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.gateway.pii.policy import PiiPolicy
from deeplocal.gateway.principal import Principal
from deeplocal.gateway.privacy import PrivacyGuard
from deeplocal.store.db import make_engine
from deeplocal.store.migrations import migrate

TEXT = "Mail zhang.san@example.com, 手机号是13812345678。"


def _principal(tenant: str, pii_policy: str | None = None) -> Principal:
    return Principal(key_id="k", tenant=tenant, name="n", scopes=frozenset({"inference"}), pii_policy=pii_policy)


def _screen(guard: PrivacyGuard, principal: Principal, text: str = TEXT) -> str:
    req = GenerationRequest(request_id="r", model="m", messages=(Message("user", text),))
    return guard.screen(req, principal=principal, header="public").request.messages[0].content


def test_global_then_tenant_then_key(tmp_path):
    pii = PiiSettings(policy={"EMAIL_ADDRESS": "redact"},
                      tenants={"bank": {"CN_MOBILE": "redact"}, "lab": {"*": "block"}})
    guard = PrivacyGuard(pii, AuditSettings(enabled=False), data_dir=tmp_path)
    plain = _screen(guard, _principal("shop"))
    assert "zhang.san@example.com" not in plain and "13812345678" in plain          # global: email only
    bank = _screen(guard, _principal("bank"))
    assert "zhang.san@example.com" not in bank and "13812345678" not in bank        # tenant adds phone
    own = _screen(guard, _principal("bank", "EMAIL_ADDRESS=allow"))
    assert "zhang.san@example.com" in own and "13812345678" not in own              # key over tenant
    for text in (TEXT, "Mail zhang.san@example.com", "ID 11010519491231002X"):  # "*": block, whatever
        with pytest.raises(Exception) as refused:                               # a lower layer said
            _screen(guard, _principal("lab"), text)
        assert getattr(refused.value, "status_code", None) == 400
    allowed = _screen(guard, _principal("lab", "*=allow"), "ID 11010519491231002X and zhang.san@example.com")
    assert "11010519491231002X" in allowed and "zhang.san@example.com" in allowed   # the key's "*" over all


def test_key_specs_are_checked_and_normalised(tmp_path):
    assert PiiPolicy.check_spec(" EMAIL_ADDRESS = Redact , CN_ID=block") == "CN_ID=block,EMAIL_ADDRESS=redact"
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    store = KeyStore(engine, clock=lambda: 1000.0)
    for bad in ("EMAIL_ADDRESS", "NOT_A_TYPE=block", "EMAIL_ADDRESS=shred", ""):
        with pytest.raises(InvalidKeySpec) as info:
            store.create(tenant="t", name="n", pii_policy=bad)
        assert info.value.param == "pii_policy"
    created = store.create(tenant="t", name="n", pii_policy="CN_ID=block,*=redact")
    assert created.record.public_dict(1000.0)["pii_policy"] == "*=redact,CN_ID=block"
    rotated = store.rotate(created.record.key_id)
    assert rotated.record.pii_policy == "*=redact,CN_ID=block"
    engine.dispose()


def test_unknown_entity_in_a_tenant_policy_is_a_config_error():
    with pytest.raises(ValueError):
        PiiSettings(tenants={"t": {"NOT_A_TYPE": "block"}})

