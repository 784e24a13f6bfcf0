"""Policy per entity type: redact with typed placeholders, block with a 400 that names types only."""

from __future__ import annotations

import pytest

from deeplocal.gateway.pii import Action, PiiBlocked, PiiPolicy, PiiScanner, apply_policy, classify
from deeplocal.gateway.pii.data_class import InvalidDataClass
from deeplocal.gateway.pii.policy import UnknownEntityType

CN_ID = "11010519491231002X"
ZH = f"我叫张伟，身份证号{CN_ID}，手机13800138000。"
EN = "My name is John Smith, card 4111 1111 1111 1111, mail john@example.com."


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner()


def test_default_policy_redacts_high_risk_ids_and_allows_contact_data(scanner: PiiScanner) -> None:
    texts = [ZH, EN]
    out = apply_policy(texts, scanner.scan_many(texts), PiiPolicy())
    assert out.texts[0] == "我叫张伟，身份证号<CN_ID_1>，手机13800138000。"
    assert out.texts[1] == "My name is John Smith, card <CREDIT_CARD_1>, mail john@example.com."
    assert out.finding_types == ("CN_ID", "CN_MOBILE", "CREDIT_CARD", "EMAIL_ADDRESS", "PERSON")
    assert dict(out.redacted) == {"CN_ID": 1, "CREDIT_CARD": 1}
    assert not out.is_blocked
    out.raise_if_blocked()


def test_redact_everything_numbers_placeholders_per_type_across_messages(scanner: PiiScanner) -> None:
    policy = PiiPolicy.parse("*=redact")
    texts = [ZH, f"再确认一次：{CN_ID}，备用手机13900139000。", EN]
    out = apply_policy(texts, scanner.scan_many(texts), policy)
    assert out.texts[0] == "我叫<PERSON_1>，身份证号<CN_ID_1>，手机<CN_MOBILE_1>。"
    assert out.texts[1] == "再确认一次：<CN_ID_1>，备用手机<CN_MOBILE_2>。"
    assert out.texts[2] == "My name is <PERSON_2>, card <CREDIT_CARD_1>, mail <EMAIL_ADDRESS_1>."
    for text in out.texts:
        assert CN_ID not in text and "13800138000" not in text and "John" not in text


def test_block_raises_400_naming_types_never_values(scanner: PiiScanner) -> None:
    policy = PiiPolicy.from_mapping({"CN_ID": "block", "CREDIT_CARD": "block"})
    out = apply_policy([ZH, EN], scanner.scan_many([ZH, EN]), policy)
    assert out.blocked == ("CN_ID", "CREDIT_CARD")
    with pytest.raises(PiiBlocked) as info:
        out.raise_if_blocked()
    err = info.value
    assert err.status_code == 400 and err.code == "pii_blocked"
    assert "CN_ID" in err.message and "CREDIT_CARD" in err.message
    assert CN_ID not in err.message and "4111" not in err.message
    assert CN_ID not in out.texts[0]  # blocked spans are redacted too, should anything log the texts


def test_allow_leaves_text_untouched(scanner: PiiScanner) -> None:
    policy = PiiPolicy.from_mapping({e: "allow" for e in ("CN_ID", "CREDIT_CARD")})
    out = apply_policy([ZH, EN], scanner.scan_many([ZH, EN]), policy)
    assert out.texts == (ZH, EN) and out.redacted == ()


def test_policy_parsing_layers_and_errors() -> None:
    base = PiiPolicy.parse("EMAIL_ADDRESS=redact")
    key = PiiPolicy.parse("CN_ID=block", base=base)
    assert key.action_for("CN_ID") is Action.BLOCK
    assert key.action_for("EMAIL_ADDRESS") is Action.REDACT
    assert key.action_for("US_SSN") is Action.REDACT       # built-in high-risk default survives
    assert key.action_for("PERSON") is Action.ALLOW
    assert key.to_dict()["*"] == "allow"
    with pytest.raises(UnknownEntityType):
        PiiPolicy.parse("NOT_A_TYPE=block")
    with pytest.raises(ValueError):
        PiiPolicy.parse("CN_ID=shred")
    with pytest.raises(ValueError):
        PiiPolicy.parse("CN_ID")
    hash(key)  # frozen and hashable: usable as a cache key per principal


def test_findings_never_carry_the_value(scanner: PiiScanner) -> None:
    findings = scanner.scan(ZH)
    assert findings
    assert CN_ID not in repr(findings) and "13800138000" not in repr(findings)


def test_classify() -> None:
    finding = PiiScanner().scan(ZH)
    assert classify(finding, header=None, principal_default=None) == "restricted"
    assert classify([], header=None, principal_default=None) == "internal"
    assert classify([], header="public", principal_default=None) == "public"
    assert classify([], header="Public", principal_default="internal") == "internal"   # cannot lower
    assert classify([], header="restricted", principal_default="public") == "restricted"
    assert classify([], header=None, principal_default="restricted") == "restricted"
    assert classify(finding, header="public", principal_default="public") == "restricted"
    with pytest.raises(InvalidDataClass) as info:
        classify([], header="secret", principal_default=None)
    assert info.value.status_code == 400
