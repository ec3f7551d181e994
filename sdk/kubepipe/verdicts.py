"""A gate's verdict, where the client of a remote run can read it (decision 0010).

Kubeflow and Vertex report a failed task in their own words, never the exception that failed it, so a gate that says
no (a `GateFailed`) writes `<pipeline_root>/kubepipe-verdicts/<run>/<step>.json` before its step fails, and the
client, after a FAILED run, reads the verdicts of that run: `<run>` is the KFP run id or the Vertex job id, so a
verdict of another run is never read. The gate and the client both take `pipeline_root` from the profile (a built-in
gate through `ctx_profile`, a user's through the boundary's command: both compiled in). Written whole (a local file
atomically, an object in one PUT).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

__all__ = ["REJECTED_EXIT", "VERDICTS_DIR", "TASK_ENV", "VerdictsUnreadable", "run_key", "verdict_dir", "verdict_body",
           "write_verdict", "read_verdicts", "rejected_steps", "rejected_text", "Judged", "failed_leaves", "judge"]

# the exit code of a run that failed only because a gate said no, local or remote (docs/cli.md, decision 0010)
REJECTED_EXIT = 3
VERDICTS_DIR = "kubepipe-verdicts"
# the task's name where the service shows another than the step's (a step's `display_name`), set by the compiler
TASK_ENV = "KUBEPIPE_TASK_NAME"
_REMOTE = ("kubeflow", "vertex")
# a client reading verdicts waits for no dead endpoint: one try, short timeouts (s3fs / botocore options)
_READ_OPTIONS = {"s3": {"config_kwargs": {"connect_timeout": 5, "read_timeout": 10,
                                          "retries": {"max_attempts": 1}}}}


class VerdictsUnreadable(Exception):
    """The run's verdicts could not be read (no driver for the root's scheme, no access, no answer)."""


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(part)).strip(".") or "_"


def run_key(target: str, run_id: str, run_name: str) -> str:
    """What names a run's verdicts: on Kubeflow the run's id (`{{$.pipeline_job_uuid}}`, KFP's run UUID: what
    `submit` and `runs show` call the run), on Vertex the job's id (`{{$.pipeline_job_name}}`, the last part of its
    resource name). "" where it is not known (a placeholder left unresolved)."""
    key = str(run_name).rsplit("/", 1)[-1] if target == "vertex" else str(run_id)
    return "" if "{{" in key else key.strip()


def verdict_dir(root: str, key: str) -> str:
    return f"{str(root).rstrip('/')}/{VERDICTS_DIR}/{_safe(key)}"


def verdict_body(exc: BaseException, *, key: str, target: str, step: str, task: str = "") -> dict:
    """The verdict of a gate that said no (`exc`): its step (and `task`, the name the service shows for it where the
    step sets a display_name), its kind (the exception's class), why (redacted), and the numbers it judged where it
    carries them (`exc.numbers`)."""
    from kubepipe.redaction import redact_text

    numbers = getattr(exc, "numbers", None)
    return {"apiVersion": "kubepipe/v1", "kind": "GateVerdict", "run": key, "target": target, "step": step,
            **({"task": task} if task else {}), "gate": type(exc).__name__, "reason": redact_text(str(exc)),
            "numbers": dict(numbers) if isinstance(numbers, Mapping) else {}}


def write_verdict(exc: BaseException | None, *, profile: Mapping[str, Any], run_id: str, run_name: str,
                  step: str) -> str:
    """Write the gate's no (`exc`, a GateFailed) for the client of a remote run; the object's URI, or "" where none is
    written (a local run: its watcher reads the task's log; no pipeline_root or run id). `exc` None removes the step's
    verdict instead: a retry of the step that failed otherwise is no rejection (broken wins)."""
    from kubepipe.uris import store_fs, write_whole

    target, root = str(profile.get("target") or ""), profile.get("pipeline_root")
    key = run_key(target, run_id, run_name)
    if target not in _REMOTE or not root or not key or not step:
        return ""
    fs, folder = store_fs(verdict_dir(str(root), key))
    path = f"{folder}/{_safe(step)}.json"
    if exc is None:
        if fs.exists(path):
            fs.rm_file(path)
        return ""
    fs.makedirs(folder, exist_ok=True)
    body = verdict_body(exc, key=key, target=target, step=step, task=os.environ.get(TASK_ENV, ""))
    write_whole(fs, path, json.dumps(body, sort_keys=True, default=str))
    return f"{verdict_dir(str(root), key)}/{_safe(step)}.json"


def read_verdicts(root: str, key: str) -> list[dict]:
    """The verdicts of run `key` under `root`, by step; [] when none was written. VerdictsUnreadable (its text one
    line, naming the root) when they cannot be read: no fsspec driver for the scheme, no access, no answer."""
    from kubepipe.redaction import redact_url
    from kubepipe.uris import store_fs, uri_scheme

    where = verdict_dir(root, key)
    try:
        fs, folder = store_fs(where, **_READ_OPTIONS.get(uri_scheme(where) or "", {}))
        try:
            names = [n for n in fs.ls(folder, detail=False) if str(n).endswith(".json")]
        except FileNotFoundError:
            return []
        found = [json.loads(fs.cat_file(n)) for n in sorted(names)]
    except Exception as exc:  # any driver's failure (ImportError, auth, no answer, a broken object) is one note
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise VerdictsUnreadable(f"the gates' verdicts under {redact_url(where)} could not be read ({why}), so a "
                                 "gate's rejection cannot be told from a failure: exit 1; to have it reported "
                                 "(exit 3), give this machine the root's driver (pip install 'kubepipe[s3]' or "
                                 "'kubepipe[gcs]') and read access to it") from None
    return [v for v in found if isinstance(v, dict) and v.get("run") == key and v.get("step")]


def rejected_steps(failed: Iterable[str], verdicts: list[dict]) -> list[dict] | None:
    """The failed steps as rejected step records (name, rejected, error as a local run records it:
    `GateFailed: reason`, metrics: the numbers the gate judged) when every one of them has its gate's verdict, else None: a step that failed otherwise
    wins, as in a local run (`runs.record.gate_rejected`)."""
    from kubepipe.spec.models import task_name

    failed = list(dict.fromkeys(failed))
    # the service names a step's task as KFP does (`load_holdout` -> `load-holdout`), or by its display_name (the
    # verdict's `task`); the verdict names the step
    by_step = {**{task_name(str(v["step"])): v for v in verdicts},
               **{str(v["task"]): v for v in verdicts if v.get("task")}, **{v["step"]: v for v in verdicts}}
    if not failed or any(name not in by_step for name in failed):
        return None
    return [{"name": name, "rejected": True, "error": f"{by_step[name].get('gate') or 'GateFailed'}: "
                                                      f"{by_step[name].get('reason') or ''}".rstrip(": "),
             "metrics": dict(by_step[name].get("numbers") or {})} for name in failed]


def rejected_text(steps: Iterable[Mapping[str, Any]]) -> str:
    """Which gates said no, and why (their errors): the one text of a local run's and a remote run's rejection."""
    return "\n".join(f"by the gate of step `{s['name']}`: {s.get('error') or 'no reason recorded'}"
                     for s in steps if s.get("rejected") is True)


@dataclass(frozen=True)
class Judged:
    """`rejected`: the rejected steps (as a local run records them) when every failed task's gate said no; None when
    the run was not rejected, or its verdicts could not be read (`note` says why, in one line)."""

    rejected: list[dict] | None = None
    note: str | None = None

    @property
    def known(self) -> bool:
        return self.note is None


def failed_leaves(tasks: Iterable[Any], name: str, state_of: Callable[[Any], str], skip: Iterable[str] = ()
                  ) -> list[Any]:
    """The failed tasks that are steps (`name`: the task's attribute naming it; `state_of`: kfp_state or
    vertex_state): not the run's own DAG (`skip`), not a driver, not a DAG (a condition, a loop) whose child failed:
    a parent fails with its child."""
    failed = [t for t in tasks if state_of(getattr(t, "state", None)) == "FAILED"]
    parents = {str(getattr(t, "parent_task_id", "") or "") for t in failed} - {"", "0"}
    skip = set(skip) | {"root", ""}
    return [t for t in failed
            if str(getattr(t, name) or "") not in skip and not str(getattr(t, name)).endswith("-driver")
            and str(getattr(t, "task_id", "") or "") not in parents]


def judge(profile: Mapping[str, Any], key: str, state: str, failed: list[str]) -> Judged:
    """Read the verdicts of run `key` when it FAILED (a cancelled run proves nothing about its candidate)."""
    root = profile.get("pipeline_root")
    if state != "FAILED" or not failed or not root or not key:
        return Judged()
    try:
        verdicts = read_verdicts(str(root), key)
    except VerdictsUnreadable as exc:
        return Judged(note=str(exc))
    return Judged(rejected_steps(failed, verdicts))
