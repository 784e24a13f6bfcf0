"""Constrained output: JSON mode, JSON Schema and forced tool calls as llama.cpp GBNF grammars."""

from __future__ import annotations

import json
from typing import Any

from deeplocal.engine.errors import InvalidRequest

# Any JSON object (response_format: json_object). Whitespace is bounded so a small model cannot
# run away emitting blanks.
JSON_OBJECT_GRAMMAR = r"""
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? ws "}"
array  ::= "[" ws ( value ("," ws value)* )? ws "]"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\""
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
ws     ::= | " " | "\n" [ \t]{0,20}
"""


def check_json_schema(schema: Any, *, param: str) -> None:
    """Refuse a schema that is not a valid JSON Schema (400, naming the parameter)."""
    if not isinstance(schema, dict):
        raise InvalidRequest("json_schema.schema must be a JSON object", param=param)
    try:
        import jsonschema

        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidRequest(f"invalid JSON schema: {exc.message}", param=param) from exc


def schema_to_grammar(schema: dict[str, Any], *, param: str = "response_format") -> str:
    check_json_schema(schema, param=param)
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises bare exceptions for unsupported constructs
        raise InvalidRequest(f"unsupported JSON schema: {exc}", param=param) from exc


def tool_call_schema(tools: list[dict[str, Any]], *, only: str | None = None) -> dict[str, Any]:
    """A schema for `{"name": ..., "arguments": {...}}` over the offered functions."""
    options = []
    for tool in tools:
        fn = tool.get("function", {})
        if only is not None and fn.get("name") != only:
            continue
        params = fn.get("parameters") or {"type": "object"}
        options.append({
            "type": "object",
            "properties": {"name": {"const": fn.get("name")}, "arguments": params},
            "required": ["name", "arguments"],
        })
    if not options:
        raise InvalidRequest(f"tool_choice names an unknown function: {only!r}", param="tool_choice")
    return options[0] if len(options) == 1 else {"oneOf": options}
