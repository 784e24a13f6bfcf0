"""Settings of the PII layer. Wired into `Settings.pii` by the lead."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from deeplocal.gateway.pii.types import ALL_ENTITIES

ActionName = Literal["allow", "redact", "block"]


class PiiSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # Findings scoring below this are dropped (pattern-only matches without a cue score 0.1-0.45).
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    # Entity types to look for; None: all of them.
    entities: tuple[str, ...] | None = None
    # Names and addresses are found by cues and dictionaries: lower precision, can be switched off.
    names: bool = True
    addresses: bool = True
    # The default policy (per entity type), for keys and tenants that have none of their own. Entity
    # types not listed take `default_action`; high-risk identifiers are redacted unless set here.
    policy: dict[str, ActionName] = Field(default_factory=dict)
    default_action: ActionName = "allow"
    # Per tenant, over `policy`: {tenant: {ENTITY: action, "*": action for the rest}}. A key's own
    # policy (`deeplocal keys create --pii-policy`) goes over its tenant's: global < tenant < key.
    tenants: dict[str, dict[str, ActionName]] = Field(default_factory=dict)
    # Requests routed off this machine get reversible pseudonymization: originals are restored in
    # the response. Off: redaction is one-way for them too.
    pseudonymize_remote: bool = True
    # Requests whose findings leave nothing to route on still count as restricted (classify()).
    restricted_on_findings: bool = True

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            unknown = sorted(set(value) - set(ALL_ENTITIES))
            if unknown:
                raise ValueError(f"unknown entity types {unknown}; known: {list(ALL_ENTITIES)}")
        return value

    @field_validator("policy")
    @classmethod
    def _known_policy_entities(cls, value: dict[str, ActionName]) -> dict[str, ActionName]:
        unknown = sorted(set(value) - set(ALL_ENTITIES))
        if unknown:
            raise ValueError(f"unknown entity types {unknown}; known: {list(ALL_ENTITIES)}")
        return value

    @field_validator("tenants")
    @classmethod
    def _known_tenant_entities(cls, value: dict[str, dict[str, ActionName]]) -> dict[str, dict[str, ActionName]]:
        for tenant, policy in value.items():
            unknown = sorted(set(policy) - set(ALL_ENTITIES) - {"*"})
            if unknown:
                raise ValueError(f"tenant {tenant!r}: unknown entity types {unknown}; known: {list(ALL_ENTITIES)}")
        return value
