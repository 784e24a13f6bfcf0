"""Precision and recall of a scanner on a labelled set (JSONL: text + typed spans). Pure functions.

A prediction is a true positive when a gold span of the same type overlaps it by at least half of
the longer of the two (each gold span matches at most one prediction).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deeplocal.gateway.pii.types import Finding

Span = tuple[str, int, int]  # (entity type, start, end)


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    lang: str
    text: str
    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Score:
    entity_type: str
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load_examples(path: Path) -> list[Example]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            spans = tuple((s["type"], s["start"], s["end"]) for s in row["spans"])
            out.append(Example(row["id"], row["lang"], row["text"], spans))
    return out


def _overlaps(a: Span, b: Span) -> bool:
    inter = min(a[2], b[2]) - max(a[1], b[1])
    return a[0] == b[0] and inter > 0 and inter * 2 >= max(a[2] - a[1], b[2] - b[1])


def match(gold: Sequence[Span], predicted: Sequence[Span]) -> tuple[list[Span], list[Span], list[Span]]:
    """(true positives, false positives, false negatives) for one text."""
    unmatched = list(gold)
    tp, fp = [], []
    for p in predicted:
        hit = next((g for g in unmatched if _overlaps(g, p)), None)
        if hit is None:
            fp.append(p)
        else:
            unmatched.remove(hit)
            tp.append(p)
    return tp, fp, unmatched


def evaluate(examples: Iterable[Example], scan: Callable[[str], list[Finding]]) -> dict[str, Score]:
    """Per-entity scores, plus "ALL" (micro average)."""
    counts: dict[str, list[int]] = {}
    for ex in examples:
        predicted = [(f.entity_type, f.start, f.end) for f in scan(ex.text)]
        tp, fp, fn = match(ex.spans, predicted)
        for group, idx in ((tp, 0), (fp, 1), (fn, 2)):
            for span in group:
                for key in (span[0], "ALL"):
                    counts.setdefault(key, [0, 0, 0])[idx] += 1
    return {k: Score(k, *v) for k, v in sorted(counts.items())}


def format_table(scores: dict[str, Score]) -> str:
    lines = ["| entity | tp | fp | fn | precision | recall | F1 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for key, s in sorted(scores.items(), key=lambda kv: (kv[0] == "ALL", kv[0])):
        lines.append(f"| {key} | {s.tp} | {s.fp} | {s.fn} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} |")
    return "\n".join(lines)
