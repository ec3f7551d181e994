"""Validate InferenceService manifests against KServe's CRD schema: the cluster's, or a shipped snapshot.

Where the schema comes from:
- `deploy` on Kubeflow reads the CRD *installed in the target cluster* through the
  apiextensions API (`cluster_schema`), so a manifest is checked against the KServe
  version that will receive it. No CRD there: "KServe is not installed in this cluster".
- Offline (`kubepipe kserve validate | manifest`), a snapshot of the v1beta1
  openAPIV3Schema ships with the package (`inferenceservice.schema.json.gz`, made by
  `scripts/kserve_crd_snapshot.py`; its `source` field names the KServe commit).
- `--crd FILE` / `$KUBEPIPE_KSERVE_CRD`: a CRD YAML of your own (e.g. `kubectl get crd
  inferenceservices.serving.kserve.io -o yaml`).

Validation is *strict* like `kubectl apply --validate=strict`: a field the
schema does not know is an error (the API server would silently prune it, so a
typo such as `canaryTrafficPercent` would deploy without a canary). Kubernetes
extensions are lowered to plain JSON Schema first:
`x-kubernetes-int-or-string` -> integer or string,
`x-kubernetes-preserve-unknown-fields` -> unknown fields allowed there.

Other engineers (checkov / manifest lint) reuse `validate_manifest`.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from kubepipe.components.errors import ComponentError

__all__ = [
    "CRD_FILE",
    "CRD_NAME",
    "SNAPSHOT",
    "ManifestInvalid",
    "CrdNotFound",
    "crd_path",
    "crd_schema",
    "snapshot",
    "cluster_schema",
    "load_schema",
    "manifest_errors",
    "validate_manifest",
]

CRD_FILE = "serving.kserve.io_inferenceservices.yaml"
CRD_NAME = "inferenceservices.serving.kserve.io"
SNAPSHOT = "inferenceservice.schema.json.gz"
_ENV = "KUBEPIPE_KSERVE_CRD"
# RFC 1123 label, as the API server checks an InferenceService name (KServe adds
# a stricter 63-char DNS-1035 rule since the name becomes a Service host name).
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class ManifestInvalid(ComponentError):
    """A generated manifest does not match the CRD schema."""


class CrdNotFound(ComponentError):
    """No InferenceService CRD: not in the cluster, or the named file is missing or not one."""


def crd_path(path: str | os.PathLike | None = None) -> Path | None:
    """The CRD file to use: `path`, else $KUBEPIPE_KSERVE_CRD, else None (the shipped snapshot)."""
    given = path or os.environ.get(_ENV)
    if not given:
        return None
    cand = Path(given)
    if cand.is_dir():
        cand = cand / CRD_FILE
    if not cand.is_file():
        where = "--crd" if path else f"${_ENV}"
        raise CrdNotFound(f"{where} {given}: no such CRD file; pass the YAML of "
                          f"`kubectl get crd {CRD_NAME} -o yaml`, or leave it out to use the shipped snapshot")
    return cand


def crd_schema(crd: Any, where: str) -> dict:
    """The v1beta1 openAPIV3Schema of an InferenceService CRD document (raw, not lowered)."""
    try:
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
        return version["schema"]["openAPIV3Schema"]
    except (KeyError, TypeError, StopIteration) as exc:
        raise CrdNotFound(f"{where}: not an InferenceService CRD with a v1beta1 schema") from exc


@functools.lru_cache(maxsize=1)
def snapshot() -> dict:
    """The shipped snapshot: {"source": "<where it came from>", "schema": <openAPIV3Schema>}."""
    data = resources.files("kubepipe.components.deploy").joinpath(SNAPSHOT).read_bytes()
    return json.loads(gzip.decompress(data))


def _lower(node: Any) -> Any:
    """Kubernetes structural schema -> strict JSON Schema (a new tree)."""
    if isinstance(node, list):
        return [_lower(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _lower(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        out.get("type") == "object"
        and "properties" in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


def _strict(schema: dict) -> dict:
    """The lowered, strict JSON Schema of a v1beta1 InferenceService, metadata checked as the API server does."""
    lowered = _lower(schema)
    # metadata is `type: object` in every CRD; the API server checks it, so do we.
    lowered["properties"]["metadata"] = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 63, "pattern": _NAME.pattern},
            "namespace": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    lowered["required"] = sorted(set(lowered.get("required", [])) | {"apiVersion", "kind", "spec"})
    return lowered


@functools.lru_cache(maxsize=4)
def _from_file(path: str) -> dict:
    import yaml  # the C loader parses a 2 MB CRD in ~1 s

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, "rb") as fh:
            crd = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise CrdNotFound(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]})") from None
    return _strict(crd_schema(crd, path))


@functools.lru_cache(maxsize=1)
def _from_snapshot() -> dict:
    return _strict(snapshot()["schema"])


def load_schema(path: str | os.PathLike | None = None) -> dict:
    """The strict schema from `path` / $KUBEPIPE_KSERVE_CRD, else from the shipped snapshot (cached)."""
    found = crd_path(path)
    return _from_file(str(found)) if found else _from_snapshot()


def cluster_schema(api_client) -> dict:
    """The strict schema of the InferenceService CRD installed in the cluster `api_client` talks to."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        # Raw JSON: the generated models would rebuild ~600 KB of schema as objects, for nothing.
        resp = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(CRD_NAME,
                                                                                     _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            raise CrdNotFound(f"KServe is not installed in this cluster: there is no CustomResourceDefinition "
                              f"{CRD_NAME}; install KServe (terraform/modules/gke-kubeflow does) or deploy to "
                              "another target") from None
        hint = (f"grant the pipeline's service account `get` on customresourcedefinitions/{CRD_NAME} "
                "(cluster scope)" if exc.status in (401, 403) else "")
        raise CrdNotFound(f"reading CRD {CRD_NAME} failed ({exc.status} {exc.reason}); {hint}".rstrip("; ")) from None
    try:
        raw = json.loads(resp.data)
    except ValueError:
        raise CrdNotFound(f"reading CRD {CRD_NAME}: the API server answered something that is not JSON") from None
    return _strict(crd_schema(raw, f"the cluster's {CRD_NAME}"))


def _where(error) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def manifest_errors(manifest: dict, *, crd: str | os.PathLike | None = None, schema: dict | None = None
                    ) -> list[str]:
    """Every schema violation of `manifest`, as 'path: message' lines (empty when valid).

    Against `schema` (e.g. `cluster_schema(...)`), else the CRD file `crd`, else the shipped snapshot.
    """
    import jsonschema

    schema = schema if schema is not None else load_schema(crd)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    lines = [f"{_where(e)}: {e.message}" for e in errors]
    if manifest.get("apiVersion") not in (None, "serving.kserve.io/v1beta1"):
        lines.append(f"apiVersion: expected serving.kserve.io/v1beta1, got {manifest['apiVersion']!r}")
    if manifest.get("kind") not in (None, "InferenceService"):
        lines.append(f"kind: expected InferenceService, got {manifest['kind']!r}")
    return lines


def validate_manifest(manifest: dict, *, crd: str | os.PathLike | None = None, schema: dict | None = None
                      ) -> dict:
    """Return `manifest` unchanged, or raise ManifestInvalid listing every violation."""
    errors = manifest_errors(manifest, crd=crd, schema=schema)
    if errors:
        name = (manifest.get("metadata") or {}).get("name", "?")
        raise ManifestInvalid(
            f"InferenceService {name!r} does not match the KServe CRD:\n  - " + "\n  - ".join(errors)
        )
    return manifest
