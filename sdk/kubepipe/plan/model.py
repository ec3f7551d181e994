"""The resolved plan: steps in order, typed bindings, conditions and per-target settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from kubepipe.catalog import ComponentInfo
from kubepipe.spec.models import Param, RetryPolicy, Schedule, SecretRef, Toleration

__all__ = ["Literal", "ParamRef", "OutputRef", "ItemRef", "ContextRef", "Nested", "Binding", "Condition",
           "GpuRequest", "PlanStep", "Plan"]


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class ParamRef:
    name: str


@dataclass(frozen=True)
class OutputRef:
    step: str
    output: str


@dataclass(frozen=True)
class ItemRef:
    field: str = ""


@dataclass(frozen=True)
class ContextRef:
    name: str  # ctx_* parameter name
    value: Any = None  # a constant, or a KFP placeholder string


@dataclass(frozen=True)
class Nested:
    """A dict or list literal with references at some leaves (KFP passes those leaves as text)."""

    template: Any

    def leaves(self) -> list[tuple[tuple, Any]]:
        """(path inside the value, reference) of each reference: ("tags", 2) for the third item of `tags`."""
        out: list = []

        def walk(v: Any, at: tuple) -> None:
            if isinstance(v, dict):
                for k, x in v.items():
                    walk(x, at + (k,))
            elif isinstance(v, (list, tuple)):
                for i, x in enumerate(v):
                    walk(x, at + (i,))
            elif isinstance(v, (ParamRef, OutputRef, ItemRef)):
                out.append((at, v))

        walk(self.template, ())
        return out


Binding = Union[Literal, ParamRef, OutputRef, ItemRef, ContextRef, Nested]
NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


@dataclass(frozen=True)
class Condition:
    left: Binding
    op: str
    right: Binding
    text: str

    @property
    def key(self) -> tuple:
        return (self.left, self.op, self.right)

    def negation_key(self) -> tuple:
        return (self.left, NEGATE[self.op], self.right)


@dataclass(frozen=True)
class GpuRequest:
    count: int
    type: str  # normalised, e.g. nvidia-l4
    accelerator: str  # what the target calls it: NVIDIA_L4 (vertex) or nvidia.com/gpu (k8s)
    node_selector: dict = field(default_factory=dict)


@dataclass
class PlanStep:
    name: str
    info: ComponentInfo
    args: dict[str, Binding]
    deps: list[str]
    condition: Condition | None = None
    foreach: Any = None  # list literal, ParamRef or OutputRef
    parallelism: int | None = None
    retries: RetryPolicy | None = None
    cache: bool | None = None
    timeout_s: float | None = None
    cpu: str | None = None
    memory: str | None = None
    gpu: GpuRequest | None = None
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[Toleration] = field(default_factory=list)
    display_name: str | None = None
    image: str | None = None  # the step's own `image:`; else built-ins take the profile's runtime_image
    gate: bool | None = None  # a user's python step: `gate:` said it can say no (true) or never (false); None: seen
    checked_with: dict[str, Any] = field(default_factory=dict)  # `with:` as its check saw it (param_checks)


@dataclass
class Plan:
    name: str
    description: str
    params: dict[str, Param]
    steps: list[PlanStep]  # topological order, same-condition steps adjacent
    exit_step: PlanStep | None
    schedule: Schedule | None
    source_path: str
    source_hash: str
    target: str
    notes: list[str] = field(default_factory=list)
    warnings: list[Any] = field(default_factory=list)  # kubepipe.errors.Issue, severity "warning", located
    # params a step reads as a file path or URI; on remote targets, those whose default is a local
    # path a pod cannot read -> where that default is written (file:line:col)
    path_params: list[str] = field(default_factory=list)
    remote_path_params: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # metadata.labels, with metadata.owner as `owner`

    def __repr__(self) -> str:
        """One line a notebook can read (`kubepipe.validate(...)` in a cell): the dataclass's repr printed every
        step's component, bindings and settings, ~50 kB for the flagship pipeline."""
        params = {n: p.type for n, p in self.params.items()}
        exit_step = f", exit_step={self.exit_step.name!r}" if self.exit_step is not None else ""
        return (f"Plan(name={self.name!r}, target={self.target!r}, steps={[s.name for s in self.steps]!r}{exit_step}, "
                f"params={params!r}, warnings={len(self.warnings)}, notes={len(self.notes)})")

    def step(self, name: str) -> PlanStep:
        """The step named `name` (the exit handler too); another name is a UserError naming the plan's steps, as
        RunResult.step says it (kubepipe.util.step_named)."""
        from kubepipe.util import step_named

        return step_named([*self.steps, *([self.exit_step] if self.exit_step else [])], name, f"pipeline {self.name}")
