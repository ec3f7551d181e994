"""The serving-latency gate: p50_ms / p99_ms / tokens_per_s measured on `kubepipe serve`'s forward path.

A deliberately slow model (a user class that sleeps in forward, loaded with user-model consent) is
rejected although it is more accurate; the same weights in the built-in class pass. Timing bounds
are one-sided (a sleep is a floor on the time) or leave a busy 2-core box wide slack.
"""

from __future__ import annotations

import re
import sys

import pytest
from eval_models import tabular_holdout, tabular_model, text_holdout, text_model

from kubepipe.components.evaluation.checks import check_evaluate
from kubepipe.components.evaluation.evaluate import evaluate_model
from kubepipe.components.evaluation.gate import decide
from kubepipe.components.evaluation.registration import register_challenger
from kubepipe.components.evaluation.report import render_report
from kubepipe.components.registry import Registry
from kubepipe.components.training.artifact import ALLOW_USER_MODEL_ENV

pytest.importorskip("kserve")

SLOW_MS = 150.0  # the slow model's forward pass sleeps this long: a floor on its latency
SLO_MS = 100.0   # far above the fast model's ~0.1 ms pass, far below SLOW_MS

SLOW_MODULE = '''
import time

from kubepipe.components.training.models.tabular_mlp import TabularMLP

PASSES = []  # rows of every forward pass, for the test to read


class SlowMLP(TabularMLP):
    def __init__(self, num_labels, input_spec, layers=0, sleep_ms=0.0):
        super().__init__(num_labels=num_labels, input_spec=input_spec, layers=layers)
        self.sleep_ms = float(sleep_ms)

    def forward(self, batch):
        PASSES.append(int(batch["x"].shape[0]))
        time.sleep(self.sleep_ms / 1000.0)
        return super().forward(batch)
'''


@pytest.fixture()
def env(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    slow_module = f"slow_gate_model_{tmp_path.name.replace('-', '_')}"
    (code / f"{slow_module}.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv(ALLOW_USER_MODEL_ENV, "1")  # consent: the slow artifact names a user class
    monkeypatch.setenv("KUBEPIPE_USER", "tester")
    yield {
        "tmp": tmp_path, "slow_module": slow_module, "holdout": tabular_holdout(tmp_path / "holdout.parquet"),
        "reg": f"file://{tmp_path / 'registry'}",
    }
    sys.modules.pop(slow_module, None)


@pytest.mark.slow
def test_more_accurate_but_slow_model_is_rejected_with_the_figures(env):
    reg = Registry(env["reg"])
    weak = tabular_model(env["tmp"] / "weak", w=1.0, w1=0.8)  # fast, less accurate: the champion
    ev = evaluate_model(weak, env["holdout"], thresholds={"accuracy": {"min": 0.6}}, model_name="clf",
                        registry_uri=env["reg"])
    reg.promote("clf", register_challenger(weak, ev, model_name="clf", registry_uri=env["reg"]).version, reason="v1")

    slow = tabular_model(env["tmp"] / "slow", w=4.0, architecture=f"{env['slow_module']}:SlowMLP",
                         model_kwargs={"sleep_ms": SLOW_MS})
    ev = evaluate_model(
        slow, env["holdout"], model_name="clf", registry_uri=env["reg"],
        thresholds={"accuracy": {"min": 0.7}, "p99_ms": {"max": SLO_MS}},
        relative={"accuracy": {"min_improvement": 0.0}, "p99_ms": {"max_regression": SLO_MS}},
        latency={"batch_size": 4, "requests": 5, "warmup": 2, "repeats": 1},
    )
    m, champ = ev["metrics"], ev["champion"]["metrics"]
    assert not ev["passed"]
    assert m["accuracy"] > champ["accuracy"]  # more accurate than the champion ...
    assert m["p50_ms"] >= SLOW_MS and m["p99_ms"] >= SLOW_MS  # ... but every request sleeps
    assert champ["p99_ms"] < SLO_MS  # the champion was measured side by side on the same path
    assert "tokens_per_s" not in m  # a tabular row has no tokens (Encoder.has_tokens)
    # the decision carries the measured figures
    d = ev["decision"]
    assert d.startswith(f"reject: p99_ms {m['p99_ms']:.3f} > max {SLO_MS:.3f}")
    assert re.search(r"\+0\.\d{3} accuracy vs champion v1", d)
    assert "p99_ms vs champion v1 (needs regression <= 100.000)" in d
    assert (f"serving path (torch, cpu, batch 4, median of 1 round(s) x 5 requests): p50 {m['p50_ms']:.2f} ms, "
            f"p99 {m['p99_ms']:.2f} ms") in d and d.endswith("ms")
    assert ev["serving"]["challenger"]["batch_size"] == 4 and ev["serving"]["challenger"]["torch_threads"] == 1
    html = render_report(ev)  # the HTML report shows the figures of both, as measured
    assert "<td class='l'>p99_ms</td>" in html and "challenger: serving path (torch, cpu, batch 4" in html
    assert "champion: serving path (torch, cpu, batch 4" in html
    # the path is kubepipe serve's: its warm-up (1 row, then max_batch_size rows x 3), then the gate's warm-up
    # and timed requests, each a pass of batch_size rows
    passes = sys.modules[env["slow_module"]].PASSES
    assert passes[-(4 + 2 + 5):] == [1, 4, 4, 4] + [4] * (2 + 5)


def test_fast_model_passes_the_same_gate(env):
    fast = tabular_model(env["tmp"] / "fast", w=4.0)
    ev = evaluate_model(fast, env["holdout"], baseline="none",
                        thresholds={"accuracy": {"min": 0.7}, "p99_ms": {"max": SLO_MS}},
                        latency={"requests": 50, "warmup": 5})
    m = ev["metrics"]
    assert ev["passed"] and ev["decision"].startswith("promote: accuracy")
    assert 0 < m["p50_ms"] <= m["p99_ms"] < SLO_MS
    assert "batch 1, median of 3 round(s) x 50 requests" in ev["decision"]
    assert len(ev["serving"]["challenger"]["rounds"]) == 3 and not ev["serving"]["challenger"]["time_bounded"]
    assert "tokens_per_s" not in m and "tokens" not in ev["serving"]["challenger"]["rounds"][0]
    assert "tokens/s" not in ev["decision"]  # a tabular row is not a token


@pytest.mark.parametrize("rule", ["thresholds", "relative"])
def test_tokens_per_s_of_a_tabular_model_is_refused_naming_the_rule(env, rule):
    """A tabular model counted a row as a token, so `tokens_per_s: {min: N}` gated on rows/s under another name."""
    from kubepipe.components.errors import ComponentError

    fast = tabular_model(env["tmp"] / "fast", w=4.0)
    gate = {"thresholds": {"tokens_per_s": {"min": 10}}, "relative": {"tokens_per_s": {"max_regression": 10}}}[rule]
    with pytest.raises(ComponentError) as e:
        evaluate_model(fast, env["holdout"], model_name="clf", registry_uri=env["reg"], **{rule: gate},
                       latency={"requests": 5, "warmup": 1})
    assert f"{rule}.tokens_per_s" in str(e.value)
    assert "a tabular model's rows of numbers have none" in str(e.value) and "p50_ms / p99_ms" in str(e.value)


def test_tokens_per_s_counts_the_models_tokens(tmp_path):
    model, holdout = text_model(tmp_path / "text"), text_holdout(tmp_path / "h.parquet")  # "coffee shop <i>"
    ev = evaluate_model(model, holdout, label_column="label", baseline="none", thresholds={"tokens_per_s": {"min": 1}},
                        latency={"batch_size": 2, "requests": 20, "warmup": 2, "repeats": 1})
    (r,) = ev["serving"]["challenger"]["rounds"]
    # whitespace words of the n-gram model: 3 per text, 2 texts per request
    assert r["tokens"] == 3 * 2 * 20
    assert r["tokens_per_s"] == pytest.approx(r["tokens"] / (r["mean_ms"] / 1000 * r["requests"]), rel=1e-3)
    assert ev["metrics"]["tokens_per_s"] == r["tokens_per_s"]


def test_max_seconds_bounds_the_measurement(env):
    slow = tabular_model(env["tmp"] / "slow", architecture=f"{env['slow_module']}:SlowMLP",
                         model_kwargs={"sleep_ms": SLOW_MS})
    ev = evaluate_model(slow, env["holdout"], baseline="none", thresholds={"p50_ms": {"max": 10_000}},
                        latency={"requests": 1000, "warmup": 0, "repeats": 2, "max_seconds": 0.4})
    s = ev["serving"]["challenger"]
    assert s["time_bounded"] and max(s["requests_per_round"]) <= 4 and min(s["requests_per_round"]) >= 1
    assert "cut short by max_seconds" in ev["decision"] and ev["passed"]


def test_device_without_a_gpu_names_the_steps_setting(tmp_path, monkeypatch):
    """`latency: {device: cuda}` on a machine without a GPU said '--device cuda: ...; use --device cpu', a flag
    the evaluate step does not have."""
    import torch

    from kubepipe.components.errors import ModelError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError) as exc:
        evaluate_model(tabular_model(tmp_path / "m"), tabular_holdout(tmp_path / "h.parquet"), baseline="none",
                       thresholds={"p99_ms": {"max": 100}}, latency={"device": "cuda", "requests": 5})
    assert str(exc.value) == ("latency.device: cuda: torch sees no CUDA GPU here; use latency.device: cpu "
                              "(or auto)")


def test_not_measured_unless_asked(tmp_path):
    ev = evaluate_model(tabular_model(tmp_path / "m"), tabular_holdout(tmp_path / "h.parquet"), baseline="none",
                        thresholds={"accuracy": {"min": 0.5}})
    assert ev["serving"] is None and "p99_ms" not in ev["metrics"] and "serving path" not in ev["decision"]


@pytest.mark.parametrize("metric, better, worse", [("p99_ms", 20.0, 30.0), ("p50_ms", 2.0, 3.0),
                                                   ("tokens_per_s", 60_000.0, 40_000.0)])
def test_serving_metric_direction(metric, better, worse):
    ok = decide({metric: better}, relative={metric: {"min_improvement": 0.0}}, champion_metrics={metric: worse})
    bad = decide({metric: worse}, relative={metric: {"min_improvement": 0.0}}, champion_metrics={metric: better})
    assert ok.passed and not bad.passed and f"{metric} vs champion" in bad.decision


def test_checks_name_serving_metrics_and_settings():
    (i,) = check_evaluate({"thresholds": {"p99ms": {"max": 50}}})
    assert i.path == ("thresholds", "p99ms") and i.hint == "did you mean `p99_ms`?"
    (i,) = check_evaluate({"thresholds": {"tokens_per_sec": {"min": 50_000}}})
    assert i.hint == "did you mean `tokens_per_s`?"
    (i,) = check_evaluate({"thresholds": {"p99_ms": {"max": 50}}, "latency": {"batchsize": 1}})
    assert i.path == ("latency", "batchsize") and i.hint == "did you mean `batch_size`?"
    bad = check_evaluate({"thresholds": {"p99_ms": {"max": 50}},
                          "latency": {"requests": 0, "warmup": 1.5, "device": "tpu", "max_seconds": "soon"}})
    assert sorted(i.path for i in bad) == [("latency", k) for k in ("device", "max_seconds", "requests", "warmup")]
    (i,) = check_evaluate({"slices": {"column": "region", "thresholds": {"p99_ms": {"max": 50}}}})
    assert i.path == ("slices", "thresholds", "p99_ms") and "whole model" in i.message
    assert check_evaluate({"thresholds": {"p99_ms": {"max": 50}, "tokens_per_s": {"min": 50_000}},
                           "latency": {"batch_size": "32", "requests": "${params.n}", "device": "auto"}}) == []


def test_max_seconds_is_shared_so_a_slow_first_model_leaves_the_next_its_requests(env):
    """One deadline for every round: the slow challenger, measured first, took it whole, and the champion's p99 (the
    relative rule's other side) came from 1 request a round. Each round now gets its share of what is left."""
    from kubepipe.components.data.io import read_dataset
    from kubepipe.components.evaluation.serving_latency import measure_serving, settings_of
    from kubepipe.components.training.model_inputs import model_inputs

    slow = tabular_model(env["tmp"] / "slow", architecture=f"{env['slow_module']}:SlowMLP",
                         model_kwargs={"sleep_ms": SLOW_MS})
    fast = tabular_model(env["tmp"] / "fast", w=4.0)
    df = read_dataset(env["holdout"])
    figures = measure_serving({"challenger": slow, "champion": fast}, lambda m: model_inputs(m, df, what="holdout"),
                              settings_of({"requests": 1000, "warmup": 0, "repeats": 2, "max_seconds": 1.2}))
    # its first round (measured first) gets a quarter of the time, not all of it (8 requests of 150 ms); its last
    # round takes what the champion's fast rounds left, which depends on the machine, so only the first is bounded
    assert figures["challenger"]["time_bounded"] and figures["challenger"]["requests_per_round"][0] <= 4
    assert min(figures["champion"]["requests_per_round"]) >= 20, figures["champion"]["requests_per_round"]
