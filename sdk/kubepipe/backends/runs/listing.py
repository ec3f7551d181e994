"""Local run records for `kubepipe runs list | show` (`.kubepipe/runs/*/run.json`).

Normalised to one dict shape, which kubepipe.backends.remote.listing gives remote runs (KFP, Vertex) too:
run_id, pipeline, target, state, started_at, finished_at (ISO UTC strings), steps [{name, state, error}],
error, url.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from kubepipe.backends.runs.record import (RUNS_DIR, crashed_view, gate_rejected, process_gone, recorded_output,
                                           retrain_of)
from kubepipe.errors import UserError, one_line
from kubepipe.labels import carries
from kubepipe.secrets import redacted_labels
from kubepipe.util import utc_iso

__all__ = ["list_local_runs", "show_local_run", "local_record", "read_record", "no_runs_text", "shown_params",
           "of_pipeline"]




def _check_record(data: Any, path: Path) -> dict:
    """The fields `runs list | show` read, with their types; a UserError naming the file and field otherwise."""
    where = f"runs: {path}"
    fix = "delete that run folder or fix the file"
    if not isinstance(data, dict):
        raise UserError(f"{where}: a run record must be a JSON object, got {type(data).__name__}; {fix}")
    for key in ("run_id", "pipeline", "target", "state", "error", "run_dir", "host"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise UserError(f"{where}: field {key!r} must be a string, got {type(value).__name__}; {fix}")
    for key in ("started_at", "finished_at"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            raise UserError(f"{where}: field {key!r} must be an ISO time or epoch seconds, got "
                            f"{type(value).__name__}; {fix}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                utc_iso(value)
            except (OverflowError, OSError, ValueError):
                raise UserError(f"{where}: field {key!r} is not a valid time ({value!r}); {fix}") from None
    for key in ("pid", "pid_create_time"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UserError(f"{where}: field {key!r} must be a number, got {type(value).__name__}; {fix}")
    steps = data.get("steps")
    if steps is not None and not isinstance(steps, list):
        raise UserError(f"{where}: field 'steps' must be a list, got {type(steps).__name__}; {fix}")
    for i, step in enumerate(steps or []):
        if not isinstance(step, dict):
            raise UserError(f"{where}: steps[{i}] must be an object, got {type(step).__name__}; {fix}")
    return data


def read_record(path: Path) -> dict:
    """A run.json with the fields `runs` reads type-checked; a UserError naming the file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"runs: {path} is not UTF-8 text; delete that run folder or fix the file") from None
    except OSError as exc:
        raise UserError(f"runs: cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UserError(f"runs: {path} is not valid JSON ({exc}); delete that run folder or fix the file") from None
    return _check_record(data, path)


def _local(data: dict) -> dict:
    if process_gone(data):  # killed: its record still says RUNNING
        data = crashed_view(data)
    return {
        "run_id": data.get("run_id"), "pipeline": data.get("pipeline"), "target": data.get("target", "local"),
        "state": data.get("state"), "rejected": gate_rejected(data.get("state"), data.get("steps")),
        "params": shown_params(data.get("params")),
        "started_at": utc_iso(data.get("started_at")),
        "finished_at": utc_iso(data.get("finished_at")), "error": data.get("error"),
        "steps": [{"name": s.get("name"), "state": s.get("state"), "error": s.get("error"),
                   "duration_s": s.get("duration_s"), "note": s.get("note"), "rejected": s.get("rejected") is True,
                   "reused_from": s.get("reused_from") if isinstance(s.get("reused_from"), str) else None,
                   "outputs": _outputs(s.get("outputs")),
                   "artifacts": _artifacts(s.get("artifacts")), "metrics": _metrics(s.get("metrics"))}
                  for s in data.get("steps") or []],
        "url": data.get("run_dir", ""),
        "warnings": _warnings(data.get("warnings")),
        "notes": [n for n in data.get("notes") or [] if isinstance(n, str)] if isinstance(data.get("notes"), list)
        else [],
        "resumed_from": data.get("resumed_from") if isinstance(data.get("resumed_from"), str) else None,
        "labels": redacted_labels(_labels(data.get("labels"))),
        "retrain": retrain_of(data.get("retrain")),
        "profile": _profile(data.get("profile")),
    }


def _warnings(value: Any) -> list[dict[str, Any]]:
    """The validation warnings as docs/cli.md gives them (message, path, file, hint: text or null; line, col: a
    number or null): a hand-edited or truncated record's `warnings: 1` or `file: 3` is left out, not a crash."""
    if not isinstance(value, list):
        return []
    def typed(key: str, v: Any) -> Any:
        if key in ("line", "col"):
            return v if isinstance(v, int) and not isinstance(v, bool) else None
        return v if isinstance(v, str) else None

    return [{k: typed(k, w.get(k)) for k in ("message", "path", "file", "line", "col", "hint")}
            for w in value if isinstance(w, dict)]


def _outputs(value: Any) -> dict[str, Any]:
    """A step's parameter outputs as shown: credentials redacted as the run redacts them when it records them
    (`recorded_output`), here too for a record written before it did (it kept a returned secret as it was)."""
    if not isinstance(value, dict):
        return {}
    return {name: recorded_output(name, v) for name, v in value.items()}


def _labels(value: Any) -> dict[str, str]:
    """The run's labels as text; a record edited to `{ok: true, n: 3}` showed Python's `True`, one to `{x: null}`
    `None`: a value as JSON writes it (`true`, `3`), a null left out."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v, default=str)
            for k, v in value.items() if v is not None}


def _profile(value: Any) -> dict[str, Any] | None:
    """{file, set} the run was started with (--profile, --set; credentials redacted); None in older records."""
    if not isinstance(value, dict):
        return None
    from kubepipe.secrets import redacted

    file = value.get("file")
    return {"file": file if isinstance(file, str) else None,
            "set": redacted(value["set"]) if isinstance(value.get("set"), dict) else {}}


def _artifacts(value: Any) -> dict[str, Any]:
    """artifact name -> path (a foreach step: a list, one path or None per item); a record from an older
    kubepipe (or hand-edited) may lack them."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else [p if isinstance(p, str) else None for p in v]
            for k, v in sorted(value.items()) if isinstance(v, str) or isinstance(v, list)}


def shown_params(value: Any) -> dict[str, Any]:
    """The param values a run used (what `--resume` takes again), or a queued retrain request's, as `runs list |
    show` show them: credentials redacted as in messages."""
    if not isinstance(value, dict):
        return {}
    from kubepipe.secrets import redacted

    return {str(k): v for k, v in redacted(value).items()}


def _metrics(value: Any) -> dict[str, Any]:
    """metric name -> value (numbers only; a foreach step: a list, one value or None per item); older records have
    none. An undefined one (NaN, an infinity) stays: `--format json` writes it null, the text `n/a`."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v if _number(v) else [x if _number(x) else None for x in v]
            for k, v in sorted(value.items()) if _number(v) or isinstance(v, list)}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _corrupt(rec: Path, message: str) -> dict:
    return {"run_id": rec.parent.name, "pipeline": None, "target": "local", "state": "CORRUPT", "rejected": False,
            "params": {},
            "started_at": None, "finished_at": None, "error": message, "steps": [], "url": os.path.abspath(rec.parent),
            "warnings": [], "notes": [], "resumed_from": None, "labels": {}, "retrain": None, "profile": None}


def of_pipeline(name: Any, file: Any, pipeline: str | None, pipeline_file: str | None) -> bool:
    """Whether a run listed under `name`, of the pipeline file `file` (a run's `source`, a queued request's file), is
    one `--pipeline` asks for: `pipeline` names it, or it is of `pipeline_file` (a YAML file was given), whatever
    name it is listed under (a `${env.X}` in metadata.name may have given another, or none); no filter: every one."""
    if not pipeline and not pipeline_file:
        return True
    if pipeline and name == pipeline:
        return True
    return bool(pipeline_file and isinstance(file, str) and file
                and os.path.realpath(file) == os.path.realpath(pipeline_file))


def list_local_runs(runs_dir: str | Path = RUNS_DIR, *, pipeline: str | None = None,
                    limit: int = 20, labels: dict[str, str] | None = None,
                    pipeline_file: str | None = None) -> list[dict]:
    """Newest first; with `labels`, the runs that carry each of them (kubepipe.labels.carries); with `pipeline` /
    `pipeline_file`, those of the pipeline (`of_pipeline`). A record that cannot be read is listed with state
    CORRUPT (and its reason in `error`), unless a filter is given."""
    out: list[tuple[float, dict, Path | None]] = []
    for rec in Path(runs_dir).glob("*/run.json"):
        try:
            data = read_record(rec)
        except UserError as exc:
            if not pipeline and not pipeline_file and not labels:
                out.append((float("-inf"), _corrupt(rec, str(exc)), None))
            continue
        if not of_pipeline(data.get("pipeline"), data.get("source"), pipeline, pipeline_file):
            continue
        if labels and not carries(redacted_labels(_labels(data.get("labels"))), labels):  # as _local shows them
            continue
        out.append((_started(data.get("started_at")), data, rec.parent))
    # by the recorded start, not its ISO text: that has whole seconds, and two runs started in one second
    # (a scheduler tick, a CI matrix) came in folder order, so prune --keep could keep the older one; a tie (records
    # with whole seconds, unreadable ones) goes by run id, not the filesystem's order: a listing is the same every time
    out.sort(key=lambda row: (row[0], row[1]["run_id"] if row[2] is None else row[2].name), reverse=True)
    # only the runs listed are read in full (their liveness, their outputs redacted), not every run under the folder
    return [data if folder is None else _local(_in_folder(data, folder)) for _, data, folder in out[:limit]]


def _started(value: Any) -> float:
    """A record's start as epoch seconds (epoch seconds or an ISO time; unknown: oldest)."""
    import datetime as dt

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return float("-inf")
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp()


def no_runs_text(runs_dir: str | Path, pipeline: str | None, labels: dict[str, str] | None = None,
                 queued: Iterable[str] = (), pipeline_file: str | None = None) -> str:
    """What to say when a listing found no run: with a pipeline, the pipelines that have runs (a misspelt name
    found none, silently), and those of `queued` (the retrain requests waiting, which `runs list` lists too); with
    labels, the labels runs carry. `pipeline_file`: the YAML file `--pipeline` gave (`pipeline`: its name, None
    where it gives none here)."""
    runs = list_local_runs(runs_dir, pipeline=pipeline, pipeline_file=pipeline_file, limit=1 << 30) if labels else []
    pipeline = pipeline or pipeline_file
    if labels and runs:  # else there are no runs of the pipeline at all: said below
        wanted = ", ".join(one_line(f"{k}={v}") for k, v in redacted_labels(labels).items())  # as the runs' are
        have = sorted({one_line(f"{k}={v}") for r in runs for k, v in r["labels"].items()})
        of = f" of pipeline `{pipeline}`" if pipeline else ""
        return (f"no runs{of} with label {wanted} under {runs_dir}; "
                + (f"their labels: {', '.join(have[:20])}" if have else "none of them has labels"))
    if not pipeline:
        return f"no runs under {runs_dir}"
    from kubepipe.util import did_you_mean

    names = sorted({str(r["pipeline"]) for r in list_local_runs(runs_dir, limit=1 << 30) if r.get("pipeline")}
                   | {str(name) for name in queued if name})
    hint = did_you_mean(pipeline, names) or (f"pipelines with runs: {', '.join(names)}" if names else "")
    return f"no runs of pipeline `{pipeline}` under {runs_dir}" + (f"; {hint}" if hint else "")


def show_local_run(run_id: str, runs_dir: str | Path = RUNS_DIR, *, remote_hint: bool = True) -> dict:
    return _local(local_record(run_id, runs_dir, remote_hint=remote_hint))


def local_record(run_id: str, runs_dir: str | Path = RUNS_DIR, *, remote_hint: bool = True) -> dict:
    """The run record of `run_id` (or of the one run whose id starts with it) as written, with its `run_dir`.
    `remote_hint`: an unknown id may be a remote run's (`runs show`; not `run --resume`, which is local only).
    One trailing `/` (shell tab-completion writes `RUN/` for the run's folder) is the run id; any other is a path."""
    if not run_id.strip():  # `runs show "$RUN"` with RUN unset: 'not a run id (no path separators)' said nothing
        raise UserError(f"runs: no run id given ({run_id!r}); give one (is the shell variable that holds it set?), "
                        "list them with `kubepipe runs list`")
    given, run_id = run_id, run_id[:-1] if run_id.endswith("/") else run_id
    if not run_id or run_id in (".", "..") or "/" in run_id or "\\" in run_id or "\x00" in run_id:
        raise UserError(f"runs: {given!r} is not a run id (no path separators); "
                        "list them with `kubepipe runs list`")
    path = Path(runs_dir) / run_id / "run.json"
    if not path.is_file():
        from kubepipe.util import did_you_mean

        known = sorted(p.parent.name for p in Path(runs_dir).glob("*/run.json"))
        starts = [k for k in known if k.startswith(run_id)]
        if len(starts) == 1:  # a unique prefix opens its run, as a short git hash does
            path = Path(runs_dir) / starts[0] / "run.json"
        elif starts:  # not one arbitrary close match: every candidate, so the user can pick
            shown = ", ".join(starts[:5]) + (f" and {len(starts) - 5} more" if len(starts) > 5 else "")
            raise UserError(f"runs: {run_id!r} starts {len(starts)} local runs under {runs_dir}: {shown}; "
                            "give more of the id")
        else:
            hint = did_you_mean(run_id, known) or ("list them with `kubepipe runs list`" + (
                "; a run submitted to Kubeflow or Vertex: add --target kubeflow (or vertex)" if remote_hint else ""))
            raise UserError(f"runs: no local run {run_id!r} under {runs_dir}; {hint}")
    return _in_folder(read_record(path), path.parent)


def _in_folder(data: dict, folder: Path) -> dict:
    """A local run is named by its folder, which `runs show`, `--resume` and `runs prune` act on: a copied or
    renamed run folder keeps its record's old id and run_dir (prune removed the original's folder). Its path is
    absolute (the default runs folder, `.kubepipe/runs`, is relative: a script's `url` named no folder elsewhere)."""
    return {**data, "run_id": folder.name, "run_dir": os.path.abspath(folder)}
