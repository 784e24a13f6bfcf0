"""The optional adapter into Presidio's AnalyzerEngine (runs where the pii-presidio extra is installed)."""

from __future__ import annotations

import pytest

pytest.importorskip("presidio_analyzer")

from deeplocal.gateway.pii import default_recognizers
from deeplocal.gateway.pii.presidio_adapter import build_analyzer


def test_chinese_recognizers_run_inside_presidio() -> None:
    analyzer = build_analyzer(default_recognizers(), languages=("zh", "en"))
    text = "联系人王芳，身份证11010519491231002X，手机13912345678。"
    results = analyzer.analyze(text=text, language="zh")
    found = {(r.entity_type, text[r.start:r.end]) for r in results}
    assert ("CN_ID", "11010519491231002X") in found
    assert ("CN_MOBILE", "13912345678") in found
    assert ("PERSON", "王芳") in found
