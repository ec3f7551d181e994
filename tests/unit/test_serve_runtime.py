"""`kubepipe serve`'s runtimes and load: torch / ONNX Runtime (parity-gated), gc frozen after warm-up,
metrics labelled once, tokens counted once.

Oracles: torch's own forward (LoadedModel.predict_proba) for what the runtimes answer; the tokenizer
itself (a second, independent tokenization) for the token count; the `gc` module for the freeze.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("kserve")

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.serving import onnx_export  # noqa: E402
from kubepipe.components.serving.demo_model import merchant_strings, train_demo_text_model  # noqa: E402
from kubepipe.components.serving.runtime import resolve_precision  # noqa: E402
from kubepipe.components.training.artifact import load_model  # noqa: E402


@pytest.mark.parametrize("runtime, precision, device, want", [
    ("torch", "auto", "cpu", "fp32"), ("torch", "auto", "cuda", "bf16"), ("torch", "auto", "cuda:1", "bf16"),
    ("onnx", "auto", "cpu", "fp32"), ("onnx", "int8", "cpu", "int8"), ("torch", "bf16", "cpu", "bf16"),
    ("torch", "fp32", "cuda", "fp32"),
])
def test_precision_defaults(runtime, precision, device, want):
    assert resolve_precision(runtime, precision, device) == want


@pytest.mark.parametrize("runtime, precision, says", [("onnx", "bf16", "ONNX Runtime serves fp32 or int8"),
                                                      ("torch", "int8", "needs --runtime onnx"),
                                                      ("tensorrt", "auto", "--runtime 'tensorrt'")])
def test_impossible_runtime_precision_pairs_are_refused_saying_what_works(runtime, precision, says):
    with pytest.raises(ModelError, match=says.replace("(", r"\(")):
        resolve_precision(runtime, precision, "cpu")


@pytest.mark.parametrize("argv, says", [(["--runtime", "onnx", "--precision", "bf16"], "fp32 or int8"),
                                        (["--runtime", "onnx", "--device", "cuda"], "ONNX Runtime on the CPU"),
                                        (["--precision", "int8"], "--runtime onnx")])
def test_server_command_line_refuses_them_as_usage_errors(argv, says, capsys):
    from kubepipe.components.serving.server import main

    with pytest.raises(SystemExit) as exc:
        main(["/m", *argv])
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_wordpiece_tokens_from_the_encoded_batch_equal_a_fresh_tokenization(tmp_path):
    """The server counts tokens from the batch it encoded; the oracle tokenizes the strings again."""
    pytest.importorskip("tokenizers")
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from tiny_bert import write_tokenizer

    from kubepipe.components.training.encoders import WordPieceEncoder

    enc = WordPieceEncoder(str(write_tokenizer(tmp_path / "tokenizer.json")), max_length=12)
    texts = ["", "uber trip", "STARBUCKS #1234 SEATTLE WA", "x " * 40, "Café Noir 12 €"] + merchant_strings(40)[0]
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    raw.enable_truncation(max_length=12)
    want = sum(len(e.ids) - 2 for e in raw.encode_batch(texts))  # minus [CLS] and [SEP]; truncated as read
    assert enc.count_tokens(texts, enc.encode(texts)) == enc.count_tokens(texts) == want


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return train_demo_text_model(tmp_path_factory.mktemp("rt") / "text", n=300, epochs=15, dim=16, buckets=4096)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path_factory.getbasetemp() / "onnx-cache"))


def _served(model_dir, **kw):
    from kubepipe.components.serving.model import ServedModel

    m = ServedModel("m", str(model_dir), max_batch_size=16, **kw)
    m.load()
    return m


def test_load_freezes_what_warm_up_left_alive(text_model):
    m = _served(text_model)
    try:
        # the collector no longer scans the heap that lives as long as the server
        # (frozen objects freed since, e.g. by another thread of the test process, leave the count)
        assert m.gc_frozen > 1000 and gc.get_freeze_count() >= 0.99 * m.gc_frozen
        assert m.describe()["gc_frozen_objects"] == m.gc_frozen
        assert m.describe()["pass_overhead_tokens"] is None  # no padding to cut
    finally:
        gc.unfreeze()
    off = _served(text_model, freeze_gc=False)
    assert off.gc_frozen == 0 and off.describe()["gc_frozen_objects"] == 0


def test_requests_look_up_no_metric_labels(text_model, monkeypatch):
    """Labelled series are cached at load; a request only increments and observes."""
    from prometheus_client.metrics import MetricWrapperBase

    m = _served(text_model, freeze_gc=False)
    ours = []
    real = MetricWrapperBase.labels

    def counting(self, *a, **k):
        if sys._getframe(1).f_globals.get("__name__", "").startswith("kubepipe"):
            ours.append(self._name)
        return real(self, *a, **k)

    monkeypatch.setattr(MetricWrapperBase, "labels", counting)
    before = m.metrics.tokens._value.get()
    texts = ["uber trip help", "SHELL OIL 5555 AUSTIN TX"]

    async def go():
        return [await m({"instances": texts}) for _ in range(5)]

    answers = [a[0] if isinstance(a, tuple) else a for a in asyncio.run(go())]  # kserve: (body, headers)
    assert all(len(a["predictions"]) == 2 for a in answers)
    assert ours == []
    assert m.metrics.tokens._value.get() - before == 5 * 8  # whitespace words, the hashed model's tokens


def test_a_32_row_request_answers_what_the_model_does_and_reads_each_text_once(text_model, monkeypatch):
    """The answers of a 32-row request are the model's own (its forward's logits, softmaxed as the server does),
    bit for bit, and the tokens counter grows by `count_tokens`; the pass normalises each text once (it
    normalised each twice: once to hash the n-grams, once more to count the words they reach)."""
    from kubepipe.components.serving.parity import softmax
    from kubepipe.components.serving.model import ServedModel
    from kubepipe.components.training import hashing

    m = ServedModel("m", str(text_model), max_batch_size=32, freeze_gc=False)
    m.load()
    texts = ["a", "Café Noir, 12 rue de l'été", "x " * 200, "STARBUCKS #1234"] + merchant_strings(28, seed=9)[0]
    normalised = []
    real = hashing.normalise_all
    monkeypatch.setattr(hashing, "normalise_all", lambda batch: normalised.extend(batch) or real(batch))
    before = m.metrics.tokens._value.get()
    answer = asyncio.run(m({"instances": texts, "return_probabilities": True}))
    answer = answer[0] if isinstance(answer, tuple) else answer  # kserve: (body, headers)
    assert sorted(normalised) == sorted(texts)
    loaded = load_model(text_model)
    want = softmax(loaded.forward(loaded.encode(texts)).numpy())
    got = np.array([p["probabilities"] for p in answer["predictions"]], dtype=np.float32)
    assert np.array_equal(got, want)
    assert [p["label"] for p in answer["predictions"]] == loaded.predict(texts)
    assert [p["probability"] for p in answer["predictions"]] == want.max(axis=1).tolist()
    assert m.metrics.tokens._value.get() - before == loaded.count_tokens(texts)


@pytest.mark.slow  # exports (torch.export + onnxscript) and int8 quantisation: seconds each
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-4), ("int8", 0.1)])
def test_onnx_runtime_serves_what_torch_answers(text_model, precision, atol):
    m = _served(text_model, runtime="onnx", precision=precision, freeze_gc=False)
    card = m.describe()
    assert card["runtime"] == "onnx" and card["precision"] == precision and card["parity"]["passed"] is True
    assert card["onnx_file"].endswith(f"model.{precision}.onnx")
    texts, _ = merchant_strings(200, seed=5)
    got = m._forward(texts, observe=False)
    want = load_model(text_model).predict_proba(texts)
    assert got.shape == want.shape and np.abs(got - want).max() <= atol
    top2 = np.sort(want, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] >= 0.01
    assert (got.argmax(1) == want.argmax(1))[decided].mean() >= 0.99


@pytest.mark.slow
def test_onnx_runtime_refuses_an_export_that_fails_parity(text_model, tmp_path, monkeypatch):
    """A wrong graph in the export cache (other weights, as a stale entry has) is never served: load fails
    with the numbers."""
    import shutil

    from onnx_graphs import other_weights_copy  # tests/fixtures

    from kubepipe.components.serving.parity import ParityFailed

    shared = onnx_export.prepared_onnx(load_model(text_model), "fp32")  # the module's export, usually cached
    # a cache of this test's own (the wrong file must not reach the shared one), holding the same entry
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path / "cache"))
    shutil.copytree(shared.parent, tmp_path / "cache" / shared.parent.name)
    good = onnx_export.prepared_onnx(load_model(text_model), "fp32")
    assert good == tmp_path / "cache" / shared.parent.name / shared.name  # found, not exported again
    other_weights_copy(shared, good)  # same cache entry, wrong graph
    from kubepipe.components.serving.model import ServedModel

    m = ServedModel("m", str(text_model), runtime="onnx", freeze_gc=False)
    with pytest.raises(ParityFailed, match=r"max\|dp\|.*not serving this export"):
        m.load()
    assert m.ready is False


def test_bf16_on_cpu_stays_close_to_fp32(text_model):
    m = _served(text_model, precision="bf16", freeze_gc=False)
    texts, _ = merchant_strings(64, seed=3)
    want = load_model(text_model).predict_proba(texts)
    got = m._forward(texts, observe=False)
    assert m.describe()["precision"] == "bf16" and np.abs(got - want).max() < 0.05


@pytest.mark.parametrize("make", [lambda d: None, lambda d: (d / "kubepipe-model.json").write_text("[1]")])
def test_a_directory_that_is_no_model_fails_before_torch_and_kserve_load(tmp_path, make):
    """`kubepipe serve` of an empty or foreign folder: the artifact's own error at once, exit 2, no heavy import."""
    import subprocess

    make(tmp_path)
    probe = ("import sys\nfrom kubepipe.components.errors import ModelError\n"
             "from kubepipe.components.serving.server import main\n"
             "try:\n    main([sys.argv[1], '--port', '0'])\nexcept ModelError as exc:\n    print('error:', exc)\n"
             "print('heavy:', sorted(m for m in ('torch', 'kserve', 'fastapi') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "kubepipe-model.json" in out.stdout and "heavy: []" in out.stdout, out.stdout


def test_an_export_in_the_cache_is_readable_by_a_server_of_another_uid(tmp_path):
    # `serve --prepare` at image build (root) then a server as uid 1000: model.fp32.onnx was 0600 (mkstemp's)
    import os
    import stat

    def make(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"onnx")

    old = os.umask(0o022)
    try:
        onnx_export._write_atomic(make, tmp_path / "model.fp32.onnx")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model.fp32.onnx").stat().st_mode) == 0o644
    assert [f.name for f in tmp_path.iterdir()] == ["model.fp32.onnx"]


def test_prepare_refuses_a_cache_it_cannot_write_and_a_server_falls_back(tmp_path, monkeypatch):
    # before: `--prepare` with KUBEPIPE_ONNX_CACHE unwritable exported into a temporary folder no server reads,
    # printed 'prepared /tmp/kubepipe-onnx-.../model.fp32.onnx' and exited 0
    import os
    import subprocess
    from pathlib import Path

    from kubepipe.components.serving import runtime, server

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(blocked))
    with pytest.raises(ModelError) as err:
        onnx_export._cache_dir("ab" * 32, required=True)
    assert str(err.value).startswith(f"the ONNX cache {blocked} (KUBEPIPE_ONNX_CACHE) cannot be written: ")
    assert str(err.value).endswith("set KUBEPIPE_ONNX_CACHE to a folder this user can write")
    # a server still serves, from a folder of its own, removed when it exits (before: left at every start)
    probe = ("from kubepipe.components.serving import onnx_export as o; d = o._cache_dir('ab' * 32); "
             "print(d, d.is_dir())")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                         env={**os.environ, onnx_export.CACHE_ENV: str(blocked)})
    folder, existed = out.stdout.split()
    assert existed == "True" and Path(folder).name.startswith("kubepipe-onnx-") and not Path(folder).exists()
    seen = {}

    def checked(*args, **kw):
        seen.update(kw)
        raise ModelError("stop")

    monkeypatch.setattr("kubepipe.components.serving.artifact_loader.load_served_model", lambda path, device: None)
    monkeypatch.setattr(runtime, "checked_onnx_session", checked)
    with pytest.raises(ModelError):
        server.prepare(str(tmp_path), precision="fp32")
    assert seen == {"cache_required": True}  # --prepare asks for the cache itself


def test_a_batch_over_the_limit_counts_as_too_large_not_as_a_bad_request(text_model):
    # the 413 for a batch over --max-batch-size was counted as outcome="bad_request" (only a body over
    # --max-body-mb was too_large): an alert on client errors fired for clients that need a higher limit
    from kubepipe.components.serving.payloads import BadRequest

    m = _served(text_model, freeze_gc=False)
    before = {o: m.metrics.requests[("v1", o)]._value.get() for o in ("bad_request", "too_large")}
    for body, status in (({"instances": ["SHELL OIL"] * 17}, 413), ({"instances": [5]}, 400)):
        with pytest.raises(BadRequest) as exc:
            asyncio.run(m(body))
        assert exc.value.status == status
    after = {o: m.metrics.requests[("v1", o)]._value.get() for o in ("bad_request", "too_large")}
    assert {o: after[o] - before[o] for o in after} == {"bad_request": 1, "too_large": 1}


def test_a_v2_body_id_holding_pii_is_not_logged(text_model):
    """A V2 body's `id` was the prediction log's request_id as sent (`"id": "jane.doe@example.com"`); it follows the
    X-Request-Id rule, and an id that fails it is logged as the header's (or the server's fresh) id."""
    from kserve import InferInput, InferRequest

    from kubepipe.components.serving.guard import REQUEST_ID

    m = _served(text_model, freeze_gc=False)
    offered = []
    m.prediction_log = types.SimpleNamespace(sampled=lambda: True, offer=offered.append)

    def request(rid):
        text = InferInput("text", [1], "BYTES", ["uber trip"])
        return InferRequest(model_name="m", infer_inputs=[text], request_id=rid)

    async def go():
        said = []  # the id the response's X-Request-Id carries (guard._with_request_id reads it)
        for rid in ("jane.doe@example.com", "order-9", "pay 4111 1111 1111 1111"):
            REQUEST_ID.set("fresh-1")
            await m(request(rid))
            said.append(REQUEST_ID.get())
        return said

    assert asyncio.run(go()) == ["fresh-1", "order-9", "fresh-1"]
    assert [r.request_id for r in offered] == ["fresh-1", "order-9", "fresh-1"]


def test_a_tabular_model_counts_no_tokens(tmp_path):
    """kubepipe_serve_tokens_total counted one token per tabular row; a row of numbers has none (has_tokens)."""
    from eval_models import tabular_model

    m = _served(tabular_model(tmp_path / "tab"), freeze_gc=False)
    before = m.metrics.tokens._value.get()
    answer = asyncio.run(m({"instances": [[0.5, 1.0], [-1.0, 2.0], [0.0, 0.0]]}))
    answer = answer[0] if isinstance(answer, tuple) else answer  # kserve: (body, headers)
    assert len(answer["predictions"]) == 3
    assert m.metrics.tokens._value.get() == before


@pytest.mark.parametrize("reported, on_loop", [("cuda:0", False), ("cpu", True)])
def test_a_model_on_a_device_never_runs_its_passes_on_the_event_loop(text_model, monkeypatch, reported, on_loop):
    """A CUDA pass waits for the device with little CPU, so the batcher's CPU-time rule would call it short and
    hold the loop for it: load() tells the batcher the model's device. The model here runs on the CPU and only
    reports a device (no GPU needed); the runner is built before it says so."""
    import threading

    from kubepipe.components.serving import batcher as batching
    from kubepipe.components.serving import model as served

    real = served.build_runner

    def then_report(loaded, **kw):
        runner = real(loaded, **kw)
        loaded.device = reported
        return runner

    monkeypatch.setattr(served, "build_runner", then_report)
    # any pass is short enough here: the device alone decides (a busy box made the CPU model's passes ~2 ms of CPU)
    monkeypatch.setattr(batching, "INLINE_MAX_S", 1.0)
    m = _served(text_model, freeze_gc=False)
    where = []
    forward = m.batcher._run

    def run(items):
        where.append(threading.current_thread() is threading.main_thread())
        return forward(items)

    m.batcher._run = run

    async def serially():
        for _ in range(batching.PASS_WINDOW + 8):
            await m({"instances": ["uber trip help"]})
        await m.batcher.stop()

    asyncio.run(serially())
    assert m.batcher.on_device is not on_loop and m.batcher.on_loop is on_loop
    assert any(where) is on_loop  # the CPU model's short passes do move onto the loop


def test_traffic_is_serial_after_a_run_of_requests_on_one_connection(tmp_path):
    """Lone passes skip the batcher's gather only while the requests all come on one connection, one at a time."""
    from kubepipe.components.serving.model import SERIAL_RUN, ServedModel

    m = ServedModel("m", str(tmp_path))  # not loaded: arrivals only
    serial = m.batcher._serial

    def arrive(client):
        m.departed(m.arrival(client))
        return serial()

    a, b = ("127.0.0.1", 40001), ("127.0.0.1", 40002)
    assert [arrive(a) for _ in range(SERIAL_RUN + 1)] == [False] * SERIAL_RUN + [True]
    assert arrive(b) is False  # another connection: its requests may overlap a's
    assert [arrive(b) for _ in range(SERIAL_RUN)][-1] is True
    assert arrive(a) is False
    assert not any(arrive(None) for _ in range(SERIAL_RUN + 2))  # a connection unknown is never serial


def test_a_text_models_card_names_the_key_its_v1_objects_take(text_model):
    """The card of a text model said `"features": []` and nothing of its text column: a client could not learn the
    key of the V1 object form (`{"instances": [{"description": ...}]}`) without the training YAML."""
    import json

    column = json.loads((text_model / "kubepipe-model.json").read_text())["input_spec"]["text_column"]
    m = _served(text_model, freeze_gc=False)
    card = m.describe()
    assert card["text_column"] == column and card["features"] == []
