"""Whether a FAILED remote run was rejected by its gates: the verdicts they left under the run's pipeline_root
(kubepipe.verdicts, decision 0010), matched with the tasks the service says failed. Kubeflow and Vertex alike."""

from __future__ import annotations

from kubepipe.backends.remote.events import RunFailed, run_ended
from kubepipe.verdicts import REJECTED_EXIT, Judged, failed_leaves, judge, rejected_text

__all__ = ["Judged", "RunRejected", "failed_leaves", "judge", "judged_record", "run_judged"]


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
