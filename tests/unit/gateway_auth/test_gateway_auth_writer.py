"""The gateway's batching writer (group commit, deferred settlements, flush on close) and the
lone-request path that runs the transaction on the event loop, on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from deeplocal.gateway.config import GatewaySettings
from deeplocal.gateway.limits import RateLimited
from deeplocal.gateway.principal import Limits
from deeplocal.gateway.service import Gateway
from deeplocal.gateway.writer import NOT_NOW, BatchWriter, WriterClosed


class Recorder:
    """A run_batch that records its batches; ops that are exceptions come back as their result."""

    def __init__(self, gate: threading.Event | None = None):
        self.batches: list[list[object]] = []
        self.gate = gate

    def __call__(self, ops):
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append(list(ops))
        if any(op == "boom" for op in ops):
            raise RuntimeError("the whole batch failed")
        return [op if isinstance(op, Exception) else f"done:{op}" for op in ops]


async def test_queued_ops_share_one_batch_in_order_with_deferred_ones_first():
    gate = threading.Event()
    rec = Recorder(gate)
    writer = BatchWriter(rec, flush_s=10)
    try:
        first = writer.submit("a")         # the writer takes it and waits at the gate
        await asyncio.sleep(0.05)
        writer.defer("settle-1")
        later = [writer.submit(x) for x in ("b", "c")]
        gate.set()
        assert await first == "done:a"
        assert [await f for f in later] == ["done:b", "done:c"]
        assert rec.batches == [["a"], ["settle-1", "b", "c"]]
    finally:
        writer.close()


async def test_an_op_error_is_its_own_and_a_failed_batch_is_retried_op_by_op():
    rec = Recorder(threading.Event())
    writer = BatchWriter(rec, flush_s=10)
    try:
        futures = [writer.submit(x) for x in ("x", ValueError("refused"), "boom", "y")]
        rec.gate.set()
        assert await futures[0] == "done:x"
        with pytest.raises(ValueError, match="refused"):
            await futures[1]
        with pytest.raises(RuntimeError, match="whole batch"):
            await futures[2]
        assert await futures[3] == "done:y"
    finally:
        writer.close()


async def test_deferred_ops_are_written_within_flush_s_and_by_flush_and_close():
    rec = Recorder()
    writer = BatchWriter(rec, flush_s=0.05)
    writer.defer("s1")
    for _ in range(100):
        if rec.batches:
            break
        await asyncio.sleep(0.01)
    assert rec.batches == [["s1"]]
    slow = BatchWriter(Recorder(), flush_s=30)
    slow.defer("s2")
    assert slow.flush(timeout=5)
    slow.defer("s3")
    slow.close(timeout=5)
    assert slow._run_batch.batches == [["s2"], ["s3"]]
    with pytest.raises(WriterClosed):
        slow.defer("late")
    writer.close()


async def test_a_result_nobody_waits_for_goes_to_on_orphan():
    gate = threading.Event()
    orphans: list[object] = []
    writer = BatchWriter(Recorder(gate), flush_s=10)
    try:
        kept = writer.submit("lease", on_orphan=orphans.append)
        fut = writer.submit("grant", on_orphan=orphans.append)
        fut.cancel()
        gate.set()
        assert await kept == "done:lease"
        writer.flush(5)
        await asyncio.sleep(0.05)
        assert orphans == ["done:grant"]
    finally:
        writer.close()


async def test_run_here_runs_with_the_deferred_ops_only_when_the_writer_is_idle():
    rec = Recorder()
    writer = BatchWriter(rec, flush_s=30)
    try:
        writer.defer("settle")
        assert writer.run_here("admit", rec) == "done:admit"
        assert rec.batches == [["settle", "admit"]]

        def busy(ops):
            raise sqlite3.OperationalError("database is locked")
        writer.defer("settle-2")
        assert writer.run_here("admit-2", busy) is NOT_NOW
        assert writer.flush(5) and rec.batches[-1] == ["settle-2"]   # given back, not lost
    finally:
        writer.close()


@pytest.fixture
def gw(tmp_path: Path):
    gateway = Gateway(GatewaySettings(auth=True, settle_flush_s=5), f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield gateway
    gateway.close()


async def principal(gateway: Gateway, **limits):
    created = gateway.keys.create(tenant="acme", name="bot", limits=Limits(**limits))
    return await gateway.authenticate(f"Bearer {created.key}")


async def test_a_deferred_settlement_is_seen_by_the_next_admission_and_by_ledger_reads(gw):
    p = await principal(gw, max_streams=1, monthly_tokens=100)
    for _ in range(3):   # one stream at a time, back to back: each must see the previous one released
        held = await gw.reserve(p, model="m", prompt_tokens=10, max_tokens=20)
        await gw.settle(held, prompt_tokens=10, completion_tokens=5, upstream="u", status="200", wait=False)
    assert len(gw.ledger.records()) == 3
    last = await gw.reserve(p, model="m", prompt_tokens=10, max_tokens=20)
    assert gw.rate_limit_headers(last)["x-ratelimit-remaining-tokens-month"] == str(100 - 3 * 15 - 30)


async def test_concurrent_admissions_share_transactions_and_stay_exact(gw):
    p = await principal(gw, rpm=40)
    calls = []
    run_batch = gw._counters.run_batch

    def counting(ops):
        calls.append(len(ops))
        return run_batch(ops)
    gw._writer._run_batch = counting
    gw._open.add("someone-else")   # not a lone request: everything goes through the writer thread
    results = await asyncio.gather(*(gw.reserve(p, model="m", prompt_tokens=1, max_tokens=1)
                                     for _ in range(60)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 40
    assert all(isinstance(r, RateLimited) for r in results if isinstance(r, Exception))
    assert len(calls) < 60 and sum(calls) == 60


async def test_a_lone_admission_waits_for_no_lock_and_falls_back_to_the_writer(gw, tmp_path: Path):
    p = await principal(gw, max_streams=5)
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None, timeout=10)
    other.execute("BEGIN IMMEDIATE")   # another process holds the write lock
    reserving = asyncio.create_task(gw.reserve(p, model="m", prompt_tokens=1, max_tokens=1))
    await asyncio.sleep(0.2)
    assert not reserving.done()         # queued on the writer thread; the event loop was not blocked
    other.execute("COMMIT")
    await asyncio.wait_for(reserving, 5)
    other.close()
    first = await gw.reserve(p, model="m", prompt_tokens=1, max_tokens=1)
    assert first.grant is not None


async def test_close_commits_deferred_settlements(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    gateway = Gateway(GatewaySettings(auth=True, settle_flush_s=5), url)
    p = await principal(gateway, rpm=100)
    for _ in range(5):
        r = await gateway.reserve(p, model="m", prompt_tokens=1, max_tokens=1)
        await gateway.settle(r, prompt_tokens=1, completion_tokens=1, upstream="u", status="200", wait=False)
    gateway.close()
    reopened = Gateway(GatewaySettings(auth=True), url)
    try:
        assert len(reopened.ledger.records()) == 5
    finally:
        reopened.close()


async def test_the_wal_is_checkpointed_off_the_event_loop(gw, tmp_path: Path):
    p = await principal(gw, rpm=10_000)
    for _ in range(50):
        r = await gw.reserve(p, model="m", prompt_tokens=1, max_tokens=1)
        await gw.settle(r, prompt_tokens=1, completion_tokens=1, upstream="u", status="200", wait=False)
    assert gw._inline is not None and gw._inline._commits > 0
    gw._inline.checkpoint()
    assert gw._inline._commits == 0
    db = sqlite3.connect(tmp_path / "db.sqlite")
    busy, log_frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    db.close()
    assert busy == 0 and done == log_frames
