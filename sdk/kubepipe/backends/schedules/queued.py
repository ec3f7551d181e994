"""A retrain request still waiting in `<state_dir>/retrain/queue/`, as `kubepipe runs show` and `runs list` show it:
a `Run` document in state QUEUED (no run has started), with when and why it was queued and its place in the queue."""

from __future__ import annotations

import json
from pathlib import Path

from kubepipe.backends.runs.listing import of_pipeline, shown_params
from kubepipe.backends.runs.record import retrain_of

__all__ = ["queued_request", "queued_requests", "queued_pipelines", "with_queued", "request_pipeline",
           "request_retrain"]


def request_pipeline(request: dict) -> str:
    """The pipeline a retrain request's run is listed under (`runs list --pipeline`): its `pipeline_name`, the
    training pipeline's metadata.name that its run records; in a request an older kubepipe queued (none), its
    file's name without the extension. "" when it names no file."""
    name, file = request.get("pipeline_name"), request.get("pipeline")
    if isinstance(name, str) and name:
        return name
    return Path(file).stem if isinstance(file, str) and file else ""


def request_retrain(request: dict, request_id: str) -> dict | None:
    """What the run `kubepipe scheduler` starts for a retrain request is told of it (RETRAIN_ENV): the request
    (`retrain_of`), and the name the request recorded for its run (`pipeline_name`, resolved once, where it was
    queued) with the file it names, which the run takes as its name (`record.retrain_name`); None: no request."""
    retrain = retrain_of({**request, "request_id": request_id})
    name, file = request.get("pipeline_name"), request.get("pipeline")
    if retrain is None or not (isinstance(name, str) and name and isinstance(file, str) and file):
        return retrain
    return {**retrain, "pipeline_name": name, "pipeline_file": file}


def _waiting(queue: Path) -> list[str]:
    """The request files in `queue`, in the order `kubepipe scheduler` takes them (by file name)."""
    try:
        return sorted(p.name for p in queue.glob("*.json"))
    except OSError:
        return []


def queued_requests(queue: Path) -> list[dict]:
    """The `Run` document of every request waiting in `queue` (`queued_request`), the newest queued first."""
    waiting = _waiting(queue)
    docs = [d for d in (queued_request(queue, name[:-len(".json")], waiting) for name in waiting) if d]
    return sorted(docs, key=lambda d: d["queued"]["at"] or "", reverse=True)


def queued_pipelines(queue: Path | None) -> list[str]:
    """The pipelines that have a request waiting in `queue`, as `runs list --pipeline` names them (none: a state dir
    that is no local folder)."""
    return sorted({d["pipeline"] for d in queued_requests(queue) if d["pipeline"]}) if queue is not None else []


def with_queued(runs: list[dict], queue: Path | None, *, pipeline: str | None = None,
                labels: dict | None = None, limit: int = 20, pipeline_file: str | None = None) -> list[dict]:
    """`runs list`: the requests waiting in `queue` (none: a state dir that is no local folder), of `pipeline` as
    `runs show` names it or of the file `pipeline_file` (`of_pipeline`), before `runs` (newest first: none of them
    has started), `limit` in all. A request carries no labels: a `--label` filter leaves them out."""
    if queue is None or labels:
        return runs[:limit]
    waiting = [d for d in queued_requests(queue)
               if of_pipeline(d["pipeline"], d["queued"]["pipeline_file"], pipeline, pipeline_file)]
    return (waiting + runs)[:limit]


def queued_request(queue: Path, request_id: str, waiting: list[str] | None = None) -> dict | None:
    """The `Run` document of the request `request_id` waiting in `queue`, or None when it does not wait there (taken,
    rejected, never queued). `queued.position` is its place in the order `kubepipe scheduler` takes requests (by
    file name; one whose pipeline is running waits on), of `queued.of`; None when the queue cannot be listed.
    `waiting`: the queue's listing (`_waiting`), when the caller has it."""
    path = queue / f"{request_id}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # gone meanwhile, or being written: the scheduler's to take or reject
        return None
    if not isinstance(data, dict):
        return None
    waiting = _waiting(queue) if waiting is None else waiting
    position = waiting.index(path.name) + 1 if path.name in waiting else None
    pipeline = data.get("pipeline") if isinstance(data.get("pipeline"), str) else ""
    params = shown_params(data.get("params"))  # credentials redacted, as a run's are
    text = {k: str(data.get(k) or "") for k in ("requested_at", "reason")}
    return {"run_id": request_id, "pipeline": request_pipeline(data), "target": "local",
            "state": "QUEUED", "rejected": False, "params": params, "started_at": None, "finished_at": None, "error": None, "steps": [],
            "url": str(path), "warnings": [], "notes": [], "resumed_from": None, "labels": {},
            "retrain": retrain_of({**data, "request_id": request_id}), "profile": None,
            "queued": {"at": text["requested_at"] or None, "reason": text["reason"] or None, "pipeline_file": pipeline,
                       "position": position, "of": len(waiting) if position else None}}
