"""Prompts to send: synthetic random words, the bundled Chinese/English set, or a ShareGPT-style file."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

BUNDLED_SETS = ("bundled", "bundled-en", "bundled-zh")


class DatasetError(ValueError):
    """The dataset or a length spec is unusable; the message says why."""


@dataclass(frozen=True, slots=True)
class BenchPrompt:
    text: str
    output_len: int
    source: str = ""


@dataclass(frozen=True, slots=True)
class LengthSpec:
    """A fixed length (low == high) or a uniform integer range [low, high]."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str | int) -> LengthSpec:
        raw = str(text).strip()
        lo_text, sep, hi_text = raw.partition("-") if "-" in raw else raw.partition(":")
        try:
            low = int(lo_text)
            high = int(hi_text) if sep else low
        except ValueError as exc:
            raise DatasetError(f"bad length '{raw}': use N or LOW-HIGH") from exc
        if low < 1 or high < low:
            raise DatasetError(f"bad length '{raw}': need 1 <= LOW <= HIGH")
        return cls(low, high)

    def sample(self, rng: random.Random) -> int:
        return self.low if self.low == self.high else rng.randint(self.low, self.high)

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def _read_lines(name: str) -> list[str]:
    text = resources.files("deeplocal.bench").joinpath("data", name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def bundled_prompts(lang: str | None = None) -> list[str]:
    """The bundled prompts (data/prompts.jsonl), optionally one language ("en" or "zh")."""
    items = [json.loads(line) for line in _read_lines("prompts.jsonl")]
    return [item["prompt"] for item in items if lang is None or item["lang"] == lang]


def random_words_prompt(n_words: int, rng: random.Random, vocab: list[str]) -> str:
    """n_words random common words: close to n tokens on BPE tokenizers; the server's usage counts them."""
    return " ".join(rng.choice(vocab) for _ in range(n_words))


def _first_user_turn(item: object) -> str | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("prompt"), str):
        return item["prompt"]
    turns = item.get("conversations") or item.get("conversation") or item.get("messages") or []
    for turn in turns if isinstance(turns, list) else []:
        if not isinstance(turn, dict):
            continue
        who = turn.get("from", turn.get("role"))
        text = turn.get("value", turn.get("content"))
        if who in ("human", "user") and isinstance(text, str) and text.strip():
            return text
    return None


def sharegpt_prompts(path: Path) -> list[str]:
    """First user turn of each conversation in a ShareGPT-style JSON array or JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from exc
    try:
        stripped = text.lstrip()
        if stripped.startswith("["):
            items = json.loads(text)
        else:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is neither a JSON array nor JSONL: {exc}") from exc
    prompts = [p for item in items if (p := _first_user_turn(item))]
    if not prompts:
        raise DatasetError(f"{path}: no conversation with a user/human turn")
    return prompts


def load_prompts(
    dataset: str,
    *,
    count: int,
    output_len: LengthSpec,
    input_len: LengthSpec = LengthSpec(128, 128),
    seed: int = 0,
) -> list[BenchPrompt]:
    """`count` prompts from "random", "bundled", "bundled-en", "bundled-zh" or a file path."""
    rng = random.Random(seed)
    if dataset == "random":
        vocab = _read_lines("words.txt")
        return [BenchPrompt(random_words_prompt(input_len.sample(rng), rng, vocab), output_len.sample(rng),
                            "random") for _ in range(count)]
    if dataset in BUNDLED_SETS:
        lang = None if dataset == "bundled" else dataset.split("-")[1]
        pool, source = bundled_prompts(lang), dataset
    else:
        path = Path(dataset).expanduser()
        if not path.is_file():
            raise DatasetError(f"unknown dataset '{dataset}': use random, {', '.join(BUNDLED_SETS)}"
                               " or a ShareGPT-style .json/.jsonl path")
        pool, source = sharegpt_prompts(path), path.name
    order = list(range(len(pool)))
    rng.shuffle(order)
    return [BenchPrompt(pool[order[i % len(order)]], output_len.sample(rng), source) for i in range(count)]
