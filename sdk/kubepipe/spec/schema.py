"""JSON Schema of the pipeline YAML, for editors (yaml-language-server) and the docs."""

from __future__ import annotations

import json

from kubepipe.spec.models import Pipeline

__all__ = ["pipeline_schema", "schema_json"]


def pipeline_schema() -> dict:
    schema = Pipeline.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://kubepipe.dev/schema/pipeline-v1.json"
    schema["title"] = "kubepipe pipeline (kubepipe/v1)"
    return schema


def schema_json() -> str:
    return json.dumps(pipeline_schema(), indent=2, sort_keys=True) + "\n"
