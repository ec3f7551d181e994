"""The record of a local endpoint, `<state_dir>/endpoints/NAME.json`: read, check, write, lock.

Fields: name, port, url, model_dir, version (registry version served, or null), proxy and
backend (process entries: pid, create_time, token, port, log, ...), pending (processes being
started: written *before* they start, so a kill between start and commit leaves a trace) and
switch (a backend switch that has not finished: its champion move is still to happen) and
canary (a new backend taking `percent` of the traffic while a deploy analyses it). A
record with `pending`, `switch` or an undecided `canary` was left by an interrupted deploy: `repair` settles it.
"""

from __future__ import annotations

import json
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

from kubepipe.components.errors import ComponentError

__all__ = ["endpoints_dir", "check_name", "record_file", "read_record", "write_record", "locked",
           "list_record_names", "ports_in_use", "lock_path", "ports_claimed"]


def _fix(f: Path) -> str:
    """What to do about a record that cannot be read: its processes' command lines hold `--name NAME`."""
    return (f"correct it, or stop its processes by hand (`pgrep -af -- '--name {f.stem}( |$)'` lists them) and "
            "delete the file")


def endpoints_dir(state_dir: str | Path) -> Path:
    return (Path(state_dir) / "endpoints").resolve()


def check_name(name: str) -> None:
    ok = (isinstance(name, str) and name and name.isascii() and name[0].isalnum()
          and all(c.isalnum() or c in "-_." for c in name) and len(name) <= 63)
    if not ok:
        raise ComponentError(f"endpoint name {name!r}: use letters, digits, '-', '_' or '.' (max 63), "
                             "starting with a letter or digit; list them with `kubepipe endpoints list`")


def record_file(state_dir: str | Path, name: str) -> Path:
    """`<state_dir>/endpoints/NAME.json`, after checking NAME cannot leave that folder."""
    check_name(name)
    return endpoints_dir(state_dir) / f"{name}.json"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_port(value: Any) -> bool:
    return _is_int(value) and 0 < value < 65536


def _check_entry(entry: Any, where: str, f: Path, *, port: bool = True) -> None:
    """A process entry; `port`: it must name its port (every entry but a pending one, which may be an intent)."""
    if not isinstance(entry, dict):
        raise ComponentError(f"endpoint record {f}: field {where!r} must be an object or null, got "
                             f"{type(entry).__name__}; {_fix(f)}")
    if "pid" in entry or not entry.get("token"):  # a pending entry may not have its pid yet
        if not _is_int(entry.get("pid")):
            raise ComponentError(f"endpoint record {f}: field '{where}.pid' must be an integer process id, "
                                 f"got {entry.get('pid')!r}; {_fix(f)}")
    if (port or "port" in entry) and not _is_port(entry.get("port")):  # the proxy and a switch use it
        got = f"got {entry['port']!r}" if "port" in entry else "missing"
        raise ComponentError(f"endpoint record {f}: field '{where}.port' must be a port number (1-65535) ({got}); "
                             f"{_fix(f)}")
    for key, check, want in (("start_time", _is_int, "an integer"), ("create_time", _is_num, "a number")):
        value = entry.get(key)
        if value is not None and not check(value):
            raise ComponentError(f"endpoint record {f}: field '{where}.{key}' must be {want} or null, "
                                 f"got {value!r}; {_fix(f)}")
    for key in ("model_dir", "token", "role"):
        if key in entry and not isinstance(entry[key], str):
            raise ComponentError(f"endpoint record {f}: field '{where}.{key}' must be a string; {_fix(f)}")


def _check_record(rec: Any, f: Path) -> dict:
    """The fields kubepipe reads from an endpoint record, with their types; a ComponentError naming file + field."""
    if not isinstance(rec, dict):
        raise ComponentError(f"endpoint record {f}: must be a JSON object, got {type(rec).__name__}; {_fix(f)}")

    def bad(field: str, want: str) -> ComponentError:
        got = "missing" if field not in rec else f"got {rec[field]!r}"
        return ComponentError(f"endpoint record {f}: field {field!r} must be {want} ({got}); {_fix(f)}")

    for key in ("name", "url", "model_dir"):
        if not isinstance(rec.get(key), str) or not rec[key]:
            raise bad(key, "a non-empty string")
    if rec["name"] != f.stem:
        raise bad("name", f"the file's name {f.stem!r}")
    if not _is_port(rec.get("port")):
        raise bad("port", "a port number (1-65535)")
    if rec["url"] != f"http://127.0.0.1:{rec['port']}":  # its proxy's address; list and predict ask nothing else
        raise bad("url", f"'http://127.0.0.1:{rec['port']}' (the proxy on its `port`)")
    for role in ("proxy", "backend"):
        if rec.get(role) is not None:
            _check_entry(rec[role], role, f)
    if not isinstance(rec.get("pending") or [], list):
        raise bad("pending", "a list")
    for i, entry in enumerate(rec.get("pending") or []):
        _check_entry(entry, f"pending[{i}]", f, port=False)
    switch = rec.get("switch")
    if switch is not None:
        if not isinstance(switch, dict) or not isinstance(switch.get("to"), dict):
            raise bad("switch", "an object with `to` (the new backend) or null")
        _check_entry(switch["to"], "switch.to", f)
        if switch.get("from") is not None:
            _check_entry(switch["from"], "switch.from", f)
        champion = switch.get("champion")  # what repair reads to commit or undo the switch
        if champion is not None and not (isinstance(champion, dict) and isinstance(champion.get("registry"), str)
                                         and isinstance(champion.get("model"), str)
                                         and _is_int(champion.get("version"))):
            raise ComponentError(f"endpoint record {f}: field 'switch.champion' must be null or an object with "
                                 f"`registry`, `model` and an integer `version` (got {champion!r}); {_fix(f)}")
    canary = rec.get("canary")
    if canary is not None:
        _check_entry(canary, "canary", f)
        if not _is_num(canary.get("percent")) or not 0 <= canary["percent"] <= 100:
            raise bad("canary", "an object with `percent` from 0 to 100 (the canary's share) or null")
        if canary.get("deployer") is not None:  # the deploy baking it: {pid, create_time}
            _check_entry(canary["deployer"], "canary.deployer", f, port=False)
    if rec.get("version") is not None and not _is_int(rec["version"]):
        raise bad("version", "a registry version number or null")
    if not isinstance(rec.get("history") or [], list):
        raise bad("history", "a list")
    return rec


def lock_path(record: Path) -> Path:
    """The lock file of the endpoint whose record is `record` (`locked` holds it)."""
    return record.parent / f".{record.stem}.lock"


@contextmanager
def locked(state_dir: str | Path, name: str, timeout_s: float = 600) -> Iterator[None]:
    """One deploy / stop / repair of an endpoint at a time (a lock the OS drops when its holder dies)."""
    from kubepipe.errors import LockTimeout
    from kubepipe.util import locked as file_locked

    lock_file = lock_path(record_file(state_dir, name))
    lock_file.parent.mkdir(parents=True, exist_ok=True)

    def say_waiting() -> None:  # a deploy holds it through readiness and a canary bake: minutes of silence
        import logging

        logging.getLogger("kubepipe.endpoints").warning(
            "endpoint %s: waiting for another deploy, stop or repair of it to finish (it holds %s; up to %gs)",
            name, lock_file, timeout_s)

    with ExitStack() as held:
        try:
            held.enter_context(file_locked(lock_file, waiting=say_waiting, timeout_s=timeout_s))
        except LockTimeout as timed_out:
            pid = timed_out.holder_pid
            holder = f" (pid {pid}: `ps -p {pid} -o pid,etime,args`)" if pid is not None else " (check `ps`)"
            raise ComponentError(f"endpoint {name}: another deploy, stop or repair has held {lock_file} for "
                                 f"{timeout_s:g}s{holder}; wait for it, or stop it if it is stuck") from None
        yield


def read_record(state_dir: str | Path, name: str) -> dict | None:
    f = record_file(state_dir, name)
    try:
        rec = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ComponentError(f"endpoint record {f}: is a folder, not a file; remove it") from None
    except OSError as exc:
        raise ComponentError(f"endpoint record {f}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:  # invalid JSON or not UTF-8
        raise ComponentError(f"endpoint record {f}: not valid JSON ({exc}); {_fix(f)}") from None
    return _check_record(rec, f)


def write_record(state_dir: str | Path, name: str, record: dict) -> Path:
    from kubepipe.json_values import finite_or_null
    from kubepipe.util import atomic_write_text

    f = record_file(state_dir, name)  # a NaN in it (a canary analysis' p99) as null: jq and JSON.parse read it
    atomic_write_text(f, json.dumps(finite_or_null(record), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return f


@contextmanager
def ports_claimed(state_dir: str | Path) -> Iterator[None]:
    """Held from a deploy's port check until its record names the port: two endpoints of one home deployed on one
    port at once both found it free (each holds only its own endpoint's lock), and the loser learnt it only after
    its backend had loaded. Short: no process starts under it."""
    from kubepipe.util import locked as file_locked

    folder = endpoints_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with file_locked(folder / ".ports.lock", timeout_s=120):
        yield


def list_record_names(state_dir: str | Path) -> list[str]:
    return sorted(p.stem for p in endpoints_dir(state_dir).glob("*.json") if not p.name.startswith("."))


def ports_in_use(state_dir: str | Path, besides: str | None = None) -> dict[int, str]:
    """Stable ports named by the endpoint records under `state_dir` (but endpoint `besides`'s): {port: endpoint name}
    (unreadable skipped)."""
    out = {}
    for name in list_record_names(state_dir):
        if name == besides:
            continue
        try:
            rec = read_record(state_dir, name)
        except ComponentError:
            continue
        if rec:
            out[rec["port"]] = name
    return out


def get_endpoint(name: str, state_dir: str = ".kubepipe") -> dict:
    rec = read_record(state_dir, name)
    if rec is None:
        known = list_record_names(state_dir)
        from kubepipe.components.checks import did_you_mean

        hint = did_you_mean(name, known)
        raise ComponentError(f"no local endpoint named {name!r} in {endpoints_dir(state_dir)}"
                             + (f"; {hint}" if hint else f"; its endpoints: {', '.join(known)}" if known else
                                "; it has none: a local deploy step starts one (is --home the one it ran with?)"))
    return rec
