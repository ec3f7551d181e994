"""JSON Schema of the pipeline YAML, for editors (yaml-language-server) and the docs."""

from __future__ import annotations

import json
import typing

from kubepipe.spec.models import Pipeline, Spec, _kinds

__all__ = ["pipeline_schema", "schema_json", "reference_markdown"]


def pipeline_schema() -> dict:
    schema = Pipeline.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://kubepipe.dev/schema/pipeline-v1.json"
    schema["title"] = "kubepipe pipeline (kubepipe/v1)"
    _quoted_numbers(schema)
    return schema


# A number as text, loosely (pydantic's lax reading, validate's, takes `1_0`, ` +.5e3 `, `-Infinity`, `na_n`: the
# schema must not flag what validate reads, whose range and form it says); or text holding `${env.NAME}`, whose
# value an editor cannot know.
_NUMBER_TEXT = (r"^[\s0-9+\-._eE]*[0-9][\s0-9+\-._eE]*$"
                r"|^[\s+\-_]*[iInN][\s_iInNfFtTyYaA]*$"  # inf, infinity, nan
                r"|\$\{env\.")


def _quoted_numbers(schema: dict) -> None:
    """Decision 0003's rule for a number in quotes in the schema too: a field of a pipeline section taking a number
    and no text (`retries`, `parallelism`, `gpu.count`, ...) reads `'3'` as 3 (`retries: ${env.RETRIES:-2}`), so its
    schema takes such text, else editors flag what validate accepts."""
    defs = schema.get("$defs", {})
    models, seen = [Spec], set()
    while models:
        model = models.pop()
        models += model.__subclasses__()
        node = schema if model is Pipeline else defs.get(model.__name__)
        if node is None or model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            kinds = _kinds(field.annotation)
            if not kinds & {int, float} or kinds & {str, typing.Any, bool}:
                continue
            prop = node["properties"][field.alias or name]
            branches = prop.get("anyOf", [prop])
            number = next(b for b in branches if b.get("type") in ("integer", "number"))
            text = {"type": "string", "pattern": _NUMBER_TEXT}
            if "anyOf" in prop:
                branches.insert(branches.index(number) + 1, text)
            else:
                keep = {k: prop.pop(k) for k in ("title", "default", "description") if k in prop}
                node["properties"][field.alias or name] = {**keep, "anyOf": [prop, text]}


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
            quoted = any(p.get("pattern") == _NUMBER_TEXT for p in prop["anyOf"])
            return " \\| ".join(type_of(p) for p in prop["anyOf"] if p.get("type") != "null"
                                 and p.get("pattern") != _NUMBER_TEXT) + (" (quotes allowed)" if quoted else "")
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
