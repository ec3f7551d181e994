"""JSON Schema of the pipeline YAML, for editors (yaml-language-server) and the docs."""

from __future__ import annotations

import json

from kubepipe.spec.models import Pipeline

__all__ = ["pipeline_schema", "schema_json", "reference_markdown"]


def pipeline_schema() -> dict:
    schema = Pipeline.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://kubepipe.dev/schema/pipeline-v1.json"
    schema["title"] = "kubepipe pipeline (kubepipe/v1)"
    return schema


def schema_json() -> str:
    return json.dumps(pipeline_schema(), indent=2, sort_keys=True) + "\n"


def reference_markdown() -> str:
    """The YAML reference (docs/yaml-reference.md), generated from the same models."""
    schema = pipeline_schema()
    defs = schema.get("$defs", {})
    out = ["# Pipeline YAML reference (kubepipe/v1)", "",
           "Generated from the pydantic models by `kubepipe schema --format markdown`; do not edit.", ""]

    def type_of(prop: dict) -> str:
        if "$ref" in prop:
            return f"[{prop['$ref'].split('/')[-1]}](#{prop['$ref'].split('/')[-1].lower()})"
        if "anyOf" in prop:
            return " \\| ".join(type_of(p) for p in prop["anyOf"] if p.get("type") != "null")
        if "enum" in prop or "const" in prop:
            return " \\| ".join(f"`{v}`" for v in prop.get("enum", [prop.get("const")]))
        t = prop.get("type", "any")
        if t == "array":
            return f"list of {type_of(prop.get('items', {}))}"
        if t == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
            return f"map of {type_of(prop['additionalProperties'])}"
        return str(t)

    def table(title: str, model: dict) -> None:
        out.extend([f"## {title}", "", (model.get("description") or "").strip(), "",
                    "| key | type | default | required | description |", "|---|---|---|---|---|"])
        required = set(model.get("required", []))
        for key, prop in model.get("properties", {}).items():
            default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
            desc = (prop.get("description") or "").replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{key}` | {type_of(prop)} | {default} | {'yes' if key in required else ''} | {desc} |")
        out.append("")

    table("Pipeline", schema)
    for name in sorted(defs):
        table(name, defs[name])
    return "\n".join(out) + "\n"
