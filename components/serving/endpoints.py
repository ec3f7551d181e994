"""Local endpoints: a `kubepipe serve` process behind a stable port, replaced without downtime.

An endpoint NAME is two detached processes recorded in `<state_dir>/endpoints/NAME.json`:
  proxy    on the endpoint's stable port (http://127.0.0.1:PORT), forwarding to
  backend  `kubepipe serve MODEL_DIR --name NAME` on a private port.
`deploy_local` starts a new backend, waits for `/v2/models/NAME/ready` (load + warm-up),
sends smoke requests to it directly, and only then points the proxy at it and stops the old
backend once the requests it still holds are answered. When the new model fails, its process
is stopped and the old one keeps serving; `EndpointRolledBack` says so. Both processes outlive
the pipeline; `stop_endpoint` ends exactly the recorded pids after checking /proc that they
are ours. URLs: http://127.0.0.1:PORT/v1/models/NAME:predict and /v2/models/NAME/infer.
"""

from __future__ import annotations

import fcntl
import json
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubepipe.components.errors import ComponentError, GateFailed
from kubepipe.components.serving import processes as P

__all__ = ["deploy_local", "list_endpoints", "stop_endpoint", "get_endpoint", "predict_endpoint",
           "EndpointRolledBack"]


class EndpointRolledBack(GateFailed):
    """The new model did not become ready or failed its smoke test; the old one keeps serving."""


def _dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / "endpoints"


def _check_name(name: str) -> None:
    ok = (isinstance(name, str) and name and name.isascii() and name[0].isalnum()
          and all(c.isalnum() or c in "-_." for c in name) and len(name) <= 63)
    if not ok:
        raise ComponentError(f"endpoint name {name!r}: use letters, digits, '-', '_' or '.' (max 63), "
                             "starting with a letter or digit; list them with `kubepipe endpoints list`")


def _record_file(state_dir: str | Path, name: str) -> Path:
    """`<state_dir>/endpoints/NAME.json`, after checking NAME cannot leave that folder."""
    _check_name(name)
    return _dir(state_dir) / f"{name}.json"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_record(rec: Any, f: Path) -> dict:
    """The fields kubepipe reads from an endpoint record, with their types; a ComponentError naming file + field."""
    fix = "stop its processes by hand (see `ps`) and delete the file"
    if not isinstance(rec, dict):
        raise ComponentError(f"endpoint record {f}: must be a JSON object, got {type(rec).__name__}; {fix}")

    def bad(field: str, want: str) -> ComponentError:
        got = "missing" if field not in rec else f"got {rec[field]!r}"
        return ComponentError(f"endpoint record {f}: field {field!r} must be {want} ({got}); {fix}")

    for key in ("name", "url", "model_dir"):
        if not isinstance(rec.get(key), str) or not rec[key]:
            raise bad(key, "a non-empty string")
    if not rec["url"].startswith(("http://", "https://")) or any(c.isspace() or c in "[]" for c in rec["url"]):
        raise bad("url", "an http:// URL")
    if rec["name"] != f.stem:
        raise bad("name", f"the file's name {f.stem!r}")
    if not _is_int(rec.get("port")) or not 0 < rec["port"] < 65536:
        raise bad("port", "a port number (1-65535)")
    for role in ("proxy", "backend"):
        entry = rec.get(role)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ComponentError(f"endpoint record {f}: field {role!r} must be an object or null, got "
                                 f"{type(entry).__name__}; {fix}")
        if not _is_int(entry.get("pid")):
            raise ComponentError(f"endpoint record {f}: field '{role}.pid' must be an integer process id, "
                                 f"got {entry.get('pid')!r}; {fix}")
        if "port" in entry and not _is_int(entry["port"]):
            raise ComponentError(f"endpoint record {f}: field '{role}.port' must be an integer, "
                                 f"got {entry['port']!r}; {fix}")
        st = entry.get("start_time")
        if st is not None and not _is_int(st):
            raise ComponentError(f"endpoint record {f}: field '{role}.start_time' must be an integer or null, "
                                 f"got {st!r}; {fix}")
        if role == "backend" and not isinstance(entry.get("model_dir", ""), str):
            raise ComponentError(f"endpoint record {f}: field 'backend.model_dir' must be a string; {fix}")
    if not isinstance(rec.get("history") or [], list):
        raise bad("history", "a list")
    return rec


@contextmanager
def _locked(state_dir: str | Path, name: str):
    _check_name(name)
    d = _dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # one deploy/stop of an endpoint at a time
        yield


def _read(state_dir: str | Path, name: str) -> dict | None:
    f = _record_file(state_dir, name)
    try:
        rec = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ComponentError(f"endpoint record {f}: is a folder, not a file; remove it") from None
    except OSError as exc:
        raise ComponentError(f"endpoint record {f}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:  # invalid JSON or not UTF-8
        raise ComponentError(f"endpoint record {f}: not valid JSON ({exc}); stop its processes by hand "
                             "(see `ps`) and delete the file") from None
    return _check_record(rec, f)


def _write(state_dir: str | Path, name: str, record: dict) -> Path:
    from kubepipe.util import atomic_write_text

    f = _record_file(state_dir, name)
    atomic_write_text(f, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return f


def _proc_ok(entry: dict | None, module: str, name: str) -> bool:
    return bool(entry) and P.is_ours(entry["pid"], module, name, entry.get("start_time"))


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
    raise EndpointRolledBack(f"the new server was not ready after {timeout_s:.0f}s; see {log}")


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
        r = httpx.post(f"{base}/v1/models/{name}:predict", json={"instances": inputs}, timeout=30, trust_env=False)
    except httpx.HTTPError as exc:
        raise EndpointRolledBack(f"smoke request failed: {type(exc).__name__}: {exc}") from None
    if r.status_code != 200:
        raise EndpointRolledBack(f"smoke request answered {r.status_code}: {r.text[:300]}")
    preds = r.json().get("predictions", [])
    bad = len(preds) != len(inputs) or any(not math.isfinite(p.get("probability", math.nan)) for p in preds)
    if bad:
        raise EndpointRolledBack(f"smoke request returned {len(preds)} predictions for {len(inputs)} inputs "
                                 "or non-finite probabilities")
    return {"inputs": len(inputs), "labels": [p["label"] for p in preds],
            "seconds": round(time.perf_counter() - t0, 4)}


def _prune_logs(folder: Path, keep: int = 5) -> None:
    logs = sorted(folder.glob("backend-*.log"), key=lambda f: f.stat().st_mtime)
    for f in logs[:-keep]:
        f.unlink(missing_ok=True)


def _start_backend(name: str, model_dir: Path, d: Path, server_args: list[str]) -> tuple[dict, Any, Path]:
    if (d / name).is_dir():
        _prune_logs(d / name)  # the last few deployments' logs stay for debugging
    port = P.free_port()
    log = d / name / f"backend-{port}.log"
    proc = P.spawn(P.SERVER_MODULE, [str(model_dir), "--name", name, "--host", "127.0.0.1", "--port", str(port),
                                     *server_args], log)
    entry = {"pid": proc.pid, "port": port, "model_dir": str(model_dir), "log": str(log),
             "start_time": P.proc_start_time(proc.pid), "started_at": time.time()}
    return entry, proc, log


def _start_proxy(name: str, port: int, record_file: Path, d: Path, timeout_s: float) -> dict:
    log = d / name / "proxy.log"
    proc = P.spawn(P.PROXY_MODULE, ["--name", name, "--port", str(port), "--record", str(record_file)], log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ComponentError(f"the endpoint proxy on port {port} exited with {proc.returncode}; see {log}")
        try:
            if P.http_get(f"http://127.0.0.1:{port}/_kubepipe/proxy", timeout=1.0)[0] == 200:
                return {"pid": proc.pid, "port": port, "log": str(log), "start_time": P.proc_start_time(proc.pid)}
        except OSError:
            pass
        time.sleep(0.05)
    P.terminate(proc.pid, proc=proc)
    raise ComponentError(f"the endpoint proxy on port {port} did not come up in {timeout_s:.0f}s; see {log}")


def _switch(proxy: dict, new_port: int, old_port: int | None, timeout_s: float) -> None:
    """SIGHUP the proxy and wait until it sends to `new_port` and holds nothing on `old_port`."""
    import os
    import signal

    os.kill(proxy["pid"], signal.SIGHUP)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = json.loads(P.http_get(f"http://127.0.0.1:{proxy['port']}/_kubepipe/proxy", timeout=2.0)[1])
            if state["backend_port"] == new_port and not state["in_flight"].get(str(old_port)):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    raise ComponentError(f"the endpoint proxy (pid {proxy['pid']}) did not switch to port {new_port} "
                         f"within {timeout_s:.0f}s")


def deploy_local(name: str, model_dir: str, *, port: int | None = None, smoke_inputs: list | None = None,
                 state_dir: str = ".kubepipe", timeout_s: float = 120, max_batch_size: int = 64,
                 max_wait_ms: float = 2.0) -> dict:
    """Start or replace the local endpoint `name` with `model_dir`; the old model serves until the new one passed.

    Returns {"name", "url", "port", "predict_url", "infer_url", "ready_url", "model_dir", "pids", "replaced",
    "smoke", "action": "started" | "replaced", "record"}. Raises EndpointRolledBack when the new model
    did not get ready or failed the smoke test (the old endpoint, if any, is untouched).
    """
    _check_name(name)
    mdir = Path(model_dir).resolve()
    if not mdir.is_dir():
        raise ComponentError(f"model_dir {model_dir}: not a directory; pass the Model artifact of a train step")
    d = _dir(state_dir).resolve()
    record_file = d / f"{name}.json"
    server_args = ["--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms)]
    with _locked(state_dir, name):
        old = _read(state_dir, name) or {}
        proxy = old.get("proxy") if _proc_ok(old.get("proxy"), P.PROXY_MODULE, name) else None
        old_backend = old.get("backend") if _proc_ok(old.get("backend"), P.SERVER_MODULE, name) else None
        stable = proxy["port"] if proxy else (port or old.get("port") or P.free_port())
        if proxy and port and port != proxy["port"]:
            raise ComponentError(f"endpoint {name} already serves on port {proxy['port']}; stop it first "
                                 f"(`kubepipe endpoints stop {name}`) to move it to port {port}")
        if not proxy and not P.port_free(stable):
            raise ComponentError(f"port {stable} on 127.0.0.1 is in use; pick another `port` for endpoint {name}")
        entry, proc, log = _start_backend(name, mdir, d, server_args)
        base = f"http://127.0.0.1:{entry['port']}"
        try:
            _wait_ready(base, name, proc, timeout_s, log)
            smoke = _smoke(base, name, smoke_inputs)
        except BaseException as exc:
            P.terminate(proc.pid, timeout_s=10, proc=proc)
            where = (f"the old model ({old_backend['model_dir']}) keeps serving at http://127.0.0.1:{stable}"
                     if old_backend and proxy else "no endpoint was running, none was started")
            if isinstance(exc, EndpointRolledBack):
                raise EndpointRolledBack(f"endpoint {name}: rolled back: {exc}; {where}") from None
            raise
        record = {"name": name, "port": stable, "url": f"http://127.0.0.1:{stable}", "model_dir": str(mdir),
                  "backend": entry, "proxy": proxy, "updated_at": time.time(),
                  "history": (old.get("history") or [])[-9:] + ([old["backend"]["model_dir"]] if old_backend else [])}
        try:
            _write(state_dir, name, record)
            if proxy is None:
                record["proxy"] = _start_proxy(name, stable, record_file, d, timeout_s=30)
                _write(state_dir, name, record)
            else:
                _switch(proxy, entry["port"], old_backend["port"] if old_backend else None, timeout_s=60)
        except BaseException:
            P.terminate(proc.pid, timeout_s=10, proc=proc)
            if old:
                _write(state_dir, name, old)
            else:
                record_file.unlink(missing_ok=True)
            raise
        if old_backend:
            P.terminate(old_backend["pid"])
        url = record["url"]
        return {"name": name, "url": url, "port": stable, "model_dir": str(mdir),
                "predict_url": f"{url}/v1/models/{name}:predict", "infer_url": f"{url}/v2/models/{name}/infer",
                "ready_url": f"{url}/v2/models/{name}/ready",
                "pids": {"proxy": record["proxy"]["pid"], "backend": entry["pid"]},
                "replaced": old_backend["model_dir"] if old_backend else None, "smoke": smoke,
                "action": "replaced" if old_backend else "started", "record": str(record_file)}


def get_endpoint(name: str, state_dir: str = ".kubepipe") -> dict:
    _check_name(name)
    rec = _read(state_dir, name)
    if rec is None:
        known = sorted(p.stem for p in _dir(state_dir).glob("*.json"))
        from kubepipe.components.checks import did_you_mean

        hint = did_you_mean(name, known)
        raise ComponentError(f"no local endpoint named {name!r} in {_dir(state_dir)}"
                             + (f"; {hint}" if hint else f"; known: {known}" if known else ""))
    return rec


def list_endpoints(state_dir: str = ".kubepipe") -> list[dict]:
    """Every recorded endpoint with its status: up (ready), unready, down (processes gone) or corrupt (the
    record cannot be read; `error` says why)."""
    out = []
    for f in sorted(_dir(state_dir).glob("*.json")):
        try:
            rec = _read(state_dir, f.stem)
        except ComponentError as exc:
            out.append({"name": f.stem, "url": "-", "port": None, "model_dir": "-", "status": "corrupt",
                        "error": str(exc), "pids": {"proxy": None, "backend": None}})
            continue
        if rec is None:  # removed meanwhile
            continue
        name = rec["name"]
        up = _proc_ok(rec.get("proxy"), P.PROXY_MODULE, name) and _proc_ok(rec.get("backend"), P.SERVER_MODULE, name)
        status = "down"
        if up:
            try:
                ok = P.http_get(f"{rec['url']}/v2/models/{name}/ready", timeout=2.0)[0] == 200
            except OSError:
                ok = False
            status = "up" if ok else "unready"
        out.append({"name": name, "url": rec["url"], "port": rec["port"], "model_dir": rec["model_dir"],
                    "status": status, "pids": {"proxy": (rec.get("proxy") or {}).get("pid"),
                                               "backend": (rec.get("backend") or {}).get("pid")}})
    return out


def stop_endpoint(name: str, state_dir: str = ".kubepipe") -> dict:
    """Stop the endpoint's proxy and backend (only pids that /proc shows are ours) and forget it."""
    with _locked(state_dir, name):
        rec = get_endpoint(name, state_dir)
        stopped, skipped = [], []
        for role, module in (("proxy", P.PROXY_MODULE), ("backend", P.SERVER_MODULE)):
            entry = rec.get(role)
            if not entry:
                continue
            if _proc_ok(entry, module, name):
                P.terminate(entry["pid"])
                stopped.append(entry["pid"])
            else:
                skipped.append(entry["pid"])  # gone already, or the pid now belongs to someone else
        _record_file(state_dir, name).unlink(missing_ok=True)
        return {"name": name, "stopped": stopped, "not_ours_or_gone": skipped}


def predict_endpoint(name: str, inputs: list, state_dir: str = ".kubepipe", timeout_s: float = 30) -> dict:
    """POST a V1 predict to the endpoint's stable URL."""
    import httpx

    rec = get_endpoint(name, state_dir)
    try:
        r = httpx.post(f"{rec['url']}/v1/models/{name}:predict", json={"instances": inputs}, timeout=timeout_s,
                       trust_env=False)
    except httpx.HTTPError as exc:
        raise ComponentError(f"endpoint {name} at {rec['url']} is not answering ({type(exc).__name__}); "
                             f"check `kubepipe endpoints list`") from None
    try:
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {"error": r.text}
    except ValueError:
        body = {"error": r.text[:300]}
    if not isinstance(body, dict):
        body = {"error": f"unexpected answer {str(body)[:300]}"}
    if r.status_code != 200:
        raise ComponentError(f"endpoint {name} answered {r.status_code}: {body.get('error', body)}")
    return body
