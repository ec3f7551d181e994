"""Outputs a step writes are replaced whole or not at all: a write that fails (a full disk, a kill) leaves the old
file and no temp file. validate-data's `validation` JSON and dataset copy, live-quality's evaluation and the Triton
files were written in place: half a file that a later step or `runs show` read."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest


def _fail_replace_of(monkeypatch, name: str) -> None:
    """os.replace onto a file called `name` fails as a full disk does; other writes go through."""
    real = os.replace

    def replace(src, dst, *a, **kw):
        if Path(dst).name == name:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


@pytest.mark.parametrize("name", ["validation.json", "out"])
def test_validate_data_s_validation_json_and_dataset_copy(tmp_path, monkeypatch, name):
    import pandas as pd
    from kfp.dsl import HTML, Artifact, Dataset, Metrics

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.data.steps import run_validate

    data = Dataset(name="data", uri=str(tmp_path / "in"), metadata={})
    write_dataset(pd.DataFrame({"a": [1, 3], "b": [2, 4]}), data, source="in.csv")
    out = Dataset(name="dataset", uri=str(tmp_path / "out"), metadata={})
    validation = Artifact(name="validation", uri=str(tmp_path / "validation.json"))
    for f in ("out", "validation.json"):
        (tmp_path / f).write_text("old")
    _fail_replace_of(monkeypatch, name)
    with pytest.raises(OSError, match="No space left"):
        run_validate(data, out, Metrics(name="metrics", uri=str(tmp_path / "metrics")),
                     HTML(name="report", uri=str(tmp_path / "report.html")), validation,
                     expectations=[{"expect_column_to_exist": {"column": "a"}}])
    assert (tmp_path / name).read_text() == "old" and _left(tmp_path) == []


def test_live_quality_s_evaluation(tmp_path, monkeypatch):
    from kfp.dsl import Artifact, Metrics

    from kubepipe.components.monitoring import ops, steps

    monkeypatch.setattr(steps, "run_live_quality", lambda *a, **kw: {"quality_dropped": False, "versions": {}})
    evaluation = Artifact(name="evaluation", uri=str(tmp_path / "evaluation.json"))
    evaluation.path  # noqa: B018 - KFP's path of a local uri
    (tmp_path / "evaluation.json").write_text("old")
    _fail_replace_of(monkeypatch, "evaluation.json")
    with pytest.raises(OSError, match="No space left"):
        ops.live_quality.python_func(predictions=SimpleNamespace(path=str(tmp_path / "p")), evaluation=evaluation,
                                     metrics=Metrics(name="metrics", uri=str(tmp_path / "m")), model_name="m")
    assert (tmp_path / "evaluation.json").read_text() == "old" and _left(tmp_path) == []


@pytest.mark.parametrize("name", ["config.pbtxt", "labels.txt", "parity.json", "kubepipe-model.json", "model.onnx"])
def test_the_triton_repository_files(tmp_path, monkeypatch, name):
    from kubepipe.components.deploy import triton
    from kubepipe.components.serving import runtime
    from kubepipe.components.training import artifact

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / artifact.SPEC_FILE).write_text("{}")
    (tmp_path / "exported.onnx").write_bytes(b"onnx")
    monkeypatch.setattr(artifact, "load_model", lambda d: SimpleNamespace(labels=["a", "b"], encode=lambda x: x))
    parity = SimpleNamespace(to_dict=lambda: {"passed": True})
    monkeypatch.setattr(runtime, "checked_onnx_session", lambda loaded, p: (None, tmp_path / "exported.onnx", parity))
    monkeypatch.setattr("kubepipe.components.serving.onnx_export.onnx_inputs", lambda batch: {"ids": ("int64", [8])})
    monkeypatch.setattr("kubepipe.components.serving.parity.probe_inputs", lambda loaded, n: [])
    root = tmp_path / "repo" / "m"
    (root / "1").mkdir(parents=True)
    for f in ("config.pbtxt", "labels.txt", "parity.json", "kubepipe-model.json", "1/model.onnx"):
        (root / f).write_text("old")
    _fail_replace_of(monkeypatch, name)
    with pytest.raises(OSError, match="No space left"):
        triton.write_triton_repository(model_dir, tmp_path / "repo", name="m")
    assert next(root.rglob(name)).read_text() == "old" and _left(tmp_path) == []


def test_a_dataset_written_by_a_step(tmp_path, monkeypatch):
    """load-data's (and every data step's) Parquet file was written in place: half a file after a full disk."""
    import pandas as pd

    from kubepipe.components.data.io import write_dataset

    (tmp_path / "data").write_text("old")
    _fail_replace_of(monkeypatch, "data")
    with pytest.raises(OSError, match="No space left"):
        write_dataset(pd.DataFrame({"a": [1, 2]}), tmp_path / "data")
    assert (tmp_path / "data").read_text() == "old" and _left(tmp_path) == []
