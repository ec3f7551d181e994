"""What kubepipe needs to know about a third-party component or compiled pipeline file.

- `platform`: kfp-kubernetes settings (the second YAML document, `platforms.kubernetes`):
  fine on Kubeflow, but Vertex AI cannot load an IR that carries them.
- `workspace`: a pipeline workspace (`PipelineConfig(workspace=...)`, `{{$.workspace_path}}`,
  importers with `downloadToWorkspace`): kubepipe pipelines do not create one.
- `local_blockers`: placeholders kfp.local cannot resolve. It reads an artifact placeholder
  as the first artifact's field (`{{$.inputs.artifacts['x'].path}}`), so a bare artifact
  placeholder (the whole list, as JSON) fails with an IndexError, a field of an artifact
  list silently sees one artifact only, and json_escape placeholders are refused. Python
  components read artifact lists through `{{$}}` (the executor input), which it runs fine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kubepipe.util import nested_strings

__all__ = ["ForeignFacts", "inspect_documents"]

_PLACEHOLDER = re.compile(r"\{\{\$\.(inputs|outputs)\.artifacts\['([^']+)'\](\.\w+)?\}\}")


@dataclass
class ForeignFacts:
    platform: list[str] = field(default_factory=list)  # "secretAsEnv on exec-comp", ...
    workspace: str | None = None  # why the file needs a workspace
    local_blockers: list[str] = field(default_factory=list)


def _walk_dicts(node: Any):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk_dicts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_dicts(v)


def _platform(doc: dict) -> list[str]:
    k8s = (doc.get("platforms") or {}).get("kubernetes") or {}
    out = []
    for executor, settings in sorted(((k8s.get("deploymentSpec") or {}).get("executors") or {}).items()):
        for key in sorted(settings or {}):
            out.append(f"{key} on {executor}")
    for key in sorted(k8s.get("pipelineConfig") or {}):
        out.append(f"pipelineConfig.{key}")
    return out


def _artifact_lists(doc: dict) -> set[str]:
    """Names of artifact inputs / outputs declared as lists anywhere in the document."""
    names = set()
    for d in _walk_dicts(doc):
        for section in ("inputDefinitions", "outputDefinitions"):
            for name, spec in ((d.get(section) or {}).get("artifacts") or {}).items():
                if isinstance(spec, dict) and spec.get("isArtifactList"):
                    names.add(name)
    return names


def _container_strings(doc: dict):
    for executor in ((doc.get("deploymentSpec") or {}).get("executors") or {}).values():
        container = (executor or {}).get("container") or {}
        for key in ("command", "args"):
            for s in container.get(key) or []:
                if isinstance(s, str):
                    yield s


def inspect_documents(docs: list[Any]) -> ForeignFacts:
    facts = ForeignFacts()
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        facts.platform += _platform(doc)
        if "workspace" in (((doc.get("platforms") or {}).get("kubernetes") or {}).get("pipelineConfig") or {}):
            facts.workspace = facts.workspace or "its platform spec sets pipelineConfig.workspace"
        if any("{{$.workspace_path}}" in s for s in nested_strings(doc)):
            facts.workspace = facts.workspace or "a task reads {{$.workspace_path}}"
        if any(d.get("downloadToWorkspace") is True for d in _walk_dicts(doc)):
            facts.workspace = facts.workspace or "an importer downloads into the workspace"
        lists = _artifact_lists(doc)
        for s in _container_strings(doc):
            for m in _PLACEHOLDER.finditer(s):
                if m.group(3) is None:
                    facts.local_blockers.append(f"{m.group(0)} (a whole artifact, as JSON)")
                elif m.group(2) in lists:
                    facts.local_blockers.append(f"{m.group(0)} (one field of an artifact list)")
            if "json_escape" in s:
                facts.local_blockers.append("a json_escape placeholder")
    facts.local_blockers = sorted(set(facts.local_blockers))
    return facts
