"""Typed placeholders (`<CN_ID_1>`) for one request, and restoring originals in streamed output."""

from __future__ import annotations

import re

from deeplocal.gateway.pii.types import ADDRESS, CN_MOBILE, EMAIL_ADDRESS, PERSON

PLACEHOLDER_RE = re.compile(r"<([A-Z][A-Z_]*)_(\d+)>")
_FREE_TEXT = frozenset({PERSON, ADDRESS})


def _normalize(entity_type: str, value: str) -> str:
    """The identity of a value: "138 0013 8000" and "13800138000" are one phone number."""
    if entity_type == EMAIL_ADDRESS:
        return value.lower()
    if entity_type in _FREE_TEXT:
        return " ".join(value.split())
    compact = "".join(ch for ch in value if ch.isalnum()).upper()
    return compact[-11:] if entity_type == CN_MOBILE else compact   # +86 139... is 139...


class PlaceholderTable:
    """Value <-> placeholder for one request. Holds originals: never log it (its repr doesn't show them)."""

    __slots__ = ("_by_key", "_counts", "_max_len", "_originals")

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._max_len = 0

    def placeholder_for(self, entity_type: str, value: str) -> str:
        key = (entity_type, _normalize(entity_type, value))
        found = self._by_key.get(key)
        if found is not None:
            return found
        n = self._counts.get(entity_type, 0) + 1
        self._counts[entity_type] = n
        placeholder = f"<{entity_type}_{n}>"
        self._by_key[key] = placeholder
        self._originals[placeholder] = value
        self._max_len = max(self._max_len, len(placeholder))
        return placeholder

    def original(self, placeholder: str) -> str | None:
        return self._originals.get(placeholder)

    @property
    def max_placeholder_len(self) -> int:
        return self._max_len

    def could_start(self, tail: str) -> bool:
        """Whether `tail` is a proper prefix of a placeholder in this table (wait for more text)."""
        return any(p.startswith(tail) and p != tail for p in self._originals)

    def restore(self, text: str) -> str:
        """Replace every known placeholder in a complete text; unknown ones stay as they are."""
        if not self._originals or "<" not in text:
            return text
        return PLACEHOLDER_RE.sub(lambda m: self._originals.get(m.group(0), m.group(0)), text)

    def __len__(self) -> int:
        return len(self._originals)

    def __repr__(self) -> str:
        return f"PlaceholderTable({len(self)} values: {sorted(self._counts.items())})"


class StreamRestorer:
    """Restores placeholders in streamed text, also when one is split across deltas.

    `feed(delta)` returns the text that is safe to send now; a tail that could still become a
    placeholder ("<CN_", "<CN_ID_1") is held back until the next delta or `flush()`.
    """

    __slots__ = ("_held", "_table")

    def __init__(self, table: PlaceholderTable) -> None:
        self._table = table
        self._held = ""

    def feed(self, delta: str) -> str:
        text = self._held + delta
        self._held = ""
        if not len(self._table) or "<" not in text:
            return text
        out: list[str] = []
        pos = 0
        while True:
            lt = text.find("<", pos)
            if lt < 0:
                out.append(text[pos:])
                break
            out.append(text[pos:lt])
            match = PLACEHOLDER_RE.match(text, lt)
            if match is not None:
                out.append(self._table.original(match.group(0)) or match.group(0))
                pos = match.end()
                continue
            tail = text[lt:]
            if len(tail) < self._table.max_placeholder_len and self._table.could_start(tail):
                self._held = tail
                break
            out.append("<")
            pos = lt + 1
        return "".join(out)

    def flush(self) -> str:
        """The held tail, at the end of the stream (an unfinished placeholder goes out as it is)."""
        held, self._held = self._held, ""
        return held
