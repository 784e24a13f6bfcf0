"""The usage ledger's read side: records and totals with filters."""

from __future__ import annotations

from deeplocal.gateway.ledger import Ledger, UsageRecord, append
from deeplocal.store.db import make_engine, write_transaction
from deeplocal.store.migrations import migrate


def test_records_and_totals_filter_by_time_tenant_and_key(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    rows = [(100.0, "k1", "acme", "m1", "local", 10, 5, "200"), (200.0, "k1", "acme", "m1", "local", 20, 7, "499"),
            (300.0, "k2", "globex", "m1", "deepseek", 30, 9, "200"), (400.0, "k1", "acme", "m2", "local", 1, -3, "500")]
    with write_transaction(engine) as conn:
        for ts, key, tenant, model, upstream, p, c, status in rows:
            append(conn, UsageRecord(ts=ts, key_id=key, tenant=tenant, model=model, upstream=upstream,
                                     prompt_tokens=p, completion_tokens=c, status=status))
    ledger = Ledger(engine)
    assert [r.ts for r in ledger.records()] == [400.0, 300.0, 200.0, 100.0]
    assert [r.ts for r in ledger.records(since=200, until=400, tenant="acme")] == [200.0]
    assert [r.status for r in ledger.records(key_id="k2")] == ["200"]
    assert ledger.records(key_id="k1", limit=1)[0].completion_tokens == 0  # negative counts clamp to 0
    totals = {(t.tenant, t.model, t.upstream): (t.requests, t.prompt_tokens, t.completion_tokens)
              for t in ledger.totals(since=150)}
    assert totals == {("acme", "m1", "local"): (1, 20, 7), ("globex", "m1", "deepseek"): (1, 30, 9),
                      ("acme", "m2", "local"): (1, 1, 0)}
    assert [t.tenant for t in ledger.totals(tenant="globex")] == ["globex"]
    engine.dispose()
