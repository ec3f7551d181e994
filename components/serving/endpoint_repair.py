"""Settle what an interrupted deploy left behind, and tell an endpoint's true state.

A deploy writes its intent before acting (see `endpoint_record`): processes it is about to
start go to `pending`, a backend switch to `switch` until the champion has moved. `repair`
reads that and finishes the job one way or the other, so that an endpoint is either fully
switched with the champion moved, or not switched at all:

- an unfinished switch whose champion already moved is committed (the old backend stopped);
  otherwise it is rolled back: the proxy goes back to the old backend and the new one stops
  (a first deploy rolled back leaves no endpoint);
- a pending process is adopted when it is a healthy proxy the endpoint lacks, else stopped;
- any other process carrying this endpoint's owner token (or an old-style proxy naming this
  record) is stopped, which also frees the endpoint's port.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from kubepipe.components.errors import ComponentError
from kubepipe.components.serving import processes as P
from kubepipe.components.serving.endpoint_record import (endpoints_dir, list_record_names, lock_path, read_record,
                                                         record_file, write_record)
from kubepipe.locks import held
from kubepipe.util import failpoint

__all__ = ["repair_locked", "stop_everything", "endpoint_status", "orphans", "stop_process", "proxy_switch",
           "proxy_state", "champion_moved", "model_gone", "restart_hint", "gone_processes"]


def stop_process(entry: dict | None, module: str | None = None, name: str | None = None) -> int | None:
    """Stop a recorded process if it is still ours; its pid when it was stopped."""
    if entry and P.is_ours(entry, module, name):
        P.terminate(entry["pid"], create_time=entry.get("create_time"))
        return entry["pid"]
    return None


def _entry_from_scan(found: dict, port: int | None = None) -> dict:
    return {"pid": found["pid"], "create_time": found["create_time"], "token": found["token"], "port": port}


def proxy_switch(proxy: dict, name: str, new_port: int, old_port: int | None, timeout_s: float,
                 canary_port: int | None = None) -> None:
    """SIGHUP endpoint `name`'s proxy and wait until it sends to `new_port` (and its canary share to `canary_port`,
    None: no canary) and holds nothing on `old_port`."""
    if not P.is_ours(proxy, P.PROXY_MODULE, name):  # checked again: it may have died, its pid reused, since found
        raise ComponentError(f"endpoint {name}: its proxy (pid {proxy.get('pid')}) is not running any more, so it "
                             f"was not switched; `kubepipe endpoints repair {name}` starts it again")
    os.kill(proxy["pid"], signal.SIGHUP)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = proxy_state(proxy["port"], timeout_s=2.0)
            if (state["backend_port"] == new_port and state.get("canary_port") == canary_port
                    and not state["in_flight"].get(str(old_port))):
                return
        except (OSError, ValueError, KeyError):
            if not P.is_ours(proxy, P.PROXY_MODULE, name):  # killed meanwhile: waiting out timeout_s helps nothing
                raise ComponentError(f"endpoint {name}: its proxy (pid {proxy['pid']}) stopped while it was being "
                                     f"switched to port {new_port}; `kubepipe endpoints repair {name}` starts it "
                                     "again") from None
        time.sleep(0.02)
    log = f" (its log: {proxy['log']})" if proxy.get("log") else ""
    raise ComponentError(f"endpoint {name}: its proxy (pid {proxy['pid']}) did not switch to port {new_port} within "
                         f"{timeout_s:g}s{log}; `kubepipe endpoints repair {name}` settles the endpoint")


def proxy_state(port: int, timeout_s: float = 5.0) -> dict:
    """What the endpoint proxy on `port` says of itself: backend_port, canary_port, in_flight, revisions."""
    return json.loads(P.http_get(f"http://127.0.0.1:{port}/_kubepipe/proxy", timeout=timeout_s)[1])


def _proxy_stale(rec: dict, name: str) -> bool:
    """The proxy (ours) sends to other backends than the record names (a repair killed between writing the record and
    its SIGHUP: the proxy kept a stopped canary's share)."""
    proxy, backend = rec.get("proxy"), rec.get("backend")
    if not backend or not P.is_ours(proxy, P.PROXY_MODULE, name):
        return False
    try:
        state = proxy_state(proxy["port"], timeout_s=2.0)
        return state["backend_port"] != backend["port"] or state.get("canary_port") != (rec.get("canary") or {}).get("port")
    except (OSError, ValueError, KeyError, TypeError):
        return False  # it does not say: left as it is


def champion_moved(champion: dict | None) -> bool:
    """Whether the registry's champion is the version a switch was promoting."""
    if not champion or not champion.get("registry"):
        return False
    from kubepipe.components.deploy.champion import current_champion

    try:
        return current_champion(champion["registry"], champion["model"]) == champion["version"]
    except ComponentError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable registry must not be guessed at
        raise ComponentError(f"cannot read the champion of {champion['model']!r} in {champion['registry']} "
                             f"({type(exc).__name__}: {exc}); the interrupted deploy stays recorded: fix the "
                             "registry, then run `kubepipe endpoints repair`") from None


def _proxy_answers(port: int) -> bool:
    try:
        return P.http_get(f"http://127.0.0.1:{port}/_kubepipe/proxy", timeout=1.0)[0] == 200
    except OSError:
        return False


def stop_everything(state_dir: str | Path, name: str, rec: dict | None) -> dict:
    """Stop every process of endpoint `name` that is ours (recorded in `rec`, pending, or found by its owner token),
    then remove its record (the caller holds its lock). {stopped, not_ours_or_gone, left_running}."""
    f = record_file(state_dir, name)
    rec = rec or {}
    sw = rec.get("switch") or {}
    stopped: list[int] = []
    skipped: list[int] = []
    left: list[int] = []
    entries = [(rec.get("proxy"), P.PROXY_MODULE), (rec.get("backend"), P.SERVER_MODULE), (rec.get("canary"), None),
               *((e, None) for e in (*(rec.get("pending") or []), sw.get("to"), sw.get("from"),
                                     *P.find_owned(f"{f}#", legacy_record=str(f))))]
    for entry, module in entries:
        if not entry or not entry.get("pid") or entry["pid"] in stopped:
            continue
        pid = stop_process(entry, module, name)
        failpoint("stop.stopped-one")
        if pid:
            stopped.append(pid)
        elif entry["pid"] not in skipped:
            skipped.append(entry["pid"])  # gone already, or the pid now belongs to someone else
            if P.foreign(entry):  # a reused pid, an edited record: left alone, and said
                left.append(entry["pid"])
    f.unlink(missing_ok=True)
    return {"stopped": stopped, "not_ours_or_gone": [p for p in skipped if p not in stopped],
            "left_running": [p for p in left if p not in stopped]}


def repair_locked(state_dir: str | Path, name: str) -> dict:
    """Settle endpoint `name` (the caller holds its lock). Returns {name, actions, stopped, adopted, record}."""
    f = record_file(state_dir, name)
    rec = read_record(state_dir, name)
    actions: list[str] = []
    stopped: list[int] = []
    adopted: list[int] = []

    def stop(entry: dict | None, why: str) -> None:
        pid = stop_process(entry, None, name)
        if pid:
            stopped.append(pid)
            actions.append(f"stopped {why} (pid {pid})")

    if rec is None:
        for found in P.find_owned(f"{f}#", legacy_record=str(f)):
            stop(found, f"leftover {found['role']} with no record")
        return {"name": name, "actions": actions, "stopped": stopped, "adopted": adopted, "record": None}
    if rec.get("stopping"):  # a stop killed halfway: finished, not started again as a crash would be
        done = stop_everything(state_dir, name, rec)
        actions.append("finished an interrupted stop" + (f" (pids {', '.join(map(str, done['stopped']))})"
                                                         if done["stopped"] else ""))
        return {"name": name, "actions": actions, "stopped": done["stopped"], "adopted": adopted, "record": None}

    canary = rec.get("canary")
    if canary:  # a canary whose deploy did not decide (killed, or analysis said no): the stable backend serves alone
        entry = {k: v for k, v in canary.items() if k not in ("percent", "deployer", "started_at")}
        rec.update(canary=None, pending=[*(rec.get("pending") or []), dict(entry, role="backend")])
        write_record(state_dir, name, rec)
        proxy, stable = rec.get("proxy"), rec.get("backend")
        if P.is_ours(proxy, P.PROXY_MODULE, name) and stable:
            proxy_switch(proxy, name, stable["port"], canary.get("port"), timeout_s=60)
        actions.append(f"rolled back the canary {canary.get('model_dir')}: {rec['model_dir']} serves alone "
                       "(the champion had not moved)")

    sw = rec.get("switch")
    if sw:
        to, frm = sw["to"], sw.get("from")
        if champion_moved(sw.get("champion")):
            rec.update(switch=None, pending=[*(rec.get("pending") or []), *([frm] if frm else [])])
            write_record(state_dir, name, rec)
            actions.append(f"committed the interrupted switch to {to.get('model_dir')} (champion had moved)")
        else:  # roll back: the old backend (if any) serves again, the new one stops
            pending = rec.get("pending") or []
            if sw.get("new_proxy", frm is None):  # this deploy started the proxy: it goes with it
                for entry in (rec.get("proxy"), *(e for e in pending if e.get("role") == "proxy")):
                    stop(entry, "proxy of an interrupted deploy")
                rec["proxy"] = None
                pending = [e for e in pending if e.get("role") != "proxy"]
            rec.update(backend=frm, model_dir=sw.get("from_model_dir") or (frm or {}).get("model_dir")
                       or rec["model_dir"], version=sw.get("from_version"), switch=None, pending=[*pending, to])
            write_record(state_dir, name, rec)
            proxy = rec.get("proxy")
            if P.is_ours(proxy, P.PROXY_MODULE, name) and P.is_ours(frm, P.SERVER_MODULE, name):
                proxy_switch(proxy, name, frm["port"], to.get("port"), timeout_s=60)
            actions.append(f"rolled back an interrupted switch: {frm.get('model_dir')} serves again "
                           "(the champion had not moved)" if frm else
                           "rolled back an interrupted first deploy (the champion had not moved)")

    for entry in rec.get("pending") or []:
        role = entry.get("role", "process")
        if (role == "proxy" and not P.is_ours(rec.get("proxy"), P.PROXY_MODULE, name) and P.is_ours(entry, None, name)
                and entry.get("port") == rec["port"] and _proxy_answers(rec["port"])):
            rec["proxy"] = {k: v for k, v in entry.items() if k != "role"}
            adopted.append(entry["pid"])
            actions.append(f"adopted the proxy of an interrupted deploy (pid {entry['pid']})")
        elif P.is_ours(entry, None, name):
            stop(entry, f"{role} of an interrupted deploy")
        else:  # killed between intent and commit (no pid yet), or exited: find it by its token
            owned = P.find_owned(entry["token"]) if entry.get("token") else []
            for proc in owned:
                stop(proc, f"{role} of an interrupted deploy, never recorded")
            if not owned and P.foreign(entry):
                actions.append(f"forgot the {role} of an interrupted deploy; left pid {entry['pid']} running: it is "
                               "not a process kubepipe started for this endpoint (another program has that pid now)")
            elif not owned:
                actions.append(f"forgot the {role} of an interrupted deploy (not running)")
    rec["pending"] = []

    tracked = {(e or {}).get("token") for e in (rec.get("proxy"), rec.get("backend")) if e}
    tracked_pids = {(e or {}).get("pid") for e in (rec.get("proxy"), rec.get("backend")) if e}
    for found in P.find_owned(f"{f}#", legacy_record=str(f)):
        if (found["token"] and found["token"] in tracked) or (not found["token"] and found["pid"] in tracked_pids):
            continue
        stop(found, f"untracked {found['role']}")
    if not rec.get("proxy") and not rec.get("backend"):  # only an intent was ever recorded: nothing to keep
        f.unlink(missing_ok=True)
        return {"name": name, "actions": actions, "stopped": stopped, "adopted": adopted, "record": None}
    if actions:
        rec["updated_at"] = time.time()
        write_record(state_dir, name, rec)
    if _proxy_stale(rec, name):  # after the write: the proxy reads the record on SIGHUP
        proxy_switch(rec["proxy"], name, rec["backend"]["port"], None, timeout_s=60)
        actions.append(f"pointed the proxy at the recorded backend (port {rec['backend']['port']}) again: an "
                       "interrupted repair had left it on other backends")
    return {"name": name, "actions": actions, "stopped": stopped, "adopted": adopted, "record": rec}


def endpoint_status(rec: dict, f: Path) -> tuple[str, list[int]]:
    """(status, pids of untracked processes answering for it) without changing anything.

    up | unready | canary (a deploy holds a canary) | deploying (a deploy, or the repair settling one, is under way) |
    stopping | interrupted (a deploy or stop was killed: `kubepipe endpoints repair`) | untracked (a leftover proxy
    answers on the port, not the recorded one) | down.
    """
    name = rec["name"]
    owned = P.find_owned(f"{f}#", legacy_record=str(f))
    tracked = {(e or {}).get("pid") for e in (rec.get("proxy"), rec.get("backend"), rec.get("canary")) if e}
    extra = [o["pid"] for o in owned if o["pid"] not in tracked]
    canary = rec.get("canary")
    deployer = (canary or {}).get("deployer") or {}
    if (canary and not rec.get("switch") and not rec.get("pending") and isinstance(deployer.get("pid"), int)
            and deployer["pid"] > 1 and P.alive(deployer["pid"], deployer.get("create_time"))):
        return "canary", extra  # a deploy is baking a canary right now
    if rec.get("switch") or rec.get("pending") or canary or rec.get("stopping"):
        # its intent is recorded while a deploy, stop or repair runs: interrupted only once none holds the lock
        if held(lock_path(f)):
            return ("stopping" if rec.get("stopping") else "deploying"), extra
        return "interrupted", extra
    up = P.is_ours(rec.get("proxy"), P.PROXY_MODULE, name) and P.is_ours(rec.get("backend"), P.SERVER_MODULE, name)
    if up:
        try:
            ok = P.http_get(f"{rec['url']}/v2/models/{name}/ready", timeout=2.0)[0] == 200
        except OSError:
            ok = False
        return ("up" if ok else "unready"), extra
    if extra and _proxy_answers(rec["port"]):
        return "untracked", extra
    return "down", extra


def orphans(state_dir: str | Path) -> dict[str, list[dict]]:
    """Processes owned by endpoint records that do not exist (any more): {endpoint name: [process]}."""
    d = endpoints_dir(state_dir)
    known = set(list_record_names(state_dir))
    out: dict[str, list[dict]] = {}
    for found in P.find_owned(f"{d}/", legacy_record=f"{d}/"):
        stem = Path(found["record"]).stem
        if Path(found["record"]).parent == d and stem not in known:
            out.setdefault(stem, []).append(found)
    return out


def model_gone(rec: dict) -> str | None:
    """What an endpoint whose model folder is gone cannot do (it serves from memory, if at all), and what to do
    instead; None while the folder is there."""
    if Path(rec["model_dir"]).is_dir():
        return None
    return (f"cannot be started again: its model {rec['model_dir']} is gone; re-run its deploy step, or "
            f"`kubepipe endpoints stop {rec['name']}`")


def restart_hint(rec: dict) -> str:
    """What to do about an endpoint whose processes stopped: `repair` starts it again, unless its model folder is gone
    or they stopped because a stop of it was interrupted (then the stop is to be finished, not undone)."""
    if rec.get("stopping"):
        return (f"a stop of it was interrupted; `kubepipe endpoints stop {rec['name']}` (or `repair`) finishes it")
    missing = model_gone(rec)
    return f"it {missing}" if missing else f"`kubepipe endpoints repair {rec['name']}` starts it again"


def gone_processes(rec: dict, name: str) -> list[str]:
    """The recorded processes of an endpoint that are not running (any more): `backend (pid 123)`, or
    `backend (pid 123: another program's now)` when that pid runs but is not the process kubepipe recorded."""
    out = []
    for role, module in (("proxy", P.PROXY_MODULE), ("backend", P.SERVER_MODULE)):
        entry = rec.get(role)
        if entry and entry.get("pid") and not P.is_ours(entry, module, name):
            out.append(f"{role} (pid {entry['pid']}" + (": another program's now)" if P.foreign(entry) else ")"))
    return out
