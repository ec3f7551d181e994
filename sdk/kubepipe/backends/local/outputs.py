"""What a local run's steps made, read back from kfp.local's task folders under `<run dir>/artifacts`."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from kubepipe.backends.runs.record import RunResult, StepRecord, recorded_output
from kubepipe.compiler.pipeline_fn import task_name
from kubepipe.util import local_path

__all__ = ["metric_output_names", "report_output_names", "collect_outputs", "read_task"]

REPORT_TYPES = ("system.HTML", "system.Markdown")  # what `kubepipe run` lists to open, whatever the file's name


def _outputs_of_type(steps, types: tuple[str, ...]) -> dict[str, set[str]]:
    """step -> its outputs whose artifact type is one of `types` (`system.HTML`; the version after `@` aside)."""
    out = {}
    for s in steps:
        outputs = getattr(s.info.component.component_spec, "outputs", None) or {}
        out[s.name] = {k for k, o in outputs.items() if str(getattr(o, "type", "")).split("@")[0] in types}
    return out


def metric_output_names(steps) -> dict[str, set[str]]:
    """step -> its outputs of type system.Metrics: KFP keeps their values in the artifact's metadata, no file."""
    return _outputs_of_type(steps, ("system.Metrics",))


def report_output_names(steps) -> dict[str, set[str]]:
    """step -> its HTML and Markdown outputs: reports, though a component may write one without a suffix."""
    return _outputs_of_type(steps, REPORT_TYPES)


_ITERATION = re.compile(r"^for-loop-\d+-iteration-(\d+)$")


def collect_outputs(run: RunResult, root: Path, metric_outputs: dict[str, set[str]] | None = None) -> None:
    """Parameter outputs, metrics and artifact paths from kfp.local's executor_output.json files. An artifact
    KFP keeps as metadata only (Metrics, ClassificationMetrics) has no file: it is not listed as one; a Metrics
    output's numbers go to the step's `metrics` (`<output>.<name>` when the step has more than one). A foreach
    step's task runs in `for-loop-N-iteration-K/<task>/`: each of its outputs, artifacts and metrics is a list,
    one value per item in the items' order (`None` for an item that made none)."""
    folders: dict[str, dict[int | None, Path]] = {}  # task -> item index (None: not in a loop) -> its folder
    for d in sorted(root.glob("*/*")) + sorted(root.glob("*/for-loop-*-iteration-*/*")):
        m = _ITERATION.match(d.parent.name)
        if d.is_dir():
            folders.setdefault(d.name, {})[int(m.group(1)) if m else None] = d
    for rec in run.steps:
        by_item = folders.get(task_name(rec.name)) or {}
        metric_names = (metric_outputs or {}).get(rec.name, set())
        if None in by_item:
            read_task(rec, by_item[None], metric_names, rec.outputs, rec.artifacts, rec.metrics)
        elif by_item:
            per_item = []
            for k in range(max(i for i in by_item if i is not None) + 1):  # no None: checked above
                outs: dict = {}
                arts: dict = {}
                mets: dict = {}
                if k in by_item:
                    read_task(rec, by_item[k], metric_names, outs, arts, mets)
                per_item.append((outs, arts, mets))
            for i, target in enumerate((rec.outputs, rec.artifacts, rec.metrics)):
                for name in sorted({n for item in per_item for n in item[i]}):
                    target[name] = [item[i].get(name) for item in per_item]


def read_task(rec: StepRecord, folder: Path, metric_names: set[str], outputs: dict, artifacts: dict,
               metrics: dict) -> None:
    """One task's (or one loop item's) outputs, artifacts and metrics, from its folder."""
    f = folder / "executor_output.json"
    if not f.is_file():  # a failed task writes no executor_output.json: what it wrote (a failed gate's report) is there
        for d in sorted(folder.iterdir()) if rec.state == "FAILED" else []:
            artifacts.setdefault(Path(d.name).stem, _absolute(str(d)))  # `report.html`: output `report`
        return
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        return
    outputs.update({name: recorded_output(name, v) for name, v in (data.get("parameterValues") or {}).items()})
    for name, arts in (data.get("artifacts") or {}).items():
        first = next(iter(arts.get("artifacts") or []), None) or {}
        if name in metric_names:
            prefix = f"{name}." if len(metric_names) > 1 else ""
            metrics.update({prefix + str(k): v for k, v in (first.get("metadata") or {}).items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)})
        uri = first.get("uri")
        if uri and (local_path(uri) is None or os.path.exists(local_path(uri) or "")):
            artifacts[name] = _absolute(uri)  # `runs show` prints paths that open from anywhere
    listed = set(artifacts.values())
    for d in sorted(folder.iterdir()):  # artifacts kfp.local wrote but did not list
        if (d.name not in outputs and d.name not in artifacts and d.name != "executor_output.json"
                and _absolute(str(d)) not in listed):
            artifacts[d.name] = _absolute(str(d))


def _absolute(path: str) -> str:
    """A local path made absolute (a `file://` URI's path too); a remote URI as it is."""
    local = local_path(path)
    return path if local is None else os.path.abspath(local)
