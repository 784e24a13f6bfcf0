from __future__ import annotations

import pytest

from deeplocal.models.compare import compare, render_markdown
from deeplocal.models.evaluate import EvalReport, windows


def report(model: str, *, size: int, rss: int, ppl: float, acc: float, tps: float, eval_set: str = "s") -> EvalReport:
    return EvalReport(model=model, quantization=model.upper(), file_bytes=size, rss_bytes=rss,
                      kv_bytes_per_token=100, perplexity={"en": ppl, "zh": ppl * 2}, ppl_tokens={"en": 9, "zh": 9},
                      accuracy=acc, accuracy_items=20, prefill_tps=2 * tps, decode_tps=tps, n_ctx=512,
                      n_threads=1, eval_set=eval_set, seconds=1.0)


def test_compare_against_the_first() -> None:
    rows = compare([report("f16", size=1000, rss=1200, ppl=10.0, acc=0.5, tps=10.0),
                    report("q4", size=300, rss=480, ppl=10.5, acc=0.45, tps=25.0)])
    base, q4 = rows
    assert base.size_reduction_pct == 0 and base.decode_speedup == 1.0
    assert q4.size_reduction_pct == pytest.approx(70.0)
    assert q4.memory_reduction_pct == pytest.approx(60.0)
    assert q4.ppl_change_pct == {"en": pytest.approx(5.0), "zh": pytest.approx(5.0)}
    assert q4.accuracy_retained_pct == pytest.approx(90.0)
    assert q4.decode_speedup == pytest.approx(2.5) and q4.prefill_speedup == pytest.approx(2.5)
    table = render_markdown(rows)
    assert "| q4 | Q4 | 0.0 | 70.0 | 0 | 60.0 | 10.500 | 21.000 | +5.00 | +5.00 | 45.0 | 90.0 | 25.0 | 2.50x |" in table


def test_compare_refuses_mixed_eval_sets() -> None:
    with pytest.raises(ValueError, match="different evaluation sets"):
        compare([report("a", size=1, rss=1, ppl=1, acc=1, tps=1, eval_set="x"),
                 report("b", size=1, rss=1, ppl=1, acc=1, tps=1, eval_set="y")])


def test_windows_score_every_token_once_with_context() -> None:
    for n, ctx in [(1000, 512), (512, 512), (100, 512), (1385, 512), (2000, 256)]:
        spans = windows(n, ctx)
        scored = [i for _, first, end in spans for i in range(first, end)]
        assert scored == list(range(min(ctx, n) // 2, n))
        assert all(end - start <= ctx and first - start >= min(ctx, n) // 2 for start, first, end in spans)
