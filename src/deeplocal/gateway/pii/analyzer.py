"""`PiiScanner`: runs the recognizers over a text and returns non-overlapping findings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.gateway.pii.recognizers_cn import chinese_recognizers
from deeplocal.gateway.pii.recognizers_intl import international_recognizers
from deeplocal.gateway.pii.types import ALL_ENTITIES, EntityRecognizer, Finding, resolve_overlaps

# Full-width digits, letters and + - ( ) @ . in Chinese text become ASCII before the scan. One
# character for one, so the spans of findings still index the original text.
_FULLWIDTH = re.compile("[\uff01-\uff5e]")
_TO_ASCII = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}


def default_recognizers(*, names: bool = True, addresses: bool = True) -> tuple[EntityRecognizer, ...]:
    return chinese_recognizers(names=names, addresses=addresses) + international_recognizers(
        names=names, addresses=addresses)


class PiiScanner:
    """Finds PII in text. Thread-safe and stateless after construction (compiled patterns only)."""

    def __init__(
        self,
        recognizers: Sequence[EntityRecognizer] | None = None,
        *,
        entities: Iterable[str] | None = None,
        min_score: float = 0.5,
    ) -> None:
        self.recognizers: tuple[EntityRecognizer, ...] = tuple(
            recognizers if recognizers is not None else default_recognizers())
        wanted = frozenset(entities) if entities is not None else frozenset(ALL_ENTITIES)
        self.recognizers = tuple(r for r in self.recognizers if r.supported_entity in wanted)
        self.min_score = min_score

    @classmethod
    def from_settings(cls, settings: PiiSettings) -> PiiScanner:
        recognizers = default_recognizers(names=settings.names, addresses=settings.addresses)
        return cls(recognizers, entities=settings.entities, min_score=settings.min_score)

    @property
    def entities(self) -> frozenset[str]:
        return frozenset(r.supported_entity for r in self.recognizers)

    def scan(self, text: str) -> list[Finding]:
        """Findings in `text`, sorted by start, overlaps resolved (best score, then longest)."""
        if not text:
            return []
        if _FULLWIDTH.search(text):
            text = text.translate(_TO_ASCII)
        windows: dict[tuple[str | None, tuple[int, int]], list[tuple[int, int]]] = {}
        found: list[Finding] = []
        for recognizer in self.recognizers:
            key = recognizer.anchor_key
            spans = windows.get(key)
            if spans is None:
                spans = windows[key] = recognizer.windows(text)
            if spans:
                found.extend(f for f in recognizer.find(text, spans) if f.score >= self.min_score)
        return resolve_overlaps(found) if len(found) > 1 else found

    def scan_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        return [self.scan(text) for text in texts]
