"""Local endpoints: a `kubepipe serve` process behind a stable port, replaced without downtime.

An endpoint NAME is two detached processes recorded in `<state_dir>/endpoints/NAME.json`:
  proxy    on the endpoint's stable port (http://127.0.0.1:PORT), forwarding to
  backend  `kubepipe serve MODEL_DIR --name NAME` on a private port.
`deploy_local` starts a new backend, waits for `/v2/models/NAME/ready` (load + warm-up),
sends smoke requests to it directly, and only then points the proxy at it, moves the registry
champion, and stops the old backend once the requests it still holds are answered. When the new
model fails, its process is stopped and the old one keeps serving; `EndpointRolledBack` says so.

Crash consistency: every process is written into the record (`pending`, with an owner token)
before it starts, and the switch (`switch`) before the proxy moves; both are cleared only when
done. A deploy killed at any point leaves a record that `repair` (run by the next deploy, stop,
or `kubepipe endpoints repair`) settles: fully switched with the champion moved, or not switched
at all, with no process left that nothing knows about. Processes are recognised by pid, create
time and owner token (see `processes`). URLs: http://127.0.0.1:PORT/v1/models/NAME:predict and
/v2/models/NAME/infer.
"""

from __future__ import annotations

import time

from kubepipe.components.errors import ComponentError
from kubepipe.components.serving import processes as P
from kubepipe.components.serving.endpoint_canary import CanaryRejected
from kubepipe.components.serving.endpoint_deploy import EndpointRolledBack, PortInUse, deploy_local
from kubepipe.components.serving.endpoint_predict import predict_endpoint
from kubepipe.components.serving.endpoint_record import (get_endpoint, list_record_names, locked, read_record,
                                                         record_file, write_record)
from kubepipe.components.serving.endpoint_repair import (endpoint_status, gone_processes, model_gone, orphans,
                                                         restart_hint, stop_everything)
from kubepipe.components.serving.endpoint_restart import repair_endpoints

__all__ = ["deploy_local", "list_endpoints", "stop_endpoint", "get_endpoint", "predict_endpoint",
           "repair_endpoints", "EndpointRolledBack", "PortInUse", "CanaryRejected"]


def list_endpoints(state_dir: str = ".kubepipe") -> list[dict]:
    """Every endpoint with its true status: up (ready), unready, canary (a deploy is baking a canary), deploying (a
    deploy, or the repair settling one, is under way), stopping, down
    (processes gone), interrupted (a deploy or a stop was killed; `repair` settles it), untracked (a leftover proxy
    answers), orphaned (processes of an endpoint with no record) or corrupt (the record cannot be read;
    `error` says why)."""
    out: list[dict] = []
    for name in list_record_names(state_dir):
        try:
            rec = read_record(state_dir, name)
        except ComponentError as exc:
            out.append({"name": name, "url": "-", "port": None, "model_dir": "-", "version": None,
                        "status": "corrupt", "error": str(exc), "pids": _pids({}),
                        "untracked": [], "model_missing": False})
            continue
        if rec is None:  # removed meanwhile
            continue
        status, extra = endpoint_status(rec, record_file(state_dir, name))
        row = {"name": name, "url": rec["url"], "port": rec["port"], "model_dir": rec["model_dir"],
               "version": rec.get("version"), "status": status, "untracked": extra,
               "pids": _pids(rec)}
        missing = model_gone(rec) if status in ("up", "unready", "canary", "down") else None
        row["model_missing"] = bool(missing)
        if status == "down":  # it said only `down`, and `repair` found "nothing to repair"
            row["error"] = (f"endpoint {name}: its {' and '.join(gone_processes(rec, name)) or 'processes'} stopped; "
                            + restart_hint(rec))
        elif missing:  # it answers from memory: a restart or a repair after a crash would fail
            row["error"] = f"endpoint {name}: {status} from memory only; if a process of it stops, it {missing}"
        elif status == "interrupted" and rec.get("stopping"):
            row["error"] = f"endpoint {name}: {restart_hint(rec)}"
        elif status in ("interrupted", "untracked"):
            row["error"] = (f"endpoint {name}: " + ("a deploy was interrupted" if status == "interrupted" else
                            f"processes {extra} answer for it but are not recorded")
                            + f"; run `kubepipe endpoints repair {name}`")
        if extra and status in ("up", "unready", "canary", "down"):  # the table shows recorded pids only
            row["error"] = (row.get("error") or f"endpoint {name}: {status}") + (
                f"; processes {extra} run for it but are not recorded: `kubepipe endpoints repair {name}` stops them")
        out.append(row)
    for name, procs in sorted(orphans(state_dir).items()):
        pids = [p["pid"] for p in procs]
        out.append({"name": name, "url": "-", "port": None, "model_dir": "-", "version": None, "status": "orphaned",
                    "untracked": pids, "pids": _pids({}), "model_missing": False,
                    "error": f"endpoint {name}: processes {pids} run with no record; "
                             f"`kubepipe endpoints stop {name}` stops them"})
    return out


def _pids(rec: dict) -> dict:
    """The recorded pid of each role: proxy, backend and canary (a backend a deploy bakes; null when none)."""
    return {role: (rec.get(role) or {}).get("pid") for role in ("proxy", "backend", "canary")}


def stop_endpoint(name: str, state_dir: str = ".kubepipe") -> dict:
    """Stop everything of the endpoint (recorded, pending and untracked processes that are ours) and forget it.

    The stop is recorded (`stopping`) before any process is signalled: a stop killed or interrupted halfway is
    finished by the next stop, deploy or `repair`, not taken for a crash to start again.
    `left_running`: recorded pids that run but are not its processes (never signalled)."""
    with locked(state_dir, name):
        rec = read_record(state_dir, name)
        f = record_file(state_dir, name)
        if rec is None and not P.find_owned(f"{f}#", legacy_record=str(f)):
            get_endpoint(name, state_dir)  # raises: no such endpoint
        if rec is not None:
            write_record(state_dir, name, {**rec, "stopping": time.time()})  # intent first
        return {"name": name, **stop_everything(state_dir, name, rec)}
