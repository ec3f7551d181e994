"""A URI's scheme in any case (RFC 3986: `GS://b/x` is `gs://b/x`): one rule (kubepipe.util.uri_scheme, normal_uri)
for "is this a URI, of which scheme" and for opening it; `file://` URIs are tests/unit/test_file_uri.py's."""

from __future__ import annotations

import pytest

from kubepipe.util import normal_uri, uri_scheme, url_to_fs


@pytest.mark.parametrize("value, scheme, normal", [
    ("GS://b/x", "gs", "gs://b/x"), ("S3://Bucket/Key", "s3", "s3://Bucket/Key"), ("gs://b", "gs", "gs://b"),
    ("Memory://r/x", "memory", "memory://r/x"), ("HTTPS://h/p", "https", "https://h/p"),
    ("FILE:///x", "file", "file:///x"), ("/abs/x", None, "/abs/x"), ("data/odd://name", None, "data/odd://name"),
    ("C://x", None, "C://x"), ("gs:/b", None, "gs:/b"), ("", None, ""),
])
def test_the_scheme_is_read_in_any_case(value, scheme, normal):
    assert uri_scheme(value) == scheme and normal_uri(value) == normal


@pytest.fixture
def memory():
    import fsspec

    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/upper", recursive=True) if fs.exists("/upper") else None


def test_remote_places_open_a_scheme_in_capitals(memory):
    """fsspec's protocols are case-sensitive: each said 'Protocol not known: MEMORY' (as gs:// would 'GS')."""
    from kubepipe.components.data.sources import read_source
    from kubepipe.components.notify.notify import _record
    from kubepipe.components.registry.fsspec_store import FsspecStore
    from kubepipe.components.training.checkpoint import usable_location

    memory.pipe_file("/upper/x.csv", b"a,b\n1,2\n")
    assert url_to_fs("MEMORY://upper/x.csv")[1] == "/upper/x.csv"
    assert read_source("MEMORY://upper/x.csv").to_dict("list") == {"a": [1], "b": [2]}
    assert usable_location("MEMORY://upper/ckpt") == "MEMORY://upper/ckpt"  # was 'checkpoints disabled'
    _record("MEMORY://upper/state", {"run_id": "r", "time": "2026-12-01T10:00:00Z"})
    assert memory.ls("/upper/state/notifications", detail=False)
    assert FsspecStore("MEMORY://upper/reg").fs is memory


def test_a_vertex_profile_takes_gs_in_capitals(tmp_path):
    """`pipeline_root: GS://b/root` was 'vertex pipeline_root must be a gs:// URI', and vertex_model_registry refused
    `registry_uri: GS://b/reg`; both are read as gs:// and stored so (Vertex and Google's clients take lower case)."""
    from kubepipe.spec.profiles import load_profile

    prof = tmp_path / "vertex.yaml"
    prof.write_text("target: vertex\nproject: p\nregion: europe-west4\npipeline_root: GS://b/root\n"
                    "registry_uri: Gs://b/reg\nvertex_model_registry: true\npredictions_uri: S3://b/pred\n")
    p = load_profile("vertex", profile_file=prof, environ={})
    assert (p.pipeline_root, p.registry_uri, p.predictions_uri) == ("gs://b/root", "gs://b/reg", "s3://b/pred")


def test_a_file_uri_param_is_hashed_for_resume_and_shown_as_a_path(tmp_path):
    """Resume's digest took any value with `://` for a remote URI: a CSV given as file:///abs/d.csv, fixed after the
    crash, did not run the step again; runs show printed the file:// text where plain paths are absolute."""
    from kubepipe.backends.local import reuse_task
    from kubepipe.backends.local.outputs import _absolute

    (tmp_path / "d.csv").write_text("a\n1\n")
    run_input = {"inputs": {"parameterValues": {"source": f"FILE://{tmp_path}/d.csv"}}}
    first = reuse_task._inputs_digest("c", run_input, {})
    (tmp_path / "d.csv").write_text("a\n2\n")
    assert reuse_task._inputs_digest("c", run_input, {}) != first
    assert _absolute(f"file://{tmp_path}/d.csv") == str(tmp_path / "d.csv")
    assert _absolute("GS://b/x") == "GS://b/x"


def test_retrain_reads_a_gs_template_in_capitals():
    from kubepipe.components.retrain.remote import _is_package

    assert _is_package("GS://b/train") and not _is_package("train")


@pytest.mark.parametrize("written, meant", [("gs:/bucket/d.csv", "gs://bucket/d.csv"),
                                            ("S3:/b/k.parquet", "S3://b/k.parquet"),
                                            ("file:/abs/x.csv", "file:///abs/x.csv")])
def test_a_uri_written_with_one_slash_is_refused_at_validate_saying_what_to_write(tmp_path, written, meant):
    """`source: gs:/bucket/d.csv` validated (no URI, no local path: no check) and load failed at run time with 'no such
    file gs:/bucket/d.csv (working directory: ...)'; a param default so written too."""
    import kubepipe
    from kubepipe.errors import ValidationError
    from kubepipe.uris import one_slash_uri

    assert one_slash_uri(written) == meant and one_slash_uri(meant) is None and one_slash_uri("C:/x") is None
    p = tmp_path / "p.yaml"
    for params, source, path in (("", written, "steps.load.with.source"),
                                 (f"params:\n  data: {{type: str, default: '{written}'}}\n", "${params.data}",
                                  "params.data.default")):
        p.write_text(f"apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {{name: p}}\n{params}"
                     f"steps:\n  load: {{component: load-data, with: {{source: '{source}'}}}}\n")
        with pytest.raises(ValidationError) as exc:
            kubepipe.validate(p)
        [issue] = exc.value.issues
        assert issue.path == path and issue.message.endswith(
            "is neither a URI (a scheme is followed by `//`) nor a path: no step would find it")
        assert issue.hint == f"write {meant}"
