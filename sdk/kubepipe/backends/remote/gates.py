"""Whether a FAILED remote run was rejected by its gates: the verdicts they left under the run's pipeline_root
(kubepipe.verdicts, decision 0010), matched with the tasks the service says failed. Kubeflow and Vertex alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from kubepipe.backends.remote.events import RunFailed, run_ended
from kubepipe.verdicts import REJECTED_EXIT, VerdictsUnreadable, read_verdicts, rejected_steps, rejected_text

__all__ = ["Judged", "RunRejected", "failed_leaves", "judge", "judged_record", "run_judged"]


@dataclass(frozen=True)
class Judged:
    """`rejected`: the rejected steps (as a local run records them) when every failed task's gate said no; None when
    the run was not rejected, or its verdicts could not be read (`note` says why, in one line)."""

    rejected: list[dict] | None = None
    note: str | None = None

    @property
    def known(self) -> bool:
        return self.note is None


def failed_leaves(tasks: Iterable[Any], name: str, state_of: Callable[[Any], str], skip: Iterable[str] = ()
                  ) -> list[Any]:
    """The failed tasks that are steps (`name`: the task's attribute naming it; `state_of`: kfp_state or
    vertex_state): not the run's own DAG (`skip`), not a driver, not a DAG (a condition, a loop) whose child failed:
    a parent fails with its child."""
    failed = [t for t in tasks if state_of(getattr(t, "state", None)) == "FAILED"]
    parents = {str(getattr(t, "parent_task_id", "") or "") for t in failed} - {"", "0"}
    skip = set(skip) | {"root", ""}
    return [t for t in failed
            if str(getattr(t, name) or "") not in skip and not str(getattr(t, name)).endswith("-driver")
            and str(getattr(t, "task_id", "") or "") not in parents]


def judge(profile: Mapping[str, Any], key: str, state: str, failed: list[str]) -> Judged:
    """Read the verdicts of run `key` when it FAILED (a cancelled run proves nothing about its candidate)."""
    root = profile.get("pipeline_root")
    if state != "FAILED" or not failed or not root or not key:
        return Judged()
    try:
        verdicts = read_verdicts(str(root), key)
    except VerdictsUnreadable as exc:
        return Judged(note=str(exc))
    return Judged(rejected_steps(failed, verdicts))


def judged_record(record: dict, judged: Judged) -> dict:
    """A remote run's record (`runs show | list`) with what its gates said: `rejected` true or false as a local run's,
    the rejected steps' `error` their gate's reason (as a local run records it), `metrics` the numbers it judged;
    null where the verdicts could not be
    read (a note says why)."""
    if not judged.known:
        return {**record, "notes": [*record.get("notes", []), judged.note]}
    by_name = {s["name"]: s for s in judged.rejected or []}
    steps = [{**s, **by_name[s["name"]]} if s["name"] in by_name else {**s, "rejected": False}
             for s in record.get("steps", [])]
    return {**record, "rejected": bool(judged.rejected), "steps": steps}


class RunRejected(RunFailed):
    """A followed remote run that failed only because its gates said no: exit 3, as a local run (`rejected`: the
    rejected steps, as a local run records them)."""

    exit_code = REJECTED_EXIT

    def __init__(self, message: str, rejected: list[dict]):
        super().__init__(message)
        self.rejected = rejected


def run_judged(what: str, state: str, task: str, message: str, judged: Judged) -> RunFailed:
    """How a followed run that did not succeed ended (`events.run_ended`), or RunRejected; a note where its verdicts
    could not be read (exit 1 stands)."""
    if judged.rejected:
        return RunRejected(f"{what} rejected by its gate: " + rejected_text(judged.rejected), judged.rejected)
    exc = run_ended(what, state, task, message)
    return RunFailed(f"{exc}\nnote: {judged.note}") if judged.note else exc
