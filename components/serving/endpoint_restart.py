"""`repair_endpoints`: settle interrupted deploys (`endpoint_repair`), then start again what is down."""

from __future__ import annotations

from kubepipe.components.errors import ComponentError
from kubepipe.components.serving.endpoint_deploy import deploy_local
from kubepipe.components.serving.endpoint_record import (get_endpoint, list_record_names, locked, read_record,
                                                         record_file)
from kubepipe.components.serving.endpoint_repair import (endpoint_status, gone_processes, model_gone, orphans,
                                                         repair_locked)


def _restart(state_dir: str, name: str, timeout_s: float) -> str | None:
    """Start again an endpoint that is `down` (its proxy or backend was killed, or the machine rebooted): the
    recorded model, version, port and server options, through `deploy_local` (recorded intent, readiness and
    smoke; the champion is not touched). The action it took, or None when the endpoint was not down."""
    f = record_file(state_dir, name)
    rec = read_record(state_dir, name)
    if rec is None or endpoint_status(rec, f)[0] != "down":
        return None
    gone = gone_processes(rec, name)
    missing = model_gone(rec)
    if missing:
        raise ComponentError(f"endpoint {name} is down (its {' and '.join(gone) or 'processes'} stopped) and {missing}")
    args = (rec.get("backend") or {}).get("args")
    out = deploy_local(name, rec["model_dir"], port=rec["port"], state_dir=state_dir, timeout_s=timeout_s,
                       version=rec.get("version"), server_args=args if isinstance(args, list) else None)
    flags = "" if isinstance(args, list) else " (its server options were not recorded: started with the defaults)"
    return (f"restarted the endpoint, whose {' and '.join(gone) or 'processes'} had stopped: {out['model_dir']} "
            f"serves again at {out['url']} (pids {out['pids']['proxy']}, {out['pids']['backend']}){flags}")


def repair_endpoints(state_dir: str = ".kubepipe", name: str | None = None, *, timeout_s: float = 120) -> list[dict]:
    """Settle interrupted deploys, stop untracked processes, and start again an endpoint that is `down` (a
    process of it was killed): of `name`, or of every endpoint under `state_dir` (then an endpoint that
    cannot be repaired, its record unreadable or its model gone, is an item with its `error`)."""
    names = [name] if name else sorted(set(list_record_names(state_dir)) | set(orphans(state_dir)))
    out: list[dict] = []
    for n in names:
        known = record_file(state_dir, n).exists()
        try:
            with locked(state_dir, n):
                report = repair_locked(state_dir, n)
        except ComponentError as exc:
            if name:
                raise
            # one unreadable record must not leave every other endpoint unrepaired
            out.append({"name": n, "actions": [], "stopped": [], "adopted": [], "record": None, "error": str(exc)})
            continue
        if name and not known and not report["actions"]:
            get_endpoint(name, state_dir)  # raises, as `stop` does: a mistyped name is not "nothing to repair"
        if report["record"] is not None:
            try:
                restarted = _restart(str(state_dir), n, timeout_s)
            except ComponentError as exc:
                if name:
                    raise
                report, restarted = {**report, "error": str(exc)}, None
            if restarted:
                report = {**report, "actions": [*report["actions"], restarted], "record": read_record(state_dir, n)}
        out.append(report)
    return out
