"""Pydantic models of the pipeline YAML (kubepipe/v1): one model per section, strict and frozen."""

from __future__ import annotations

import keyword
import math
import re
import types
import typing
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from kubepipe.labels import MAX_LABELS, OWN_LABELS
from kubepipe.resources import CPU_RE, MEMORY_RE, cpu_problem, memory_problem
from kubepipe.spec.interpolation import REF_RE
from kubepipe.spec.values import (DURATION_RE, MAX_DURATION_S, bool_hint, finite, number_hint, parse_duration,
                                  quote_hint)
from kubepipe.util import IMAGE_REF

__all__ = ["Pipeline", "Metadata", "Param", "Step", "StepDefaults", "Resources", "Gpu", "RetryPolicy", "SecretRef",
           "Toleration", "Schedule", "PARAM_TYPES", "FOREACH_TAKES"]

NAME_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# at least one letter or digit: KFP renames `_` or `__` to an empty task name, which collides unseen
STEP_RE = r"^(?=[a-z0-9_-]*[a-z0-9])[a-z_][a-z0-9_-]*$"
KFP_GROUP_RE = r"(exit-handler|condition|condition-branches|for-loop)-\d+"  # a task name kfp's dsl groups take
# a param is a KFP pipeline input (ASCII, first a letter: kfp's PipelineChannel) and a Python argument
PARAM_RE = r"^(?!ctx_)[A-Za-z][A-Za-z0-9_]*$"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PARAM_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
EXIT_TASK = "on-exit"  # the task name of `on_exit`
_NOT_ZERO = "(?=.*[1-9])"  # an amount with a digit other than 0: not 0, 0.0 or 0m


def _schema(**by_type: dict):
    """A validator's rule in the JSON Schema too (`kubepipe schema`: what editors check): `by_type` adds keywords
    to the branch of that JSON type (integer=..., string=..., object=...) of a field's schema."""
    def extra(schema: dict) -> None:
        for branch in schema.get("anyOf", [schema]):
            branch.update(by_type.get(branch.get("type") or "", {}))
    return extra


def _names(pattern: str, **more: Any):
    """The JSON Schema of a mapping whose keys are names the loader checks against `pattern`."""
    return _schema(object={"propertyNames": {"pattern": pattern, **more}})


_DURATION_STRING = {"pattern": r"^\s*" + DURATION_RE.pattern[1:-1] + r"\s*$"}  # parse_duration strips spaces
_DURATION = _schema(string=_DURATION_STRING, integer={"minimum": 0, "maximum": MAX_DURATION_S},
                    number={"minimum": 0, "maximum": MAX_DURATION_S})


_NOT_K8S, _DASHES = re.compile(r"[^-0-9a-z]+"), re.compile(r"-+")


def task_name(step: str) -> str:
    """The KFP task name of a step: kfp's rule (`kfp.dsl.utils.maybe_rename_for_k8s`: lowercase, runs of other
    characters -> one `-`, no `-` at the ends), written here because importing kfp costs `validate` ~1 s (kfp's
    package imports its client and the Kubernetes one); a property test holds the two equal."""
    return _DASHES.sub("-", _NOT_K8S.sub("-", step.lower())).strip("-")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Spec(Strict):
    """A section of the pipeline YAML. A bool is never a number (`timeout: yes` is no 1-second timeout, `cpu: true`
    no CPU); a number as text still is one, since `${env.NAME}` gives text (`retries: ${env.RETRIES:-2}`)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, v: Any, info: Any) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(v, bool) and not _takes_bool(annotation):
            kinds = _kinds(annotation)
            want = ("a number" if kinds & {int, float} else "text or a list" if {str, list} <= kinds
                    else "text" if str in kinds else "a list" if list in kinds else "a mapping")  # or a section
            quote = "; quote it to pass text" if want == "text" else ""
            raise ValueError(f"{want} is expected here, not a bool (YAML reads yes, no, on, off, true and false "
                             f"as booleans){quote}")
        if isinstance(v, str) and _takes_only_bool(annotation):  # pydantic read "yes", "on", "1", "t" as true
            if v.strip().lower() not in ("true", "false"):  # the text `${env.NAME}` gives
                raise ValueError("true or false is expected here; write true or false")
            return v.strip().lower() == "true"
        return v


def _kinds(annotation: Any) -> set:
    """The types a field's annotation admits, unions flattened (`str | int | None` -> {str, int, NoneType})."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if origin is Literal:  # `Literal["str", "int"]`: text
        return {type(a) for a in typing.get_args(annotation)}
    if origin is typing.Annotated:
        return _kinds(typing.get_args(annotation)[0])
    return {origin or annotation}


def _takes_bool(annotation: Any) -> bool:
    """Whether a field of this type holds a bool: bool, Any, or a union with one of them."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(_takes_bool(a) for a in typing.get_args(annotation))
    return annotation in (bool, Any)


def _takes_only_bool(annotation: Any) -> bool:
    """Whether a field holds a bool and no text (`cache: bool | None`, not an env value's `str | bool`)."""
    kinds = _kinds(annotation)
    return bool in kinds and not kinds & {str, Any}


def labels_stay_apart(labels: dict[str, str]) -> dict[str, str]:
    """Keys Vertex would merge (`Team` and `team`), kubepipe overwrite (`kubepipe-...`) or nobody name (empty) lose a
    label silently: a ValueError naming them (a pipeline's metadata.labels, a profile's labels)."""
    from kubepipe.labels import gcp_label

    seen: dict[str, str] = {}
    for key in labels:
        if not key.strip():  # Vertex got `k-` (or `k--`), and `runs list --label` cannot name it
            raise ValueError(f"a label key is {'empty' if not key else 'blank'}: a label is named, "
                             "e.g. `team: payments`")
        if REF_RE.search(key):  # only values are interpolated: the key would reach Vertex as `k----env-team-`
            raise ValueError(f"label key `{key}`: `${{...}}` is read in a label's value, never in its key; "
                             "write the key itself, e.g. `team: ${env.TEAM}`")
        label = gcp_label(key, key=True)
        if label.startswith("kubepipe-"):
            raise ValueError(f"label `{key}`: labels starting with `kubepipe-` are kubepipe's own "
                             "(kubepipe-pipeline, kubepipe-hash, ...); rename it")
        if label in seen:
            raise ValueError(f"labels `{seen[label]}` and `{key}` are the same label `{label}` on Vertex "
                             "(lowercase, `-` for other characters); keep one")
        seen[label] = key
    return labels


class Metadata(Spec):
    name: str = Field(pattern=NAME_RE, max_length=63,
                      description="Pipeline name: lowercase letters, digits and dashes.")
    description: str = ""
    labels: dict[str, str] = Field(default={}, description=(
        "Labels of every run: a Vertex pipeline job's labels (lowercased, `-` for other characters, 63 at most: "
        "`validate -t vertex` warns at each it rewrites; "
        f"at most {MAX_LABELS - OWN_LABELS} with the profile's) and the local run record's "
        "(`runs show`); Kubeflow's runs have none. Keys that are one label on Vertex (`Team`, `team`), keys "
        "starting `kubepipe-` and keys holding `${...}` (only values are read) are refused."))
    owner: str = Field(default="", description="Who owns the pipeline: the label `owner` of every run, as `labels`.")

    @field_validator("labels")
    @classmethod
    def _labels_stay_apart(cls, labels: dict[str, str]) -> dict[str, str]:
        return labels_stay_apart(labels)

    @model_validator(mode="after")
    def _one_owner(self) -> "Metadata":
        from kubepipe.labels import gcp_label

        same = [k for k in self.labels if gcp_label(k, key=True) == "owner"]  # `Owner` is `owner` on Vertex
        if self.owner and same:
            label = "a label" if same == ["owner"] else f"the label `{same[0]}` (the label `owner` on Vertex)"
            raise ValueError(f"`owner` is given twice, as metadata.owner and as {label}; keep metadata.owner")
        return self

    def run_labels(self) -> dict[str, str]:
        """The labels every run carries: `labels`, and `owner` as the label `owner` (it wins over one there)."""
        return {**self.labels, **({"owner": self.owner} if self.owner else {})}


_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "array",
               "dict": "object"}


def _default_of_its_type(schema: dict) -> None:
    """Param's check of its default in the JSON Schema: if `type` is T (str when left out), `default` is a T."""
    def is_type(t: str) -> dict:
        given = {"properties": {"type": {"const": t}}, "required": ["type"]}
        return {"anyOf": [given, {"not": {"required": ["type"]}}]} if t == "str" else given

    schema["allOf"] = [{"if": is_type(t), "then": {"properties": {"default": {"type": [j, "null"]}}}}
                       for t, j in _JSON_TYPES.items()]


class Param(Spec):
    model_config = ConfigDict(json_schema_extra=_default_of_its_type)
    type: Literal["str", "int", "float", "bool", "list", "dict"] = "str"
    default: Any = None
    description: str = ""

    @model_validator(mode="after")
    def _default_matches_type(self) -> "Param":
        if self.default is None:
            return self
        finite(self.default, "the default")
        want = PARAM_TYPES[self.type]
        ok = isinstance(self.default, want) and not (want is int and isinstance(self.default, bool))
        if want is float and isinstance(self.default, int) and not isinstance(self.default, bool):
            ok = True
        if not ok:
            hint = quote_hint(self.default, self.type) or bool_hint(self.default, self.type) or (
                number_hint(self.default, want) if want in (int, float) else None)
            shown = str(self.default).lower() if isinstance(self.default, bool) else repr(self.default)  # YAML's
            raise ValueError(f"default {shown} is not of type {self.type}" + (f"; {hint}" if hint else ""))
        return self


class Gpu(Spec):
    count: int = Field(1, ge=1, le=16)
    type: str = Field(description="Normalised GPU type, e.g. nvidia-l4, nvidia-tesla-t4, nvidia-h100-80gb.")


class Resources(Spec):
    cpu: Union[float, str, None] = Field(None, description="CPU limit: 2, 0.5 or 500m.", json_schema_extra=_schema(
        number={"exclusiveMinimum": 0}, string={"pattern": "^" + _NOT_ZERO + CPU_RE.pattern[1:]}))
    memory: str | None = Field(None, pattern=MEMORY_RE, description="Memory limit, e.g. 16Gi.",
                               json_schema_extra=_schema(string={"pattern": "^" + _NOT_ZERO + MEMORY_RE[1:]}))
    gpu: Gpu | None = None

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, v: Any) -> Any:
        if v is None:
            return v
        problem = cpu_problem(v)
        if problem:
            raise ValueError(problem)
        return v if isinstance(v, str) else float(v)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory_number(cls, v: Any) -> Any:  # `memory: 8` said 'quote it', and '8' is refused next as 8 bytes
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            raise ValueError(memory_problem(str(v)))
        return v

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        problem = None if v is None else memory_problem(v)
        if problem:
            raise ValueError(problem)
        return v


MAX_RETRY_WAIT_S = 3600  # KFP's limit on a wait between tries (pipeline_spec: longer is capped to 1 hour)


class RetryPolicy(Spec):
    count: int = Field(ge=0, le=20)
    # a duration: `30s`, or a number of seconds (30 or '30'), as a step's timeout
    backoff: Union[str, int, float] = Field(default="30s", description="First wait between tries (at most 1h).",
                                            json_schema_extra=_DURATION)
    factor: float = Field(default=2.0, ge=1.0, allow_inf_nan=False)  # .inf: KFP's spec cannot hold it
    max_backoff: Union[str, int, float] = Field(default="1h", validate_default=True, json_schema_extra=_DURATION,
                                                description=("Longest wait between tries: the wait grows by "
                                                             "`factor` up to it; from `backoff` to 1h."))

    @field_validator("backoff", "max_backoff")
    @classmethod
    def _duration(cls, v: str | int | float, info: ValidationInfo) -> str | int | float:
        seconds = parse_duration(v)
        if seconds > MAX_RETRY_WAIT_S:  # KFP would wait 1h, silently
            raise ValueError("more than 1h: KFP waits at most 1h between tries (a longer wait is cut to 1h); "
                             "use at most 1h")
        first = info.data.get("backoff")  # absent where backoff itself was refused
        # KFP caps each wait at max_backoff: one under the first wait would silently shorten every wait
        if info.field_name == "max_backoff" and first is not None and seconds < parse_duration(first):
            raise ValueError(f"less than backoff {first!r}: max_backoff caps each wait between tries; raise it "
                             "(at most 1h) or lower backoff")
        return v


class SecretRef(Spec):
    secret: str = Field(description="Name of a Kubernetes secret (kubeflow) / read from the environment locally.")
    key: str


class Toleration(Spec):
    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


def _env_value(v: Any) -> Any:
    """YAML's .nan and .inf are numbers: the step saw the text "nan" or "inf" it was never given."""
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"{v!r} is no value for an environment variable (YAML reads .nan and .inf as numbers); "
                         f"quote it to pass that text, e.g. \"{v!r}\"")
    return v


EnvValue = Annotated[Union[str, int, float, bool, SecretRef], BeforeValidator(_env_value)]


class StepDefaults(Spec):
    retries: Union[int, RetryPolicy, None] = Field(default=None, json_schema_extra=_schema(integer={
        "minimum": 0, "maximum": 20}))
    cache: bool | None = None
    timeout: Union[str, int, float, None] = Field(default=None, json_schema_extra=_schema(
        string=_DURATION_STRING, integer={"minimum": 1, "maximum": MAX_DURATION_S},
        number={"minimum": 1, "maximum": MAX_DURATION_S}))  # a duration, as a retry's backoff
    resources: Resources | None = None
    env: dict[str, EnvValue] = Field(default={}, json_schema_extra=_names(ENV_NAME_RE.pattern))
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict) -> dict:
        bad = [k for k in v if not ENV_NAME_RE.match(k)]
        if bad:
            raise ValueError(f"`{bad[0]}` is not an environment variable name (letters, digits, _; not first a digit)")
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: Any) -> Any:
        # KFP counts a timeout in whole seconds and the compiler dropped 0 as "no timeout"
        if v is not None and parse_duration(v) < 1:
            raise ValueError("a step timeout must be at least 1s; leave it out for no timeout")
        return v

    @field_validator("retries")
    @classmethod
    def _retries(cls, v: Any) -> Any:
        if isinstance(v, int) and not 0 <= v <= 20:
            raise ValueError("retries must be between 0 and 20")
        return v


FOREACH_TAKES = "`foreach` takes a list, ${params.x} or a step output"


class Step(StepDefaults):
    component: str = Field(description="Built-in name, package.module:function (a module in the pipeline's folder "
                           "or a folder above it needs no PYTHONPATH), or a path to a KFP YAML file.")
    display_name: str | None = None
    inputs: dict[str, Any] = Field({}, description="Wiring: ${params.x}, ${steps.s.outputs.o} or literals.")
    with_: dict[str, Any] = Field({}, alias="with", description="Component parameters.")
    when: str | None = Field(None, description='Condition, e.g. "${steps.evaluate.outputs.passed} == true".')
    after: list[str] = []
    foreach: Union[str, list, None] = Field(None, description="Run once per item: a list or ${params.x}; use ${item}.")
    parallelism: int | None = Field(None, ge=1)
    image: str | None = Field(None, pattern=IMAGE_REF, description="Container image of this step on kubeflow and "
                              "vertex, pinned by digest (e.g. your project image from `kubepipe image build --kind "
                              "project`). Default: the profile's runtime_image for built-ins, the component's own "
                              "image otherwise. Ignored locally.")
    gate: bool | None = Field(None, description="Your own python step on kubeflow and vertex: true, it can say no "
                              "(GateFailed: the run reads rejected, exit 3); false, never (its cache key is kept); "
                              "left out: kubepipe looks for GateFailed in its code and the helpers it calls.")

    @field_validator("foreach", mode="before")
    @classmethod
    def _foreach(cls, v: Any) -> Any:  # `foreach: 5` said 'input should be a valid string' and 'quote it'
        if v is not None and not isinstance(v, (str, list, bool)):  # a bool: _no_bool_as_number says it
            raise ValueError(FOREACH_TAKES + (" (got a mapping)" if isinstance(v, dict) else ""))
        return v


class Schedule(Spec):
    cron: str = Field(description="Standard 5-field cron: minute hour day-of-month month day-of-week.")
    timezone: str = Field("UTC", description="IANA time zone of `cron` (e.g. Europe/Stockholm); left out: UTC. "
                                             "An empty one is refused.")
    max_concurrency: int = Field(1, ge=1, le=100)
    catchup: bool = False
    start_time: str | None = Field(None, description="ISO 8601 time of the first run; without an offset "
                                                     "(2026-12-24T03:00:00) it is in `timezone`.")
    end_time: str | None = Field(None, description="ISO 8601 time after which it stops; without an offset, "
                                                   "in `timezone`.")
    max_runs: int | None = Field(None, ge=1)
    enabled: bool = True
    params: dict[str, Any] = {}

    @field_validator("start_time", "end_time")
    @classmethod
    def _iso(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("expected an ISO 8601 time such as 2026-12-01T03:00:00Z") from None
        return v


class Pipeline(Spec):
    schema_: str | None = Field(None, alias="$schema")
    apiVersion: Literal["kubepipe/v1"]
    kind: Literal["Pipeline"]
    metadata: Metadata
    include: list[str] = Field([], description="YAML files whose `defaults` this pipeline starts from.")
    params: dict[str, Param] = Field({}, json_schema_extra=_names(PARAM_RE, **{"not": {"enum": keyword.kwlist}}))
    defaults: StepDefaults = StepDefaults()
    steps: dict[str, Step] = Field(min_length=1, json_schema_extra=_names(STEP_RE, **{"not": {
        "pattern": "^[-_]*" + KFP_GROUP_RE.replace("-", "[-_]+") + "[-_]*$"}}))  # its task name, as task_name maps
    on_exit: Step | None = Field(None, description="Runs after all steps, whatever their status.")
    schedule: Schedule | None = None
