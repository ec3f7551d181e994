"""Target profiles (the nearest configs/<target>.yaml): where and how a pipeline runs.

Precedence, lowest first: built-in defaults for the target (local: runs, state and registry inside the
kubepipe home, `--home` / KUBEPIPE_HOME, default `.kubepipe`) < the profile file
(`--profile FILE`, else the nearest `configs/<target>.yaml` above the pipeline
or the working directory) < `${env.NAME}` inside it < `--set key=value`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, PrivateAttr, ValidationError as PydanticError, ValidationInfo, field_validator, model_validator

from kubepipe.arguments import from_cli, profile_hint, set_hint, sets_place, target_place
from kubepipe.errors import Issue, ValidationError
from kubepipe.spec.errors_map import issues_from_pydantic
from kubepipe.spec.interpolation import resolve_env, without_unset_env
from kubepipe.spec.models import Strict, labels_stay_apart
from kubepipe.spec.profile_sets import given_by_set, nest_sets, on_set, parse_set, set_labels
from kubepipe.spec.source import Locator, format_path, read_source
from kubepipe.spec.target_values import target_value_problem
from kubepipe.util import DEFAULT_HOME, HTTP_URL, IMAGE_REF, K8S_NAME, did_you_mean, normal_uri, uri_scheme

__all__ = ["Profile", "TARGETS", "IMAGE_NOT_SET", "PLACEHOLDER_BUCKET", "PLACEHOLDER_ENV", "DEPLOY_SETTINGS", "load_profile", "find_profile_file",
           "profile_source", "parse_set", "home_defaults"]

TARGETS = ("local", "kubeflow", "vertex")
# No image is published for you: a remote profile names the one you built (`kubepipe image build`).
# Until it does, validate and compile work and submit refuses this value before uploading anything.
IMAGE_NOT_SET = "kubepipe-runtime-image-not-set"
# `kubepipe init`'s remote profiles fall back to this bucket while the variable is unset; anyone can create a
# bucket of that name, so submit refuses it (a run would write its models and data there).
PLACEHOLDER_BUCKET = "change-me-bucket"
PLACEHOLDER_ENV = {"pipeline_root": "KUBEPIPE_PIPELINE_ROOT", "registry_uri": "KUBEPIPE_REGISTRY"}
# What a deploy step reads from its profile (`kserve manifest` reads these alone, see load_profile's deploy_only).
DEPLOY_SETTINGS = ("target", "runtime_image", "deploy_namespace", "deployment_mode", "deploy_service_account",
                   "gpu_types")

DEFAULTS: dict[str, dict[str, Any]] = {
    "local": {"runtime_image": "python:3.11-slim"},  # + home_defaults(): runs, registry, state in the home
    "kubeflow": {"runtime_image": IMAGE_NOT_SET, "namespace": "kubeflow",
                 "deploy_namespace": "kubepipe-serving", "deployment_mode": "serverless"},
    "vertex": {"runtime_image": IMAGE_NOT_SET},
}


class Auth(Strict):
    token_env: str | None = Field(default=None, description="Environment variable holding a KFP bearer token.")
    kubeconfig: str | None = None
    context: str | None = None


class Profile(Strict):
    apiVersion: Literal["kubepipe/v1"] = "kubepipe/v1"
    kind: Literal["Profile"] = "Profile"
    target: Literal["local", "kubeflow", "vertex"]
    pipeline_root: str | None = Field(None, description="Where runs write their artifacts: a folder on the local "
                                      "target; minio://, s3:// or gs:// on kubeflow; gs://bucket on vertex.")
    runtime_image: str = Field(pattern=IMAGE_REF, description="Image the built-in steps run in (pin it by digest).")
    registry_uri: str = "file://.kubepipe/registry"
    state_dir: str | None = None
    predictions_uri: str | None = Field(
        None, description="Prediction logs: where `serving.log` writes and `load-data` reads `predictions:<model>` "
        "(default: `predictions` beside the state dir).")
    experiment: str = "kubepipe"
    labels: dict[str, str] = Field({}, description="Labels of every run on this target (a Vertex job's, a local "
                                   "run record's), under the pipeline's metadata.labels, which win; one given with "
                                   "--set labels.<key>=... wins over the pipeline's.")
    gpu_types: dict[str, str] = Field({}, description="Extra GPU type names -> target accelerator names.")
    install_packages: bool = Field(
        False, description="Local runs: let third-party components pip-install their own packages "
        "(packages_to_install) into the run folder. Never kfp; off by default.")
    # kubeflow
    host: str | None = None
    namespace: str | None = Field(None, pattern=K8S_NAME, description="KFP namespace (multi-user Kubeflow).")
    auth: Auth = Auth()
    ssl_ca_cert: str | None = Field(
        None, description="CA bundle (PEM file) that signed the KFP host's TLS certificate (a private CA).")
    request_timeout_s: float = Field(
        60, gt=0, le=3600, description="Seconds a Kubeflow Pipelines API request waits for its answer, per attempt "
        "(the client tries a read up to 4 times; connecting waits at most 10 s).")
    deploy_namespace: str | None = Field(None, pattern=K8S_NAME, description="Namespace of the InferenceServices.")
    deploy_service_account: str | None = Field(
        None, pattern=K8S_NAME, description="Kubernetes service account of the InferenceServices when a deploy step "
        "sets no serving.service_account: KServe's storage initializer downloads the model as it (Workload Identity).")
    deployment_mode: Literal["serverless", "raw"] = "serverless"
    ingress_url: str | None = None
    prometheus_url: str | None = Field(
        None, pattern=HTTP_URL,
        description="Prometheus HTTP API the deploy step's canary_analysis reads KServe revision metrics from.")
    # vertex
    project: str | None = None
    region: str | None = None
    service_account: str | None = None
    network: str | None = None
    encryption_key: str | None = None
    vertex_model_registry: bool = Field(
        False, description="Mirror every registered version, and the champion / previous aliases on every "
        "promote and rollback, onto Vertex AI Model Registry (the gs:// registry stays the source of truth).")
    api_endpoint: str | None = Field(
        None, description="Vertex AI API endpoint instead of the regional one (e.g. a Private Service Connect "
        "endpoint); spoken over REST.")

    # where load_profile read it: the file's positions, and what --set gave (for `issue`)
    _locator: Locator | None = PrivateAttr(None)
    _sets: dict = PrivateAttr(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels_stay_apart(cls, labels: dict[str, str]) -> dict[str, str]:
        return labels_stay_apart(labels)  # the pipeline's rule: `kubepipe-hash` here was replaced unsaid

    @property
    def set_labels(self) -> dict[str, str]:
        """The labels given with `--set labels.<key>=...` (sets=): the command line's, which win over the pipeline's
        metadata.labels and owner as over the profile file's (kubepipe.plan.label_checks.pipeline_labels)."""
        given = self._sets.get("labels")
        return {k: self.labels[k] for k in given if k in self.labels} if isinstance(given, dict) else {}

    def issue(self, path: tuple, message: str, *, value: Any = None, hint: str | None = None,
              severity: str = "error") -> Issue:
        """An issue at `path` of this profile, where its value was written: `--set` when that gave it, else the
        profile file's line:col (a Locator's issue, which it takes the place of)."""
        if self._locator is not None and not given_by_set(self._sets, path):
            return self._locator.issue(path, message, value=value, hint=hint, severity=severity)
        where = sets_place() if given_by_set(self._sets, path) else f"<{self.target} profile>"
        return Issue(message, path=format_path(path), file=where, value=value, hint=hint, severity=severity)

    def source_of(self, key: str) -> str:
        """Where `key`'s value came from, as a message names it: `--set registry_uri`, `registry_uri in
        configs/vertex.yaml:5:15`, or `the vertex profile's default registry_uri`."""
        if given_by_set(self._sets, (key,)):
            return f"{sets_place()} {key}"
        loc = self._locator
        if loc is not None and any(lc.known((key,)) for lc in (loc, *loc.included)):  # written in a file
            return f"{key} in {loc.issue((key,), '').location}"
        return f"the {self.target} profile's default {key}"

    @field_validator("pipeline_root", "registry_uri", "state_dir", "predictions_uri", mode="before")
    @classmethod
    def _scheme_in_lower_case(cls, v: Any) -> Any:
        """`GS://bucket/root` is `gs://bucket/root` (schemes are case-insensitive; Vertex, fsspec and Google's clients
        take lower case only): vertex refused `pipeline_root: GS://b/p` as no gs:// URI."""
        return normal_uri(v) if isinstance(v, str) else v

    @field_validator("registry_uri")
    @classmethod
    def _registry_uri(cls, v: str) -> str:
        """What the registry refuses at run time (after training) is refused here; a password is the credential
        check's (`inline_secrets`)."""
        from kubepipe.secrets import registry_uri_problem

        problem = registry_uri_problem(v, password=False)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("host")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        """kfp.Client reads `localhost:8080` as https://localhost:8080: a port-forward then fails with an SSL error."""
        if v and not re.match(r"^https?://[^/\s]+", v):  # "" is no host: `needs host` says so
            raise ValueError("a KFP host is a URL with its scheme, e.g. http://localhost:8080 (after kubectl "
                             "port-forward) or https://kubeflow.example.com/pipeline")
        return v

    @field_validator("pipeline_root", "region", "project")
    @classmethod
    def _per_target_value(cls, v: str | None, info: ValidationInfo) -> str | None:
        """Said at the key that gave it (the file's line, or --set), not at `<vertex defaults>` nor at submit."""
        problem = target_value_problem(info.data.get("target"), info.field_name or "", v) if v else None
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _per_target(self, info: ValidationInfo) -> "Profile":
        deploy_only = bool((info.context or {}).get("deploy_only"))
        missing = _missing(self.target, lambda k: getattr(self, k), deploy_only)
        if missing:
            raise _AtKey(missing, *_needed(self.target, lambda k: getattr(self, k), deploy_only), "target")
        if self.vertex_model_registry and (self.target != "vertex" or uri_scheme(self.registry_uri) != "gs"):
            raise _AtKey("vertex_model_registry needs target vertex and a gs:// registry_uri (Vertex reads "
                         "the model files from there)", "vertex_model_registry")
        return self

    @property
    def effective_state_dir(self) -> str:
        if self.state_dir:
            return self.state_dir
        return f"{str(self.pipeline_root).rstrip('/')}/state"

    def public_dict(self) -> dict:
        """What components may see: no auth details."""
        return self.model_dump(exclude={"auth", "install_packages"}, exclude_none=True, mode="json")


class _AtKey(ValueError):
    """A check of the whole profile, said at the first of `keys` the profile gives (a key written empty, `target:`
    that asks for it), not at the file's first line."""

    def __init__(self, message: str, *keys: str):
        super().__init__(message)
        self.keys = keys


def _needed(target: str, value: Any, deploy_only: bool) -> list[str]:
    """The keys a run on `target` needs that the profile leaves unset (`value(key)`); none for `deploy_only`."""
    need = {"kubeflow": ["host", "pipeline_root"], "vertex": ["project", "region", "pipeline_root"]}
    return [k for k in need.get(target, []) if not value(k)] if not deploy_only else []


def _missing(target: str, value: Any, deploy_only: bool) -> str | None:
    """What a run on `target` needs that the profile leaves unset (`value(key)`), and where it goes; None when
    nothing is missing, or `deploy_only` (`kserve manifest`: what a deploy step reads, no run)."""
    missing = _needed(target, value, deploy_only)
    if not missing:  # no file found, or one without them: say where they go
        return None
    return (f"target {target} needs {', '.join(missing)}: set {'it' if len(missing) == 1 else 'them'} in "
            f"configs/{target}.yaml (found beside the pipeline or above it) or {profile_hint()}, or pass "
            f"{set_hint(missing[0])}")


def home_defaults(home: str | Path | None) -> dict[str, str]:
    """The local target's folders inside the kubepipe home (None = `.kubepipe`)."""
    root = Path(home or DEFAULT_HOME).as_posix().rstrip("/") or "."
    return {"pipeline_root": f"{root}/runs", "registry_uri": f"file://{root}/registry", "state_dir": f"{root}/state"}


def unknown_profile_keys(data: Mapping[Any, Any]) -> list[str]:
    """The top-level keys of a profile mapping that are no profile setting, sorted."""
    return sorted(str(k) for k in data if k not in Profile.model_fields)


def find_profile_file(target: str, start: str | Path | None = None) -> Path | None:
    """The nearest configs/<target>.yaml above `start`, else above the working directory."""
    roots = [Path(start).resolve()] if start else []
    roots.append(Path.cwd())
    for root in roots:
        for d in [root, *root.parents]:
            cand = d / "configs" / f"{target}.yaml"
            if cand.is_file():
                return cand
    return None


def profile_source(target: str, profile_file: str | Path | None = None, start: str | Path | None = None) -> Path | None:
    """The file `load_profile` reads for `target`: --profile FILE, else the nearest configs/<target>.yaml; None
    when there is none (the target's defaults)."""
    return Path(profile_file) if profile_file else find_profile_file(target, start)


def load_profile(target: str = "local", *, profile_file: str | Path | None = None,
                 sets: Mapping[str, Any] | None = None, start: str | Path | None = None,
                 environ: Mapping[str, str] | None = None, home: str | Path | None = None,
                 deploy_only: bool = False) -> Profile:
    """The target's profile: --profile FILE or the nearest configs/<target>.yaml over the target's defaults, `sets`
    over both. `deploy_only` reads it for its DEPLOY_SETTINGS alone: what only a run needs (host, pipeline_root,
    project, region) may be missing, and an unset ${env.X} outside them is not an error."""
    if target not in TARGETS:
        hint = did_you_mean(target, TARGETS) or f"choose one of {', '.join(TARGETS)}"
        raise ValidationError([Issue(f"unknown target `{target}`", path=target_place(), value=target, hint=hint)])
    path = profile_source(target, profile_file, start)
    data: dict[str, Any] = {}
    locator = Locator(str(path) if path else f"<{target} defaults>")
    if path:
        src = read_source(path)
        locator = src.locator
        if not isinstance(src.data, dict):
            raise ValidationError([locator.issue((), "a profile must be a YAML mapping")])
        data = dict(src.data)
        unknown = unknown_profile_keys(data)
        if not profile_file and data and len(unknown) == len(data):  # another tool's file, not a mistyped profile
            raise ValidationError([locator.issue((), f"not a kubepipe target profile (its keys {', '.join(unknown[:3])} "
                                                 f"are not profile settings), yet kubepipe reads the nearest "
                                                 f"configs/{target}.yaml as one",
                                                 hint=f"give the pipeline a profile of its own, nearer to it (kubepipe "
                                                      f"init writes one), or pass {profile_hint()}")])
    if data.get("target", target) != target:
        raise ValidationError([locator.issue(("target",), f"profile is for target `{data['target']}`, "
                                             f"not `{target}`", hint=f"pass {profile_hint()} for this target")])
    issues: list[Issue] = []
    from kubepipe.secrets import inline_secrets

    sets = nest_sets(sets)
    for p, message in inline_secrets(data):
        issues.append(locator.issue(p, "credentials in YAML are refused", hint=message))
    refused = "on the command line" if from_cli() else "in sets="  # blamed on --set / sets=, not on the file
    for p, message in inline_secrets(sets, given=f"passed with {sets_place()}"):
        issues.append(Issue(f"credentials {refused} are refused", path=".".join(map(str, p)),
                            file=sets_place(), hint=message))
    defaults = {**DEFAULTS[target], **(home_defaults(home) if target == "local" else {})}
    merged = {**defaults, "target": target, **data}
    for k, v in (sets or {}).items():
        if k == "labels" and isinstance(v, dict) and isinstance(merged.get(k), dict):
            v = set_labels(v, merged[k], issues)
        merged[k] = {**merged[k], **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v

    unset: set[str] = set()
    skipped: set[str] = set()

    def missing_env(p: tuple, name: str) -> None:
        if deploy_only and p and p[0] not in DEPLOY_SETTINGS:  # not read: the value's default stands in
            skipped.add(p[0])
            return
        unset.add(format_path(p))
        issues.append(locator.issue(p, f"environment variable `{name}` is not set",
                                    hint=f"export {name}=..., or {set_hint('.'.join(map(str, p)))}"))

    merged = resolve_env(merged, missing_env, environ)
    for k in skipped:
        merged.pop(k, None)
        if k in defaults:
            merged[k] = defaults[k]
    # A credential that `${env.X}` put in (KUBEPIPE_REGISTRY=https://u:pw@host/reg) is a literal from here on:
    # the profile's values are compiled into the pipeline (ctx_registry_uri), which KFP stores and shows.
    written = {p for p, _ in inline_secrets(data)} | {p for p, _ in inline_secrets(sets)}
    for p, message in inline_secrets(merged):
        if p not in written and p[:1] == ("labels",):  # the label rule's own advice: drop it (no client reads it)
            issues.append(locator.issue(p, "a credential from the environment is refused here", hint=message))
        elif p not in written:
            what = message.split(";")[0] if message.startswith("looks like") else "its key names a credential"
            issues.append(locator.issue(p, "a credential from the environment is refused here", hint=(
                f"{what}; a value ${{env.*}} puts into a profile is compiled into the pipeline, which KFP stores and "
                "shows: give the credential the way its client reads it (the store's own environment: AWS_*, "
                "GOOGLE_APPLICATION_CREDENTIALS; KFP: auth.token_env), not inside the value")))
    try:
        profile = Profile.model_validate(merged, context={"deploy_only": deploy_only})
    except PydanticError as exc:
        whole = [e for e in exc.errors() if isinstance((e.get("ctx") or {}).get("error"), _AtKey)]
        found = without_unset_env(issues_from_pydantic([e for e in exc.errors() if e not in whole], merged,
                                                       locator, Profile), unset)
        # a value from --set (sets=) is blamed on it, not on the file
        issues += [on_set(i) if given_by_set(sets, tuple(i.path.split("."))) else i for i in found]
        issues += [_at_key(locator, sets, str(e["ctx"]["error"]), e["ctx"]["error"].keys) for e in whole]
        profile = None
        missing = _missing(target, merged.get, deploy_only)  # the model's own check ran not: a field failed
        if missing and not any(e.get("loc") == () for e in exc.errors()):
            issues.append(_at_key(locator, sets, missing, (*_needed(target, merged.get, deploy_only), "target")))
    if issues or profile is None:
        raise ValidationError(issues)
    profile._locator, profile._sets = locator, dict(sets or {})
    return profile


def _at_key(locator: Locator, sets: Mapping[str, Any] | None, message: str, keys: tuple) -> Issue:
    """`message` at the first of `keys` that --set or the profile file gives, else at the file's start."""
    key = next((k for k in keys if given_by_set(sets or {}, (k,)) or locator.known((k,))), None)
    if key is None:
        return locator.issue((), message)
    issue = locator.issue((key,), message)
    return on_set(issue) if given_by_set(sets or {}, (key,)) else issue
