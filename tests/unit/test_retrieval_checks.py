"""Compile-time checks of the retrieval steps, and the evaluate gate's rules applied to retrieval metrics."""

from __future__ import annotations

import pytest

from kubepipe.components.errors import ComponentError
from kubepipe.components.evaluation.gate import decide
from kubepipe.components.retrieval.checks import (
    check_build_index, check_chunk, check_embed, check_evaluate_retrieval,
)
from kubepipe.components.retrieval.metric_names import RETRIEVAL


def _paths(issues):
    return [".".join(map(str, i.path)) for i in issues]


def test_step_checks_name_the_setting():
    assert check_chunk({"size": 64, "overlap": 8, "unit": "tokens"}) == []
    assert _paths(check_chunk({"size": 8, "overlap": 8})) == ["overlap"]
    assert _paths(check_chunk({"size": 8, "overlap": 8, "unit": "word"})) == ["unit", "overlap"]  # every problem
    assert "did you mean" in (check_chunk({"unit": "word"})[0].hint or "")
    assert _paths(check_embed({"batch_size": 0, "device": "gpu"})) == ["batch_size", "device"]
    assert _paths(check_build_index({"method": "ivf", "hnsw": {"connectivity": 1, "ef": 3}})) == \
        ["method", "hnsw.connectivity", "hnsw.ef"]
    assert check_build_index({"method": "${params.m}", "hnsw": {"expansion_search": 32}}) == []


def test_evaluate_retrieval_check_uses_retrieval_metric_names():
    ok = {"thresholds": {"recall@5": {"min": 0.8}, "query_p99_ms": {"max": 50}},
          "relative": {"ndcg@10": {"max_regression": 0.01}}, "model_name": "merchant-retriever"}
    assert check_evaluate_retrieval(ok) == []
    issues = check_evaluate_retrieval({"thresholds": {"f1_macro": {"min": 0.8}, "recal@5": {"min": 1}}})
    assert _paths(issues) == ["thresholds.f1_macro", "thresholds.recal@5"]
    assert issues[1].hint == "did you mean `recall@5`?"  # the user's K (it said recall@10)
    ndcg = check_evaluate_retrieval({"thresholds": {"ndgc@20": {"min": 0.5}}})
    assert ndcg[0].hint == "did you mean `ndcg@20`?"
    assert _paths(check_evaluate_retrieval({})) == ["thresholds"]  # a gate that passes everything is refused
    assert _paths(check_evaluate_retrieval({"thresholds": {"mrr": {"min": 0.5}}, "force": True})) == ["force_reason"]


def test_gate_semantics_are_the_evaluate_gate():
    champ = {"recall@5": 0.90, "ndcg@10": 0.80, "query_p99_ms": 10.0}
    rule = {"relative": {"recall@5": {"max_regression": 0.02}, "query_p99_ms": {"max_regression": 5}},
            "thresholds": {"recall@5": {"min": 0.5}}}
    first = decide({"recall@5": 0.7, "query_p99_ms": 9}, champion_metrics=None, names=RETRIEVAL, **rule)
    assert first.passed and first.first_run and first.decision.startswith("first-run:")
    worse = decide({"recall@5": 0.85, "query_p99_ms": 9}, champion_metrics=champ, names=RETRIEVAL, **rule)
    assert not worse.passed and "recall@5" in worse.decision and worse.decision.startswith("reject:")
    slower = decide({"recall@5": 0.9, "query_p99_ms": 16}, champion_metrics=champ, names=RETRIEVAL, **rule)
    assert not slower.passed and "query_p99_ms" in slower.decision  # lower is better for latency
    same = decide({"recall@5": 0.89, "query_p99_ms": 14}, champion_metrics=champ, names=RETRIEVAL, **rule)
    assert same.passed and same.decision.startswith("promote:")
    forced = decide({"recall@5": 0.1, "query_p99_ms": 9}, champion_metrics=champ, names=RETRIEVAL, force=True,
                    force_reason="catalogue migration", **rule)
    assert forced.passed and forced.forced and forced.audit[0]["reason"] == "catalogue migration"
    with pytest.raises(ComponentError, match="evaluate-retrieval: bad gate settings: thresholds.f1_macro"):
        decide({}, thresholds={"f1_macro": {"min": 1}}, names=RETRIEVAL, step="evaluate-retrieval")


def test_an_empty_separator_is_refused_at_validate_and_at_run_time(tmp_path):
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval

    ok = {"baseline": "none", "thresholds": {"recall@5": {"min": 0.5}}}
    assert _paths(check_evaluate_retrieval({**ok, "separator": ""})) == ["separator"]
    assert check_evaluate_retrieval({**ok, "separator": "${params.sep}"}) == []
    with pytest.raises(ComponentError, match=r"separator: must be the text between relevant ids in one cell, got ''"):
        evaluate_retrieval(str(tmp_path), str(tmp_path / "q.csv"), separator="", baseline="none",
                           thresholds={"recall@5": {"min": 0.5}})


@pytest.mark.parametrize("name", ["recall@0", "ndcg@1001", "mrr@0"])
def test_a_metric_with_k_out_of_range_is_not_offered_as_its_own_correction(name):
    issue, = check_evaluate_retrieval({"baseline": "none", "thresholds": {name: {"min": 0.5}}})
    assert issue.message == f"unknown metric `{name}`" and f"`{name}`" not in issue.hint
    # nor another K ('ndcg@1001: did you mean `ndcg@10`?'): the hint says which K there are
    assert issue.hint == "known metrics: recall@K, ndcg@K, mrr@K (K in 1..1000; mrr = mrr@10), query_p99_ms"


@pytest.mark.parametrize("values, message", [
    ({"batch_size": 0}, "embed: batch_size: must be a whole number >= 1, got 0"),
    ({"device": "gpu"}, "embed: device: must be one of auto, cpu, cuda, cuda:N, got .gpu.")])
def test_embed_refuses_run_time_values_validate_could_not_see(tmp_path, values, message):
    from types import SimpleNamespace

    from kubepipe.components.errors import ConfigError
    from kubepipe.components.retrieval.steps import embed_step

    args = dict(model_dir="", model_uri="", text_column="text", base_model="package:all-minilm-l6-v2",
                base_model_sha256="", max_length=32, batch_size=8, device="cpu")
    out = SimpleNamespace(path=str(tmp_path / "emb"), metadata={})
    with pytest.raises(ConfigError, match=message):
        embed_step(str(tmp_path / "p.parquet"), out, out, **{**args, **values})


def test_a_gate_hint_offers_a_metric_this_gate_knows():
    """A retrieval gate with no thresholds was told 'add e.g. thresholds: {f1_macro: {min: 0.9}}', which it then
    refused as an unknown metric; and with baseline: none the hint offered `relative`, which needs a champion."""
    none = check_evaluate_retrieval({"baseline": "none"})
    assert none[0].hint == "add e.g. thresholds: {recall@10: {min: 0.9}}"
    assert check_evaluate_retrieval({})[0].hint == ("add e.g. thresholds: {recall@10: {min: 0.9}} and/or relative: "
                                                    "{recall@10: {max_regression: 0.0}}")
    assert check_evaluate_retrieval({"thresholds": [1]})[0].hint == "e.g. {recall@10: {min: 0.9}}"
    suggested = {"thresholds": {"recall@10": {"min": 0.9}}, "relative": {"recall@10": {"max_regression": 0.0}}}
    assert check_evaluate_retrieval(suggested) == []  # what the hint says is accepted


@pytest.mark.parametrize("device, ok", [("cuda:1", True), ("cuda", True), ("auto", True), ("${params.d}", True),
                                        ("gpu", False), ("cuda:", False), ("CUDA", False), ("cuda:x", False)])
def test_a_device_is_what_the_run_time_rule_takes(device, ok):
    """`device: cuda:1` (a node's second GPU) was refused at validate ('must be one of auto, cpu, cuda'), while the
    run-time rule takes it, and its error for `gpu` says 'use cpu, cuda, cuda:N or auto'."""
    for issues in (check_embed({"device": device}),
                   check_evaluate_retrieval({"device": device, "baseline": "none", "thresholds": {"mrr": {"min": 0}}})):
        assert issues == [] if ok else [i.message for i in issues] == [
            f"must be one of auto, cpu, cuda, cuda:N, got {device!r}"]


def test_settings_the_chosen_method_never_reads_are_warned_about():
    """`method: exact` with `hnsw: {...}` or an `exact_below` validated without a word, and the settings did
    nothing; they are warnings (the step still runs: at run time the step gets exact_below's default anyway)."""
    issues = check_build_index({"method": "exact", "exact_below": 100, "hnsw": {"connectivity": 8}})
    assert [(i.path, i.severity) for i in issues] == [(("exact_below",), "warning"), (("hnsw",), "warning")]
    assert issues[1].message == "is ignored with method: exact (no HNSW graph is built)"
    assert _paths(check_build_index({"method": "hnsw", "exact_below": 100})) == ["exact_below"]
    assert check_build_index({"method": "auto", "exact_below": 100, "hnsw": {"connectivity": 8}}) == []
    assert check_build_index({"method": "hnsw", "hnsw": {"connectivity": 8}}) == []


def test_a_chunk_base_model_only_tokens_read_is_warned_about_with_words():
    """chunk-documents' `base_model` with unit: words (the default) validated and did nothing: only `unit: tokens`
    reads its tokenizer; the model that embeds is the embed step's."""
    (issue,) = check_chunk({"base_model": "/models/tuned", "size": 64, "overlap": 8})
    assert (issue.path, issue.severity) == (("base_model",), "warning") and issue.message.startswith(
        "is ignored with unit: words")
    assert check_chunk({"base_model": "/models/tuned", "unit": "tokens"}) == []
    assert check_chunk({"unit": "words"}) == []
    assert check_chunk({"base_model": "/models/tuned", "max_tokens": 62}) == []  # max_tokens counts by it


def test_max_tokens_is_a_whole_number_for_word_units():
    assert _paths(check_chunk({"max_tokens": -1})) == ["max_tokens"]
    assert _paths(check_chunk({"max_tokens": 1.5})) == ["max_tokens"]
    (issue,) = check_chunk({"unit": "tokens", "max_tokens": 62})
    assert issue.path == ("max_tokens",) and issue.message == "caps passages of words; with unit: tokens, size " \
        "counts tokens"


@pytest.mark.parametrize("metric, names", [("query_p99_ms", RETRIEVAL), ("p99_ms", None), ("log_loss", None)])
def test_a_negative_max_on_a_metric_that_is_never_negative_is_refused(metric, names):
    """`query_p99_ms: {max: -5}` (or a classifier's p99_ms, log_loss) validated, and the gate rejected every model."""
    from kubepipe.components.evaluation.gate import gate_issues

    kw = {"names": names} if names else {}
    (issue,) = gate_issues({metric: {"max": -5}}, baseline="none", **kw)
    assert (issue.path, issue.message) == (("thresholds", metric, "max"),
                                           f"`{metric}` is never negative: max -5 can never be met")
    assert gate_issues({metric: {"max": 50, "min": -1}}, baseline="none", **kw) == []



def test_an_empty_keep_columns_is_refused_at_its_yaml_path(tmp_path):
    # before: `keep_columns: []` validated, and the step read it as its default: every column copied onto each
    # passage (and so into every hit), the opposite of what an empty list says
    from kubepipe import api
    from kubepipe.errors import ValidationError

    (issue,) = check_chunk({"keep_columns": []})
    assert issue.path == ("keep_columns",) and issue.message.startswith("an empty list keeps every column")
    assert check_chunk({"keep_columns": ["name"]}) == [] and check_chunk({}) == []
    (tmp_path / "docs.csv").write_text("id,text,name\n1,a b c,x\n")
    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: rag}\nsteps:\n"
        "  docs: {component: load-data, with: {source: docs.csv}}\n"
        "  chunk:\n    component: chunk-documents\n    inputs: {documents: \"${steps.docs.outputs.dataset}\"}\n"
        "    with: {keep_columns: []}\n")
    with pytest.raises(ValidationError) as err:
        api.validate(tmp_path / "p.yaml")
    said = str(err.value)
    assert "p.yaml:9:12: steps.chunk.with.keep_columns: an empty list keeps every column of the records" in said
    assert "leave keep_columns out to copy every column onto each passage, or list the ones to copy" in said
