"""The editable cloud price table: dated list prices per million tokens (cache hit, cache miss, output)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class PriceError(ValueError):
    """The price table is malformed or has no entry for a name/date; the message says which."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens."""

    name: str
    input_hit: float
    input_miss: float
    output: float
    provider: str = ""
    since: date = date(1970, 1, 1)
    note: str = ""
    source: str = ""

    def input_blended(self, cache_hit_ratio: float) -> float:
        """Per 1M prompt tokens when `cache_hit_ratio` of them hit the provider's context cache."""
        return cache_hit_ratio * self.input_hit + (1.0 - cache_hit_ratio) * self.input_miss

    def cost(self, prompt_tokens: float, completion_tokens: float, cache_hit_ratio: float = 0.0) -> float:
        """USD for these token counts."""
        return (prompt_tokens * self.input_blended(cache_hit_ratio) + completion_tokens * self.output) / 1e6


def _price(entry: dict[str, Any], origin: str) -> Price:
    try:
        since = entry.get("since", date(1970, 1, 1))
        if isinstance(since, str):
            since = date.fromisoformat(since)
        values = {k: float(entry[k]) for k in ("input_hit", "input_miss", "output")}
        price = Price(name=str(entry["name"]), provider=str(entry.get("provider", "")), since=since,
                      note=str(entry.get("note", "")), source=str(entry.get("source", "")), **values)
    except (KeyError, TypeError, ValueError) as exc:
        raise PriceError(f"{origin}: bad price entry {entry!r}: {exc}") from exc
    if min(price.input_hit, price.input_miss, price.output) < 0:
        raise PriceError(f"{origin}: negative price in {price.name}")
    return price


@dataclass(frozen=True, slots=True)
class PriceTable:
    prices: tuple[Price, ...]

    @classmethod
    def parse(cls, text: str, origin: str = "prices") -> PriceTable:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PriceError(f"{origin} is not valid YAML: {exc}") from exc
        entries = data.get("prices") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise PriceError(f"{origin}: expected a top-level 'prices:' list")
        return cls(tuple(_price(e, origin) for e in entries))

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """The given file, else the bundled table (cost/data/prices.yaml)."""
        if path is None:
            text = resources.files("deeplocal.cost").joinpath("data", "prices.yaml").read_text("utf-8")
            return cls.parse(text, "bundled prices.yaml")
        try:
            return cls.parse(Path(path).read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise PriceError(f"cannot read {path}: {exc}") from exc

    def names(self) -> list[str]:
        return sorted({p.name for p in self.prices})

    def find(self, name: str, on: date | None = None) -> Price | None:
        """The entry for `name` in effect on `on` (default: the newest)."""
        matches = [p for p in self.prices if p.name == name and (on is None or p.since <= on)]
        return max(matches, key=lambda p: p.since) if matches else None

    def get(self, name: str, on: date | None = None) -> Price:
        price = self.find(name, on)
        if price is None:
            when = f" on {on}" if on else ""
            raise PriceError(f"no price for '{name}'{when}; known: {', '.join(self.names())}")
        return price

    def current(self, on: date | None = None) -> list[Price]:
        """One entry per name: the one in effect on `on`."""
        return [p for name in self.names() if (p := self.find(name, on)) is not None]
