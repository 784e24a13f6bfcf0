"""The data class of a request, which routing uses to decide where it may run.

restricted: may not leave machines the operator owns; internal: may go to trusted remote upstreams
the operator configured; public: may go anywhere. The most restrictive of the sources wins: PII
found, the `X-Data-Class` header, the key's or tenant's default. A header can raise the class, never
lower it below what the key or the findings say.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from deeplocal.engine.errors import InvalidRequest
from deeplocal.gateway.pii.types import Finding

DataClass = Literal["restricted", "internal", "public"]
RESTRICTED: DataClass = "restricted"
INTERNAL: DataClass = "internal"
PUBLIC: DataClass = "public"
_RANK: dict[str, int] = {PUBLIC: 0, INTERNAL: 1, RESTRICTED: 2}
HEADER = "X-Data-Class"


class InvalidDataClass(InvalidRequest):
    code = "invalid_data_class"


def parse_data_class(value: str, *, source: str = HEADER) -> DataClass:
    cleaned = value.strip().lower()
    if cleaned not in _RANK:
        raise InvalidDataClass(f"{source} must be one of restricted, internal, public; got {value[:40]!r}",
                               param=source)
    return cleaned  # type: ignore[return-value]


def classify(findings: Sequence[Finding], *, header: str | None, principal_default: str | None,
             default: DataClass = INTERNAL) -> DataClass:
    """The most restrictive of: restricted when PII was found, the header, the principal's default.

    With none of them the class is `default` (internal: stays with upstreams the operator trusts).
    """
    candidates: list[DataClass] = []
    if findings:
        candidates.append(RESTRICTED)
    if header:
        candidates.append(parse_data_class(header))
    if principal_default:
        candidates.append(parse_data_class(principal_default, source="key data_class"))
    if not candidates:
        return default
    return max(candidates, key=_RANK.__getitem__)
