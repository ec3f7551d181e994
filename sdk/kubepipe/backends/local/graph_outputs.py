"""The outputs of a step whose component is a pipeline (a `@dsl.pipeline` function or a compiled pipeline file).

kfp.local runs the inner tasks, each writing its own executor_output.json, and none for the pipeline
itself: its outputs are the inner tasks' outputs its DAG names (`root.dag.outputs`). They are read
from there, so the run record and `kubepipe runs show` list them as for any other step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from kubepipe.backends.runs.record import RunResult, recorded_output
from kubepipe.compiler.pipeline_fn import task_name

__all__ = ["graph_output_sources", "fill_graph_outputs"]


def graph_output_sources(steps: Iterable[Any]) -> dict[str, dict[str, tuple[str, str]]]:
    """Step name -> {its output: (the inner task that produces it, that task's output)}, parameters only."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for step in steps:
        graph = step.info.component.component_spec.implementation.graph
        if graph is None:
            continue
        params = graph.root.dag.outputs.parameters
        out[step.name] = {name: (p.value_from_parameter.producer_subtask, p.value_from_parameter.output_parameter_key)
                          for name, p in params.items() if p.value_from_parameter.producer_subtask}
    return out


def fill_graph_outputs(run: RunResult, root: Path, sources: dict[str, dict[str, tuple[str, str]]]) -> None:
    """Set each succeeded pipeline step's outputs from its inner tasks' executor_output.json files."""
    files = {f.parent.name: f for f in sorted(root.glob("*/*/executor_output.json"))}
    for rec in run.steps:
        if rec.state != "SUCCEEDED" or rec.name not in sources:
            continue
        for name, (task, key) in sources[rec.name].items():
            f = files.get(task_name(task))
            try:
                values = json.loads(f.read_text()).get("parameterValues", {}) if f else {}
            except (OSError, ValueError):
                continue
            if key in values:
                rec.outputs.setdefault(name, recorded_output(name, values[key]))
