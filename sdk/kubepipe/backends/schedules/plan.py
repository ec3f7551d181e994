"""Schedules as infrastructure: desired (the YAML's `schedule:`) vs actual (on the backend), as a plan.

A plan is a list of actions - create, update, replace, unchanged, delete, pause, resume - that
`apply` carries out through a small backend adapter (KFP, Vertex, local). Applying a plan and
then planning again yields only `unchanged`, so applying twice changes nothing.

Never two active schedules. A replace (KFP recurring runs cannot be updated at all; Vertex
cannot change the pipeline of a schedule) runs in this order:
- backends that can create a schedule disabled (KFP, local): create the new one DISABLED ->
  delete the old -> enable the new. At every instant at most one is enabled; if a step fails,
  the new one stays disabled and the next apply sees it (as a duplicate or as paused) and
  finishes the job.
- backends that cannot (Vertex creates schedules ACTIVE): pause the old -> create the new ->
  delete the old. If create fails, the old one stays paused and the error says so.
Duplicates found by name are deleted before anything is created.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Protocol

from kubepipe.clients import api_errors
from kubepipe.errors import UserError
from kubepipe.spec.cron import schedule_time

__all__ = [
    "SCHEDULED_TIME_PARAM",
    "COMPARED",
    "DesiredSchedule",
    "ActualSchedule",
    "Action",
    "ScheduleBackend",
    "schedule_name",
    "desired_from_block",
    "plan_schedule",
    "apply_plan",
    "format_plan",
]

# A pipeline parameter of this name receives each run's scheduled slot time (local, KFP and Vertex alike).
SCHEDULED_TIME_PARAM = "scheduled_time"

# Fields compared between desired and actual; a backend lists those it can update in place.
COMPARED = ("cron", "max_concurrency", "catchup", "start_time", "end_time", "max_runs", "template", "labels")
_ALLOWED_KEYS = {"cron", "timezone", "max_concurrency", "catchup", "start_time", "end_time", "max_runs",
                 "enabled", "params"}


def schedule_name(pipeline: str) -> str:
    return f"kubepipe-{pipeline}"


@dataclass(frozen=True)
class DesiredSchedule:
    name: str
    pipeline: str
    cron: str  # already in the backend's form
    timezone: str = "UTC"
    template: str = ""  # fingerprint of what each run executes: content hash + params (+ caching off)
    max_concurrency: int = 1
    catchup: bool = False
    start_time: str | None = None
    end_time: str | None = None
    max_runs: int | None = None
    enabled: bool = True
    params: dict = field(default_factory=dict)
    content_hash: str = ""
    labels: dict | None = None  # the pipeline's and profile's labels each run gets (Vertex); None: not compared
    # what the template fingerprint holds that a plan can name (local: {"profile", "sets", "params"}); None: not known
    inputs: dict | None = None


@dataclass(frozen=True)
class ActualSchedule:
    id: str
    name: str
    cron: str
    template: str = ""
    max_concurrency: int = 1
    catchup: bool = False
    start_time: str | None = None
    end_time: str | None = None
    max_runs: int | None = None
    enabled: bool = True
    completed: bool = False  # Vertex: ran its course (max_runs or end_time); it can no longer be paused or resumed
    unknown_state: str = ""  # Vertex: a state neither ACTIVE, PAUSED nor COMPLETED (STATE_UNSPECIFIED): never acted on
    labels: dict | None = None  # the labels its runs get, but kubepipe's own (Vertex); None: not known
    inputs: dict | None = None  # as DesiredSchedule.inputs, as stored with it (local); None: not known


@dataclass(frozen=True)
class Action:
    kind: str  # create | update | replace | unchanged | delete | pause | resume
    name: str
    id: str | None = None  # the existing schedule acted on
    changes: tuple[str, ...] = ()  # "cron: old -> new"
    desired: DesiredSchedule | None = None
    fields: tuple[str, ...] = ()  # fields an update sets
    completed: bool = False  # the existing schedule is completed: a replace does not pause it first

    @property
    def existing(self) -> str:
        """The id of the schedule acted on (every kind but create has one)."""
        if self.id is None:
            raise ValueError(f"{self.kind} of schedule {self.name}: no existing schedule id")
        return self.id

    @property
    def wanted(self) -> DesiredSchedule:
        """The schedule as the YAML wants it (create, update, resume and replace have it)."""
        if self.desired is None:
            raise ValueError(f"{self.kind} of schedule {self.name}: no desired schedule")
        return self.desired


class ScheduleBackend(Protocol):
    updatable: frozenset[str]
    creates_disabled: bool  # can create a schedule paused (KFP, local) or not (Vertex)

    def list(self, name: str) -> list[ActualSchedule]: ...
    def create(self, desired: DesiredSchedule, *, enabled: bool) -> str: ...
    def update(self, schedule_id: str, desired: DesiredSchedule, fields: tuple[str, ...]) -> None: ...
    def delete(self, schedule_id: str) -> None: ...
    def pause(self, schedule_id: str) -> None: ...
    def resume(self, schedule_id: str, *, catchup: bool) -> None: ...


def template_fingerprint(content_hash: str, params: dict, extra: str = "") -> str:
    text = json.dumps({"hash": content_hash, "params": params, "extra": extra}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def desired_from_block(pipeline: str, content_hash: str, block: dict, *, translate: Callable[[str, str], str],
                       params: dict | None = None, where: str = "schedule") -> DesiredSchedule:
    """From the YAML's schedule block (dict) with safe defaults: concurrency 1, no catch-up."""
    unknown = sorted(set(block) - _ALLOWED_KEYS)
    if unknown:
        raise UserError(f"{where}.{unknown[0]}: unknown schedule key; allowed: {', '.join(sorted(_ALLOWED_KEYS))}")
    if not block.get("cron"):
        raise UserError(f"{where}.cron: required (5-field cron, e.g. '0 3 * * 1')")
    tz = "UTC" if block.get("timezone") is None else block["timezone"]  # "" is refused by translate, not UTC
    max_c = int(block.get("max_concurrency") or 1)
    if max_c < 1:
        raise UserError(f"{where}.max_concurrency: must be >= 1 (got {max_c})")
    max_runs = block.get("max_runs")
    if max_runs is not None and int(max_runs) < 1:
        raise UserError(f"{where}.max_runs: must be >= 1 (got {max_runs})")
    merged = {**dict(block.get("params") or {}), **dict(params or {})}
    return DesiredSchedule(
        name=schedule_name(pipeline), pipeline=pipeline, cron=translate(block["cron"], tz), timezone=tz,
        template=template_fingerprint(content_hash, merged, "nocache"), max_concurrency=max_c,
        catchup=bool(block.get("catchup", False)),
        start_time=schedule_time(block.get("start_time"), tz, f"{where}.start_time"),
        end_time=schedule_time(block.get("end_time"), tz, f"{where}.end_time"),
        max_runs=int(max_runs) if max_runs is not None else None,
        enabled=bool(block.get("enabled", True)), params=merged, content_hash=content_hash,
        inputs={"params": dict(merged)},
    )




def _diff(desired: DesiredSchedule, actual: ActualSchedule) -> list[str]:
    return [f for f in COMPARED if getattr(desired, f) != getattr(actual, f)
            and not (f == "labels" and None in (desired.labels, actual.labels))]


def plan_schedule(desired: DesiredSchedule | None, actual: Iterable[ActualSchedule], *,
                  updatable: Iterable[str] = (), name: str | None = None) -> list[Action]:
    """Actions that make the backend match `desired` (None = no schedule wanted)."""
    actual = list(actual)
    updatable = frozenset(updatable)
    if desired is None:
        return [Action("delete", a.name, a.id) for a in actual]
    if not actual:
        return [Action("create", desired.name, None, (f"cron: {desired.cron}",), desired)]
    # Keep the closest match; any duplicate goes first so two are never active.
    keep = min(actual, key=lambda a: (len(_diff(desired, a)), a.enabled != desired.enabled))
    odd = [a for a in actual if a.unknown_state]
    if odd:  # read as paused, it was resumed (or deleted as a duplicate) without knowing whether it runs
        raise UserError(f"schedule {odd[0].name} ({odd[0].id}) is in state {odd[0].unknown_state}, neither ACTIVE, "
                        "PAUSED nor COMPLETED: kubepipe does not know whether it runs and leaves it untouched; look "
                        "at it in the console (or delete it there), then run `kubepipe schedule` again")
    plan = [Action("delete", a.name, a.id, ("duplicate",)) for a in actual if a is not keep]
    diff = _diff(desired, keep)
    changes = tuple(f"{f}: {_show(getattr(keep, f))} -> {_show(getattr(desired, f))}"
                    + (_template_why(keep.inputs, desired.inputs) if f == "template" else "") for f in diff)
    if keep.completed:  # resuming it is refused by the service: it stays, or a new one takes its place
        if not diff:
            plan.append(Action("unchanged", desired.name, keep.id, (
                "completed: it reached its max_runs or end_time; raise schedule.max_runs or move "
                "schedule.end_time to start a new one",), desired))
        else:
            plan.append(Action("replace", desired.name, keep.id, changes, desired, completed=True))
        return plan
    if diff and not set(diff) <= updatable:
        plan.append(Action("replace", desired.name, keep.id, changes, desired))
        return plan
    if diff:
        plan.append(Action("update", desired.name, keep.id, changes, desired, tuple(diff)))
    if keep.enabled != desired.enabled:
        plan.append(Action("resume" if desired.enabled else "pause", desired.name, keep.id,
                           (f"enabled: {keep.enabled} -> {desired.enabled}",), desired))
    if not diff and keep.enabled == desired.enabled:
        plan.append(Action("unchanged", desired.name, keep.id, (), desired))
    return plan


def _template_why(old: dict | None, new: dict | None) -> str:
    """What changed in a template fingerprint, where the backend keeps what made it (local: --profile, --set and
    params; kubeflow and vertex: params): ' (--profile A -> B; --set k changed; params.x added)', or ' (the
    compiled pipeline changed: ...)'. --set and params are named by key only: a value is never shown (it may be a
    credential)."""
    if old is None or new is None:
        return ""
    said = []
    if (old.get("profile") or "") != (new.get("profile") or ""):
        said.append(f"--profile {old.get('profile') or '(none)'} -> {new.get('profile') or '(none)'}")
    sets = ({k: v for k, _, v in (str(s).partition("=") for s in side.get("sets") or [])} for side in (old, new))
    for what, (was, now) in (("--set ", tuple(sets)), ("params.", (old.get("params") or {}, new.get("params") or {}))):
        for key in sorted(set(was) | set(now)):
            if key not in was or key not in now or was[key] != now[key]:
                how = "added" if key not in was else "removed" if key not in now else "changed"
                said.append(f"{what}{key} {how}")
    return f" ({'; '.join(said) or 'the compiled pipeline changed: its YAML or the profile it compiles with'})"


def _show(value: Any) -> str:
    if isinstance(value, dict):  # labels: `team=payments, env=prod`, as `runs show` prints them
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "(none)"
    return "-" if value is None else str(value)


def apply_plan(plan: list[Action], backend: ScheduleBackend,
               on_step: Callable[[str], None] | None = None) -> list[str]:
    """Carry out the plan in order; returns the messages of what was done ([] when all unchanged)."""
    done: list[str] = []

    def say(msg: str) -> None:
        done.append(msg)
        if on_step:
            on_step(msg)

    service = getattr(backend, "service", "schedule")
    for act in plan:
        # a replace also creates, and a 404 of that is not the old schedule's: only the other kinds name it
        gone = None if act.kind in ("create", "replace") else (
            f"schedule {act.name} ({act.id}) is not there any more (deleted meanwhile?): run `kubepipe schedule` "
            "again to plan from what is there now")
        with api_errors(service, f"{act.kind} of schedule {act.name}", missing=gone):
            _apply_one(act, backend, say)
    return done


def _apply_one(act: Action, backend: ScheduleBackend, say: Callable[[str], None]) -> None:
    if act.kind == "delete":
        backend.delete(act.existing)
        say(f"deleted {act.name} ({act.id})")
    elif act.kind == "create":
        say(f"created {act.name} ({backend.create(act.wanted, enabled=act.wanted.enabled)})")
    elif act.kind == "update":
        backend.update(act.existing, act.wanted, act.fields)
        say(f"updated {act.name} ({', '.join(act.fields)})")
    elif act.kind == "pause":
        backend.pause(act.existing)
        say(f"paused {act.name}")
    elif act.kind == "resume":
        backend.resume(act.existing, catchup=act.wanted.catchup)
        say(f"resumed {act.name}")
    elif act.kind == "replace":
        _replace(act, backend, say)


def _replace(act: Action, backend: ScheduleBackend, say: Callable[[str], None]) -> None:
    d = act.wanted
    if backend.creates_disabled:
        new = backend.create(d, enabled=False)
        backend.delete(act.existing)
        if d.enabled:
            backend.resume(new, catchup=d.catchup)
    else:
        if not act.completed:  # a completed schedule starts no runs, and pausing it is refused
            backend.pause(act.existing)
        try:
            new = backend.create(d, enabled=d.enabled)
        except Exception as exc:
            raise UserError(f"schedule {act.name}: creating the replacement failed ({exc}); the old schedule "
                            f"{act.id} is left PAUSED - fix the cause and run `kubepipe schedule` again") from exc
        backend.delete(act.existing)
    say(f"replaced {act.name} ({act.id} -> {new})")


def format_plan(plan: list[Action]) -> list[tuple[str, str, str, str]]:
    """Rows (action, schedule, id, changes) for the CLI table."""
    if not plan:
        return [("nothing", "-", "-", "no schedule exists and none is wanted")]
    return [(a.kind, a.name, a.id or "(new)", "; ".join(a.changes)) for a in plan]


def with_enabled(desired: DesiredSchedule, enabled: bool) -> DesiredSchedule:
    return replace(desired, enabled=enabled)
