"""The one way a step or command opens the registry it registers and promotes through.

`register-model`, `deploy` (after a good rollout) and `kubepipe models promote | rollback` all call
`open_registry(uri, profile)`: the kubepipe registry at `uri`, or, when the profile says
`vertex_model_registry: true` (target vertex, a gs:// registry), the same registry mirrored onto
Vertex AI Model Registry (`VertexModelRegistry`): every version uploaded, `champion` / `previous`
aliases moved with every promote and rollback, whoever moves them.
"""

from __future__ import annotations

from typing import Any, Mapping

from kubepipe.components.registry.registry import Registry
from kubepipe.components.registry.version import PROFILE_SOURCE, URI_SOURCE, RegistryError

__all__ = ["open_registry", "mirrors_to_vertex", "step_registry"]


def mirrors_to_vertex(profile: Mapping[str, Any] | None) -> bool:
    p = dict(profile or {})
    return bool(p.get("vertex_model_registry")) and p.get("target", "vertex") == "vertex"


def open_registry(uri: str | None, profile: Mapping[str, Any] | None = None, *, credentials: Any = None,
                  source: str = URI_SOURCE):
    """`Registry(uri)`, or a `VertexModelRegistry` when the profile asks for the Vertex mirror.

    `profile` is the profile as steps see it (`ctx_profile`, `Profile.public_dict()`); `credentials`
    (tests) overrides application-default credentials; `source`, where `uri` was given (errors name it)."""
    if not mirrors_to_vertex(profile):
        return Registry(uri or None, source=source)
    p = dict(profile or {})
    missing = [k for k in ("project", "region", "runtime_image") if not p.get(k)]
    if missing:
        raise RegistryError(f"vertex_model_registry: the profile needs {', '.join(missing)} to mirror models "
                            "onto Vertex AI Model Registry")
    from kubepipe.components.registry.vertex import VertexModelRegistry

    return VertexModelRegistry(uri or p.get("registry_uri") or "", project=p["project"], location=p["region"],
                               serving_image=p["runtime_image"], credentials=credentials,
                               api_endpoint=p.get("api_endpoint") or None, source=source)


def step_registry(uri: str | None) -> Registry:
    """The registry a pipeline step reads: `uri` is the profile's registry_uri (ctx_registry_uri), which its
    errors name (was '--registry / KUBEPIPE_REGISTRY', the CLI's flags, for a URI the profile gave)."""
    return Registry(uri or None, source=PROFILE_SOURCE)
