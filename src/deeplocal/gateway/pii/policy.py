"""Per key or tenant PII policy (allow / redact / block per entity type) and applying it to a request."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deeplocal.engine.errors import InvalidRequest
from deeplocal.gateway.pii.placeholders import PlaceholderTable
from deeplocal.gateway.pii.types import (
    ALL_ENTITIES,
    CN_BANK_CARD,
    CN_ID,
    CREDIT_CARD,
    IBAN_CODE,
    PASSPORT,
    US_SSN,
    Finding,
)


class Action(str, enum.Enum):
    ALLOW = "allow"
    REDACT = "redact"
    BLOCK = "block"


# Identifiers that identify a person or move money on their own: redacted unless a policy says else.
HIGH_RISK: tuple[str, ...] = (CN_ID, CN_BANK_CARD, CREDIT_CARD, US_SSN, IBAN_CODE, PASSPORT)


class PiiBlocked(InvalidRequest):
    """The request carries an entity type its policy blocks. Names the types, never the values."""

    code = "pii_blocked"


class UnknownEntityType(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PiiPolicy:
    """Action per entity type; types not listed take `default`. Build with `from_mapping`."""

    actions: tuple[tuple[str, Action], ...] = tuple((e, Action.REDACT) for e in HIGH_RISK)
    default: Action = Action.ALLOW
    _lookup: dict[str, Action] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        lookup = {entity: Action(action) for entity, action in self.actions}
        unknown = sorted(set(lookup) - set(ALL_ENTITIES))
        if unknown:
            raise UnknownEntityType(f"unknown entity types {unknown}; known: {list(ALL_ENTITIES)}")
        object.__setattr__(self, "actions", tuple(sorted(lookup.items())))
        object.__setattr__(self, "default", Action(self.default))
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str | Action], *, default: str | Action = Action.ALLOW,
                     base: PiiPolicy | None = None) -> PiiPolicy:
        """`mapping` over `base` (the built-in default policy when None): global < tenant < key."""
        merged = dict((base or cls()).actions)
        merged.update({entity: Action(action) for entity, action in mapping.items()})
        return cls(tuple(merged.items()), Action(default))

    @classmethod
    def parse(cls, spec: str, *, base: PiiPolicy | None = None) -> PiiPolicy:
        """From "CN_ID=block,EMAIL_ADDRESS=redact,*=allow" (the form the CLI and headers use), as a layer
        over `base` (see `layer`)."""
        pairs = [item.split("=", 1) for item in spec.split(",") if item.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"policy must be ENTITY=action pairs separated by commas, got {spec!r}")
        return cls.layer({k.strip(): v.strip().lower() for k, v in pairs}, base=base or cls())

    @classmethod
    def layer(cls, mapping: Mapping[str, str | Action], *, base: PiiPolicy) -> PiiPolicy:
        """A tenant's or a key's policy over `base`: the types it names take its actions; with "*" every
        other type takes that action, those `base` names included ("*": "block" refuses any finding);
        without "*" the rest is as in `base`."""
        named = dict(mapping)
        rest = named.pop("*", None)
        if rest is not None:
            base = cls((), Action(rest))
        return cls.from_mapping(named, default=base.default, base=base)

    @classmethod
    def check_spec(cls, spec: str) -> str:
        """`spec` normalised ("ENTITY=action,...", sorted), or ValueError naming what is wrong: a
        malformed pair, an unknown entity type or an unknown action."""
        from deeplocal.gateway.pii.types import ALL_ENTITIES

        pairs = [item.split("=", 1) for item in spec.split(",") if item.strip()]
        if not pairs or any(len(p) != 2 for p in pairs):
            raise ValueError(f"a PII policy is ENTITY=action pairs separated by commas, got {spec!r}")
        mapping = {k.strip(): v.strip().lower() for k, v in pairs}
        unknown = sorted(set(mapping) - set(ALL_ENTITIES) - {"*"})
        if unknown:
            raise ValueError(f"unknown entity types {unknown}; known: {', '.join(ALL_ENTITIES)}")
        bad = sorted(a for a in set(mapping.values()) if a not in {x.value for x in Action})
        if bad:
            raise ValueError(f"unknown actions {bad}; use allow, redact or block")
        return ",".join(f"{k}={v}" for k, v in sorted(mapping.items()))

    def action_for(self, entity_type: str) -> Action:
        return self._lookup.get(entity_type, self.default)

    def to_dict(self) -> dict[str, str]:
        return {**{e: a.value for e, a in self.actions}, "*": self.default.value}


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """The request after the policy: texts with typed placeholders, and what was found and done."""

    texts: tuple[str, ...]
    finding_types: tuple[str, ...]                 # every type found, sorted (for audit and routing)
    blocked: tuple[str, ...] = ()                  # types the policy blocks, sorted
    redacted: tuple[tuple[str, int], ...] = ()     # (type, count of spans replaced)

    @property
    def is_blocked(self) -> bool:
        return bool(self.blocked)

    def raise_if_blocked(self) -> None:
        if self.blocked:
            raise PiiBlocked(
                "request blocked by the PII policy of this key: it contains "
                + ", ".join(self.blocked) + ". Remove these values or ask the operator to change the policy.",
                param="messages")


def replace_spans(text: str, findings: Sequence[Finding], table: PlaceholderTable) -> str:
    """`text` with each finding's span replaced by its placeholder (findings must not overlap)."""
    parts: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        parts.append(text[pos:f.start])
        parts.append(table.placeholder_for(f.entity_type, text[f.start:f.end]))
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


def apply_policy(texts: Sequence[str], findings: Sequence[Sequence[Finding]], policy: PiiPolicy, *,
                 table: PlaceholderTable | None = None) -> PolicyOutcome:
    """Apply `policy` to the texts of one request (`findings[i]` belongs to `texts[i]`).

    Redacted spans get typed placeholders (`<CN_ID_1>`), numbered consistently across all texts of
    the request; pass the request's `table` to keep them reversible (see `Pseudonymizer`).
    """
    if len(texts) != len(findings):
        raise ValueError("texts and findings must have the same length")
    table = table if table is not None else PlaceholderTable()
    found: set[str] = set()
    blocked: set[str] = set()
    redacted: Counter[str] = Counter()
    out: list[str] = []
    for text, text_findings in zip(texts, findings, strict=True):
        to_replace = []
        for f in text_findings:
            found.add(f.entity_type)
            action = policy.action_for(f.entity_type)
            if action is Action.BLOCK:
                blocked.add(f.entity_type)
            if action is not Action.ALLOW:  # blocked spans are redacted too, should anyone log them
                to_replace.append(f)
                redacted[f.entity_type] += 1
        out.append(replace_spans(text, to_replace, table) if to_replace else text)
    return PolicyOutcome(texts=tuple(out), finding_types=tuple(sorted(found)), blocked=tuple(sorted(blocked)),
                         redacted=tuple(sorted(redacted.items())))
