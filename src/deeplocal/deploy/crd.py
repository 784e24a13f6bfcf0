"""The `LLMDeployment` CustomResourceDefinition, with an OpenAPI v3 schema generated from the spec models.

deploy/operator/crd.yaml is this function's output (a test keeps them equal); regenerate it with
`deeplocal deploy crd > deploy/operator/crd.yaml`.
"""

from __future__ import annotations

from typing import Any

from deeplocal.deploy.spec import GROUP, KIND, PLURAL, VERSION, LLMDeploymentSpec

_DROP = ("title", "default", "description")


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs and turn pydantic's JSON Schema into a Kubernetes structural schema."""
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _structural(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in node:  # Optional[X]: X, nullable
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        out = _structural(options[0], defs) if len(options) == 1 else {"x-kubernetes-preserve-unknown-fields": True}
        if len(options) < len(node["anyOf"]):
            out = {**out, "nullable": True}
        return out
    out = {k: _structural(v, defs) for k, v in node.items() if k not in _DROP and k != "$defs"}
    if out.get("additionalProperties") is True or out.get("additionalProperties") is False:
        out.pop("additionalProperties")  # structural schemas: a free-form map preserves unknown fields
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("type") == "array" and "prefixItems" in out:
        out.pop("prefixItems")
    return out


def spec_schema() -> dict[str, Any]:
    raw = LLMDeploymentSpec.model_json_schema(by_alias=True)
    return _structural(raw, raw.get("$defs", {}))


def status_schema() -> dict[str, Any]:
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def crd() -> dict[str, Any]:
    printer = [
        {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
        {"name": "Engine", "type": "string", "jsonPath": ".spec.engine"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"kind": KIND, "plural": PLURAL, "singular": KIND.lower(), "shortNames": ["llmd"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                "additionalPrinterColumns": printer,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "required": ["spec"],
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "metadata": {"type": "object"}, "spec": spec_schema(),
                                   "status": status_schema()}}},
            }],
        },
    }
