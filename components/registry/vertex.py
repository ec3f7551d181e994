"""Optional Vertex AI Model Registry mirror of a kubepipe registry.

The kubepipe registry on GCS (`gs://...`) stays the source of truth: version
numbers, the compare-and-swap alias moves, history and audit records live
there. Vertex is a projection for its console and for deploying by alias:

- each kubepipe version n is uploaded as a version of one Vertex Model
  (model id derived from the name) whose `artifact_uri` is the version's
  folder in the registry, with version alias `v<n>` and label `kubepipe-version`;
- after every promote / rollback, `sync_aliases` makes the Vertex aliases
  `champion` and `previous` point where the registry says. Vertex moves an
  alias off its old version when it is merged onto a new one, and the sync
  always reads the newest registry state, so concurrent promoters converge
  on the registry's final answer (Vertex has no compare-and-swap on aliases).

Public aiplatform API only: `kubepipe.vertex_clients.vertex_init` (`aiplatform.init`, process-wide: some
calls read nothing else) before each use, and project, location and credentials with each call.
aiplatform is imported lazily; tests drive the real client against a loopback
fake (tests/contract/test_registry_vertex.py). `open_registry` (open.py) picks this
class when the profile says `vertex_model_registry: true`.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from kubepipe.clients import service_failed
from kubepipe.components.registry.aliases import ANY
from kubepipe.components.registry.registry import Registry
from kubepipe.components.registry.version import ALIASES, ModelVersion, RegistryError, RegistryUnavailable
from kubepipe.labels import gcp_label
from kubepipe.util import local_path

__all__ = ["VertexModelRegistry", "vertex_model_id", "AliasSyncFailed"]


class AliasSyncFailed(RegistryError):
    """The kubepipe registry's aliases moved (the source of truth: `champion` is `version` there), but Vertex's were
    not moved after it. The message says both states and the command that moves Vertex's; retrying does it too."""

    def __init__(self, message: str, *, name: str, version: int, unavailable: bool = False):
        super().__init__(message, retryable=True)
        self.name, self.version = name, version
        # Vertex failing or not answering (5xx, 429, no connection) exits 1 as a service's failure does; refusing
        # the move (denied) 2, the user's to fix (docs/cli.md's exit codes)
        self.exit_code = 1 if unavailable else 2


def vertex_model_id(name: str) -> str:
    """A Vertex model id for a kubepipe model name: lowercase letters, digits and '-', max 63."""
    mid = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not mid or not mid[0].isalpha():
        mid = f"m-{mid}"
    return mid[:63].rstrip("-")


class VertexModelRegistry:
    """A `Registry` on GCS whose versions and aliases are mirrored onto Vertex AI Model Registry."""

    def __init__(self, registry_uri: str, *, project: str, location: str, serving_image: str,
                 credentials=None, api_endpoint: str | None = None, source: str = "registry_uri"):
        uri = str(registry_uri)
        if local_path(uri) is not None:
            raise RegistryError(f"the Vertex registry mirror needs a gs:// registry_uri (Vertex reads the model "
                                f"files from there), got {registry_uri!r} ({source})")
        if not (project and location):
            raise RegistryError("the Vertex registry mirror needs the profile's project and region")
        self.registry = Registry(registry_uri, source=source)
        self.project, self.location, self.serving_image = project, location, serving_image
        self.credentials, self.api_endpoint = credentials, api_endpoint  # an endpoint is spoken to over REST

    def __getattr__(self, attr: str) -> Any:  # versions, get, alias, history, names, model_path, store, gc
        if attr.startswith("_") or attr == "registry":
            raise AttributeError(attr)
        return getattr(self.registry, attr)

    def __repr__(self) -> str:
        return f"VertexModelRegistry({self.registry.store.uri()!r}, project={self.project!r}, location={self.location!r})"

    @property
    def _where(self) -> dict:
        """Project, location and credentials for each aiplatform call (public per-call arguments)."""
        return {"project": self.project, "location": self.location, "credentials": self.credentials}

    @contextlib.contextmanager
    def _aiplatform(self):
        from kubepipe.vertex_clients import vertex_init

        vertex_init({"project": self.project, "region": self.location}, credentials=self.credentials,
                    api_endpoint=self.api_endpoint)
        from google.cloud import aiplatform

        yield aiplatform

    def _resource(self, name: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/models/{vertex_model_id(name)}"

    def _existing(self, aiplatform, name: str):
        from google.api_core import exceptions

        try:
            return aiplatform.Model(model_name=self._resource(name), **self._where)
        except exceptions.NotFound:
            return None

    def register(self, model_dir: str, *, name: str, **kwargs) -> ModelVersion:
        """Register in the GCS registry, then upload the version to Vertex (alias `v<n>`) unless it is there."""
        self._check_model_id(name)
        mv = self.registry.register(model_dir, name=name, **kwargs)
        # the same files already a version (a resumed run): uploaded again only if Vertex lacks it
        try:
            if not self.registry.existing or mv.version not in {v["kubepipe_version"] for v in self._listed(name)}:
                self._upload(mv)
        except ImportError:  # the missing extra, as the CLI names it (kubepipe[vertex])
            raise
        except Exception as exc:  # noqa: BLE001 - any client failure: the version is registered all the same
            kind = RegistryUnavailable if service_failed(exc) else RegistryError
            raise kind(
                f"model `{name}` v{mv.version} is registered in {self.registry.store.uri()}, but its upload to Vertex "
                f"AI Model Registry failed: {_failure(exc)}; a retry of the register-model step uploads it (the same files "
                f"make no second version), and so does promoting v{mv.version} (a promote uploads a version Vertex "
                "lacks)",
                retryable=True) from exc
        return mv

    def _upload(self, mv: ModelVersion) -> None:
        """Upload a registered version to Vertex as a version of the model's Vertex model (alias `v<n>`)."""
        name = mv.name
        with self._aiplatform() as aiplatform:
            parent = self._existing(aiplatform, name)
            aiplatform.Model.upload(
                display_name=name, artifact_uri=mv.model_uri, serving_container_image_uri=self.serving_image,
                model_id=None if parent else vertex_model_id(name),
                parent_model=parent.resource_name if parent else None,
                is_default_version=parent is None, version_aliases=[f"v{mv.version}"],
                version_description=f"kubepipe {name} v{mv.version}: {mv.metadata.get('decision', '')}"[:1000],
                labels={"kubepipe-model": gcp_label(name), "kubepipe-version": str(mv.version)}, **self._where,
            )

    def _check_model_id(self, name: str) -> None:
        """Two kubepipe models must not mirror onto one Vertex model (`a_b` and `a-b` are both `a-b`): their versions
        were mixed there, and one's champion alias moved onto the other's version."""
        mid = vertex_model_id(name)
        other = next((n for n in self.registry.names() if n != name and vertex_model_id(n) == mid), None)
        if other is not None:
            raise RegistryError(
                f"cannot register model `{name}` with the Vertex AI mirror: its Vertex model id `{mid}` is model "
                f"`{other}`'s (an id keeps lowercase letters, digits and '-', at most 63), so both would be one Vertex "
                f"model; register it as `{other}`, or choose a name that maps to another id")

    def promote(self, name: str, version, *, reason: str, by: str | None = None, run_id: str = "",
                details: dict | None = None, expect=ANY) -> ModelVersion:
        mv = self.registry.promote(name, version, reason=reason, by=by, run_id=run_id, details=details, expect=expect)
        self._sync_after_move(name, mv.version, "promote")
        return mv

    def rollback(self, name: str, *, reason: str = "rollback", by: str | None = None) -> ModelVersion:
        mv = self.registry.rollback(name, reason=reason, by=by)
        self._sync_after_move(name, mv.version, "rollback")
        return mv

    def _sync_after_move(self, name: str, champion: int, action: str) -> None:
        """`sync_aliases` after the registry's move; a failure (denied, unreachable, a quota) is AliasSyncFailed
        saying what moved and what did not, and how to finish: it was Vertex's raw error, with nothing saying that
        the champion had moved in the registry all the same."""
        try:
            self.sync_aliases(name)
        except ImportError:  # the missing extra, as the CLI names it (kubepipe[vertex])
            raise
        except Exception as exc:  # noqa: BLE001 - any client failure (api_core, google.auth, transport) is one state
            why = _failure(exc)
            raise AliasSyncFailed(
                f"model `{name}`: the {action} is done in the registry {self.registry.store.uri()} (champion "
                f"v{champion}), but Vertex AI Model Registry's `champion` / `previous` aliases were not moved: {why}; "
                f"they may still name the versions before the {action}. Move them (the registry's champion stays "
                f"v{champion}): kubepipe models promote {name} {champion} --target vertex --reason 'sync Vertex "
                "aliases' (with this run's --profile)", name=name, version=champion,
                unavailable=service_failed(exc)) from exc

    def vertex_versions(self, name: str) -> list[dict]:
        """Vertex's view: version id, aliases and the kubepipe version number of each version."""
        with self._aiplatform() as aiplatform:
            reg = aiplatform.models.ModelRegistry(model=self._resource(name), **self._where)
            return [{"version_id": v.version_id, "aliases": list(v.version_aliases),
                     "kubepipe_version": next((int(a[1:]) for a in v.version_aliases if re.fullmatch(r"v\d+", a)), None)}
                    for v in reg.list_versions()]

    def _listed(self, name: str) -> list[dict]:
        """`vertex_versions`, [] when Vertex has no model for `name` yet."""
        from google.api_core import exceptions

        try:
            return self.vertex_versions(name)
        except exceptions.NotFound:
            return []

    def sync_aliases(self, name: str) -> dict:
        """Point Vertex's `champion` / `previous` where the registry's newest state points. A version they point to
        that Vertex lacks (its upload failed, or it was registered without the mirror) is uploaded first: the move
        was a raw NotFound after the kubepipe registry's champion had moved."""
        state = self.registry.aliases(name)
        listed = self._listed(name)
        missing = {n for n in state.values() if n is not None} - {v["kubepipe_version"] for v in listed}
        for n in sorted(missing):
            self._upload(self.registry.get(name, n))
        if missing:
            listed = self.vertex_versions(name)
        current = {a: v["version_id"] for v in listed for a in v["aliases"] if a in ALIASES}
        with self._aiplatform() as aiplatform:
            reg = aiplatform.models.ModelRegistry(model=self._resource(name), **self._where)
            for alias, n in state.items():
                if n is not None:
                    reg.add_version_aliases([alias], version=f"v{n}")  # Vertex moves it off the old version
                elif alias in current:
                    reg.remove_version_aliases([alias], version=current[alias])
        return state


def _failure(exc: Exception) -> str:
    """A client's failure in one line, credentials redacted, at most 500 characters."""
    from kubepipe.secrets import redact_text

    return " ".join(redact_text(f"{type(exc).__name__}: {exc}").split())[:500]
