"""Template errors and the Sprig / Go-template functions the chart's renderer supports."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import yaml


class TemplateError(Exception):
    pass


class Fail(TemplateError):
    """`fail` or `required` in a template: what `helm template` reports as an error."""



def truthy(v: Any) -> bool:
    return not (v is None or v is False or v == 0 or v == "" or v == [] or v == {})


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _to_yaml(v: Any) -> str:
    if v is None:
        return ""
    text = yaml.dump(v, Dumper=_NoAliases, default_flow_style=False, sort_keys=True, width=1 << 30)
    return text.rstrip("\n")


def _indent(n: int, s: str) -> str:
    return "\n".join(" " * n + line for line in str(s).split("\n"))


def _required(msg: str, v: Any) -> Any:
    if v is None or v == "":
        raise Fail(msg)
    return v


def _fail(msg: str) -> Any:
    raise Fail(msg)


def _printf(fmt: str, *args: Any) -> str:
    return re.sub(r"%[vsd]", "{}", fmt).format(*args)


def to_str(v: Any) -> str:
    if v is True or v is False:
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _merge(dst: dict, *srcs: dict) -> dict:
    """Sprig's merge: keys already in `dst` win; nested maps merge."""
    out = dict(dst)
    for src in srcs:
        for key, value in (src or {}).items():
            if key not in out:
                out[key] = value
            elif isinstance(out[key], dict) and isinstance(value, dict):
                out[key] = _merge(out[key], value)
    return out


def _ternary(yes: Any, no: Any, cond: Any) -> Any:
    if not isinstance(cond, bool):   # sprig's ternary takes a bool, not any truthy value
        raise TemplateError(f"ternary needs a bool, got {cond!r}")
    return yes if cond else no


def _from_json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TemplateError("fromJson needs a JSON object; use fromJsonArray for a list")
    return value


def _from_json_array(text: str) -> list:
    value = json.loads(text)
    if not isinstance(value, list):
        raise TemplateError("fromJsonArray needs a JSON list")
    return value


FUNCS: dict[str, Callable[..., Any]] = {
    "default": lambda d, v=None: v if truthy(v) else d,
    "quote": lambda v: json.dumps(to_str(v)),
    "toYaml": _to_yaml, "toJson": lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True),
    "indent": _indent, "nindent": lambda n, s: "\n" + _indent(n, s),
    "required": _required, "fail": _fail, "printf": _printf,
    "eq": lambda a, *b: any(a == x for x in b), "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b, "gt": lambda a, b: a > b, "le": lambda a, b: a <= b, "ge": lambda a, b: a >= b,
    "and": lambda *a: next((x for x in a if not truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truthy(x)), a[-1]),
    "not": lambda v: not truthy(v), "empty": lambda v: not truthy(v),
    "b64enc": lambda s: base64.b64encode(to_str(s).encode()).decode(),
    "sha256sum": lambda s: hashlib.sha256(to_str(s).encode()).hexdigest(),
    "trunc": lambda n, s: to_str(s)[:n], "trimSuffix": lambda suf, s: to_str(s).removesuffix(suf),
    "lower": lambda s: to_str(s).lower(), "toString": to_str, "int": lambda v: int(v or 0),
    "hasKey": lambda d, k: k in (d or {}), "list": lambda *a: list(a),
    "dict": lambda *a: {a[i]: a[i + 1] for i in range(0, len(a), 2)},
    "contains": lambda sub, s: sub in to_str(s), "hasPrefix": lambda pre, s: to_str(s).startswith(pre),
    "ternary": _ternary,
    "print": lambda *a: "".join(to_str(x) for x in a),
    "concat": lambda *ls: [x for seq in ls for x in (seq or [])], "join": lambda sep, xs: sep.join(map(to_str, xs)),
    "fromJson": _from_json_object, "fromJsonArray": _from_json_array, "merge": lambda dst, *srcs: _merge(dst, *srcs),
    "mul": lambda a, b: a * b, "add": lambda a, b: a + b, "max": lambda a, b: max(a, b),
}
