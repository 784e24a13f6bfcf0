"""What a PII scan returns, and the recognizer interface (shaped like Presidio's `EntityRecognizer`).

A `Finding` holds the entity type, the span and a score, never the matched text: findings go into
logs, metrics and audit records, and the text they point at must not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

# Entity types. Names follow Presidio's where Presidio has one; the CN_* ones are ours.
CN_ID = "CN_ID"                    # PRC resident identity number (GB 11643-1999)
CN_MOBILE = "CN_MOBILE"            # mainland mobile number, optional +86
CN_LANDLINE = "CN_LANDLINE"        # mainland fixed-line number with area code
CN_BANK_CARD = "CN_BANK_CARD"      # UnionPay / mainland bank card (Luhn)
PASSPORT = "PASSPORT"              # PRC passport, or a passport number next to the word
EMAIL_ADDRESS = "EMAIL_ADDRESS"
IP_ADDRESS = "IP_ADDRESS"
US_SSN = "US_SSN"
CREDIT_CARD = "CREDIT_CARD"
IBAN_CODE = "IBAN_CODE"
PERSON = "PERSON"                  # names found by a title, a cue phrase or a name dictionary
ADDRESS = "ADDRESS"                # street addresses (mainland and US formats)

ALL_ENTITIES: tuple[str, ...] = (
    CN_ID, CN_MOBILE, CN_LANDLINE, CN_BANK_CARD, PASSPORT, EMAIL_ADDRESS, IP_ADDRESS, US_SSN,
    CREDIT_CARD, IBAN_CODE, PERSON, ADDRESS,
)

# Lookarounds instead of \b: in Chinese text a digit run touches CJK characters, which are \w too.
# Patterns start with a plain character class (the regex engine scans for it fast) and check the
# character before it with NA1, a two-character lookbehind placed after that first character.
NA1 = r"(?<![0-9A-Za-z].)"
NB = r"(?![0-9A-Za-z])"
# A run of at least four digits joined by short separators: every numeric entity lies in one.
DIGIT_ANCHOR = r"[0-9](?:[ ()+.:/\-]{0,2}[0-9]){3,}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected entity: `text[start:end]` is the value. Never carries the value itself."""

    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str = ""

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Pattern:
    """A named regular expression with the score a bare match gets (Presidio's `Pattern`)."""

    name: str
    regex: str
    score: float
    flags: int = 0


Validator = Callable[[str], bool]
Trimmer = Callable[[str], int]     # length of the valid prefix of a candidate (0: none)


Window = tuple[int, int]


@dataclass(frozen=True, slots=True)
class EntityRecognizer:
    """A regex + validator recognizer for one entity type (Presidio's `PatternRecognizer` shape).

    A pattern with a named group `v` reports that group's span (cue words stay outside the
    finding); `validate(value)` returning False drops a match (checksums); `context` words within
    `context_window` characters before a match add `context_boost` to its score. `trim(value)`
    (for greedy patterns such as IBAN) cuts a candidate to its valid prefix.

    Speed: `anchor` is a cheap regex that every match must be near; the patterns then run only in
    windows of `window` = (chars before, chars after) around the anchors. Recognizers that share an
    anchor string share its pass over the text (see `PiiScanner`). None: the whole text.
    """

    supported_entity: str
    patterns: tuple[Pattern, ...]
    name: str = ""
    supported_language: str = "any"    # "zh", "en" or "any"
    validate: Validator | None = None
    trim: Trimmer | None = None
    context: tuple[str, ...] = ()
    context_boost: float = 0.35
    context_window: int = 24
    anchor: str | None = None
    window: Window = (8, 8)
    _compiled: tuple[tuple[re.Pattern[str], float], ...] = field(init=False, repr=False, compare=False)
    _context_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _anchor_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((re.compile(p.regex, p.flags), p.score) for p in self.patterns)
        if not compiled:
            raise ValueError(f"recognizer for {self.supported_entity} has no patterns")
        object.__setattr__(self, "_compiled", compiled)
        ctx = re.compile("|".join(re.escape(w) for w in self.context), re.IGNORECASE) if self.context else None
        object.__setattr__(self, "_context_re", ctx)
        object.__setattr__(self, "_anchor_re", re.compile(self.anchor) if self.anchor else None)
        if not self.name:
            object.__setattr__(self, "name", f"{self.supported_entity.lower()}_recognizer")

    @property
    def supported_entities(self) -> tuple[str, ...]:
        return (self.supported_entity,)

    @property
    def anchor_key(self) -> tuple[str | None, Window]:
        return (self.anchor, self.window)

    def analyze(self, text: str, entities: Iterable[str] | None = None) -> list[Finding]:
        """Presidio-shaped entry point: findings for `entities` (all supported when None)."""
        if entities is not None and self.supported_entity not in set(entities):
            return []
        return self.find(text, self.windows(text))

    def windows(self, text: str) -> list[Window]:
        """Merged (start, end) windows around the anchors; the whole text when there is no anchor."""
        if self._anchor_re is None:
            return [(0, len(text))]
        before, after = self.window
        n = len(text)
        out: list[Window] = []
        for m in self._anchor_re.finditer(text):
            start, end = max(0, m.start() - before), min(n, m.end() + after)
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(end, out[-1][1]))
            else:
                out.append((start, end))
        return out

    def find(self, text: str, windows: Sequence[Window]) -> list[Finding]:
        out: list[Finding] = []
        for lo, hi in windows:
            for regex, score in self._compiled:
                group = "v" if "v" in regex.groupindex else 0
                for match in regex.finditer(text, lo, hi):
                    finding = self._accept(text, match.span(group), score)
                    if finding is not None:
                        out.append(finding)
        return out

    def _accept(self, text: str, span: Window, score: float) -> Finding | None:
        start, end = span
        if start < 0:
            return None
        if self.trim is not None:
            end = start + self.trim(text[start:end])
            if end <= start:
                return None
        if self.validate is not None and not self.validate(text[start:end]):
            return None
        return Finding(self.supported_entity, start, end, self._boost(text, start, score), self.name)

    def _boost(self, text: str, start: int, score: float) -> float:
        if self._context_re is None or score >= 1.0:
            return score
        window = text[max(0, start - self.context_window):start]
        return round(min(1.0, score + self.context_boost), 4) if self._context_re.search(window) else score


def resolve_overlaps(findings: Sequence[Finding]) -> list[Finding]:
    """Keep the best of overlapping findings: higher score, then longer span, then earlier start."""
    ranked = sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start))
    kept: list[Finding] = []
    for cand in ranked:
        if all(cand.end <= k.start or cand.start >= k.end for k in kept):
            kept.append(cand)
    return sorted(kept, key=lambda f: f.start)
