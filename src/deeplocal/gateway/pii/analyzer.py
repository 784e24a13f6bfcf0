"""`PiiScanner`: runs the recognizers over a text and returns non-overlapping findings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from deeplocal.gateway.pii.config import PiiSettings
from deeplocal.gateway.pii.recognizers_cn import chinese_recognizers
from deeplocal.gateway.pii.recognizers_intl import international_recognizers
from deeplocal.gateway.pii.types import ALL_ENTITIES, EntityRecognizer, Finding, resolve_overlaps

_CJK = re.compile(r"[\u4e00-\u9fff]")
_UPPER = re.compile(r"[A-Z]")
_DIGIT = re.compile(r"\d")


def default_recognizers(*, names: bool = True, addresses: bool = True) -> tuple[EntityRecognizer, ...]:
    return chinese_recognizers(names=names, addresses=addresses) + international_recognizers(
        names=names, addresses=addresses)


def _preconditions(text: str) -> frozenset[str]:
    have = {""}
    if _DIGIT.search(text):
        have.add("digit")
    if "@" in text:
        have.add("@")
    if _CJK.search(text):
        have.add("cjk")
    if _UPPER.search(text):
        have.add("upper")
    return frozenset(have)


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
        have = _preconditions(text)
        found: list[Finding] = []
        for recognizer in self.recognizers:
            if recognizer.needs in have:
                found.extend(f for f in recognizer.analyze(text) if f.score >= self.min_score)
        return resolve_overlaps(found) if len(found) > 1 else found

    def scan_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        return [self.scan(text) for text in texts]
