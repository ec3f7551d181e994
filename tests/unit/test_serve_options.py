"""The server's options: one list behind `kubepipe serve` and the server module, checked the same way."""

from __future__ import annotations

import inspect

import pytest

from kubepipe.components.serving import logs
from kubepipe.components.serving.options import DEFAULTS
from kubepipe.components.serving.server import build_parser, main
from kubepipe.components.serving.workers import strip_options


def test_cli_and_server_share_defaults():
    from kubepipe.cli.serve import serve

    args = vars(build_parser().parse_args(["/m"]))
    cli = {k: p.default.default for k, p in inspect.signature(serve).parameters.items() if k in DEFAULTS}
    assert {k: args[k] for k in DEFAULTS} == DEFAULTS == cli
    # the shutdown defaults fit Kubernetes' 30 s termination grace period
    assert DEFAULTS["drain_delay"] > 0 and DEFAULTS["drain_delay"] + DEFAULTS["grace_period"] <= 30
    assert DEFAULTS["max_body_mb"] == 4.0 and DEFAULTS["access_log"] is False


@pytest.mark.parametrize("argv, flag", [(["--max-body-mb", "0"], "--max-body-mb"), (["--workers", "0"], "--workers"),
                                        (["--drain-delay", "-1"], "--drain-delay"),
                                        (["--access-log-sample", "1.5"], "--access-log-sample"),
                                        (["--max-batch-size", "-3"], "--max-batch-size"),
                                        (["--port", "99999"], "--port must be from 0 to 65535"),
                                        (["--max-wait-ms", "-5"], "--max-wait-ms"),
                                        (["--max-text-length", "0"], "--max-text-length"),
                                        (["--name", "a/b"], "--name 'a/b'"),
                                        (["--body-timeout", "-1"], "--body-timeout must be 0 or more"),
                                        (["--request-timeout", "nan"], "--request-timeout must be a finite number"),
                                        (["--compile-mode", "max"], "argument --compile-mode: invalid choice"),
                                        (["--compile-mode", "reduce-overhead"],
                                         "--compile-mode reduce-overhead is torch.compile's mode: add --torch-compile")])
def test_bad_values_are_usage_errors_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["/m", *argv])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--port", "99999"], "--port must be from 1 to 65535 (got 99999)"),  # was an internal OverflowError from bind()
    (["--port", "0"], "--port must be from 1 to 65535 (got 0)"),
    (["--name", "a/b"], "it is the model's name in the URLs"),
    (["--max-wait-ms", "-5"], "--max-wait-ms must be 0 or more (got -5.0)"),
    (["--log-sample", "2"], "--log-sample must be a fraction from 0 to 1 (got 2.0)"),
    # inf killed the prediction log's writer (a thread's wait overflows), nan made it spin: neither compares
    (["--log-flush-s", "inf"], "--log-flush-s must be a finite number (got inf)"),
    (["--log-flush-s", "nan"], "--log-flush-s must be a finite number (got nan)"),
    # before: accepted, and the prediction log's writer thread woke every microsecond, a core spinning
    (["--log-flush-s", "1e-6"], "--log-flush-s 1e-06 is under 0.05 s: the prediction log's writer would wake that "
     "often and spin a core; give 0.05 or more (the default is 10)"),
    (["--max-wait-ms", "nan"], "--max-wait-ms must be a finite number (got nan)"),
    # was served on one thread: both runtimes take max(1, n), where ONNX Runtime reads 0 as every core
    (["--torch-threads", "0"], "--torch-threads must be positive (got 0)"),
    # a 0-byte body limit once whole bytes were taken: every request was a 413
    (["--max-body-mb", "1e-7"], "--max-body-mb 1e-07 is under 1 KiB (0.001 MiB), too small for any request"),
    # a sink that was created and never written: the deploy step's serving.log.sample refuses 0 already
    (["--log-sink", "/tmp/sink", "--log-sample", "0"],
     "--log-sample 0: --log-sink /tmp/sink would log no request; give a fraction above 0 (1 = every request), or drop "
     "--log-sink"),
    # a flag that would have changed nothing: there is no prediction log to write raw inputs to
    (["--log-raw-inputs"], "--log-raw-inputs: there is no prediction log (--log-sink) to write raw inputs to; give "
     "--log-sink, or drop --log-raw-inputs"),
    # before: served, every write failed (s3fs reads no credentials from a URL), and the log showed the password
    (["--log-sink", "s3://AKIAEXAMPLE:s3cr3t@bucket/p"],
     "--log-sink holds a credential (a URL with a password; value not shown): the storage client reads credentials "
     "from the environment"),
    # before: a presigned sink passed, and its signature was written in the deployment and every log line
    (["--log-sink", "s3://bucket/p?X-Amz-Credential=AKIAEX%2F2024&X-Amz-Signature=s3cr3t"],
     "--log-sink holds a credential (a URL whose query carries `X-Amz-Credential=`; value not shown)"),
    # `v3` as `models list` shows it: every row was logged as `v3`, which live-quality never recorded in the registry
    (["--model-version", "v3"], "--model-version 'v3': give the registry's version number alone, --model-version 3: "
     "live-quality and the monitoring report match the logged version with the registry's by that spelling"),
    (["--model-version", " 12 "], "--model-version ' 12 ': give the registry's version number alone, --model-version "
     "12"),
    # torch.compile's modes: a typo was passed to torch.compile, a mode without --torch-compile changed nothing
    (["--torch-compile", "--compile-mode", "reduce_overhead"], "--compile-mode 'reduce_overhead': use one of default, "
     "reduce-overhead, max-autotune-no-cudagraphs"),
    (["--compile-mode", "max-autotune-no-cudagraphs"], "--compile-mode max-autotune-no-cudagraphs is torch.compile's "
     "mode: add --torch-compile, or drop --compile-mode")])
def test_kubepipe_serve_refuses_bad_values_before_starting(tmp_path, argv, message):
    from typer.testing import CliRunner

    from kubepipe.cli.app import app
    from kubepipe.errors import UserError

    result = CliRunner().invoke(app, ["serve", str(tmp_path), *argv])  # the CLI's handler: UserError -> exit 2
    assert isinstance(result.exception, UserError) and message in str(result.exception)
    assert "s3cr3t" not in str(result.exception)


def test_workers_get_the_command_line_without_the_supervisor_s_own_options():
    argv = ["/m", "--name", "x", "--workers", "2", "--log-file=/tmp/l", "--log-max-mb", "3", "--access-log",
            "--log-backups=2", "--port", "9"]
    assert strip_options(argv) == ["/m", "--name", "x", "--access-log", "--port", "9"]


@pytest.mark.parametrize("on, sample, every", [(False, 1.0, 0), (True, 0.0, 0), (True, 1.0, 1), (True, 0.01, 100),
                                               (True, 0.25, 4), (True, 3.0, 1)])
def test_per_request_logs_are_off_unless_asked_and_then_sampled(on, sample, every):
    assert logs.sample_every(on, sample) == every


@pytest.mark.parametrize("argv, message", [
    (["--runtime", "onnx"], "--runtime onnx: {d} is a retrieval index, served on the torch runtime as it is"),
    (["--runtime", "onnx", "--prepare"], "--prepare: {d} is a retrieval index"),
    (["--torch-compile"], "--torch-compile: {d} is a retrieval index"),
    (["--max-batch-tokens", "256"], "--max-batch-tokens 256: {d} is a retrieval index"),
    # it was ignored: queries were embedded in bf16 on a GPU with --precision fp32, in fp32 on the CPU with bf16
    (["--precision", "fp32"], "--precision fp32: {d} is a retrieval index, served on the torch runtime as it is (ONNX "
                              "export, torch.compile, token-budget batching and a chosen precision are for "
                              "classifiers; its queries are embedded as its passages were: bf16 on a GPU, fp32 on "
                              "the CPU); drop --precision"),
    (["--precision", "bf16"], "--precision bf16: {d} is a retrieval index"),
    (["--log-sink", "{d}/sink"], "--log-sink {d}/sink: {d} is a retrieval index, and the prediction log records a "
                                 "classifier's answers")])
def test_classifier_runtime_options_for_an_index_are_refused_not_ignored(tmp_path, argv, message):
    from typer.testing import CliRunner

    from kubepipe.cli.app import app
    from kubepipe.components.errors import ModelError
    from kubepipe.components.retrieval.index import INDEX_FILE

    (tmp_path / INDEX_FILE).write_text("{}")
    result = CliRunner().invoke(app, ["serve", str(tmp_path), *(a.format(d=tmp_path) for a in argv)])
    assert isinstance(result.exception, ModelError) and message.format(d=tmp_path) in str(result.exception)


@pytest.mark.parametrize("encoding, refused", [("hashed-ngrams", True), ("tabular", True), ("bytes", False),
                                               ("wordpiece", False)])
def test_a_token_budget_for_a_model_whose_rows_are_not_padded_is_refused_not_ignored(tmp_path, encoding, refused):
    # the batcher saw no widths for these models, so `--max-batch-tokens 256` never bound a pass
    import json

    from kubepipe.components.errors import ModelError
    from kubepipe.components.serving.server import check_artifact

    task = "tabular-classification" if encoding == "tabular" else "text-classification"
    (tmp_path / "kubepipe-model.json").write_text(json.dumps({
        "format_version": 1, "task": task, "architecture": "text-classifier", "labels": ["a", "b"],
        "preprocessing": {"encoding": encoding}, "input_spec": {}}))
    check_artifact(str(tmp_path), max_batch_tokens=0)
    if not refused:
        check_artifact(str(tmp_path), max_batch_tokens=256)
        return
    with pytest.raises(ModelError) as err:
        check_artifact(str(tmp_path), max_batch_tokens=256)
    assert str(err.value) == (f"--max-batch-tokens 256: {tmp_path} is a {encoding} model, whose rows are not padded to "
                              "a common width; its passes are bounded by rows only (--max-batch-size): drop "
                              "--max-batch-tokens")


def test_a_local_log_sink_that_cannot_be_created_stops_the_start(tmp_path, capsys):
    """`--log-sink /proc/x` (or a path under a file) started a server whose every flush failed, counted in a metric
    nobody watched: the monitor later found no prediction log."""
    (tmp_path / "afile").write_text("x")
    for sink, why in ((tmp_path / "afile" / "sink", f"{tmp_path / 'afile'} is a file"),
                      ("/proc/kubepipe-sink", "cannot create a folder in /proc: ")):
        with pytest.raises(SystemExit) as exc:
            main(["/m", "--log-sink", str(sink)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"--log-sink {sink}: cannot write there ({why}" in err, err
    assert not list(tmp_path.glob(".kubepipe-sink-check-*"))


def test_serving_an_embed_step_s_output_says_to_serve_the_index(tmp_path):
    from typer.testing import CliRunner

    from kubepipe.cli.app import app
    from kubepipe.components.errors import ModelError

    (tmp_path / "embeddings.json").write_text("{}")
    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert isinstance(result.exception, ModelError)
    assert f"{tmp_path}: an embed step's output (its embeddings.json), not an index: serve the build-index step's " \
        "`index`" in str(result.exception)


def test_the_serving_md_synopsis_lists_every_option_with_its_default():
    """docs/serving.md's `kubepipe serve` synopsis left out the prediction-log options and --allow-user-model."""
    import re
    from pathlib import Path

    from kubepipe.components.serving.options import OPTIONS
    from kubepipe.components.serving.server import build_parser

    text = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()
    synopsis = text[text.index("kubepipe serve MODEL_DIR ["):text.index("kubepipe endpoints list |")]
    shown = dict(re.findall(r"\[(--[a-z-]+)(?: ([^\]]*))?\]", synopsis))
    flags = {f for a in build_parser()._actions for f in a.option_strings
             if f.startswith("--") and a.help != "==SUPPRESS==" and f != "--help"}
    assert flags == set(shown), flags ^ set(shown)
    for flag, default, _ in OPTIONS:
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert float(shown[flag]) == float(default), (flag, shown[flag], default)
        elif isinstance(default, str) and default:  # "" is a placeholder (V, URI)
            assert shown[flag] == default or shown[flag].split("|")[0] == default, (flag, shown[flag], default)


@pytest.mark.parametrize("sink", ["", "  "])
def test_an_empty_log_sink_is_a_usage_error_not_no_log(tmp_path, sink, capsys):
    """`kubepipe serve M --log-sink "$SINK"` with SINK unset served without a prediction log, silently (the server
    read "" as no sink): both entries say so and name the flag."""
    from typer.testing import CliRunner

    from kubepipe.cli.app import app

    with pytest.raises(SystemExit) as exc:
        main(["/m", "--log-sink", sink])
    assert exc.value.code == 2 and "--log-sink: is empty (an unset shell variable?)" in capsys.readouterr().err
    (tmp_path / "m").mkdir()
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "m"), "--log-sink", sink])
    said = " ".join(result.output.replace("│", " ").split())  # the CLI's one empty-path rule (given_location)
    assert result.exit_code == 2 and "Invalid value for '--log-sink': is empty (an unset shell variable?)" in said


def test_a_credential_in_a_request_s_query_never_reaches_the_server_log(tmp_path):
    # `--access-log --log-file` wrote uvicorn's `GET /v1/models/m:predict?api_key=...` line as it was
    import logging


    path = tmp_path / "server.log"
    out = logs.handler(str(path), 1, 1)
    lg = logging.getLogger("test.serving.access")
    lg.handlers[:], lg.propagate = [out], False
    lg.setLevel(logging.INFO)
    lg.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5001", "POST", "/v1/models/m:predict?api_key=Hunter2Hunter2x&v=2",
            "1.1", 200)
    out.close()
    assert '"POST /v1/models/m:predict?api_key=<redacted>&v=2 HTTP/1.1" 200' in path.read_text()
