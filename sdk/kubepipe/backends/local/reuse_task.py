"""A local run's task, wrapped: it runs the step's own command or, in a resumed run, reuses what the run it resumes
made for that step.

The local runner (`reuse.wrap_executors`) puts this in front of each executor's command, for local runs only:

    python3 -m kubepipe.backends.local.reuse_task <component digest> {{$}} -- <the executor's command and args>

`{{$}}` is the executor input that kfp.local fills in (params, input and output artifact URIs). Every task records
in `<run dir>/reuse/<task>.json` the digest of its component and inputs (params, the bytes of its input artifacts
and of the local files its params name; the run's own id left out), and once it succeeded the digest of each file
in its folder, with its stat (a later task takes the digest of an input whose stat is unchanged: `digests`). A task
of a resumed run (`KUBEPIPE_REUSE` names the run it resumes and the steps that succeeded there) whose record there
says `succeeded` on the same inputs, with files that still have those digests, copies them (the old run stays intact)
and exits without running the step.

A record is written whole (atomic), `running` or `reusing` before and `succeeded` after: a task killed mid-copy
leaves a half folder with no record saying it succeeded, so a later resume runs it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess  # nosec B404 - runs the executor's own argv, as kfp.local would
import sys
import tempfile
from pathlib import Path

from kubepipe.backends.local.digests import copies_digest, outputs_digest, recorded_digest, sizes_differ, tree_digest
from kubepipe.util import atomic_write_text, failpoint, local_path

__all__ = ["REUSE_ENV", "RECORDS", "main"]

REUSE_ENV = "KUBEPIPE_REUSE"  # JSON: {run_id, run_dir, root, paths: {digest: [param]}, from: {run_id, root, tasks}}
RECORDS = "reuse"  # <run dir>/reuse/<task folder below the pipeline's>.json
_TMP = "tmp"  # <run dir>/tmp/task-*: a running task's TMPDIR
_OUTPUT = "executor_output.json"


def _inputs_digest(component: str, executor_input: dict, ctx: dict) -> str:
    inputs = executor_input.get("inputs") or {}
    params = inputs.get("parameterValues") or {}
    text = json.dumps(params, sort_keys=True, default=str)
    if ctx.get("run_id"):  # the run's id (ctx_run_id, a checkpoint folder) is no input of the step's work
        text = text.replace(ctx["run_id"], "<run>")
    files = {}
    for name, value in sorted(params.items()):  # a param naming a local file: its bytes (a fixed CSV runs again)
        declared = name in (ctx.get("paths") or {}).get(component, [])
        local = local_path(value) if isinstance(value, str) and value and len(value) < 4096 else None
        if local and (os.path.isfile(local) or (declared and os.path.isdir(local))):  # file:///x.csv too
            files[name] = tree_digest(Path(local))
    arts = {name: [[a.get("metadata") or {}, _input_digest(Path(a.get("uri") or ""), ctx)]
                   for a in (spec.get("artifacts") or [])]
            for name, spec in sorted((inputs.get("artifacts") or {}).items())}
    doc = json.dumps({"component": component, "params": text, "files": files, "artifacts": arts}, sort_keys=True,
                     default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


def _input_digest(path: Path, ctx: dict) -> str | None:
    """An input artifact's digest: the one the task of this run that made it recorded, while its stat is the one
    recorded with it (`digests`: the bytes are not read again); else its bytes'."""
    if ctx.get("root") and ctx.get("run_dir"):
        known = recorded_digest(path, ctx["root"], Path(ctx["run_dir"]) / RECORDS)
        if known is not None:
            return known
    return tree_digest(path)


def _outputs_digest(task_dir: Path) -> dict[str, str | None] | None:
    """The digest of each file and folder in the task's folder; None where one cannot be read (never reused)."""
    return outputs_digest(task_dir)[0]


def _succeeded(task_dir: Path) -> dict:
    """What a succeeded task's record says of its files: their digests, and the stat they were hashed at."""
    digests, stats = outputs_digest(task_dir)
    return {"outputs": digests, **({"stats": stats} if stats else {})}


def _record(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _prior_task(prior: dict, key: str, inputs: str) -> Path | str:
    """The old run's folder of this task where it succeeded on these inputs and its files are as it left them;
    else why the task must run."""
    found = _prior_checked(prior, key, inputs)
    return found if isinstance(found, str) else found[0]


def _prior_checked(prior: dict, key: str, inputs: str) -> tuple[Path, dict] | str:
    """`_prior_task`, with the digests of its files just checked."""
    old_root, old_dir = Path(prior["root"]), Path(prior["run_dir"])
    found = sorted(p for p in old_root.glob(f"*/{key}") if p.is_dir())
    record = _record(old_dir / RECORDS / f"{key}.json")
    if record.get("state") != "succeeded":
        return f"run {prior['run_id']} kept no finished record of it"
    if not found:  # its record says it succeeded: the files were removed since (the run's artifacts/ to save space)
        return f"its files in run {prior['run_id']} are gone"
    if len(found) != 1:
        return f"run {prior['run_id']} holds more than one folder of it"
    if record.get("inputs") != inputs:
        return "its inputs or code changed"
    outputs, stats = record.get("outputs"), record.get("stats") or {}
    entries = sorted(p.name for p in found[0].iterdir())
    moved = isinstance(stats, dict) and any(sizes_differ(found[0] / n, stats[n]) for n in entries if n in stats)
    if not isinstance(outputs, dict) or moved or _outputs_digest(found[0]) != outputs:  # deleted or changed since
        return f"its files in run {prior['run_id']} changed or are gone"
    return found[0], outputs


def _copy(old: Path, new: Path) -> None:
    """The old task folder's files into the new one, each whole (a copy beside it, then renamed into place);
    executor_output.json last, its URIs naming the new folder."""
    new.mkdir(parents=True, exist_ok=True)
    for src in sorted(old.iterdir()):
        if src.name == _OUTPUT:
            continue
        dest, tmp = new / src.name, new / f".{src.name}.kubepipe-copy"
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        shutil.copytree(src, tmp) if src.is_dir() else shutil.copy2(src, tmp)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        failpoint("reuse.copying")  # chaos tests: killed with part of the outputs copied
    if (old / _OUTPUT).is_file():
        out = json.loads((old / _OUTPUT).read_text(encoding="utf-8"))
        for arts in (out.get("artifacts") or {}).values():
            for a in arts.get("artifacts") or []:
                uri = a.get("uri")
                rel = os.path.relpath(os.path.realpath(uri), os.path.realpath(old)) if isinstance(uri, str) else ".."
                if rel != ".." and not rel.startswith(".." + os.sep):  # a file of the old folder: its copy
                    a["uri"] = str(new) if rel == "." else str(new / rel)
        atomic_write_text(new / _OUTPUT, json.dumps(out))


def _run(command: list[str], tmp_root: Path | None = None) -> int:
    """The executor's own command; a SIGTERM sent to this wrapper goes to it too.

    `tmp_root` (the run's folder): the command's TMPDIR is a folder of its own below it, removed when it ends. kfp's
    command writes the step's function to `$(mktemp -d)/ephemeral_component.py` and never removes it: every local
    task left a folder in /tmp (thousands on a machine that runs pipelines). A task killed mid-step leaves its folder
    in the run's `tmp/`, with the run."""
    env = None
    tmp = None
    if tmp_root is not None:
        try:
            (tmp_root / _TMP).mkdir(parents=True, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix="task-", dir=tmp_root / _TMP)
            env = {**os.environ, "TMPDIR": tmp}
        except OSError:  # a full disk: the step runs with the system's temp folder, as before
            tmp = None
    try:
        proc = subprocess.Popen(command, env=env)  # nosec B603 - the executor's argv from the compiled IR
        signal.signal(signal.SIGTERM, lambda signum, _frame: proc.send_signal(signum))
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # Ctrl-C reached the task too: wait for it to end
                continue
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m kubepipe.backends.local.reuse_task DIGEST EXECUTOR_INPUT -- COMMAND...",
              file=sys.stderr)
        return 2
    component, command = argv[0], argv[3:]
    try:
        ctx = json.loads(os.environ.get(REUSE_ENV) or "{}")
        executor_input = json.loads(argv[1])
        task_dir = Path(executor_input["outputs"]["outputFile"]).parent
        # below the pipeline's timestamped folder; through links (kfp.local names a linked --home as given)
        key = "/".join(Path(os.path.realpath(task_dir)).relative_to(os.path.realpath(ctx["root"])).parts[1:])
        record = Path(ctx["run_dir"]) / RECORDS / f"{key}.json"
        inputs = _inputs_digest(component, executor_input, ctx)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # not a run the runner wrapped: nothing recorded
        print(f"kubepipe: this step's inputs were not recorded ({exc}); a resumed run will run it again",
              file=sys.stderr)
        return _run(command)
    prior = ctx.get("from") or {}
    why = _reuse(prior, key, inputs, task_dir, record) if key.split("/")[-1] in (prior.get("tasks") or []) else None
    if why == "":
        return 0
    mine = {"inputs": inputs, **({"not_reused": why} if why else {})}  # why a resumed run ran it: its notes say
    recorded = _write(record, {"state": "running", **mine})
    code = _run(command, Path(ctx["run_dir"]))
    if code == 0 and recorded:
        _write(record, {"state": "succeeded", **mine, **_succeeded(task_dir)})
    return code


def _reuse(prior: dict, key: str, inputs: str, task_dir: Path, record: Path) -> str:
    """"" where this task's outputs are now the prior run's, copied; else why it must run (nothing copied)."""
    try:
        checked = _prior_checked(prior, key, inputs)
        if isinstance(checked, str):
            return checked
        found, digests = checked
        if not _write(record, {"state": "reusing", "inputs": inputs, "from": prior["run_id"]}):
            return "its record could not be written"
        _copy(found, task_dir)
    except OSError as exc:  # a full disk: the step runs instead, on an empty folder
        print(f"kubepipe: could not reuse what run {prior['run_id']} made for this step ({exc}); running it",
              file=sys.stderr, flush=True)
        for entry in task_dir.iterdir() if task_dir.is_dir() else []:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        return f"its files could not be copied ({exc.strerror or exc})"
    # the digests just checked, not the copies' bytes again; executor_output.json was rewritten (its URIs): hashed
    copied, stats = copies_digest(task_dir, found, {k: v for k, v in digests.items() if k != _OUTPUT})
    _write(record, {"state": "succeeded", "inputs": inputs, "reused_from": prior["run_id"], "outputs": copied,
                    **({"stats": stats} if stats else {})})
    print(f"kubepipe: reused what run {prior['run_id']} made for this step (same component and inputs); "
          "it did not run again", flush=True)
    return ""


def _write(record: Path, data: dict) -> bool:
    """The task's record, whole; False where it could not be written (the step runs as it would without it)."""
    from kubepipe.errors import KubepipeError

    try:
        atomic_write_text(record, json.dumps(data))
    except (OSError, KubepipeError) as exc:
        print(f"kubepipe: {record}: not written ({exc}); a resumed run will run this step again", file=sys.stderr,
              flush=True)
        return False
    return True

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
