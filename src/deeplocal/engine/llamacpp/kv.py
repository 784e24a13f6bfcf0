"""KV accounting for llama.cpp's unified cache: sequence slots, cell budget and the prefix cache.

The cache holds `n_ctx` cells shared by all sequences. A slot is a llama seq_id. When a sequence
ends, its slot keeps its KV as a prefix-cache entry until the slot or the cells are needed; a new
sequence that starts with the same tokens copies that prefix (llama_memory_seq_cp shares cells, it
does not recompute them). Accounting is conservative: shared cells are counted once per holder.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import llama_cpp as lc

MIN_STREAM_COPY = 64   # tokens: below this, recomputing beats copying a whole KV stream


@dataclass
class CachedPrefix:
    slot: int
    tokens: list[int]


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix. Compares slices (C speed), halving the step: O(n log n)."""
    n = min(len(a), len(b))
    if n == 0 or a[0] != b[0]:
        return 0
    lo, step = 0, n            # a[:lo] == b[:lo] holds
    while step:
        if lo + step <= n and a[lo:lo + step] == b[lo:lo + step]:
            lo += step
        else:
            step //= 2
    return lo


class KvManager:
    """`per_slot`: None for the unified cache; else each slot owns that many cells (its own KV
    stream, so attention only reads its own tokens) and prefixes are reused within a slot only."""

    def __init__(self, ctx, *, n_cells: int, n_slots: int, prefix_cache: bool, per_slot: int | None = None):
        self._mem = lc.llama_get_memory(ctx)
        self.n_cells = n_cells
        self.per_slot = per_slot
        self._free_slots = list(range(n_slots - 1, -1, -1))   # pop() gives the lowest first
        self._held: dict[int, int] = {}                      # slot -> cells held by a live sequence
        self._live: dict[int, list[int]] = {}                # slot -> the live sequence's tokens
        self._cache: OrderedDict[int, CachedPrefix] = OrderedDict()  # slot -> entry, LRU first
        self.prefix_cache = prefix_cache
        self.hit_tokens = 0
        self.query_tokens = 0

    # -- accounting --------------------------------------------------------------------------
    @property
    def used_by_running(self) -> int:
        return sum(self._held.values())

    @property
    def used_by_cache(self) -> int:
        return sum(len(e.tokens) for e in self._cache.values())

    @property
    def free_cells(self) -> int:
        return self.n_cells - self.used_by_running - self.used_by_cache

    @property
    def capacity_per_sequence(self) -> int:
        return self.per_slot if self.per_slot is not None else self.n_cells

    def can_allocate(self, n_tokens: int) -> bool:
        """Could a sequence of n_tokens get a slot and cells if the prefix cache were emptied?"""
        has_slot = bool(self._free_slots) or bool(self._cache)
        if self.per_slot is not None:
            return has_slot and n_tokens <= self.per_slot
        return has_slot and self.used_by_running + n_tokens <= self.n_cells

    def can_grow(self, slot: int, n_cached: int, n: int) -> bool:
        """Per-slot layout: does the slot have room for n more tokens?"""
        return self.per_slot is None or n_cached + n <= self.per_slot

    def cached_prefix(self, prompt: list[int]) -> int:
        """The longest prefix of `prompt` a finished sequence left in the cache."""
        return max((common_prefix(e.tokens, prompt) for e in self._cache.values()), default=0)

    def worth_copying(self, shared: int, cached: int) -> bool:
        """Copy `shared` tokens from a running sequence rather than use `cached` from the cache?
        With separate streams a copy moves a whole stream, so it must win by MIN_STREAM_COPY."""
        margin = MIN_STREAM_COPY if self.per_slot is not None else 1
        return shared >= MIN_STREAM_COPY and shared >= cached + margin

    # -- lifecycle ---------------------------------------------------------------------------
    def allocate(self, prompt: list[int]) -> tuple[int, int]:
        """Give a sequence a slot, reusing the longest prefix in the cache or in a running sequence.
        Returns (slot, reused tokens)."""
        best_slot, best_len, live = -1, 0, False
        if self.prefix_cache:
            self.query_tokens += len(prompt)
            for slot, entry in self._cache.items():
                n = common_prefix(entry.tokens, prompt)
                if n > best_len:
                    best_slot, best_len = slot, n
            # A running sequence's prompt (a system prompt shared by concurrent requests).
            cached_len = best_len
            for slot, tokens in self._live.items():
                n = min(common_prefix(tokens, prompt), self._held.get(slot, 0))
                if n > best_len and self.worth_copying(n, cached_len):
                    best_slot, best_len, live = slot, n, True
            best_len = min(best_len, len(prompt) - 1)  # the last prompt token must be decoded for logits
        if best_len > 0 and not live and self.per_slot is not None and best_len < MIN_STREAM_COPY \
                and self._runs_added(best_slot) > self._runs_added(self._contiguous_choice(-1)):
            best_len = 0     # a short reuse (the chat template) is not worth a gap between streams
        if best_len <= 0:
            best_slot, best_len, live = -1, 0, False
        if self.per_slot is not None and best_len > 0 and not live:   # reuse the cached slot in place
            del self._cache[best_slot]
            lc.llama_memory_seq_rm(self._mem, best_slot, best_len, -1)
            slot = best_slot
        else:
            slot = self._take_slot(avoid=best_slot)
            if best_len > 0 and slot == best_slot:      # reusing the source slot itself: trim its tail
                lc.llama_memory_seq_rm(self._mem, slot, best_len, -1)
            elif best_len > 0 and self.per_slot is not None:
                # Streams cannot share cells: llama.cpp copies the whole source stream before the
                # next decode; the part after the prefix is dropped from the copy at once.
                lc.llama_memory_seq_cp(self._mem, best_slot, slot, -1, -1)
                lc.llama_memory_seq_rm(self._mem, slot, best_len, -1)
            elif best_len > 0:
                lc.llama_memory_seq_cp(self._mem, best_slot, slot, 0, best_len)
                if not live:
                    self._cache.move_to_end(best_slot)
        self.hit_tokens += best_len
        self._held[slot] = best_len
        self._live[slot] = prompt
        return slot, best_len

    def grow(self, slot: int, n_cached: int) -> None:
        self._held[slot] = n_cached

    def release(self, slot: int, tokens: list[int] | None) -> None:
        """A sequence ended. Keep its KV as a prefix entry (tokens given) or drop it (None)."""
        self._held.pop(slot, None)
        self._live.pop(slot, None)
        if tokens and self.prefix_cache:
            self._cache[slot] = CachedPrefix(slot=slot, tokens=list(tokens))
        else:
            lc.llama_memory_seq_rm(self._mem, slot, -1, -1)
            self._free_slots.append(slot)

    def evict_for(self, n_cells: int) -> bool:
        """Evict LRU prefix entries until n_cells are free. False if not possible."""
        if self.per_slot is not None:
            return True          # cached slots hold their own cells, not a shared pool
        while self.free_cells < n_cells and self._cache:
            self._drop_lru()
        return self.free_cells >= n_cells

    def clear_cache(self) -> None:
        while self._cache:
            self._drop_lru()

    def _drop_lru(self) -> None:
        slot, _ = self._cache.popitem(last=False)
        lc.llama_memory_seq_rm(self._mem, slot, -1, -1)
        self._free_slots.append(slot)

    def _take_slot(self, *, avoid: int) -> int:
        if self.per_slot is not None:
            slot = self._contiguous_slot(avoid)
            if slot >= 0:
                return slot
        elif self._free_slots:
            return self._free_slots.pop()
        for slot in list(self._cache):  # LRU first, but keep the entry we are copying from
            if slot != avoid:
                del self._cache[slot]
                lc.llama_memory_seq_rm(self._mem, slot, -1, -1)
                return slot
        # Only the source entry is left: copy from it first, then reuse it in place.
        entry = self._cache.pop(avoid)
        del entry
        return avoid

    def _contiguous_slot(self, avoid: int) -> int:
        """Per-sequence streams: llama.cpp puts only runs of consecutive seq ids in one micro-batch
        (one graph each), so prefer the slot that leaves the fewest runs (one that closes a gap,
        then one next to a running slot); then a free slot over a cached one (keeps prefixes),
        then the least recently used cache entry. -1: none."""
        slot = self._contiguous_choice(avoid)
        if slot < 0:
            return -1
        if slot in self._cache:
            del self._cache[slot]
            lc.llama_memory_seq_rm(self._mem, slot, -1, -1)
        else:
            self._free_slots.remove(slot)
        return slot

    def _contiguous_choice(self, avoid: int) -> int:
        lru = {slot: i for i, slot in enumerate(self._cache)}
        choices = list(self._free_slots) + [s for s in self._cache if s != avoid]
        if not choices:
            return -1
        return min(choices, key=lambda slot: (self._runs_added(slot), lru.get(slot, -1), slot))

    def _runs_added(self, slot: int) -> int:
        """How many more runs of consecutive running slots there would be with `slot` taken."""
        held = self._held
        if slot < 0 or not held:
            return 0
        return 1 - (slot - 1 in held) - (slot + 1 in held)
