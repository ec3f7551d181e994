"""A compiled pipeline as the remote backends see it: IR text + name + content hash + schedule.

The backends take this small object, not spec/plan internals, so they work on any KFP IR
(kubepipe's compiler output or a third-party IR file).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml

from kubepipe.errors import UserError
from kubepipe.labels import ir_labels
from kubepipe.plan.param_checks import refuse_run_values
from kubepipe.spec.params import IR_PARAM_TYPES, coerce_params

__all__ = ["PipelinePackage"]


@dataclass(frozen=True)
class PipelinePackage:
    name: str
    content_hash: str  # "sha256:<hex>"
    ir_yaml: str
    schedule: dict | None = None
    profile: dict = field(default_factory=dict)
    # params a step reads as a file path or URI; those whose default is a local path -> where it is written
    path_params: tuple[str, ...] = ()
    local_path_defaults: dict = field(default_factory=dict)
    # `--param` values -> UserError if the steps' own checks refuse one (kubepipe pipelines; a bare IR has none)
    check_values: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False, repr=False)
    labels: dict = field(default_factory=dict)  # the pipeline's metadata.labels and owner (Plan.labels)

    @classmethod
    def from_compiled(cls, compiled: Any) -> "PipelinePackage":
        """From `kubepipe.api.compile(...)`'s result (fields ir_yaml, pipeline_name, content_hash, schedule, profile)."""
        profile = getattr(compiled, "profile", None) or {}
        if hasattr(profile, "model_dump"):  # kubepipe.spec.profiles.Profile
            profile = profile.model_dump()
        plan = getattr(compiled, "plan", None)
        return cls(
            name=compiled.pipeline_name,
            content_hash=compiled.content_hash,
            ir_yaml=compiled.ir_yaml,
            schedule=getattr(compiled, "schedule", None),
            profile=dict(profile),
            path_params=tuple(getattr(plan, "path_params", ()) or ()),
            local_path_defaults=dict(getattr(plan, "remote_path_params", {}) or {}),
            check_values=functools.partial(refuse_run_values, plan.steps) if plan is not None else None,
            labels=dict(getattr(plan, "labels", None) or {}),
        )

    @classmethod
    def from_ir(cls, ir_yaml: str, *, name: str | None = None, schedule: dict | None = None,
                profile: dict | None = None) -> "PipelinePackage":
        """From IR text alone: name from pipelineInfo, hash of the text, labels from kubepipe's header."""
        docs = list(yaml.safe_load_all(ir_yaml))
        if not docs or not isinstance(docs[0], dict) or "pipelineInfo" not in docs[0]:
            raise UserError("compiled pipeline: not a KFP IR (no pipelineInfo); compile it with `kubepipe compile`")
        return cls(
            name=name or docs[0]["pipelineInfo"]["name"],
            content_hash="sha256:" + hashlib.sha256(ir_yaml.encode()).hexdigest(),
            ir_yaml=ir_yaml,
            schedule=schedule,
            profile=dict(profile or {}),
            labels=ir_labels(ir_yaml),
        )

    @property
    def hex(self) -> str:
        return self.content_hash.split(":", 1)[-1]

    @property
    def short_hash(self) -> str:
        return self.hex[:12]

    @property
    def version_name(self) -> str:
        """KFP pipeline-version name: the content hash, so the same spec maps to one version."""
        return self.content_hash

    def ir(self) -> dict:
        return self._ir

    @functools.cached_property
    def _ir(self) -> dict:  # parsed once: a compiled IR is hundreds of KB of YAML
        return next(iter(yaml.safe_load_all(self.ir_yaml)))

    def root_parameters(self) -> dict[str, dict]:
        """Pipeline parameters declared by the IR root: name -> {parameterType, defaultValue?}."""
        root = self.ir().get("root", {})
        return dict(root.get("inputDefinitions", {}).get("parameters", {}) or {})

    def coerce_params(self, params: Mapping[str, Any] | None) -> dict:
        """CLI strings or API values -> the IR's parameter types; ParamError (exit 2) naming a bad one,
        UserError for a value a step's check refuses (as a local run does, before anything is uploaded)."""
        types = {name: IR_PARAM_TYPES.get(p.get("parameterType", "STRING"), "str")
                 for name, p in self.root_parameters().items()}
        out = coerce_params(dict(params or {}), types, self.name)
        if self.check_values:
            self.check_values(out)
        return out

    def preflight(self, params: dict, target: str) -> list[str]:
        """Before anything is uploaded: raise UserError for what cannot run on `target`; return warnings.

        Refused: a file-path param left at a local default, or given a local path, which a pod cannot
        read; a credential-looking value, which the service would keep with the run and show in its UI (the
        rule the YAML's own values meet); a runtime image that is not set or a placeholder. Warned: an image
        not pinned by digest.
        """
        from kubepipe.backends.packaging.pins import image_problems
        from kubepipe.secrets import REDACTED, param_credentials
        from kubepipe.arguments import param_given, param_hint
        from kubepipe.spec.paths import pod_readable, remote_path_hint
        from kubepipe.spec.placeholders import placeholder_buckets

        errors: list[str] = []
        for name, _kind in param_credentials(params):
            errors.append(f"{param_given(name, REDACTED, REDACTED)}: looks like a credential, and {target} keeps a run's "
                          f"parameters and shows them in its UI; give it to the step from a secret instead "
                          f"(env: {{VAR: {{secret: <name>, key: <key>}}}}) and read VAR in the component")
        for name in self.path_params:
            if name in params:
                value = params[name]
                if isinstance(value, str) and not pod_readable(value, target):
                    errors.append(f"{param_given(name, value, value)}: a local path, which a pod cannot read; "
                                  f"{remote_path_hint()}")
            elif name in self.local_path_defaults:
                errors.append(f"param `{name}` is left at its local default ({self.local_path_defaults[name]}); "
                              f"pass {param_hint(name, 'gs://...', repr('gs://...'))} (or s3://...): a {target} pod "
                              "cannot read this machine's files")
        errors += [f"{key} {problem}; {fix}" for key, problem, fix in placeholder_buckets(self.profile)]
        image_errors, warnings = image_problems(self.images(), target)
        errors += image_errors
        if errors:
            raise UserError(f"cannot submit {self.name} to {target}:\n  - " + "\n  - ".join(errors))
        return warnings

    def images(self) -> list[str]:
        """Every container image the pipeline's tasks run in (built-ins: the profile's runtime_image)."""
        found: list[str] = []
        for executor in (self.ir().get("deploymentSpec", {}).get("executors") or {}).values():
            image = ((executor or {}).get("container") or {}).get("image")
            if image and image not in found:
                found.append(image)
        return found

    @contextlib.contextmanager
    def file(self) -> Iterator[str]:
        """The IR written to a temporary `.yaml` file (the kfp client and aiplatform read files)."""
        fd, path = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(self.ir_yaml)
            yield path
        finally:
            Path(path).unlink(missing_ok=True)
