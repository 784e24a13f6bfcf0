"""Validators against published examples and their one-character mutations."""

from __future__ import annotations

import pytest

from deeplocal.gateway.pii import checksums as c


def test_gb11643_reference_number_and_every_wrong_check_character() -> None:
    assert c.cn_id_valid("11010519491231002X")          # the standard's worked example
    assert c.cn_id_valid("11010519491231002x")
    for wrong in "0123456789":
        assert not c.cn_id_valid("110105194912310021"[:17] + wrong)


@pytest.mark.parametrize("value", [
    "99010519491231002X",   # no such province
    "11010519491331002X",   # month 13
    "11010518000230002X",   # 1800-02-30
    "1101051949123100",     # too short
])
def test_cn_id_structure(value: str) -> None:
    assert not c.cn_id_valid(value)


def test_luhn() -> None:
    assert c.luhn_valid("4111 1111 1111 1111")
    assert not c.luhn_valid("4111 1111 1111 1112")
    assert c.card_brand_valid("378282246310005")         # Amex test number
    assert c.card_brand_valid("5555555555554444")        # Mastercard test number
    assert not c.card_brand_valid("6222021234567890128")  # UnionPay is CN_BANK_CARD, not a brand card


def test_iban() -> None:
    assert c.iban_valid("GB82 WEST 1234 5698 7654 32")
    assert c.iban_valid("DE89370400440532013000")
    assert not c.iban_valid("GB82 WEST 1234 5698 7654 33")
    assert not c.iban_valid("DE8937040044053201300")     # one digit short for DE


def test_ssn_rules() -> None:
    assert c.us_ssn_valid("078-05-1121")
    for bad in ("000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000", "123-45-6789"):
        assert not c.us_ssn_valid(bad), bad
