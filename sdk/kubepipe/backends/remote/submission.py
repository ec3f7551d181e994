"""One submit to Kubeflow Pipelines or Vertex AI, followed to its end on request: what `kubepipe submit` and
`kubepipe.submit()` both do with a compiled package."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from kubepipe.backends.packaging.pipeline import PipelinePackage
from kubepipe.backends.remote.events import TaskEvent
from kubepipe.errors import UserError

__all__ = ["Submission", "REMOTE_TARGETS", "check_remote_target", "submit_package"]

REMOTE_TARGETS = ("kubeflow", "vertex")


@dataclass(frozen=True)
class Submission:
    """A submitted run: `run_id` is the KFP run id or the Vertex job id; `state` its state when submitted, or
    its final state after a wait. `uploaded` lists what was created on KFP (`pipeline`, `version`; empty when the
    same spec was uploaded before); `already_submitted` is Vertex's answer to the same pipeline, params and slot."""

    target: str
    pipeline: str
    content_hash: str
    run_id: str
    state: str
    url: str = ""
    uploaded: tuple[str, ...] = ()
    already_submitted: bool = False
    warnings: tuple[str, ...] = ()


def check_remote_target(target: str) -> None:
    if target not in REMOTE_TARGETS:
        from kubepipe.arguments import from_cli

        said, run = (f"--target {target}", "`kubepipe run`") if from_cli() else (f"target={target!r}", "kubepipe.run")
        raise UserError(f"{said}: submit goes to kubeflow or vertex; run locally with {run}")


def submit_package(package: PipelinePackage, target: str, params: Mapping[str, Any] | None = None, *,
                   slot: str | None = None, wait: bool = False, poll_s: float = 5.0, timeout_s: float | None = None,
                   on_event: Callable[[TaskEvent], None] | None = None,
                   on_submitted: Callable[[Submission], None] | None = None,
                   warnings: tuple[str, ...] = ()) -> Submission:
    """Upload what is new and start one run; with `wait`, follow it (RunFailed names a failed task)."""
    check_remote_target(target)
    if slot is not None and target != "vertex":  # it was dropped: the user expected a deduplicated run
        from kubepipe.arguments import from_cli

        said, flag = (f"--slot {slot}", "--slot") if from_cli() else (f"slot={slot!r}", "slot=")
        raise UserError(f"{said}: a slot names a Vertex job (a second submit of it is caught); "
                        f"{target} starts a new run on every submit: leave {flag} out")
    if not math.isfinite(poll_s) or poll_s < 0:
        raise UserError(f"poll_s: must be a finite number of seconds, at least 0 (got {poll_s})")
    if timeout_s is not None and not (math.isfinite(timeout_s) and timeout_s > 0):
        raise UserError(f"timeout_s: must be a finite number of seconds, more than 0, or None (got {timeout_s})")
    common: dict[str, Any] = {"target": target, "pipeline": package.name, "content_hash": package.content_hash,
              "warnings": tuple(warnings)}
    if target == "kubeflow":
        from kubepipe.backends.remote import kubeflow

        res = kubeflow.submit(package, package.profile, params=dict(params or {}))
        sub = Submission(run_id=res.run_id, state=res.state, url=res.url, uploaded=tuple(res.uploaded), **common)

        def follow() -> str:
            return kubeflow.wait(res.run_id, package.profile, on_event=on_event, poll_s=poll_s, timeout_s=timeout_s,
                                 pipeline_name=package.name)
    else:
        from kubepipe.backends.remote import vertex

        job = vertex.submit(package, package.profile, params=dict(params or {}), slot=slot)
        sub = Submission(run_id=job.job_id, state=job.state, url=job.url, already_submitted=job.already_submitted,
                         **common)

        def follow() -> str:
            return vertex.wait(job.job_id, package.profile, on_event=on_event, poll_s=poll_s, timeout_s=timeout_s)
    if on_submitted is not None:
        on_submitted(sub)
    if not wait:
        return sub
    try:
        return replace(sub, state=follow())
    except KeyboardInterrupt as exc:  # a notebook's interrupt stops the waiting, not the run: say so, and where it is
        exc.add_note(f"kubepipe: stopped waiting for {target} run {sub.run_id}, which goes on"
                     + (f" ({sub.url})" if sub.url else "")
                     + f"; follow it with `kubepipe runs show {sub.run_id} --target {target}`")
        raise
