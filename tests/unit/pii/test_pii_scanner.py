"""Scanner behaviour: spans index the original text, entity filters, speed and no catastrophic regexes."""

from __future__ import annotations

import statistics
import time

import pytest

from deeplocal.gateway.pii import PiiScanner
from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.gateway.pii.types import EntityRecognizer, Pattern


def test_fullwidth_digits_are_found_and_spans_point_into_the_original() -> None:
    text = "身份证：１１０１０５１９４９１２３１００２Ｘ，谢谢"
    [f] = PiiScanner().scan(text)
    assert f.entity_type == "CN_ID" and text[f.start:f.end] == "１１０１０５１９４９１２３１００２Ｘ"


def test_ids_glued_to_chinese_characters() -> None:
    found = PiiScanner().scan("号码11010519491231002X已注销，手机13800138000停机")
    assert [f.entity_type for f in found] == ["CN_ID", "CN_MOBILE"]


def test_longer_digit_runs_are_not_cut_into_ids() -> None:
    assert PiiScanner().scan("流水11010519491231002X1 与 913800138000") == []


def test_entity_filter_and_settings() -> None:
    s = PiiScanner.from_settings(PiiSettings(entities=("EMAIL_ADDRESS",), names=False))
    assert s.entities == {"EMAIL_ADDRESS"}
    assert [f.entity_type for f in s.scan("王芳 a@b.io 13800138000")] == ["EMAIL_ADDRESS"]
    with pytest.raises(ValueError):
        PiiSettings(entities=("NOPE",))


def test_presidio_shaped_recognizer_interface() -> None:
    rec = EntityRecognizer("EMPLOYEE_ID", (Pattern("emp", r"EMP-[0-9]{6}", 0.9),))
    assert rec.supported_entities == ("EMPLOYEE_ID",)
    assert [(f.start, f.end) for f in rec.analyze("id EMP-123456.")] == [(3, 13)]
    assert rec.analyze("id EMP-123456.", entities=["PERSON"]) == []
    s = PiiScanner([rec], entities=["EMPLOYEE_ID"])
    assert [f.entity_type for f in s.scan("EMP-000001")] == ["EMPLOYEE_ID"]


@pytest.mark.parametrize("text", [
    "1 " * 5000,                          # digit anchors everywhere
    "a" * 10000 + "@",                    # e-mail local part without end
    "1-" * 4000 + "x",
    "路" * 3000 + "1号",
    "Mr " * 3000,
    ("A" * 30 + " ") * 300,
    "我叫" * 3000,
])
def test_no_catastrophic_backtracking(text: str) -> None:
    start = time.perf_counter()
    PiiScanner().scan(text)
    assert time.perf_counter() - start < 1.0


def test_scan_of_2kb_prompt_is_fast() -> None:
    """A loose bound that catches a regex gone quadratic; bench/pii_audit.py measures for real."""
    para = ("请帮我总结一下这份季度报告，本季度营收同比增长百分之十二。联系人王芳，手机13912345678。"
            "Please summarize the meeting notes; contact Mr. Smith at smith@example.com or 10.1.2.3. ")
    text = (para * 20)[:2048]
    scanner = PiiScanner()
    times = []
    for _ in range(30):
        start = time.perf_counter()
        scanner.scan(text)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.005
