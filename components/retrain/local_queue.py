"""A local retrain: a request file in `<state_dir>/retrain/queue/` that `kubepipe scheduler` starts on its next tick.

What the scheduler would refuse is refused here, when the monitor's step can still say it (a request that fails in
the scheduler counts toward the backoff and the pause): a pipeline file that is not there, or whose spec is not valid
(said at file:line:col; what the environment gives, `${env.X}`, is left for the scheduler's own environment), a path
param naming no file. The request names the pipeline file by its absolute path and records the name its run is
listed under and named (`pipeline_name`: the pipeline's metadata.name, `${env.X}` in it resolved here, once).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kubepipe.components.errors import ComponentError
from kubepipe.components.retrain.decisions import queue_dir, slug, state_fs, state_writes, write_whole
from kubepipe.util import local_path

__all__ = ["queue_local", "request_id"]

_SHOWN_ISSUES = 10  # the first problems of an invalid training pipeline; `kubepipe validate` says every one


def request_id(pipeline: str, key: str) -> str:
    return f"retrain-{slug(pipeline)}-{key}"


def queue_local(pipeline: str, params: dict, state_dir: str, key: str, record: dict) -> str:
    from kubepipe.spec.names import pipeline_name

    request = request_id(pipeline, key)
    path = _local_pipeline(pipeline)
    _check_training_spec(path, pipeline)
    params = _local_params(path, params)
    fs, qdir = state_fs(queue_dir(state_dir))
    # its run is listed under the pipeline's metadata.name (`runs list --pipeline`), as the request is, resolved
    # once (trigger-retrain's decision records it): the scheduler's run takes it, whatever its own environment
    # gives. Read also where an unset `${env.X}` elsewhere left the spec to the scheduler's environment (None: the
    # name takes one, and the run resolves it itself)
    name = record["pipeline_name"] if "pipeline_name" in record else pipeline_name(path)
    body = {"id": request, "pipeline": path, "pipeline_name": name,
            "params": params, "reason": record["reason"], "requested_at": record["time"],
            "source_run_id": record["source_run_id"],
            "requested_by": "/".join(p for p in (record["source_pipeline"], record["source_step"]) if p)}
    with state_writes(f"{qdir}/{request}.json"):
        fs.makedirs(qdir, exist_ok=True)
        write_whole(fs, f"{qdir}/{request}.json", json.dumps(body, sort_keys=True))  # same id: replaced
    return request


def _local_pipeline(pipeline: str) -> str:
    """The training pipeline's YAML as an absolute path (`kubepipe scheduler` may run elsewhere); it must be there."""
    path = Path(local_path(pipeline) or pipeline).expanduser()
    if not path.is_file():  # a --param value is relative to the working directory, like any CLI argument
        hint = f" (working directory: {os.getcwd()})" if not path.is_absolute() else ""
        raise ComponentError(f"trigger-retrain: {pipeline}: no such pipeline file{hint}; a retrain queued for it "
                             "would fail in `kubepipe scheduler`; check the path, or the param that gives it")
    return str(path.resolve())


def _check_training_spec(path: str, given: str) -> None:
    """Loads the training pipeline's spec as its run does; a ComponentError naming each problem at its file:line:col
    when it is not valid, whatever the environment. Passes when only values from the environment are at fault
    (`${env.X}` unset here): `kubepipe scheduler` reads them from its own."""
    from kubepipe.errors import ValidationError
    from kubepipe.spec.loader import SpecErrors, load_pipeline

    try:
        load_pipeline(path)
        return
    except SpecErrors as exc:
        issues = exc.without_env()
        if not issues:
            return
    except ValidationError as exc:  # no YAML, not text, too large
        issues = exc.issues
    except OSError as exc:
        raise ComponentError(f"trigger-retrain: {given}: cannot read the pipeline file ({exc}); a retrain queued "
                             "for it would fail in `kubepipe scheduler`") from None
    n = len(issues)
    more = [f"  ... and {n - _SHOWN_ISSUES} more"] if n > _SHOWN_ISSUES else []
    raise ComponentError("\n".join([
        f"trigger-retrain: {given} is not a valid pipeline ({n} problem{'s' if n != 1 else ''}), so a retrain queued "
        f"for it would fail in `kubepipe scheduler` and count toward the backoff; fix it (`kubepipe validate {path}`):",
        *(f"  {i.format()}" for i in issues[:_SHOWN_ISSUES]), *more]))


def _local_params(pipeline: str, params: dict) -> dict:
    """`params` with the training pipeline's path params as absolute paths that are there: the run starts in
    `kubepipe scheduler`'s folder. The plan wrote a relative one as this run reaches it (from the monitor's folder);
    a `--param` value is relative to the working directory, like any CLI argument."""
    from kubepipe.plan.paths import pipeline_path_params
    from kubepipe.spec.paths import is_local_path, resolve_path

    out = dict(params)
    for name in sorted(pipeline_path_params(pipeline) & set(out)):
        value = out[name]
        if not isinstance(value, str) or not is_local_path(value):
            continue
        out[name] = resolve_path(value, os.getcwd())
        if not Path(local_path(out[name]) or "").exists():
            raise ComponentError(f"trigger-retrain: params.{name}: no file or folder {out[name]} (a path param of "
                                 f"{pipeline}); the retrain would fail in `kubepipe scheduler`; check the path (a "
                                 "relative one is read from the folder of the pipeline file it is written in)")
    return out
