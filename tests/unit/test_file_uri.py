"""A `file://` URI names a local path whatever the case of its scheme (RFC 3986: schemes are case-insensitive):
one rule (kubepipe.util.local_path) for data sources, registries, checkpoints, state dirs and pipeline paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubepipe.spec.paths import is_local_path, local_file, pod_readable, resolve_path, run_path
from kubepipe.util import is_file_uri, local_path

SCHEMES = ["file://", "FILE://", "File://"]


@pytest.mark.parametrize("value,path", [
    ("file:///abs/x.csv", "/abs/x.csv"), ("FILE:///abs/x.csv", "/abs/x.csv"), ("File://data.csv", "data.csv"),
    ("file://localhost/abs/x.csv", "/abs/x.csv"), ("FILE://LocalHost/abs", "/abs"),
    ("file://localhostx/a", "localhostx/a"),
    ("/abs/x.csv", "/abs/x.csv"), ("data/x.csv", "data/x.csv"), ("data/odd://name.csv", "data/odd://name.csv"),
    ("gs://b/x.csv", None), ("S3://b/x", None), ("https://h/x.csv", None), ("memory://r/x", None),
])
def test_local_path_is_the_one_rule(value, path):
    assert local_path(value) == path
    assert is_file_uri(value) is value.lower().startswith("file://")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_pipeline_paths_read_the_scheme_in_any_case(tmp_path, scheme):
    assert is_local_path(f"{scheme}/abs/x.csv")
    assert resolve_path(f"{scheme}data/x.csv", tmp_path) == f"file://{tmp_path}/data/x.csv"
    assert run_path(f"{scheme}/abs/x.csv", tmp_path) == "file:///abs/x.csv"
    assert local_file(f"{scheme}data/x.csv", tmp_path) == tmp_path / "data" / "x.csv"
    assert not pod_readable(f"{scheme}/abs/x.csv", "kubeflow") and pod_readable(f"{scheme}/gcs/b/x.csv", "vertex")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_data_source_reads_the_file(tmp_path, scheme):
    from kubepipe.components.data.sources import read_source

    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    frame = read_source(f"{scheme}{tmp_path}/x.csv")  # FILE:// was 'no such file'
    assert list(frame.columns) == ["a", "b"] and len(frame) == 1


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_registry_uri_is_the_folder(tmp_path, scheme):
    from kubepipe.components.registry import Registry
    from kubepipe.components.registry.store import LocalStore

    registry = Registry(f"{scheme}{tmp_path}/reg")  # FILE:// was 'unsupported location: Protocol not known: FILE'
    assert isinstance(registry.store, LocalStore) and str(registry.store.root) == f"{tmp_path}/reg"
    registry = Registry(f"{scheme}localhost{tmp_path}/reg")  # RFC 8089: was the relative folder localhost/tmp/...
    assert str(registry.store.root) == f"{tmp_path}/reg"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_checkpoint_dir_is_written_there(tmp_path, scheme):
    torch = pytest.importorskip("torch")
    from kubepipe.components.training.checkpoint import load_checkpoint, save_checkpoint, usable_location

    where = f"{scheme}{tmp_path}/ckpt"
    assert usable_location(where) == where  # FILE:// was 'checkpoints disabled ... no filesystem driver for FILE://'
    save_checkpoint(where, {"fingerprint": "abc", "model": {"w": torch.ones(2)}})
    assert (tmp_path / "ckpt").is_dir()
    assert load_checkpoint(where, "abc")["model"]["w"].sum() == 2


@pytest.mark.parametrize("scheme", SCHEMES)
def test_notify_records_under_the_state_dir(tmp_path, scheme):
    from kubepipe.components.notify.notify import _record

    assert _record(f"{scheme}{tmp_path}/state", {"run": "r"}) == f"{tmp_path}/state/notifications.jsonl"
    assert (tmp_path / "state" / "notifications.jsonl").read_text().strip() == '{"run": "r"}'


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fsspec_places_read_the_scheme_in_any_case(tmp_path, scheme):
    """fsspec's protocols are case-sensitive: each of these said 'Protocol not known: FILE'."""
    import argparse

    from fsspec.implementations.local import LocalFileSystem

    from kubepipe.components.deploy.fetch import fetch
    from kubepipe.components.monitoring.predlog import PredictionLog
    from kubepipe.components.retrain.decisions import state_fs as _fs
    from kubepipe.components.serving.serve_checks import check_sink
    from kubepipe.util import url_to_fs

    fs, path = url_to_fs(f"{scheme}{tmp_path}/x")
    assert isinstance(fs, LocalFileSystem) and path == f"{tmp_path}/x"
    assert isinstance(_fs(f"{scheme}{tmp_path}/state")[0], LocalFileSystem)  # trigger-retrain's state dir
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"w")
    assert (Path(fetch(f"{scheme}{tmp_path}/model", str(tmp_path / "got"))) / "w.bin").read_bytes() == b"w"
    check_sink(argparse.ArgumentParser(), f"{scheme}{tmp_path}/log")  # serve --log-sink: no p.error
    log = PredictionLog(f"{scheme}{tmp_path}/log", model="m").start()
    log.close()
