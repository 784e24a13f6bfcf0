"""`BatchWriter`: one background thread that runs queued database operations, as many as are waiting
in one transaction (group commit).

- `submit(op)` -> asyncio future: run it now (with whatever else is queued); the future resolves once
  the transaction that ran it committed. Admissions go this way: the caller waits for the answer.
- `defer(op)`: run it with the next transaction, or about `flush_s` after it was deferred (the thread
  looks every `flush_s` while there is work, and sleeps until woken after a quiet second).
  Settlements and audit records go this way: nobody waits, and no thread is woken for each one.
- `flush()`: block until everything submitted or deferred so far is committed. `close()` flushes and
  stops the thread; nothing accepted before close() is dropped.

Operations run in the order they were accepted, deferred ones first (a settlement deferred before an
admission is always applied before it, so this process never sees its own stale counters). Futures of
one batch are resolved with one wake-up of their event loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

Op = TypeVar("Op")
RunBatch = Callable[[Sequence[Any]], list[Any]]   # ops -> one result (or exception instance) per op

_WAKE = object()
NOT_NOW = object()   # run_here(): not run; submit it
_IDLE_ROUNDS = 50   # empty wake-ups before the writer sleeps until woken


class WriterClosed(RuntimeError):
    """The writer was closed; no new operations are accepted."""


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class BatchWriter(Generic[Op]):
    def __init__(self, run_batch: RunBatch, *, flush_s: float = 0.02, max_batch: int = 256,
                 on_error: Callable[[Sequence[Any], BaseException], None] | None = None,
                 housekeeping: Callable[[], None] | None = None, housekeeping_s: float = 1.0,
                 name: str = "deeplocal-db-writer"):
        """`run_batch(ops)` runs the ops in one transaction and returns one result per op: a value, or
        an exception instance that belongs to that op alone (the transaction still commits). If it
        raises, the batch is retried one op at a time; ops that fail alone get the exception, and
        deferred ones are passed to `on_error` (nobody else would hear of them). `housekeeping` runs
        on the writer thread about every `housekeeping_s` while the writer is awake, and at close."""
        self._run_batch = run_batch
        self._flush_s = flush_s
        self._max_batch = max_batch
        self._on_error = on_error
        self._housekeeping = housekeeping
        self._housekeeping_s = housekeeping_s
        self._last_housekeeping = time.monotonic()
        self._busy = threading.Lock()   # held while a batch runs, on the writer thread or in run_here()
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._deferred: deque[tuple[float, Op]] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._asleep = False   # True while blocked without a timeout: defer() must wake it
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- the caller's side ------------------------------------------------------------------------

    def submit(self, op: Op, *, on_orphan: Callable[[Any], None] | None = None) -> asyncio.Future[Any]:
        """Run `op` soon; await the returned future for its result (raised if it is an exception).
        If the future is cancelled before the result arrives, `on_orphan(result)` gets a successful
        result instead (on the event loop), e.g. to give back what was granted."""
        fut = asyncio.get_running_loop().create_future()
        self._put((op, fut, on_orphan))
        return fut

    def defer(self, op: Op) -> None:
        """Run `op` with the next batch, within about `flush_s`. While work keeps coming the writer
        looks for deferred ops every `flush_s` by itself, so deferring costs no thread wake-up."""
        with self._lock:
            if self._closed:
                raise WriterClosed("the database writer is closed")
            self._deferred.append((time.monotonic(), op))
            wake = self._asleep or self._flush_s <= 0
            self._asleep = False
        if wake:
            self._inbox.put(_WAKE)

    def run_here(self, op: Op, run: RunBatch) -> Any:
        """Run `op` now on this thread with `run(ops)` (after the deferred ops, in one batch) when the
        writer is idle and nothing is queued ahead of it; NOT_NOW otherwise, or when `run` raises
        (the deferred ops go back in the queue; submit `op` instead)."""
        if not self._busy.acquire(blocking=False):
            return NOT_NOW
        try:
            if not self._inbox.empty():
                return NOT_NOW
            with self._lock:
                if self._closed:
                    return NOT_NOW
                deferred = list(self._deferred)
                self._deferred.clear()
            try:
                return run([op for _, op in deferred] + [op])[-1]
            except Exception:   # noqa: BLE001  # e.g. the lock is busy: the writer thread will do it
                with self._lock:
                    self._deferred.extendleft(reversed(deferred))
                return NOT_NOW
        finally:
            self._busy.release()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything accepted so far is committed; False on timeout."""
        if threading.current_thread() is self._thread:
            return True
        marker = _Flush()
        try:
            self._put(marker)
        except WriterClosed:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._inbox.put(None)
        self._thread.join(timeout)

    @property
    def pending(self) -> int:
        return len(self._deferred) + self._inbox.qsize()

    def _put(self, item: Any) -> None:
        with self._lock:
            if self._closed:
                raise WriterClosed("the database writer is closed")
            self._inbox.put(item)

    # -- the writer thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        stopping = False
        idle_rounds = 0
        while not stopping:
            items = self._next_items(idle_rounds)
            while items and len(items) < self._max_batch:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is None for item in items)
            idle_rounds = idle_rounds + 1 if not items and not self._deferred else 0
            self._run(items)
            if stopping or time.monotonic() - self._last_housekeeping >= self._housekeeping_s:
                self._keep_house()

    def _keep_house(self) -> None:
        self._last_housekeeping = time.monotonic()
        if self._housekeeping is not None:
            try:
                self._housekeeping()
            except Exception:   # housekeeping must not stop the writer
                log.warning("database writer housekeeping failed", exc_info=True)

    def _next_items(self, idle_rounds: int) -> list[Any]:
        """Wait for submitted work, waking every `flush_s` for deferred ops; after a few idle rounds
        sleep until woken (defer() wakes a sleeping writer)."""
        if self._flush_s <= 0:   # every deferral wakes the thread
            return [self._inbox.get()]
        if idle_rounds >= _IDLE_ROUNDS:
            with self._lock:
                self._asleep = not self._deferred
            if self._asleep:
                return [self._inbox.get()]
        try:
            return [self._inbox.get(timeout=self._flush_s)]
        except queue.Empty:
            return []

    def _run(self, items: list[Any]) -> None:
        with self._lock:   # atomic against defer(): nothing is left behind without a wake-up
            deferred = [op for _, op in self._deferred]
            self._deferred.clear()
        submitted = [item for item in items if isinstance(item, tuple)]
        ops = deferred + [op for op, _, _ in submitted]
        results: list[Any] = []
        if ops:
            with self._busy:
                results = self._execute(ops, n_deferred=len(deferred))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, ...]]] = {}
        for (_, fut, on_orphan), result in zip(submitted, results[len(deferred):], strict=True):
            by_loop.setdefault(fut.get_loop(), []).append((fut, result, on_orphan))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, pairs)
            except RuntimeError:   # that loop is closed: nobody is waiting any more
                pass
        for item in items:
            if isinstance(item, _Flush):
                item.done.set()

    def _execute(self, ops: list[Op], *, n_deferred: int) -> list[Any]:
        try:
            return self._run_batch(ops)
        except Exception as exc:   # noqa: BLE001  # one bad op must not sink the others: retry them alone
            if len(ops) == 1:
                results: list[Any] = [_Failed(exc)]
            else:
                log.warning("a batch of %d database operations failed; retrying one at a time", len(ops))
                results = [self._run_alone(op) for op in ops]
        failed = [(op, r) for op, r in zip(ops[:n_deferred], results, strict=False) if isinstance(r, _Failed)]
        if failed and self._on_error is not None:
            for op, r in failed:
                self._on_error([op], r.error)
        return [r.error if isinstance(r, _Failed) else r for r in results]

    def _run_alone(self, op: Op) -> Any:
        try:
            return self._run_batch([op])[0]
        except Exception as exc:   # noqa: BLE001  # handed to whoever waits for this op
            return _Failed(exc)


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


def _resolve(pairs: list[tuple[Any, ...]]) -> None:
    for fut, result, on_orphan in pairs:
        if fut.cancelled():
            if on_orphan is not None and not isinstance(result, BaseException):
                on_orphan(result)
            continue
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)
