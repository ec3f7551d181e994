"""`deploy_local`: start a new backend, check it (readiness, smoke, canary), then switch the proxy to it.

The crash-consistency protocol is described in `endpoints`."""

from __future__ import annotations

import json
import math
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kubepipe.components.errors import ComponentError, ConfigError, GateFailed
from kubepipe.components.serving import processes as P
from kubepipe.components.serving.endpoint_canary import CanaryRejected, bake
from kubepipe.components.serving.endpoint_record import (check_name, endpoints_dir, locked, ports_claimed,
                                                         ports_in_use, read_record, record_file, write_record)
from kubepipe.components.serving.endpoint_repair import proxy_switch, repair_locked, stop_process
from kubepipe.components.serving.guard import SMOKE_HEADER
from kubepipe.util import failpoint


class EndpointRolledBack(GateFailed):
    """The new model did not become ready or failed its smoke test; the old one keeps serving."""


class PortInUse(ComponentError):
    """The endpoint's port is held by another endpoint or program; retrying cannot help."""


def _wait_ready(base: str, name: str, proc, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            errors = [ln for ln in lines if ln.startswith("error:")] or lines[-1:]
            why = errors[-1] if errors else "no output"
            raise EndpointRolledBack(f"the new server exited with code {proc.returncode} before it was ready "
                                     f"({why}); see {log}")
        try:
            if P.http_get(f"{base}/v2/models/{name}/ready", timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise EndpointRolledBack(f"the new server was not ready after {timeout_s:g}s (loading and warming up its model "
                             f"takes longer: give the deploy a larger `timeout_s`); see {log}")


def _default_smoke(base: str, name: str) -> list:
    info = json.loads(P.http_get(f"{base}/kubepipe/v1/models/{name}")[1])
    if info.get("task") == "tabular-classification":
        return [[0.0] * len(info.get("features") or [])]
    return ["kubepipe smoke test 1234 main street"]


def _smoke(base: str, name: str, inputs: list | None) -> dict:
    import httpx

    inputs = list(inputs) if inputs else _default_smoke(base, name)
    t0 = time.perf_counter()
    try:
        r = httpx.post(f"{base}/v1/models/{name}:predict", json={"instances": inputs}, timeout=30, trust_env=False,
                       headers={SMOKE_HEADER: "1"})
    except httpx.HTTPError as exc:
        raise EndpointRolledBack(f"smoke request failed: {type(exc).__name__}: {exc}") from None
    if r.status_code != 200:
        raise EndpointRolledBack(f"smoke request answered {r.status_code}: {r.text[:300]}")
    preds = r.json().get("predictions", [])
    if len(preds) != len(inputs) or not all(_finite_answer(p) for p in preds):
        raise EndpointRolledBack(f"smoke request returned {len(preds)} predictions for {len(inputs)} inputs "
                                 "or non-finite probabilities/scores")
    # a classifier answers {label, probability}; a retriever answers its hits, best first
    labels = [p["label"] if isinstance(p, dict) else (p[0].get("doc_id") if p else None) for p in preds]
    return {"inputs": len(inputs), "labels": labels, "seconds": round(time.perf_counter() - t0, 4)}


def _finite_answer(p) -> bool:
    """A classifier's probability, or every retriever hit's score, is a finite number."""
    if isinstance(p, dict):
        v = p.get("probability", math.nan)
        return isinstance(v, (int, float)) and math.isfinite(v)
    if isinstance(p, list):
        return all(isinstance(h, dict) and isinstance(h.get("score"), (int, float)) and math.isfinite(h["score"])
                   for h in p)
    return False


def _prune_logs(folder: Path, rec: dict | None, keep: int = 5) -> None:
    """The last `keep` backend logs stay, and always the one of the backend `rec` names: a stable backend that logs
    little was the oldest after 5 rolled-back canaries, and its log (its 500s' tracebacks) was deleted while it
    served."""
    named = {Path(e["log"]).name for e in ((rec or {}).get("backend"), (rec or {}).get("canary"))
             if isinstance(e, dict) and isinstance(e.get("log"), str)}
    logs = sorted((f for f in folder.glob("backend-*.log") if f.name not in named), key=lambda f: f.stat().st_mtime)
    for f in logs[:-keep] if keep else logs:
        f.unlink(missing_ok=True)


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _check_port(state_dir: str | Path, name: str, port: int) -> None:
    """A clear error when the stable port is another endpoint's or another program's (not retried)."""
    other = ports_in_use(state_dir, besides=name).get(port)
    if other:
        raise PortInUse(f"port {port} is the port of local endpoint `{other}` ({record_file(state_dir, other)}); "
                        f"give endpoint {name} another `serving.port`, or stop `{other}` first "
                        f"(`kubepipe endpoints stop {other}`)")
    if not P.port_free(port):
        raise PortInUse(_taken(state_dir, name, port))


def _taken(state_dir: str | Path, name: str, port: int) -> str:
    """Who holds `port`, as far as the OS says, and what to do: another home's endpoint proxy was 'a program that is
    not a kubepipe endpoint'."""
    found = P.port_holder(port)
    if found and found["endpoint"] and found["record"] and found["endpoint"] != name:
        record = Path(found["record"])
        mine = record.parent == endpoints_dir(state_dir)  # a proxy whose record was lost: an orphan of this home
        where = "with no record" if mine else f"of another home ({record})"
        home = "" if mine else f" --home {record.parent.parent}"
        return (f"port {port} on 127.0.0.1 is held by the proxy of local endpoint `{found['endpoint']}` {where} "
                f"(pid {found['pid']}); give endpoint {name} another `serving.port`, or stop `{found['endpoint']}` "
                f"first (`kubepipe endpoints stop {found['endpoint']}{home}`)")
    who = (f"pid {found['pid']} ({found['name'] or 'its program unknown'}), not a kubepipe endpoint" if found else
           "a program that is not a kubepipe endpoint")
    return f"port {port} on 127.0.0.1 is in use by {who}; give endpoint {name} another `serving.port` (or stop it)"


def _check_arguments(port, canary_percent: int, canary_analysis, max_batch_size) -> None:
    """The deploy step's own rules (deploy/checks.py) on a library caller's arguments, each error naming its
    argument: `port=70000` was an OverflowError from bind, `port=80` and `canary_percent=150` were taken. Not
    `smoke_inputs` (the step's rule assumes the server's default options, which `server_flags` may change), nor
    `version` (the step's hint is about wiring it)."""
    from kubepipe.components.checks import errors_only
    from kubepipe.components.deploy.checks import check

    serving = {k: v for k, v in (("port", port), ("max_batch_size", max_batch_size)) if v is not None}
    issues = errors_only(check({"canary_percent": canary_percent, "canary_analysis": canary_analysis,
                                "serving": serving}, target="local"))
    if issues:
        raise ConfigError("deploy_local: " + "; ".join(
            _argument(i.path) + f": {i.message}" + (f" ({i.hint})" if i.hint else "") for i in issues))


def _argument(path: tuple) -> str:
    """The argument a `with:` path of the deploy check stands for: ('serving', 'port') -> port=,
    ('canary_analysis', 'bake_s') -> canary_analysis['bake_s'], ('smoke_inputs', 0) -> smoke_inputs[0]."""
    head, *rest = path[1:] if path[0] == "serving" else path
    return f"{head}=" if not rest else head + "".join(f"[{k!r}]" for k in rest)


def _wait_proxy(proc, port: int, log: Path, timeout_s: float, state_dir: str | Path, name: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # most often the port was taken while the backend loaded (another deploy's)
            _check_port(state_dir, name, port)
            raise ComponentError(f"the endpoint proxy on port {port} exited with {proc.returncode}; see {log}")
        try:  # its own answer: another endpoint's proxy on the port answered too, and a dead proxy was recorded
            status, body = P.http_get(f"{_url(port)}/_kubepipe/proxy", timeout=1.0)
            if status == 200 and json.loads(body).get("pid") == proc.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise ComponentError(f"the endpoint proxy on port {port} did not come up in {timeout_s:.0f}s; see {log}")


def _started(entry: dict, proc) -> dict:
    entry.update(pid=proc.pid, create_time=P.identity(proc.pid), started_at=time.time())
    return entry


def _promote(champion: dict | None) -> dict:
    if not champion:
        return {"moved": False, "why": "no registry version given; champion not touched"}
    from kubepipe.components.deploy.champion import ANY, promote_champion

    return promote_champion(champion["registry"], champion["model"], champion["version"], reason=champion["reason"],
                            details=champion.get("details"), expect=champion.get("expected", ANY))


def _serves(old: dict | None, proxy, backend, version, mdir: Path, server_args: list) -> bool:
    """The endpoint already serves registry version `version` from `mdir` (the registry's copy of it), through a
    proxy and a backend of ours, with these server options: a deploy re-run (a run resumed after its deploy step
    crashed once it had switched) has nothing to do."""
    return bool(old and proxy and backend and version is not None and old.get("version") == version
                and old.get("model_dir") == str(mdir) and backend.get("args") == list(server_args))


def _unchanged(name: str, old: dict, proxy: dict, backend: dict, smoke_inputs, champion, version,
               record: Path) -> dict | None:
    """The result of a deploy with nothing to do, once the served model answered its smoke request (the champion
    moved to it, if it had not); None when it did not answer (then it is deployed again)."""
    url = old["url"]
    try:
        smoke = _smoke(url, name, smoke_inputs)
    except EndpointRolledBack:
        return None
    moved = _promote(dict(champion, version=version) if champion else None)
    return {"name": name, "url": url, "port": proxy["port"], "model_dir": old["model_dir"], "version": version,
            "predict_url": f"{url}/v1/models/{name}:predict", "infer_url": f"{url}/v2/models/{name}/infer",
            "ready_url": f"{url}/v2/models/{name}/ready", "pids": {"proxy": proxy["pid"], "backend": backend["pid"]},
            "replaced": None, "smoke": smoke, "action": "unchanged", "record": str(record),
            "champion": moved, "canary_analysis": None}


def deploy_local(name: str, model_dir: str, *, port: int | None = None, smoke_inputs: list | None = None,
                 state_dir: str = ".kubepipe", timeout_s: float = 120, max_batch_size: int = 64,
                 max_wait_ms: float = 2.0, version: int | None = None, champion: dict | None = None,
                 canary_percent: int = 10, canary_analysis: dict | None = None,
                 server_flags: list[str] | None = None, server_args: list[str] | None = None) -> dict:
    """Start or replace the local endpoint `name` with `model_dir`; the old model serves until the new one passed.

    `champion` ({registry, model, version, reason}) is promoted once the proxy serves the new model,
    as part of the same recorded switch. Returns {"name", "url", "port", "predict_url", "infer_url",
    "ready_url", "model_dir", "pids", "replaced", "smoke", "action": "started" | "replaced" | "unchanged" (the
    endpoint already served this version from this folder with these options: nothing restarted), "record",
    "champion", "repaired"}. Raises EndpointRolledBack when the new model did not get ready or failed
    the smoke test (the old endpoint, if any, is untouched), PortInUse when the port is taken (found taken at
    once, or taken while the new backend loaded: then rolled back), ConfigError naming an argument the deploy step's
    rules refuse (`port`, `canary_percent`, `canary_analysis`, `max_batch_size`).

    `canary_analysis` (settings of `deploy.canary_analysis`): when an endpoint already serves, the
    new backend first takes `canary_percent` % of the traffic for `bake_s` seconds and is compared
    with the stable one (`endpoint_canary`); CanaryRejected (an EndpointRolledBack, with
    `.analysis`) when it loses, and the result's `canary_analysis` holds the numbers when it wins.

    `server_args`: the backend's whole `kubepipe serve` option list, in place of the one made of
    `max_batch_size`, `max_wait_ms` and `server_flags` (a restart passes the one its backend recorded).
    """
    from kubepipe.components.deploy.canary_analysis import analysis_settings

    check_name(name)
    _check_arguments(port, canary_percent, canary_analysis, max_batch_size if server_args is None else None)
    settings = analysis_settings(canary_analysis)
    mdir = Path(model_dir).resolve()
    if not mdir.is_dir():
        raise ComponentError(f"model_dir {model_dir}: not a directory; pass the Model artifact of a train step")
    d, f = endpoints_dir(state_dir), record_file(state_dir, name)
    # no drain delay behind the proxy: it has switched away before it stops the old backend
    if server_args is None:
        server_args = ["--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms), "--drain-delay",
                       "0", *(server_flags or [])]  # e.g. the prediction log's (monitoring/settings.py)
    with locked(state_dir, name):
        repaired = repair_locked(state_dir, name)["actions"]
        old = read_record(state_dir, name)
        proxy = old["proxy"] if old and P.is_ours(old.get("proxy"), P.PROXY_MODULE, name) else None
        old_backend = old["backend"] if old and P.is_ours(old.get("backend"), P.SERVER_MODULE, name) else None
        if proxy and port and port != proxy["port"]:
            raise PortInUse(f"endpoint {name} already serves on port {proxy['port']}; stop it first "
                            f"(`kubepipe endpoints stop {name}`) to move it to port {port}")
        stable = proxy["port"] if proxy else (port or (old or {}).get("port") or P.free_port())
        with ExitStack() as claim:
            if not proxy:  # the check and the record naming the port, as one step for every endpoint of this home
                claim.enter_context(ports_claimed(state_dir))
                _check_port(state_dir, name, stable)
            if old and proxy and old_backend and _serves(old, proxy, old_backend, version, mdir, server_args):
                unchanged = _unchanged(name, old, proxy, old_backend, smoke_inputs, champion, version, f)
                if unchanged:
                    unchanged["repaired"] = repaired
                    return unchanged
            if (d / name).is_dir():
                _prune_logs(d / name, old)  # the last few deployments' logs stay for debugging
            bport = P.free_port()
            log = d / name / f"backend-{bport}.log"
            new: dict[str, Any] = {"role": "backend", "token": P.new_token(f, "backend"), "port": bport,
                                   "model_dir": str(mdir), "version": version, "log": str(log),
                                   "args": list(server_args)}  # what a restart starts again
            rec = {"history": [], "proxy": None, "backend": None, "model_dir": str(mdir), "version": version,
                   **(old or {}), "name": name, "port": stable, "url": _url(stable), "pending": [new], "switch": None,
                   "updated_at": time.time()}
            write_record(state_dir, name, rec)  # intent first: the backend is known before it exists
        proc = P.spawn(P.SERVER_MODULE, [str(mdir), "--name", name, "--host", "127.0.0.1", "--port", str(bport),
                                         *server_args], log, new["token"])
        failpoint("deploy.before-record")
        rec["pending"] = [_started(new, proc)]
        write_record(state_dir, name, rec)
        analysis = None
        try:
            _wait_ready(_url(bport), name, proc, timeout_s, log)
            smoke = _smoke(_url(bport), name, smoke_inputs)
            if settings and old_backend and proxy:
                analysis = bake(state_dir, name, rec, new, proc, proxy, old_backend, percent=canary_percent,
                                settings=settings)
                if analysis["decision"] != "promote":
                    raise CanaryRejected(analysis["why"], analysis)
        except BaseException as exc:
            if rec.get("canary"):  # the proxy goes back to the stable backend before the canary stops
                repair_locked(state_dir, name)
            P.terminate(proc.pid, timeout_s=10, proc=proc)
            repair_locked(state_dir, name)  # forgets the stopped backend; the old record stands (or none)
            where = (f"the old model ({old_backend['model_dir']}) keeps serving at {_url(stable)}"
                     if old_backend and proxy else "no endpoint was running, none was started")
            if isinstance(exc, CanaryRejected):
                raise CanaryRejected(f"endpoint {name}: rolled back: {exc}; {where}", exc.analysis) from None
            if isinstance(exc, EndpointRolledBack):
                raise EndpointRolledBack(f"endpoint {name}: rolled back: {exc}; {where}") from None
            raise
        champ = dict(champion, version=version) if champion and version is not None else None
        if champ and analysis:
            champ.update(reason=analysis["why"], details={"canary_analysis": analysis})
        history = (rec.get("history") or [])[-9:] + ([old_backend["model_dir"]] if old_backend else [])
        rec.update(backend=new, model_dir=str(mdir), version=version, pending=[], history=history, canary=None,
                   switch={"from": old_backend, "from_version": (old or {}).get("version") if old_backend else None,
                           "from_model_dir": (old or {}).get("model_dir"), "new_proxy": proxy is None,
                           "to": new, "champion": champ, "at": time.time()})
        try:
            if proxy is None:
                plog = d / name / "proxy.log"
                pentry: dict[str, Any] = {"role": "proxy", "token": P.new_token(f, "proxy"), "port": stable,
                                          "log": str(plog)}
                rec["pending"] = [pentry]
                write_record(state_dir, name, rec)  # the switch and the proxy, before the proxy starts
                pproc = P.spawn(P.PROXY_MODULE, ["--name", name, "--port", str(stable), "--record", str(f)], plog,
                                pentry["token"])
                failpoint("deploy.proxy-started")
                write_record(state_dir, name, {**rec, "pending": [_started(pentry, pproc)]})
                _wait_proxy(pproc, stable, plog, 30, state_dir, name)
                rec.update(proxy={k: v for k, v in pentry.items() if k != "role"}, pending=[])
                write_record(state_dir, name, rec)
            else:
                write_record(state_dir, name, rec)  # the switch, before the proxy moves
                proxy_switch(proxy, name, bport, old_backend["port"] if old_backend else None, timeout_s=60)
            failpoint("deploy.switched")
            moved = _promote(champ)
        except BaseException:
            try:  # settle it as a later repair would: the champion did not move, so the switch is undone
                repair_locked(state_dir, name)
            except Exception:  # noqa: BLE001 - the deploy's own error is the one to report; repair runs again later
                P.terminate(proc.pid, timeout_s=10, proc=proc)
            raise
        failpoint("deploy.promoted")
        rec.update(switch=None, updated_at=time.time(), pending=[dict(old_backend, role="backend")] if old_backend else [])
        write_record(state_dir, name, rec)  # committed
        failpoint("deploy.committed")
        if old_backend:
            stop_process(old_backend, P.SERVER_MODULE, name)
            rec["pending"] = []
            write_record(state_dir, name, rec)
        url = rec["url"]
        return {"name": name, "url": url, "port": stable, "model_dir": str(mdir), "version": version,
                "predict_url": f"{url}/v1/models/{name}:predict", "infer_url": f"{url}/v2/models/{name}/infer",
                "ready_url": f"{url}/v2/models/{name}/ready",
                "pids": {"proxy": rec["proxy"]["pid"], "backend": new["pid"]},
                "replaced": old_backend["model_dir"] if old_backend else None, "smoke": smoke,
                "action": "replaced" if old_backend else "started", "record": str(f), "champion": moved,
                "repaired": repaired, "canary_analysis": analysis}
