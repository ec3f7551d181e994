"""Validate generated InferenceService manifests against KServe's real CRD schema.

The CRD (`serving.kserve.io_inferenceservices.yaml`, from kserve/kserve) is not
shipped in the package: it lives in the project's shared fixtures, next to the
repository (`<repo>/../shared/crds`). `KUBEPIPE_KSERVE_CRD` points elsewhere.

Validation is *strict* like `kubectl apply --validate=strict`: a field the
schema does not know is an error (the API server would silently prune it, so a
typo such as `canaryTraficPercent` would deploy without a canary). Kubernetes
extensions are lowered to plain JSON Schema first:
`x-kubernetes-int-or-string` -> integer or string,
`x-kubernetes-preserve-unknown-fields` -> unknown fields allowed there.

Other engineers (checkov / manifest lint) reuse `validate_manifest`.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from kubepipe.components.errors import ComponentError

__all__ = [
    "CRD_FILE",
    "ManifestInvalid",
    "CrdNotFound",
    "crd_path",
    "load_schema",
    "manifest_errors",
    "validate_manifest",
]

CRD_FILE = "serving.kserve.io_inferenceservices.yaml"
_ENV = "KUBEPIPE_KSERVE_CRD"
# RFC 1123 label, as the API server checks an InferenceService name (KServe adds
# a stricter 63-char DNS-1035 rule since the name becomes a Service host name).
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class ManifestInvalid(ComponentError):
    """A generated manifest does not match the CRD schema."""


class CrdNotFound(ComponentError):
    """The InferenceService CRD file could not be found."""


def crd_path(path: str | os.PathLike | None = None, *, repo_root: str | os.PathLike | None = None) -> Path:
    """Where the CRD is: `path`, else $KUBEPIPE_KSERVE_CRD, else `<repo>/../shared/crds/`."""
    # components/deploy/crd.py -> the repository root
    repo = Path(repo_root) if repo_root else Path(__file__).resolve().parents[2]
    candidates = [Path(p) for p in (path, os.environ.get(_ENV)) if p]
    candidates.append(repo.parent / "shared" / "crds" / CRD_FILE)
    for cand in candidates:
        if cand.is_dir():
            cand = cand / CRD_FILE
        if cand.is_file():
            return cand
    tried = ", ".join(str(c) for c in candidates)
    raise CrdNotFound(
        f"KServe InferenceService CRD not found (tried: {tried}); put {CRD_FILE} in "
        f"../shared/crds next to the repository or set {_ENV} to its path"
    )


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


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict:
    import yaml  # pyyaml comes with kfp; the C loader parses the 2 MB CRD in ~1 s

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, "rb") as fh:
        crd = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    try:
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
        schema = version["schema"]["openAPIV3Schema"]
    except (KeyError, TypeError, StopIteration) as exc:
        raise CrdNotFound(f"{path}: not an InferenceService CRD with a v1beta1 schema") from exc
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


def load_schema(path: str | os.PathLike | None = None) -> dict:
    """The lowered, strict JSON Schema of a v1beta1 InferenceService (cached)."""
    return _load(str(crd_path(path)))


def _where(error) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def manifest_errors(manifest: dict, *, crd: str | os.PathLike | None = None) -> list[str]:
    """Every schema violation of `manifest`, as 'path: message' lines (empty when valid)."""
    import jsonschema

    schema = load_schema(crd)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    lines = [f"{_where(e)}: {e.message}" for e in errors]
    if manifest.get("apiVersion") not in (None, "serving.kserve.io/v1beta1"):
        lines.append(f"apiVersion: expected serving.kserve.io/v1beta1, got {manifest['apiVersion']!r}")
    if manifest.get("kind") not in (None, "InferenceService"):
        lines.append(f"kind: expected InferenceService, got {manifest['kind']!r}")
    return lines


def validate_manifest(manifest: dict, *, crd: str | os.PathLike | None = None) -> dict:
    """Return `manifest` unchanged, or raise ManifestInvalid listing every violation."""
    errors = manifest_errors(manifest, crd=crd)
    if errors:
        name = (manifest.get("metadata") or {}).get("name", "?")
        raise ManifestInvalid(
            f"InferenceService {name!r} does not match the KServe CRD:\n  - " + "\n  - ".join(errors)
        )
    return manifest
