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
    encoder = SimpleNamespace(state=lambda: {}, save_files=lambda root: None)  # the files next to the spec
    monkeypatch.setattr(artifact, "load_model", lambda d: SimpleNamespace(labels=["a", "b"], encode=lambda x: x,
                                                                          spec={}, encoder=encoder))
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


def test_sample_csvs(tmp_path, monkeypatch):
    """write_samples' CSVs were written in place (to_csv): a kill or a full disk left half a CSV."""
    import pandas as pd

    from kubepipe.components.data.samples import write_samples

    (tmp_path / "a.csv").write_text("old")
    _fail_replace_of(monkeypatch, "a.csv")
    with pytest.raises(OSError, match="No space left"):
        write_samples(tmp_path, {"a.csv": pd.DataFrame({"x": [1, 2]})})
    assert (tmp_path / "a.csv").read_text() == "old" and _left(tmp_path) == []


def test_a_distributed_rank_s_error_file(tmp_path, monkeypatch):
    """error-{rank}.json, which the parent parses, was written in place: a kill mid-write left half a JSON."""
    import torch.distributed as dist

    from kubepipe.components.errors import ComponentError
    from kubepipe.components.training import distributed

    monkeypatch.setattr(os, "environ", dict(os.environ))  # the worker replaces its environment
    monkeypatch.setattr(dist, "init_process_group", lambda *a, **kw: None)
    monkeypatch.setattr(dist, "destroy_process_group", lambda *a, **kw: None)

    def fail(*a, **kw):
        raise ComponentError("bad batch")

    monkeypatch.setattr(distributed, "run_loop", fail)
    monkeypatch.setattr(distributed, "replace", lambda setup, **kw: setup)
    (tmp_path / "error-0.json").write_text("old")
    _fail_replace_of(monkeypatch, "error-0.json")
    with pytest.raises(OSError, match="No space left"):
        distributed._worker(0, {}, None, None, 1, "gloo", 0, str(tmp_path))
    assert (tmp_path / "error-0.json").read_text() == "old" and _left(tmp_path) == []


@pytest.mark.parametrize("name", ["model.safetensors", "kubepipe-model.json"])
def test_the_nan_weights_demo_copy(tmp_path, monkeypatch, name):
    import torch
    from safetensors.torch import save_file

    from kubepipe.components.serving.demo_model import nan_weights_copy

    src = tmp_path / "src"
    src.mkdir()
    save_file({"w": torch.ones(2)}, str(src / "model.safetensors"))
    (src / "kubepipe-model.json").write_text('{"weights_sha256": "old"}')
    _fail_replace_of(monkeypatch, name)
    with pytest.raises(OSError, match="No space left"):
        nan_weights_copy(src, tmp_path / "dst")
    assert (tmp_path / "dst" / name).read_bytes() == (src / name).read_bytes() and _left(tmp_path) == []


def test_the_expectations_table(tmp_path, monkeypatch):
    from kubepipe.components.data import expectations_table

    monkeypatch.setattr(expectations_table, "TABLE_PATH", tmp_path / "table.json")
    monkeypatch.setattr(expectations_table, "build_table", lambda: {"expectations": {}})
    (tmp_path / "table.json").write_text("old")
    _fail_replace_of(monkeypatch, "table.json")
    with pytest.raises(OSError, match="No space left"):
        expectations_table.main(["--write"])
    assert (tmp_path / "table.json").read_text() == "old" and _left(tmp_path) == []
