"""Reversible pseudonymization for one request that leaves the machine.

The prompt goes out with typed placeholders (`<CN_ID_1>`), the same value getting the same
placeholder in every message of the request; the answer comes back with the originals restored,
streamed or whole. One `Pseudonymizer` per request: its table holds the originals and dies with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from deeplocal.gateway.pii.analyzer import PiiScanner
from deeplocal.gateway.pii.placeholders import PlaceholderTable, StreamRestorer
from deeplocal.gateway.pii.policy import Action, PiiPolicy, replace_spans
from deeplocal.gateway.pii.types import Finding


class Pseudonymizer:
    """`policy` None: every finding is pseudonymized; else the types whose action is not allow."""

    __slots__ = ("_known", "_policy", "_scanner", "_table")

    def __init__(self, scanner: PiiScanner, policy: PiiPolicy | None = None, *,
                 known: Mapping[str, Sequence[Finding]] | None = None) -> None:
        """`known`: findings of texts scanned already (the gateway's screen), used instead of a rescan."""
        self._scanner = scanner
        self._policy = policy
        self._known = known or {}
        self._table = PlaceholderTable()

    @property
    def table(self) -> PlaceholderTable:
        return self._table

    def _selected(self, findings: Sequence[Finding]) -> list[Finding]:
        if self._policy is None:
            return list(findings)
        return [f for f in findings if self._policy.action_for(f.entity_type) is not Action.ALLOW]

    def pseudonymize(self, text: str, findings: Sequence[Finding] | None = None) -> str:
        """`text` with its PII replaced; pass `findings` when the text was scanned already."""
        if findings is None:
            findings = self._known.get(text)
        found = self._scanner.scan(text) if findings is None else findings
        selected = self._selected(found)
        return replace_spans(text, selected, self._table) if selected else text

    def pseudonymize_all(self, texts: Sequence[str]) -> list[str]:
        return [self.pseudonymize(t) for t in texts]

    def restore(self, text: str) -> str:
        """A whole (non-streamed) answer with the originals put back."""
        return self._table.restore(text)

    def restorer(self) -> StreamRestorer:
        """A fresh restorer for one streamed choice (n > 1 streams need one each)."""
        return StreamRestorer(self._table)

    def __repr__(self) -> str:
        return f"Pseudonymizer({self._table!r})"
