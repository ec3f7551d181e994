"""`serving.log` on the deploy step: checked at compile time, lowered to `kubepipe serve` flags on every target;
the rendered InferenceService validates against KServe's CRD."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubepipe.components.deploy import crd
from kubepipe.components.deploy.checks import check
from kubepipe.components.deploy.inference_service import ServiceConfig, inference_service_manifest
from kubepipe.components.monitoring.settings import default_sink, log_as_run, resolve_sink, server_args

SHARED_CRD = Path(__file__).resolve().parents[3] / "shared" / "crds" / crd.CRD_FILE


def _paths(issues):
    return {".".join(map(str, i.path)): i.message for i in issues}


def test_log_settings_are_checked_and_name_the_field():
    assert check({"serving": {"log": {"sample": 0.1, "sink": "gs://b/predictions", "flush_s": 5}}}) == []
    bad = _paths(check({"serving": {"log": {"sample": 1.5, "sink": "", "flsh_s": 5}}}))
    assert "fraction" in bad["serving.log.sample"] and "serving.log.sink" in bad
    assert "unknown prediction log setting" in bad["serving.log.flsh_s"]
    triton = _paths(check({"runtime": "triton", "serving": {"log": {"sample": 0.1}}}))
    assert "Triton" in triton["serving.log"]
    assert "mapping" in _paths(check({"serving": {"log": "yes"}}))["serving.log"]
    for odd in (float("inf"), float("nan")):  # YAML .inf / .nan: the server's writer cannot wait that long
        bad = _paths(check({"serving": {"log": {"flush_s": odd}}}))
        assert "positive number of seconds" in bad["serving.log.flush_s"]
    # before: 1e-6 validated, and the server's log writer woke every microsecond, spinning a core
    assert "0.05 or more, got 1e-06" in _paths(check({"serving": {"log": {"flush_s": 1e-6}}}))["serving.log.flush_s"]
    assert check({"serving": {"log": {"flush_s": 0.05}}}) == []


def test_redact_is_on_by_default_and_only_a_boolean_false_logs_raw_inputs():
    """`serving.log.redact: false` is `kubepipe serve --log-raw-inputs`; a value that is not a boolean is named, not
    read as true or false (`redact: "no"` would have logged card numbers in clear, or not, by its truthiness)."""
    assert "--log-raw-inputs" not in server_args({"sample": 1.0}, "gs://b/p", 7)
    assert "--log-raw-inputs" not in server_args({"redact": True}, "gs://b/p", 7)
    assert server_args({"redact": False}, "gs://b/p", 7) == [
        "--log-sink", "gs://b/p", "--log-sample", "1", "--log-raw-inputs", "--model-version", "7"]
    assert check({"serving": {"log": {"redact": False}}}) == []
    for bad in ("no", 0, None):
        assert _paths(check({"serving": {"log": {"redact": bad}}}))["serving.log.redact"] == (
            f"must be true or false, got {bad!r}")
    assert log_as_run({"redact": "False"}) == {"redact": False}  # a bool param, as KFP carries it: text
    assert log_as_run({"redact": "${params.raw}"}) == {"redact": "${params.raw}"}


def test_server_flag_log_raw_inputs_parses_and_is_off_by_default(tmp_path):
    from kubepipe.components.serving.serve_checks import check_options
    from kubepipe.components.serving.server import build_parser

    p = build_parser()
    args = p.parse_args(["model", "--log-sink", str(tmp_path), "--log-raw-inputs"])
    check_options(p, args)
    assert args.log_raw_inputs is True and build_parser().parse_args(["model"]).log_raw_inputs is False


def test_sink_defaults_profile_then_beside_the_state_dir():
    assert default_sink({"predictions_uri": "gs://b/p"}, "gs://b/root/state") == "gs://b/p"
    assert default_sink({}, "gs://b/root/state") == "gs://b/root/predictions"
    assert default_sink({}, ".kubepipe/demo/state") == ".kubepipe/demo/predictions"
    assert resolve_sink({"sink": "s3://x/y"}, {"predictions_uri": "gs://b/p"}, "") == "s3://x/y"
    assert server_args({"sample": 0.25, "flush_s": 2}, "gs://b/p", 7) == [
        "--log-sink", "gs://b/p", "--log-sample", "0.25", "--log-flush-s", "2", "--model-version", "7"]
    assert server_args(None, "gs://b/p", 7) == []  # no block: off (`{}` is every default)


def test_param_references_in_the_block_arrive_as_text_and_become_numbers_again():
    """`flush_s: "${params.log_flush_s}"` reaches the deploy step as "1.0" (KFP passes nested leaves as text)."""
    ran = log_as_run({"sample": "0.5", "flush_s": "1.0", "sink": "gs://b/p"})
    assert ran == {"sample": 0.5, "flush_s": 1.0, "sink": "gs://b/p"} and check({"serving": {"log": ran}}) == []
    assert server_args(ran, "gs://b/p", 3)[4:6] == ["--log-flush-s", "1"]
    bad = _paths(check({"serving": {"log": log_as_run({"flush_s": "soon"})}}))
    assert "positive number of seconds" in bad["serving.log.flush_s"]  # still named by the check
    assert log_as_run({"flush_s": "${params.x}"}) == {"flush_s": "${params.x}"}  # compile time: a reference
    assert log_as_run({"sink": "gs://b/p"}) == {"sink": "gs://b/p"}  # nothing added
    assert log_as_run({"flush_s": " 2 "}) == {"flush_s": 2.0}
    sample = _paths(check({"serving": {"log": log_as_run({"sample": "true"})}}))["serving.log.sample"]
    assert sample == "must be a fraction above 0 and at most 1, got 'true'"  # a fraction, not a bool


@pytest.mark.parametrize("schema", [None, SHARED_CRD])
def test_kserve_predictor_carries_the_log_flags_and_validates_against_the_crd(schema):
    flags = tuple(server_args({"sample": 0.1}, "gs://bucket/predictions", 7))
    manifest = inference_service_manifest(ServiceConfig(
        model_name="merchant-categorizer", storage_uri="gs://bucket/runs/1/model", version="7",
        image="ghcr.io/acme/kubepipe-runtime@sha256:" + "a" * 64, canary_percent=10, server_flags=flags))
    assert crd.manifest_errors(manifest, crd=schema) == []
    args = manifest["spec"]["predictor"]["containers"][0]["args"]
    assert args[-6:] == ["--log-sink", "gs://bucket/predictions", "--log-sample", "0.1", "--model-version", "7"]
    assert "logger" not in manifest["spec"]["predictor"]  # the in-process writer, not KServe's agent


def test_vertex_container_carries_the_log_flags():
    from kubepipe.components.deploy.vertex_endpoint import serving_container

    c = serving_container("m", 32, ("--log-sink", "gs://b/p"))
    assert c["serving_container_args"][-4:] == ["--max-batch-size", "32", "--log-sink", "gs://b/p"]


def test_server_flags_parse_and_bad_values_are_user_errors(capsys):
    from kubepipe.components.serving.serve_checks import check_options
    from kubepipe.components.serving.server import build_parser

    p = build_parser()
    args = p.parse_args(["model", "--log-sink", "/tmp/x", "--log-sample", "0.5", "--model-version", "3"])
    check_options(p, args)
    assert (args.log_sink, args.log_sample, args.model_version) == ("/tmp/x", 0.5, "3")
    for bad in (["--log-sample", "2"], ["--log-flush-s", "0"], ["--log-sink", "nosuchproto://x"]):
        with pytest.raises(SystemExit) as exc:
            check_options(p, p.parse_args(["model", *bad]))
        assert exc.value.code == 2
    assert "--log-sink nosuchproto://x" in capsys.readouterr().err


def test_an_empty_log_block_is_every_default_not_off(tmp_path):
    """`serving: {log: {}}` wrote no prediction log at all (an empty mapping read as false); it is the defaults:
    every request, to the default sink. Only a missing block leaves the log off."""
    from kubepipe.components.deploy.target import _log_flags

    assert check({"serving": {"log": {}}}) == []
    state = str(tmp_path / ".kubepipe" / "state")
    assert _log_flags({}, {}, state, 3) == ["--log-sink", str(tmp_path / ".kubepipe" / "predictions"),
                                            "--log-sample", "1", "--model-version", "3"]
    assert _log_flags({}, {"predictions_uri": "gs://b/p"}, state, "")[:2] == ["--log-sink", "gs://b/p"]
    assert _log_flags(None, {}, state, 3) == [] and server_args(None, "gs://b/p", 3) == []


def test_a_null_log_block_warns_that_the_log_is_off():
    """`serving: {log: }` (YAML null) left the prediction log off without a word, where `log: {}` is every default."""
    issues = check({"serving": {"log": None}})
    assert [(i.path, i.severity) for i in issues] == [(("serving", "log"), "warning")]
    assert "is null (`log:` with nothing after it), so no prediction log is written" in issues[0].message
    assert "`log: {}` logs every request" in issues[0].hint
    assert check({"serving": {}}) == []  # no `log:` at all: off, as documented, without a warning
