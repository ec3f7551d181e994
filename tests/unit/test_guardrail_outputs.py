"""validate-outputs on real model artifacts: a clean model passes, a PAN in a returned record fails the
step (masked in the report, the JSON and the log), each rule can fail, rule errors are located."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from eval_models import tabular_model, text_model

import kubepipe
from kubepipe.components.errors import ConfigError, DataError, GateFailed
from kubepipe.components.guardrail.steps import run_validate_outputs
from kubepipe.errors import ValidationError

LEAKY_LABEL = "card 4111 1111 1111 1111"  # a Luhn-valid test PAN a model could return as a record
PROBES = ["SHELL OIL 5742 HOUSTON TX", "WHOLE FOODS MARKET #10 AUSTIN TX", "DELTA AIR 0062 ATLANTA GA",
          "SAFEWAY 1234 SF CA"]


class _Metrics:
    def __init__(self):
        self.logged = {}

    def log_metric(self, name, value):
        self.logged[name] = value


def _run(tmp_path, model_dir, *, probes=None, **kwargs):
    arts = {n: SimpleNamespace(path=str(tmp_path / n), metadata={})
            for n in ("report", "violations")}
    metrics = _Metrics()
    try:
        result = run_validate_outputs(SimpleNamespace(path=model_dir), probes, arts["report"], metrics,
                                      arts["violations"], **kwargs)
        error = None
    except GateFailed as exc:
        result, error = None, exc
    return result, error, arts, metrics


def test_a_clean_classifier_passes_every_rule(tmp_path):
    model = text_model(tmp_path / "m")
    rules = {"allowed_labels": ["groceries", "travel"], "score": {"min": 0.0, "max": 1.0}, "pii": ["pan", "email", "iban"],
             "max_latency_ms": 5000, "max_output_length": 20}
    result, error, arts, metrics = _run(tmp_path, model, inline_probes=PROBES, rules=rules)
    assert error is None and result["passed"] and result["violations"] == []
    assert result["decision"] == f"pass: {len(PROBES)} probe(s), no violation"
    assert metrics.logged["probes"] == len(PROBES) and metrics.logged["passed"] == 1.0
    assert metrics.logged["p99_ms"] >= metrics.logged["p50_ms"] > 0
    assert [o["records"][0]["label"] in ("groceries", "travel") for o in result["outputs"]] == [True] * len(PROBES)
    assert arts["report"].path.endswith(".html") and "PASSED" in open(arts["report"].path).read()
    assert json.loads(open(arts["violations"].path).read())["passed"] is True


def test_a_pan_in_a_returned_record_fails_the_step_masked_everywhere(tmp_path, capfd):
    # answers LEAKY_LABEL exactly when x0 > 0: probes 1 and 3 leak a PAN, probes 0 and 2 do not
    model = tabular_model(tmp_path / "m", w=4.0, labels=("ok", LEAKY_LABEL))
    probes = tmp_path / "probes.csv"
    pd.DataFrame({"x0": [-1.0, 2.0, -3.0], "x1": [0.0, 0.0, 1.0]}).to_csv(probes, index=False)
    note = {"x0": 1.5, "x1": 0.0, "note": "pay with 5500 0000 0000 0004 please"}  # a PAN in a probe, too
    result, error, arts, metrics = _run(tmp_path, model, probes=SimpleNamespace(path=str(probes)), inline_probes=[note])
    assert isinstance(error, GateFailed) and "1 pii:pan" not in str(error) and "2 pii:pan" in str(error)
    stored = json.loads(open(arts["violations"].path).read())
    assert stored["passed"] is False and stored["probes"] == 4
    pan_hits = [v for v in stored["violations"] if v["rule"] == "pii:pan"]
    assert [v["probe"] for v in pan_hits] == [1, 3]
    assert all(v["field"] == "[0].label" and v["value"] == "card **** **** **** 1111" for v in pan_hits)
    assert "**** **** **** 0004" in pan_hits[1]["input"]
    assert metrics.logged["violations"] == 2 and metrics.logged["passed"] == 0.0
    report = open(arts["report"].path).read()
    assert "FAILED" in report and "pii:pan" in report and "card **** **** **** 1111" in report
    log = "".join(capfd.readouterr())
    assert "probe 1: pii:pan at [0].label" in log
    # neither PAN (the returned one, the one in a probe) appears in clear: report, JSON, log
    for text in (report, open(arts["violations"].path).read(), log):
        for clear in ("4111 1111 1111 1111", "4111111111111111", "5500 0000 0000 0004"):
            assert clear not in text


@pytest.mark.parametrize("rules, rule", [
    ({"allowed_labels": ["travel"]}, "allowed_labels"),  # the untrained model answers groceries
    ({"score": {"min": 0.999}}, "score"),
    ({"max_output_length": 3}, "max_output_length"),
    ({"max_latency_ms": 1e-6}, "max_latency_ms"),
])
def test_each_rule_can_fail(tmp_path, rules, rule):
    model = text_model(tmp_path / "m")
    result, error, *_ = _run(tmp_path, model, inline_probes=PROBES, rules=rules, gate=False)
    assert error is None and result["passed"] is False  # gate: false reports instead of failing
    assert rule in result["by_rule"] and {v["rule"] for v in result["violations"]} == {rule}


def test_tabular_model_takes_rows_from_a_dataset(tmp_path):
    model = tabular_model(tmp_path / "m", w=3.0)
    probes = tmp_path / "rows.parquet"
    pd.DataFrame({"x0": [-2.0, 0.1, 3.0], "x1": [0.0, 1.0, 2.0], "other": ["a", "b", "c"]}).to_parquet(probes)
    result, error, *_ = _run(tmp_path, model, probes=SimpleNamespace(path=str(probes)),
                             inline_probes=[{"x0": 1.0, "x1": 0.0}], rules={"allowed_labels": ["no", "yes"]})
    assert error is None and result["probes"] == 4
    assert [o["records"][0]["label"] for o in result["outputs"]] == ["no", "yes", "yes", "yes"]
    with pytest.raises(DataError, match=r"needs feature\(s\) \['x1'\]"):
        _run(tmp_path, model, inline_probes=[{"x0": 1.0}])


def test_probe_set_errors_name_the_fix(tmp_path):
    model = text_model(tmp_path / "m")
    probes = tmp_path / "p.csv"
    pd.DataFrame({"descriptions": PROBES}).to_csv(probes, index=False)
    with pytest.raises(DataError, match=r"no column `description`.*did you mean `descriptions`"):
        _run(tmp_path, model, probes=SimpleNamespace(path=str(probes)))
    with pytest.raises(ConfigError, match="no probes"):
        _run(tmp_path, model)
    with pytest.raises(DataError, match="more than max_probes=2"):
        _run(tmp_path, model, inline_probes=PROBES, max_probes=2)
    with pytest.raises(ConfigError, match=r"rules.score.min: must be a finite number"):
        _run(tmp_path, model, inline_probes=PROBES, rules={"score": {"min": "low"}})


def test_inline_probes_from_a_whole_param_are_checked_when_the_step_runs(tmp_path):
    """`inline_probes: ${params.probes}` is not checked at validate: a number was sent to the model as a probe."""
    model = text_model(tmp_path / "m")
    with pytest.raises(ConfigError) as exc:
        _run(tmp_path, model, inline_probes=["SHELL OIL", 3])
    assert str(exc.value) == ("validate-outputs: inline_probes.1: a probe is a text or a mapping of feature values, "
                              "got 3")
    assert not (tmp_path / "report").exists()


PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: guarded}
steps:
  load:
    component: load-data
    with: {source: data.csv}
  train:
    component: train-torch
    inputs: {dataset: "${steps.load.outputs.dataset}"}
    with: {architecture: text-classifier, text_column: description, label_column: category}
  guard:
    component: validate-outputs
    inputs: {model: "${steps.train.outputs.model}"}
    with:
      inline_probes: [SHELL OIL, 3]
      rules:
        allowed_labels: []
        score: {min: 1, max: 0, mx: 2}
        pii: [pan, ssn]
        max_latency_ms: -5
        max_output_lenght: 10
"""


def test_rule_config_errors_are_located_validation_errors(tmp_path):
    pd.DataFrame({"description": ["a b"], "category": ["x"]}).to_csv(tmp_path / "data.csv", index=False)
    path = tmp_path / "guarded.yaml"
    path.write_text(PIPELINE)
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    got = {i.path: (i.message, i.hint, i.line) for i in info.value.issues}
    lines = PIPELINE.splitlines()

    def line_of(needle):
        return next(n for n, s in enumerate(lines, 1) if needle in s)

    base = "steps.guard.with."
    assert got[base + "inline_probes[1]"][0].startswith("a probe is a text or a mapping")
    assert got[base + "rules.allowed_labels"][1:] == ("e.g. allowed_labels: [groceries, travel]", line_of("allowed_labels"))
    assert got[base + "rules.score"][0] == "min 1 is above max 0"
    assert got[base + "rules.score.mx"][0] == "unknown bound `mx`" and got[base + "rules.score.mx"][2] == line_of("mx:")
    assert got[base + "rules.pii[1]"][:2] == ("unknown PII pattern 'ssn'", "use pan, email, iban, phone")
    assert got[base + "rules.max_latency_ms"][0] == "must be a positive number of milliseconds, got -5"
    assert got[base + "rules.max_output_lenght"][:2] == ("unknown rule `max_output_lenght`",
                                                          "did you mean `max_output_length`?")
    assert got[base + "rules.max_output_lenght"][2] == line_of("max_output_lenght")


class _CardColumnProber:
    """A record whose card number is a number (an int column, and an int column with gaps read as float)."""

    kind, probe_column, fields = "retriever", "query", ("doc_id", "card", "score")

    def __call__(self, probe):
        return [{"doc_id": "d1", "card": 4111111111111111, "card_f": 4111111111111111.0, "score": 0.5}]


class _NumpyProber:
    """A plugged-in prober that returns numpy scalars, as a pandas row or a torch/numpy model hands them out."""

    kind, probe_column, fields = "retriever", "query", ("doc_id", "card", "score")

    def __call__(self, probe):
        import numpy as np

        return [{"doc_id": "d1", "card": np.int64(4111111111111111), "score": np.float32(0.5),
                 "ids": np.array([5555555555554444, 7])}]


def test_numpy_values_of_a_prober_are_numbers_to_the_rules(tmp_path):
    from kubepipe.components.guardrail.validate import validate_outputs

    result = validate_outputs(str(tmp_path), inline_probes=["q"], rules={"pii": ["pan"], "score": {"min": 0, "max": 1}},
                              prober=_NumpyProber(), warmup=0)
    # before: the np.float32 score 0.5 broke `score: {min: 0, max: 1}` ("0.5" is no number) and the np.int64 card
    # number passed pii: [pan]
    assert sorted((v["rule"], v["field"], v["value"]) for v in result["violations"]) == [
        ("pii:pan", "[0].card", "************1111"), ("pii:pan", "[0].ids[0]", "************4444")]
    assert result["outputs"][0]["records"][0] == {"doc_id": "d1", "card": "************1111", "score": 0.5,
                                                   "ids": ["************4444", 7]}


def test_a_pan_held_as_a_number_is_masked_in_the_outputs_too(tmp_path):
    from kubepipe.components.guardrail.report import outputs_html
    from kubepipe.components.guardrail.validate import validate_outputs

    result = validate_outputs(str(tmp_path), inline_probes=["q"], rules={"pii": ["pan"]}, prober=_CardColumnProber(),
                              warmup=0)
    assert result["by_rule"] == {"pii:pan": 2}
    record = result["outputs"][0]["records"][0]  # before: the whole card number, in the report and the JSON
    assert record["card"] == record["card_f"] == "************1111" and record["score"] == 0.5
    shown = json.dumps(result) + outputs_html(result)
    assert "4111111111111111" not in shown and "4.111111111111111e+15" not in shown


def test_probe_cells_are_read_as_written_and_a_missing_one_is_no_text(tmp_path):
    from kubepipe.components.guardrail.validate import load_probes

    csv = tmp_path / "probes.csv"
    csv.write_text("query,code\nSHELL OIL,0042\n,1234567890123456789\nDELTA AIR,\n")
    prober = _CardColumnProber()
    # before: ['SHELL OIL', 'nan', 'DELTA AIR'] (the model was probed with the text 'nan') and codes as floats
    assert load_probes(prober, probes_path=str(csv)) == ["SHELL OIL", "", "DELTA AIR"]
    assert load_probes(prober, probes_path=str(csv), probe_column="code") == ["0042", "1234567890123456789", ""]
    pq = tmp_path / "probes.parquet"
    pd.DataFrame({"query": ["a", None], "n": [7.0, float("nan")]}).to_parquet(pq)
    assert load_probes(prober, probes_path=str(pq), probe_column="n") == ["7", ""]


def test_a_probe_that_does_not_fit_the_model_is_named_masked(tmp_path):
    from kubepipe.components.guardrail.probers import RetrieverProber

    model = tabular_model(tmp_path / "m", w=4.0, labels=("ok", "bad"))
    with pytest.raises(DataError, match=r"needs feature\(s\)") as exc:  # before: the PAN, whole, in the step's error
        _run(tmp_path, model, inline_probes=[LEAKY_LABEL])
    assert "(got 'card **** **** **** 1111')" in str(exc.value)
    with pytest.raises(DataError, match="a retriever's probe is a query text") as exc:
        RetrieverProber.__call__(None, {"q": "mail jane.doe@example.com"})
    assert "got {'q': 'mail j***@example.com'}" in str(exc.value)


def test_a_mapping_probe_for_a_text_model_is_refused_not_read_as_its_repr(tmp_path):
    model = text_model(tmp_path / "m")
    # before: the model was probed with the text "{'description': 'SHELL OIL 5742 HOUSTON TX'}" and judged on it
    with pytest.raises(DataError) as exc:
        _run(tmp_path, model, inline_probes=[{"description": "SHELL OIL 5742 HOUSTON TX", "card": LEAKY_LABEL}])
    assert str(exc.value).startswith("validate-outputs: probe 0 (inline_probes[0]): a probe for this text model is a "
                                     "text (its `")
    assert "'card': 'card **** **** **** 1111'}; write inline_probes as texts" in str(exc.value)


def test_allowed_labels_read_a_whole_float_as_the_integer_it_holds():
    from kubepipe.components.guardrail.rules import judge

    # a retriever's `mcc` column with a gap reads as float: 5411.0 is the allowed code 5411 (before: a violation)
    hits = [{"mcc": 5411.0, "score": 0.5}, {"mcc": 5812, "score": 0.4}, {"mcc": None, "score": 0.3},
            {"mcc": 4829.0, "score": 0.2}]
    violations, _ = judge({"allowed_labels": [5411, 5812.0], "label_field": "mcc"}, ["q"], [hits], [1.0])
    assert [(v["field"], v["value"], v["limit"]) for v in violations] == [
        ("[2].mcc", "missing", ["5411", "5812"]), ("[3].mcc", "4829", ["5411", "5812"])]


def test_an_empty_retriever_probe_is_refused_naming_its_place(tmp_path):
    # before: a blank query (a missing cell of the probes dataset, '  ', '') was probed, and its 'hits' (the passages
    # nearest to no text, which the served retriever never returns: it answers 400) were judged: violations or passes
    # that said nothing of the index
    from kubepipe.components.guardrail.probers import RetrieverProber
    from kubepipe.components.guardrail.validate import validate_outputs

    asked: list[str] = []

    def retrieve(queries, k):
        asked.extend(queries)
        return [[{"passage_id": "p1", "doc_id": "m1", "text": "Shell", "score": 0.9}] for _ in queries]

    index = SimpleNamespace(passages=pd.DataFrame(columns=["passage_id", "doc_id", "text"]))
    prober = RetrieverProber(SimpleNamespace(index=index, retrieve=retrieve), top_k=1)
    csv = tmp_path / "probes.csv"
    csv.write_text("query,n\nSHELL OIL,1\n,2\nDELTA AIR,3\n")  # a missing cell
    said = ("a retriever's probe is an empty query, which the served retriever refuses (400: the query is empty); "
            "fill its text in, or drop it upstream")
    with pytest.raises(DataError) as exc:
        validate_outputs("idx", probes_path=str(csv), inline_probes=["SHELL"], prober=prober, warmup=0)
    assert str(exc.value) == f"validate-outputs: probe 1 (row 1 of the probes dataset): {said}"
    with pytest.raises(DataError) as exc:
        validate_outputs("idx", inline_probes=["SHELL", " \u200b "], prober=prober, warmup=0)
    assert str(exc.value) == f"validate-outputs: probe 1 (inline_probes[1]): {said}"
    assert not any(q.strip() == "" for q in asked)
    assert validate_outputs("idx", inline_probes=["SHELL"], prober=prober)["passed"]


def test_a_probe_the_served_endpoint_refuses_is_refused_by_its_own_rule(tmp_path):
    """The guardrail probed the model in-process with what the endpoint answers 400 (a text over kubepipe serve's
    --max-text-length, an infinite feature) and judged outputs the endpoint never returns; it reads each probe with
    the server's own payload rules and refuses such a probe, naming it and the rule."""
    from kubepipe.components.serving.payloads import BadRequest, InputSpec, parse_v1

    long_text = "SHELL OIL HOUSTON TX " * 30  # 630 characters
    with pytest.raises(BadRequest) as served:  # the oracle: what the endpoint answers
        parse_v1({"instances": [long_text]}, InputSpec(task="text-classification"))
    assert served.value.reason == "instances[0]: the text has 630 characters; the limit is 512"
    with pytest.raises(DataError) as exc:
        _run(tmp_path, text_model(tmp_path / "m"), inline_probes=[PROBES[0], long_text])
    assert str(exc.value) == (
        "validate-outputs: probe 1 (inline_probes[1]): the served endpoint refuses this probe with a 400 at "
        "instances[0]: the text has 630 characters; the limit is 512 (kubepipe serve --max-text-length 512), so it "
        "never returns an output for it; fix the probe or drop it upstream")
    result, error, _, _ = _run(tmp_path, text_model(tmp_path / "m2"), inline_probes=["x" * 512])  # at the limit
    assert error is None and result["probes"] == 1

    tabular = tabular_model(tmp_path / "t", w=4.0, labels=("ok", "bad"))
    with pytest.raises(DataError) as exc:
        _run(tmp_path, tabular, inline_probes=[{"x0": 1.0, "x1": 2.0}, {"x0": float("inf"), "x1": 0.0}])
    assert str(exc.value).startswith("validate-outputs: probe 1 (inline_probes[1]): the served endpoint refuses "
                                     "this probe with a 400 at instances[0].x0: expected a finite number, so it ")
    csv = tmp_path / "rows.csv"  # a missing cell is the null a client sends, which the endpoint takes (the mean)
    csv.write_text("x0,x1\n1.0,\n-2.0,3.0\n")
    result, error, _, _ = _run(tmp_path, tabular, probes=SimpleNamespace(path=str(csv)))
    assert error is None and result["probes"] == 2


def test_a_retriever_probe_the_served_retriever_refuses_is_refused(tmp_path):
    from kubepipe.components.guardrail.probers import RetrieverProber

    index = SimpleNamespace(passages=pd.DataFrame(columns=["passage_id", "doc_id", "text"]))
    prober = RetrieverProber(SimpleNamespace(index=index, retrieve=lambda q, k: pytest.fail("probed")), top_k=1)
    with pytest.raises(DataError, match=r"^the served endpoint refuses this probe with a 400 at instances\[0\]: "
                                        r"the text has 513 characters; the limit is 512 \(kubepipe serve "):
        prober("q" * 513)
    with pytest.raises(DataError, match=r"400 at instances\[0\]: character 1 is a lone UTF-16 surrogate"):
        prober("a\ud800b")


def test_an_inline_probe_the_served_endpoint_refuses_is_said_at_validate_time(tmp_path):
    """The step refuses it when it runs (after training); `kubepipe validate` says so at its place first."""
    pd.DataFrame({"description": ["a b"], "category": ["x"]}).to_csv(tmp_path / "data.csv", index=False)
    path = tmp_path / "guarded.yaml"
    long_probe = "SHELL OIL HOUSTON TX " * 30
    path.write_text(PIPELINE.split("      inline_probes:")[0]
                    + f"      inline_probes: [SHELL OIL, {long_probe.strip()}, '${{params.p}}']\n"
                    + "params: {p: {type: str, default: x}}\n")
    with pytest.raises(ValidationError) as info:
        kubepipe.validate(path)
    got = {i.path: (i.message, i.hint, i.line) for i in info.value.issues}
    assert list(got) == ["steps.guard.with.inline_probes[1]"]
    assert got["steps.guard.with.inline_probes[1]"] == (
        "the served endpoint refuses this probe with a 400 at instances[0]: the text has 629 characters; the limit "
        "is 512 (kubepipe serve --max-text-length 512)", "the step would refuse it: fix the text or drop it", 16)


def _card_server(card: dict):
    """A stand-in for a kubepipe serve endpoint's model card route (GET /kubepipe/v1/models/NAME)."""
    import http.server
    import threading

    class Card(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            found = self.path == f"/kubepipe/v1/models/{card['name']}"
            body = json.dumps(card if found else {"error": "no such model"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Card)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_probes_are_held_to_the_named_endpoint_s_text_limit_not_the_default(tmp_path, monkeypatch):
    """validate-outputs took kubepipe serve's default 512 whatever served the model: an endpoint started with
    --max-text-length 1000 answers a 630-character probe the guardrail refused, and one started with 100 refuses a
    200-character probe the guardrail judged."""
    from kubepipe.components.serving.endpoint_record import write_record

    long_text = "SHELL OIL HOUSTON TX " * 30  # 630 characters
    server = _card_server({"name": "merchant", "max_text_length": 1000})
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/models/merchant:predict"
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # a shell's proxy: loopback is reached directly
        monkeypatch.delenv("no_proxy", raising=False)
        result, error, _, _ = _run(tmp_path, text_model(tmp_path / "m"), inline_probes=[long_text], endpoint=url)
        assert error is None and result["probes"] == 1  # the endpoint takes it: judged, not refused
        with pytest.raises(ConfigError, match=r"its model card http://127\.0\.0\.1:\d+/kubepipe/v1/models/clf "
                                              r"answered 404 \(no such model\)"):
            _run(tmp_path, text_model(tmp_path / "m"), inline_probes=[long_text], endpoint=url.replace("merchant", "clf"))
    finally:
        server.shutdown()
    home = tmp_path / "home"  # a step's ctx_state_dir is <home>/state; endpoints are recorded in <home>/endpoints
    state = home / "state"
    backend = {"role": "backend", "token": "t", "port": 1, "pid": 1, "model_dir": str(tmp_path / "m"), "version": None,
               "log": "b.log", "args": ["--max-batch-size", "64", "--max-text-length", "100"]}
    write_record(home, "merchant", {"name": "merchant", "port": 2, "url": "http://127.0.0.1:2", "proxy": None,
                                     "backend": backend, "history": [], "pending": [], "switch": None,
                                     "model_dir": str(tmp_path / "m"), "version": None, "updated_at": 0.0})
    with pytest.raises(DataError) as exc:
        _run(tmp_path, text_model(tmp_path / "m"), inline_probes=["x" * 200], endpoint="merchant", state_dir=str(state))
    assert str(exc.value) == (
        "validate-outputs: probe 0 (inline_probes[0]): the served endpoint refuses this probe with a 400 at "
        "instances[0]: the text has 200 characters; the limit is 100 (local endpoint merchant: kubepipe serve "
        "--max-text-length 100), so it never returns an output for it; fix the probe or drop it upstream")
    with pytest.raises(ConfigError, match=r"^validate-outputs: endpoint: no local endpoint named 'merchnt' in "
                                          r".*; did you mean"):
        _run(tmp_path, text_model(tmp_path / "m"), inline_probes=["x"], endpoint="merchnt", state_dir=str(state))


def test_an_endpoint_s_limit_is_read_when_the_step_runs_not_refused_at_validate(tmp_path):
    pd.DataFrame({"description": ["a b"], "category": ["x"]}).to_csv(tmp_path / "data.csv", index=False)
    path = tmp_path / "guarded.yaml"
    long_probe = "SHELL OIL HOUSTON TX " * 30
    path.write_text(PIPELINE.split("      inline_probes:")[0]
                    + f"      inline_probes: [SHELL OIL, {long_probe.strip()}]\n      endpoint: merchant\n")
    kubepipe.validate(path)


class _SilentOnSome:
    """A served model that answers some probes with no record (an empty `predictions` list, a retriever over no
    passages): nothing for allowed_labels or score to judge."""
    kind = "classifier"

    def __call__(self, probe):
        return [] if probe.startswith("EMPTY") else [{"label": "groceries", "score": 0.9}]


@pytest.mark.parametrize("rules", [{"allowed_labels": ["groceries"], "score": {"min": 0.5, "max": 1}}, {"pii": []}])
def test_a_probe_answered_with_no_record_is_a_violation_naming_the_probe(tmp_path, rules):
    from kubepipe.components.guardrail.validate import validate_outputs

    result = validate_outputs(str(tmp_path), inline_probes=["SHELL OIL", "EMPTY 1", "SAFEWAY", "EMPTY 2"],
                              rules=rules, prober=_SilentOnSome(), warmup=0)
    # before: both rules held of no record, and the step passed
    assert not result["passed"] and result["by_rule"] == {"no_answer": 2}
    assert [(v["probe"], v["input"], v["value"]) for v in result["violations"]] == [
        (1, "EMPTY 1", "no answer for probe 1: the model returned no record"),
        (3, "EMPTY 2", "no answer for probe 3: the model returned no record")]
    assert result["decision"] == "fail: 2 no_answer violation(s) in 4 probe(s)"


def test_max_latency_of_too_few_probes_holds_their_max_and_says_so():
    from statistics import quantiles

    from kubepipe.components.guardrail.report import outputs_html
    from kubepipe.components.guardrail.rules import MIN_P99_PROBES, judge

    # 3 probes, one slow: their "p99" (98.04 ms, interpolated between the two slowest) passed a 99 ms limit that
    # the slowest probe broke, and the violation called a near-max a p99
    few = [1.0, 2.0, 100.0]
    violations, figures = judge({"max_latency_ms": 99}, ["a", "b", "c"], [[{}]] * 3, few)
    assert [(v["probe"], v["field"], v["value"]) for v in violations] == [
        (2, f"max over 3 probe(s) (a p99 needs {MIN_P99_PROBES} or more)", 100.0)]
    # enough probes: one slow probe in MIN_P99_PROBES is what a p99 allows; the figure is a percentile's
    many = [1.0] * (MIN_P99_PROBES - 1) + [1000.0]
    violations, figures = judge({"max_latency_ms": 50}, ["q"] * len(many), [[{}]] * len(many), many)
    assert violations == [] and figures["latency_judged"] == f"p99 over {MIN_P99_PROBES} probes"
    assert figures["p99_ms"] == pytest.approx(quantiles(many, n=100, method="inclusive")[98])
    violations, _ = judge({"max_latency_ms": 5}, ["q"] * len(many), [[{}]] * len(many), many)
    assert [(v["field"], v["value"]) for v in violations] == [(f"p99 over {MIN_P99_PROBES} probes", 10.99)]
    # the report names what the limit was held to, and shows no p99 of 3 probes
    result = {"passed": False, "decision": "fail", "figures": {**judge({}, ["a"] * 3, [[{}]] * 3, few)[1],
                                                               "probes": 3, "violations": 1},
              "rules": {}, "violations": [], "outputs": [], "probes": 3, "model": {"kind": "classifier", "path": "m"}}
    html = outputs_html(result)
    assert "n/a (3 probes)" in html and "max over 3 probe(s)" in html
