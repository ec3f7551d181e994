"""Live quality: delayed labels joined to the log, scored like the gate (scikit-learn as the oracle),
recorded per version in the registry (first write wins), the monitoring report."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
sk = pytest.importorskip("sklearn.metrics")

from kubepipe.components.errors import DataError  # noqa: E402
from kubepipe.components.monitoring.live import (join_labels, live_threshold_issues, read_live,  # noqa: E402
                                                 record_live, score_versions)

LABELS = ["fuel", "digital", "travel", "groceries"]


def _log(n=400, seed=3):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        truth = rng.choice(LABELS)
        pred = truth if rng.random() < 0.8 else rng.choice(LABELS)
        rows.append({"request_id": f"r{i // 2}", "instance": i % 2, "model_version": "1" if i < n // 2 else "2",
                     "prediction": pred, "truth": truth, "timestamp": pd.Timestamp("2026-03-16T10:00:00Z"),
                     "latency_ms": 1.0 + i % 7})
    return pd.DataFrame(rows)


def _champion_and_a_worse_canary(tmp_path):
    """A registry where v1 is champion and v2 a canary; the prediction log (tmp_path/log.parquet) of both, v2's
    answers much worse. (registry URI, the log with its `truth` column)."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.registry import Registry

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x")
    for _ in range(2):
        Registry(reg).register(str(tmp_path / "m"), name="merchant")
    Registry(reg).promote("merchant", 1, reason="deployed")
    log = _log()
    log.loc[log["model_version"] == "2", "prediction"] = "fuel"  # the canary's answers: much worse
    write_dataset(log.drop(columns="truth"), str(tmp_path / "log.parquet"))
    return reg, log


def test_live_metrics_match_sklearn_per_version():
    log = _log()
    labels = log[["request_id", "instance"]].assign(label=log["truth"]).sample(frac=0.7, random_state=1)
    joined = join_labels(log.drop(columns="truth"), labels)
    assert len(joined) == len(labels)
    scores = score_versions(joined)
    assert sorted(scores) == ["1", "2"]
    for v, m in scores.items():
        rows = joined[joined["model_version"] == v]
        y, p = rows["label"].tolist(), rows["prediction"].tolist()
        assert m["n_examples"] == len(rows)
        assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
        assert m["f1_macro"] == pytest.approx(sk.f1_score(y, p, average="macro", zero_division=0))
        assert m["recall_macro"] == pytest.approx(sk.recall_score(y, p, average="macro", zero_division=0))
        assert m["f1:fuel"] == pytest.approx(sk.f1_score(y, p, labels=["fuel"], average="macro", zero_division=0))


def test_labels_without_instance_join_the_first_row_and_bad_files_name_the_column():
    log = _log(10).drop(columns="truth")
    joined = join_labels(log, pd.DataFrame({"request_id": ["r0", "r1", "nope"], "label": ["fuel", "x", "y"]}))
    assert sorted(zip(joined["request_id"], joined["instance"])) == [("r0", 0), ("r1", 0)]
    with pytest.raises(DataError, match="labels.csv: column\\(s\\) label missing"):
        join_labels(log, pd.DataFrame({"request_id": ["r0"], "y": ["fuel"]}), where="labels.csv")


def test_only_label_based_metrics_can_be_thresholds():
    assert live_threshold_issues({"f1_macro": {"min": 0.8}, "f1:fuel": {"min": 0.5}}) == []
    issues = {".".join(i.path): i.message for i in live_threshold_issues({"ece": {"max": 0.1}, "f1_macro": {"mn": 1}})}
    assert "probability" in issues["thresholds.ece"] and "thresholds.f1_macro.mn" in issues


def test_run_live_quality_records_per_version_and_flags_a_drop(tmp_path):
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.steps import run_live_quality
    from kubepipe.components.registry import Registry

    reg = f"file://{tmp_path}/registry"
    for _ in range(2):
        model = tmp_path / "m"
        model.mkdir(exist_ok=True)
        (model / "w.bin").write_bytes(b"x")
        Registry(reg).register(str(model), name="merchant", metrics={"f1_macro": 0.9, "accuracy": 0.91})
    log = _log()
    path = tmp_path / "log.parquet"
    write_dataset(log.drop(columns="truth"), str(path))
    labels = tmp_path / "labels.csv"
    log[["request_id", "instance"]].assign(label=log["truth"]).to_csv(labels, index=False)
    out = run_live_quality(str(path), labels=str(labels), model_name="merchant", registry_uri=reg,
                           thresholds={"f1_macro": {"min": 0.99}})
    assert out["quality_dropped"] is True and out["labelled_rows"] == len(log)
    assert sorted(out["recorded"]) == ["1", "2"]
    live = read_live(reg, "merchant", 2)
    assert len(live) == 1 and live[0]["metrics"]["n_examples"] == len(log) // 2 and live[0]["quality_dropped"]
    again = run_live_quality(str(path), labels=str(labels), model_name="merchant", registry_uri=reg,
                             thresholds={"f1_macro": {"min": 0.5}})
    assert again["quality_dropped"] is False
    assert len(read_live(reg, "merchant", 2)) == 1  # the same window is recorded once: the first stands
    none = run_live_quality(str(path), labels="", model_name="merchant", registry_uri=reg, thresholds={})
    assert none["quality_dropped"] is False and "no delayed labels" in none["note"]


def test_a_rerun_with_corrected_labels_records_its_numbers_beside_the_first(tmp_path):
    """The labels file fixed and the window re-run: the step reported f1 1.0 and no drop, the registry kept the first
    run's f1 (the same window key) and the output said `recorded` all the same. A retry with the same labels is
    still one record."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.steps import run_live_quality
    from kubepipe.components.registry import Registry

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x")
    Registry(reg).register(str(tmp_path / "m"), name="merchant")
    log = _log()
    log["model_version"] = "1"
    write_dataset(log.drop(columns="truth"), str(tmp_path / "log.parquet"))
    labels = tmp_path / "labels.csv"

    def run(label_column):
        log[["request_id", "instance"]].assign(label=log[label_column]).to_csv(labels, index=False)
        return run_live_quality(str(tmp_path / "log.parquet"), labels=str(labels), model_name="merchant",
                                registry_uri=reg, thresholds={"f1_macro": {"min": 0.9}})

    first, retry = run("truth"), run("truth")
    assert first["recorded"] == retry["recorded"] and len(read_live(reg, "merchant", 1)) == 1
    fixed = run("prediction")  # every served label confirmed
    assert fixed["quality_dropped"] is False and fixed["recorded"] != first["recorded"]
    records = read_live(reg, "merchant", 1)  # oldest first, within one second too (recorded_ns)
    assert [(r["metrics"]["f1_macro"] == 1.0, r["quality_dropped"]) for r in records] == [(False, True), (True, False)]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_semicolon_or_tab_separated_labels_file_is_read(tmp_path, sep):
    """A `request_id;label` file failed with 'set `delimiter: ";"` on the load-data step': live-quality reads its
    labels itself and has no such setting."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.steps import run_live_quality

    log = _log(40)
    write_dataset(log.drop(columns="truth"), str(tmp_path / "log.parquet"))
    labels = tmp_path / "labels.csv"
    log[["request_id", "instance"]].assign(label=log["truth"]).to_csv(labels, index=False, sep=sep)
    out = run_live_quality(str(tmp_path / "log.parquet"), labels=str(labels), model_name="merchant", thresholds={},
                           min_labels=1)
    assert out["labelled_rows"] == 40 and sum(v["n_examples"] for v in out["versions"].values()) == 40


def test_read_live_keeps_the_order_of_records_made_in_one_second(tmp_path, monkeypatch):
    """recorded_at has 1-s resolution: records of one second came back in the order of their file names (hashes)."""
    from kubepipe.components.registry import Registry, version

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_bytes(b"x")
    Registry(reg).register(str(tmp_path / "m"), name="merchant")
    monkeypatch.setattr(version, "utc_now", lambda: "2026-01-01T00:00:00+00:00")
    for i in range(6):
        record_live(reg, "merchant", 1, {"window": {"start": f"w{i}"}, "metrics": {"f1_macro": i / 10}})
    assert [r["metrics"]["f1_macro"] for r in read_live(reg, "merchant", 1)] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def test_record_live_is_an_exclusive_create(tmp_path):
    from kubepipe.components.registry import Registry

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_bytes(b"x")
    Registry(reg).register(str(tmp_path / "m"), name="merchant")
    first = record_live(reg, "merchant", 1, {"window": {"start": "a"}, "metrics": {"f1_macro": 0.5}})
    second = record_live(reg, "merchant", 1, {"window": {"start": "a"}, "metrics": {"f1_macro": 0.9}})
    assert first["created"] is True and second["created"] is False
    assert [r["metrics"]["f1_macro"] for r in read_live(reg, "merchant", 1)] == [0.5]


def test_records_without_a_window_in_one_second_are_each_kept(tmp_path, monkeypatch):
    """Without a window the name was the hash of recorded_at (whole seconds): the second record of a second was not
    written (created False), its metrics lost."""
    from kubepipe.components.registry import Registry, version

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_bytes(b"x")
    Registry(reg).register(str(tmp_path / "m"), name="merchant")
    monkeypatch.setattr(version, "utc_now", lambda: "2026-01-01T00:00:00+00:00")
    got = [record_live(reg, "merchant", 1, {"metrics": {"f1_macro": f}}) for f in (0.5, 0.9)]
    assert [r["created"] for r in got] == [True, True] and got[0]["key"] != got[1]["key"]
    assert [r["metrics"]["f1_macro"] for r in read_live(reg, "merchant", 1)] == [0.5, 0.9]
    assert not [f for f in Registry(reg).store.listdir("merchant/versions/1/live") if not f.endswith(".json")]


def test_monitor_report_shows_every_section_escaped(tmp_path):
    from kubepipe.components.monitoring.report import latency_summary, monitor_html

    log = _log(40)
    drift = {"drift_detected": True, "columns": {
        "description": {"kind": "text", "psi": 0.5, "drifted": True, "reason": "PSI 0.500 > 0.2"},
        "prediction": {"kind": "categorical", "psi": 0.01, "drifted": False, "reason": "stable",
                       "reference_column": "category"}}}
    live = {"versions": {"1": {"f1_macro": 0.7, "accuracy": 0.75, "n_examples": 20}}, "quality_dropped": True,
            "checks": [{"note": "v1: f1_macro 0.700 < min 0.800"}]}
    html = monitor_html(model="<m>", window={"rows": 40, "requests": 20, "versions": ["1", "2"]}, drift=drift,
                        live=live, offline={"1": {"f1_macro": 0.9}}, latency=latency_summary(log),
                        decision={"action": "started", "reason": "drift detected", "run_id": "retrain-x"})
    assert "&lt;m&gt;" in html and "<m>" not in html
    for part in ("Input drift", "Prediction drift", "BELOW THRESHOLD", "0.900", "-0.200", "p99 ms", "retrain-x"):
        assert part in html
    lat = latency_summary(log)
    assert lat["1"]["requests"] == 10 and lat["1"]["p50_ms"] == pytest.approx(
        log[log.model_version == "1"].drop_duplicates("request_id")["latency_ms"].median())


def test_live_quality_of_too_few_labels_is_shown_not_judged_not_holding(tmp_path):
    """12 labelled rows under min_labels 50: no check was made, and the monitoring report's badge said `holds`."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.report import monitor_html
    from kubepipe.components.monitoring.steps import run_live_quality

    log = _log()
    write_dataset(log.drop(columns="truth"), str(tmp_path / "log.parquet"))
    labels = tmp_path / "labels.csv"

    def report(n, thresholds):
        log[["request_id", "instance"]].assign(label=log["truth"]).head(n).to_csv(labels, index=False)
        live = run_live_quality(str(tmp_path / "log.parquet"), labels=str(labels), model_name="merchant",
                                thresholds=thresholds, min_labels=50)
        html = monitor_html(model="merchant", window={}, drift=None, live=live, offline={}, latency={}, decision=None)
        return live, html.split("<h2>Live quality ", 1)[1].split("</h2>", 1)[0]

    few, badge = report(12, {"f1_macro": {"min": 0.8}})
    assert few["judged"] == [] and few["quality_dropped"] is False
    assert "v1 not judged" in badge and "holds" not in badge
    assert "v2 not judged" in report(len(log), {})[1]  # no threshold: nothing to hold (v2: the newest)
    enough, badge = report(len(log), {"f1_macro": {"min": 0.1}})
    assert enough["judged"] == ["1", "2"] and "holds" in badge


def test_a_version_served_without_a_registry_version_is_named_so_not_v(tmp_path):
    """A server started without a version (a deploy without a registry, `kubepipe serve` by hand) logs "": the page
    said 'v not judged', its tables `v`, and the checks 'v: 12 labelled rows'."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.report import latency_summary, monitor_html
    from kubepipe.components.monitoring.steps import run_live_quality

    log = _log().assign(model_version="")
    write_dataset(log.drop(columns="truth"), str(tmp_path / "log.parquet"))
    log[["request_id", "instance"]].assign(label=log["truth"]).head(12).to_csv(tmp_path / "labels.csv", index=False)
    live = run_live_quality(str(tmp_path / "log.parquet"), labels=str(tmp_path / "labels.csv"), model_name="m",
                            thresholds={"f1_macro": {"min": 0.8}}, min_labels=50)
    assert live["checks"][0]["note"].startswith("(no registry version): 12 labelled rows, fewer than min_labels 50")
    html = monitor_html(model="m", window={"rows": 12, "requests": 6, "versions": [""]}, drift=None, live=live,
                        offline={}, latency=latency_summary(log), decision=None)
    assert "(no registry version) not judged" in html and "<td>v</td>" not in html and ">v<" not in html
    assert html.count("<td>(no registry version)</td>") >= 2  # rows of the live quality and latency tables


def test_thresholds_from_a_whole_param_are_checked_when_the_step_runs(tmp_path):
    """`thresholds: ${params.t}` is not checked at validate: `{f1_macro: 0.8}` crashed the step, and a metric the
    log cannot give was measured as missing."""
    from types import SimpleNamespace

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import ConfigError
    from kubepipe.components.monitoring.ops import live_quality

    log = _log()
    path = tmp_path / "log.parquet"
    write_dataset(log.drop(columns="truth"), str(path))
    labels = tmp_path / "labels.csv"
    log[["request_id", "instance"]].assign(label=log["truth"]).to_csv(labels, index=False)

    def run(thresholds):
        return live_quality.python_func(predictions=SimpleNamespace(path=str(path)),
                                        evaluation=SimpleNamespace(path=str(tmp_path / "ev.json"), metadata={}),
                                        metrics=SimpleNamespace(log_metric=lambda *a: None), model_name="merchant",
                                        labels=str(labels), thresholds=thresholds,
                                        ctx_registry_uri=f"file://{tmp_path}/registry")

    for bad, message in (({"f1_macro": 0.8}, "thresholds.f1_macro: must be {min: x} and/or {max: y} "
                                             "(e.g. f1_macro: {min: 0.9})"),
                         ({"f1_macro": {"min": "high"}}, "thresholds.f1_macro.min: must be a number, got 'high'"),
                         ({"ece": {"max": 0.1}}, "thresholds.ece: `ece` needs every probability, which the prediction "
                                                 "log does not keep (use one of accuracy, f1_macro, precision_macro, "
                                                 "recall_macro, f1_micro or f1:<label>)")):
        with pytest.raises(ConfigError) as exc:
            run(bad)
        assert str(exc.value) == "live-quality: " + message
    assert not (tmp_path / "registry").exists()  # refused before anything was recorded
    from kubepipe.components.registry import Registry

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x")
    for _ in range(2):
        Registry(f"file://{tmp_path}/registry").register(str(tmp_path / "m"), name="merchant", metrics={})
    assert run({"f1_macro": {"min": 0.5}}).quality_dropped is False


def test_a_label_file_of_numbers_with_a_blank_cell_scores_what_was_served(tmp_path):
    """A fraud model serves '0'/'1' to clients that send their own ids ('0042'); the chargeback CSV has a blank
    label (not reviewed yet): pandas read the labels as 1.0/0.0/NaN and the ids as 42, so nothing joined (or every
    row mismatched, live accuracy 0, a spurious retrain), and the blank was a class 'nan'."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.steps import run_live_quality

    log = pd.DataFrame({"request_id": [f"{i:04d}" for i in range(60)], "instance": 0, "model_version": "1",
                        "prediction": [str(i % 2) for i in range(60)],
                        "timestamp": pd.Timestamp("2026-03-16T10:00:00Z"), "latency_ms": 1.0})
    write_dataset(log, str(tmp_path / "log.parquet"))
    labels = tmp_path / "chargebacks.csv"
    labels.write_text("request_id,label\n" + "".join(f"{i:04d},{'' if i == 7 else i % 2}\n" for i in range(60)))
    out = run_live_quality(str(tmp_path / "log.parquet"), labels=str(labels), model_name="fraud", thresholds={},
                           min_labels=1)
    assert out["labelled_rows"] == 59
    assert out["versions"]["1"]["accuracy"] == 1.0 and "f1:nan" not in out["versions"]["1"]
    as_floats = pd.DataFrame({"request_id": [1.0, 2.0, None], "label": [1.0, float("nan"), 0.0]})
    joined = join_labels(log.assign(request_id=["1", "2", "3"] + list(log["request_id"][3:])), as_floats)
    assert joined[["request_id", "label"]].values.tolist() == [["1", "1"]]


def test_a_label_file_instance_column_empty_is_0_and_anything_but_a_row_index_is_located():
    """An empty `instance` (single-row requests, as documented) was 'IntCastingNaNError', 'x' a ValueError, and
    0.5 silently the row 0."""
    log = _log(10).drop(columns="truth")
    joined = join_labels(log, pd.DataFrame({"request_id": ["r0", "r1"], "instance": [None, 1.0],
                                            "label": ["fuel", "travel"]}))
    assert sorted(zip(joined["request_id"], joined["instance"], joined["label"])) == [("r0", 0, "fuel"),
                                                                                    ("r1", 1, "travel")]
    for bad, shown in (("x", "'x'"), (0.5, "'0.5'"), (-1, "'-1'")):
        with pytest.raises(DataError) as exc:
            join_labels(log, pd.DataFrame({"request_id": ["r0", "r1"], "instance": [0, bad], "label": ["a", "b"]}),
                        where="labels.csv")
        assert str(exc.value) == (f"labels.csv: `instance` is not a row index (0, 1, ...) in 1 row(s) (first: data "
                                  f"row 2, {shown}); it numbers the rows of a multi-row request, empty for single-row "
                                  "requests")


def test_a_class_absent_from_the_window_is_not_judged_not_a_quality_drop():
    """`f1:fuel: {min: 0.5}` on a window whose labelled rows hold no `fuel`: 'not computed' failed the check and
    quality_dropped started a retrain on no evidence; a class the model never predicts still fails (f1 0)."""
    from kubepipe.components.monitoring.live import check_live

    metrics = {"accuracy": 0.9, "f1_macro": 0.8, "f1:dining": 0.7, "f1:travel": 0.0, "n_examples": 100}
    [absent, missed] = check_live(metrics, {"f1:fuel": {"min": 0.5}, "f1:travel": {"min": 0.5}})
    assert absent["passed"] is True and absent["value"] is None
    assert absent["note"] == "[live] f1:fuel: no row labelled or predicted `fuel` in this window: not judged"
    assert missed["passed"] is False and missed["value"] == 0.0


def test_a_class_the_window_has_but_the_model_never_predicts_is_judged_undefined_precision():
    """precision:fuel of a model that never answers `fuel` is undefined (NaN, sklearn's zero_division=nan), not
    0.0 and not 'absent': the window has fuel rows, so the check is judged and fails, saying why."""
    from kubepipe.components.monitoring.live import check_live

    rows = pd.DataFrame({"model_version": "3", "label": ["fuel", "fuel", "travel", "dining"],
                         "prediction": ["travel", "travel", "travel", "dining"]})
    m = score_versions(rows)["3"]
    assert m["recall:fuel"] == 0.0 and m["f1:fuel"] == 0.0
    assert m["precision:fuel"] != m["precision:fuel"]  # NaN
    want = sk.precision_score(rows["label"], rows["prediction"], labels=["fuel"], average=None, zero_division=float("nan"))
    assert want[0] != want[0]
    [check] = check_live(m, {"precision:fuel": {"min": 0.5}})
    assert check["passed"] is False and check["value"] is None
    assert check["note"] == "[live] precision:fuel is undefined: the model predicted no `fuel` row"


def test_the_report_shows_this_run_s_decision_never_another_run_s(tmp_path, monkeypatch):
    # with no decision of its own (trigger-retrain skipped), the report showed the log's last line: another run's
    from kubepipe.components.monitoring.steps import _decision
    from kubepipe.components.retrain.trigger import trigger_retraining

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text("kind: Pipeline\n")
    state = str(tmp_path / "state")
    trigger_retraining(drift_detected=False, pipeline="train.yaml", state_dir=state, source_run_id="monitor-1")
    assert _decision(state, "train.yaml", "monitor-1")["action"] == "no-drift"
    assert _decision(state, "train.yaml", "monitor-2") is None
    assert _decision(state, "train.yaml", "")["source_run_id"] == "monitor-1"  # called without a run: the last


def test_a_served_version_the_registry_does_not_hold_is_checked_not_recorded(tmp_path):
    # a RegistryError stopped the step, so the monitor's drift check and retrain decision never ran
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.steps import run_live_quality
    from kubepipe.components.registry import Registry

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x")
    Registry(reg).register(str(tmp_path / "m"), name="merchant", metrics={"f1_macro": 0.9})  # v1 only
    log = _log()  # versions 1 and 2 served
    write_dataset(log.drop(columns="truth"), str(tmp_path / "log.parquet"))
    log[["request_id", "instance"]].assign(label=log["truth"]).to_csv(tmp_path / "labels.csv", index=False)
    out = run_live_quality(str(tmp_path / "log.parquet"), labels=str(tmp_path / "labels.csv"), model_name="merchant",
                           registry_uri=reg, thresholds={"f1_macro": {"min": 0.99}})
    assert out["quality_dropped"] is True and sorted(out["versions"]) == ["1", "2"]
    assert sorted(out["recorded"]) == ["1"] and "v2 of `merchant` is not in the registry" in out["not_recorded"]["2"]
    none = run_live_quality(str(tmp_path / "log.parquet"), labels=str(tmp_path / "labels.csv"), model_name="fraud",
                            registry_uri=reg, thresholds={})
    assert none["recorded"] == {} and sorted(none["not_recorded"]) == ["1", "2"]


def test_monitor_report_without_pipeline_says_the_decision_was_not_looked_up():
    from kubepipe.components.monitoring.report import monitor_html

    def decision_section(**kw):
        html = monitor_html(model="m", window={"rows": 0, "requests": 0, "versions": []}, drift=None, live=None,
                            offline={}, latency={}, decision=None, **kw)
        return html.split("<h2>Decision</h2>", 1)[1]

    # before: 'no trigger-retrain step ran', though one may have run: with no `pipeline` nothing was looked up
    assert decision_section().startswith("<p>not looked up: set this step's <code>pipeline</code> to the pipeline")
    assert decision_section(pipeline="train.yaml").startswith("<p>none recorded by this run (no trigger-retrain")


def test_a_dataset_that_is_not_a_prediction_log_is_named_not_a_key_error(tmp_path):
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import DataError
    from kubepipe.components.monitoring.steps import run_live_quality, run_monitor_report

    train = tmp_path / "train.parquet"  # the training data wired in by mistake: before, KeyError: 'timestamp'
    write_dataset(pd.DataFrame({"description": ["a", "b"], "category": ["x", "y"]}), str(train))
    with pytest.raises(DataError) as exc:
        run_monitor_report(str(train), str(tmp_path / "r.html"), model_name="m", drift=None, live_path=None)
    assert str(exc.value).startswith("monitor-report: the predictions input is not a prediction log: no column(s) "
                                     "request_id, timestamp, model_version (it has: description, category); wire a "
                                     "load-data step with `source: predictions:<model>`")
    with pytest.raises(DataError, match=r"^live-quality: the predictions input is not a prediction log: no column"):
        run_live_quality(str(train), labels="", model_name="m", thresholds=None)
    log = _log(4).assign(timestamp=["yesterday"] * 4)
    bad = tmp_path / "bad.parquet"
    write_dataset(log, str(bad))
    with pytest.raises(DataError, match=r"^predictions: `timestamp` holds a value that is not a time \(.*yesterday"):
        run_monitor_report(str(bad), str(tmp_path / "r.html"), model_name="m", drift=None, live_path=None)


def test_a_bad_timestamp_or_instance_cell_in_a_prediction_log_error_is_masked():
    # before: pandas' parse error (and the instance error) quoted the cell as it was: a customer's e-mail address
    import pandas as pd

    from kubepipe.components.monitoring.live import _instances
    from kubepipe.components.monitoring.steps import window_of

    log = pd.DataFrame({"timestamp": ["2026-01-01T00:00:00Z", "jane.doe@example.com"], "request_id": ["a", "b"],
                        "model_version": ["1", "1"]})
    with pytest.raises(DataError, match=r"unable to parse: j\*\*\*@example\.com") as info:
        window_of(log)
    assert "jane.doe" not in str(info.value)
    with pytest.raises(DataError, match=r"data row 2, 'j\*\*\*@example\.com'"):
        _instances(pd.Series(["0", "jane.doe@example.com"]), "predictions")


def test_the_step_metrics_are_the_champions_not_a_rolled_back_canarys(tmp_path):
    """After a canary (v2) was rolled back, its rows stay in the window: the run table said live_f1_macro of v2
    (the newest), not of v1, which serves the traffic."""
    from types import SimpleNamespace

    from kfp.dsl import Artifact, Metrics
    from sklearn.metrics import accuracy_score

    from kubepipe.components.monitoring import ops
    from kubepipe.components.monitoring.steps import run_live_quality

    reg, log = _champion_and_a_worse_canary(tmp_path)
    log[["request_id", "instance"]].assign(label=log["truth"]).to_csv(tmp_path / "labels.csv", index=False)
    metrics = Metrics(name="metrics", uri=str(tmp_path / "metrics"))
    ops.live_quality.python_func(
        predictions=SimpleNamespace(path=str(tmp_path / "log.parquet")), model_name="merchant",
        evaluation=Artifact(name="evaluation", uri=str(tmp_path / "evaluation.json")), metrics=metrics,
        labels=str(tmp_path / "labels.csv"), thresholds={}, ctx_registry_uri=reg)
    v1 = log[log["model_version"] == "1"]
    assert metrics.metadata["live_version"] == 1
    out = run_live_quality(str(tmp_path / "log.parquet"), labels=str(tmp_path / "labels.csv"), model_name="merchant",
                           registry_uri=reg, thresholds={"accuracy": {"min": 0.6}})
    checks = {c["note"].split(":")[0]: c["passed"] for c in out["checks"]}
    assert checks == {"v1": True, "v2": False} and out["quality_dropped"] is False  # v2 no longer serves
    assert metrics.metadata["live_accuracy"] == pytest.approx(accuracy_score(v1["truth"], v1["prediction"]))


def test_a_label_files_spaces_and_blank_labels_are_not_part_of_the_id_or_the_class():
    """`r1 , fuel` (a hand-written CSV) joined nothing (the server logs ids stripped) and ` fuel` was a miss of the
    served `fuel`; an empty label from a Parquet file was a class ''."""
    log = pd.DataFrame({"request_id": ["r1", "r2", "r3"], "instance": 0, "model_version": "1",
                        "prediction": ["fuel", "travel", "fuel"], "timestamp": pd.Timestamp("2026-03-16T10:00:00Z")})
    joined = join_labels(log, pd.DataFrame({"request_id": [" r1 ", "r2", "r3"], "label": [" fuel", "travel ", ""]}))
    assert joined[["request_id", "label"]].values.tolist() == [["r1", "fuel"], ["r2", "travel"]]


@pytest.mark.parametrize("damage", [b'{"model": "merch', b"[1, 2]"])
def test_read_live_names_a_damaged_record(tmp_path, damage):
    """A torn or foreign live record was a raw JSONDecodeError (or AttributeError), no file named."""
    from kubepipe.components.registry import Registry, RegistryError

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_bytes(b"x")
    Registry(reg).register(str(tmp_path / "m"), name="merchant")
    record_live(reg, "merchant", 1, {"window": {"start": "a"}, "metrics": {"f1_macro": 0.5}})
    bad = tmp_path / "registry/merchant/versions/1/live/0000bad.json"
    bad.write_bytes(damage)
    with pytest.raises(RegistryError, match=rf"^{bad}: a damaged live record \(.*\); monitor-live writes each whole, "
                                            r"so another tool changed it: remove the file"):
        read_live(reg, "merchant", 1)


def test_a_live_record_with_an_undefined_metric_is_json_and_reads_back_as_nan(tmp_path):
    """`json.dumps` wrote `NaN` into the registry's live record (a class no row of the window predicted): not JSON,
    jq and JSON.parse refused the file."""
    import json
    import math

    from kubepipe.components.registry import Registry

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_bytes(b"x")
    Registry(reg).register(str(tmp_path / "m"), name="merchant")
    out = record_live(reg, "merchant", 1, {"window": {"start": "a"}, "metrics": {"f1_macro": float("nan"), "n": 3}})
    raw = (tmp_path / "registry" / "merchant" / "versions" / "1" / "live" / f"{out['key']}.json").read_bytes()
    stored = json.loads(raw, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert stored["metrics"] == {"f1_macro": None, "n": 3}
    (back,) = read_live(reg, "merchant", 1)
    assert math.isnan(back["metrics"]["f1_macro"]) and back["metrics"]["n"] == 3


def test_monitor_live_s_unknown_model_names_the_profile_s_registry_uri(tmp_path):
    """monitor-live's registry is the profile's registry_uri; its 'no model' error said '--registry /
    KUBEPIPE_REGISTRY', flags of `kubepipe models`, not of the run that failed."""
    from kubepipe.components.registry import RegistryError

    source = r"the profile's registry_uri \(configs/<target>\.yaml or --set registry_uri\)"
    with pytest.raises(RegistryError, match=rf"no model `merchant` in .*; check the name and the registry \({source}\)"):
        record_live(f"file://{tmp_path}/registry", "merchant", 1, {"window": {"start": "a"}, "metrics": {}})


def test_a_reused_request_id_counts_its_label_once_against_the_first_prediction(tmp_path, capsys):
    from kubepipe.components.monitoring.steps import run_live_quality

    ts = pd.to_datetime(["2026-03-16T10:00:05Z", "2026-03-16T10:00:00Z", "2026-03-16T10:00:01Z"], utc=True)
    # r1 was sent twice (the later answer `travel`, logged first in the file); one label for it
    log = pd.DataFrame({"request_id": ["r1", "r1", "r2"], "instance": [0, 0, 0], "model_version": ["1"] * 3,
                        "prediction": ["travel", "fuel", "fuel"], "timestamp": ts, "latency_ms": [1.0] * 3})
    labels = pd.DataFrame({"request_id": ["r1", "r2"], "label": ["fuel", "travel"]})
    joined = join_labels(log, labels)
    assert len(joined) == 2 and joined.attrs["reused_ids"] == 1
    m = score_versions(joined)["1"]
    y, p = ["fuel", "travel"], ["fuel", "fuel"]  # the correct pairing: r1's first answer, r2's
    assert m["n_examples"] == 2
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, p))
    assert m["f1_macro"] == pytest.approx(sk.f1_score(y, p, average="macro", zero_division=0))
    log.to_parquet(tmp_path / "log.parquet")
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out = run_live_quality(str(tmp_path / "log.parquet"), labels=str(tmp_path / "labels.csv"), model_name="m",
                           thresholds=None, min_labels=1)
    assert out["labelled_rows"] == 2 and out["reused_ids"] == 1
    assert "1 label(s) in" in capsys.readouterr().out


def test_a_registry_error_reading_the_champion_is_said_with_the_fallback(monkeypatch, capsys):
    import kubepipe.components.registry as registry_pkg
    from kubepipe.components.monitoring.steps import _headline
    from kubepipe.components.registry import RegistryError

    def broken(uri):
        raise RegistryError("aliases.json of merchant: not JSON")

    monkeypatch.setattr(registry_pkg, "step_registry", broken)
    assert _headline(["1", "2"], "file:///reg", "merchant") == "2"
    out = capsys.readouterr().out
    assert "champion of `merchant` could not be read" in out and "aliases.json of merchant: not JSON" in out
    assert "newest version in the window, v2" in out


def test_a_label_file_of_its_header_alone_matches_nothing_not_a_pandas_error(tmp_path):
    """`request_id,label` and no row (labels not arrived yet) failed the step with pandas' 'You are trying to merge on
    object and float64 columns for key request_id'."""
    from kubepipe.components.monitoring.steps import run_live_quality

    log = _log(10).drop(columns="truth")
    log.to_parquet(tmp_path / "log.parquet")
    for text in ("request_id,label\n", "request_id,instance,label\n"):
        (tmp_path / "labels.csv").write_text(text)
        out = run_live_quality(str(tmp_path / "log.parquet"), labels=str(tmp_path / "labels.csv"), model_name="m",
                               thresholds=None)
        assert out["labelled_rows"] == 0 and out["note"] == (f"{tmp_path / 'labels.csv'} holds no labels (a header "
                                                             "alone, or every label blank): live quality not measured")


def test_a_misspelt_live_metric_is_said_once_as_unknown():
    """`thresholds: {f1_macor: ...}` was said twice: 'unknown metric' and '`f1_macor` needs every probability, which
    the prediction log does not keep', which is true of none of its spellings."""
    from kubepipe.components.monitoring.live import live_threshold_issues

    issues = live_threshold_issues({"f1_macor": {"min": 0.8}, "ece": {"max": 0.1}})
    assert [(i.path, i.message) for i in issues] == [
        (("thresholds", "f1_macor"), "unknown metric `f1_macor`"),
        (("thresholds", "ece"), "`ece` needs every probability, which the prediction log does not keep")]
    assert issues[0].hint == "did you mean `f1_macro`?"


def test_a_misspelt_live_metric_is_matched_against_the_live_metrics_only():
    """`roc_acu` was told 'did you mean `roc_auc`?', which live quality then refused (no probabilities logged)."""
    from kubepipe.components.monitoring.live import live_threshold_issues

    (issue,) = live_threshold_issues({"roc_acu": {"min": 0.8}})
    assert issue.message == "unknown metric `roc_acu`"
    assert issue.hint == ("live metrics: accuracy, f1_macro, precision_macro, recall_macro, f1_micro; per class: "
                          "f1:<label>, precision:<label>, recall:<label>")
    (issue,) = live_threshold_issues({"f1_mirco": {"min": 0.8}})
    assert issue.hint == "did you mean `f1_micro`?"


def test_a_labels_file_that_is_not_there_is_a_warning_and_live_metrics_say_no_labels(tmp_path):
    """labels_uri naming a file not there (yet) failed live-quality, so trigger-retrain (and the drift retrain it
    would start) and the report were skipped that day: a drift check needs no labels. The step says so as a
    warning naming the file and what to do; nothing is scored (no 0, no NaN), the report's live side reads
    `no labels`. A label file that is there but unreadable still fails."""
    import json

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.report import monitor_html
    from kubepipe.components.monitoring.steps import run_live_quality

    write_dataset(_log().drop(columns="truth"), str(tmp_path / "log.parquet"))
    missing = tmp_path / "chargebacks" / "2026-03-16.csv"
    live = run_live_quality(str(tmp_path / "log.parquet"), labels=str(missing), model_name="merchant",
                            thresholds={"f1_macro": {"min": 0.8}})
    assert live["quality_dropped"] is False and live["versions"] == {} and live["checks"] == []
    assert live["warning"].startswith(f"delayed labels not found: {missing}: no such file")
    assert "live quality is not measured in this window" in live["warning"] and "labels_uri: ''" in live["warning"]
    assert "labelled_rows" not in live and "NaN" not in json.dumps(live)
    html = monitor_html(model="merchant", window={}, drift=None, live=live, offline={"2": {"f1_macro": 0.91}},
                        latency={}, decision=None)
    section = html.split("<h2>Live quality ", 1)[1].split("<h2>", 1)[0]
    assert "NO LABELS" in section and str(missing) in section and "0.910" in section
    assert section.count("<td>no labels</td>") == 2 and "nan" not in section.lower() and "0.000" not in section
    (tmp_path / "broken.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError):
        run_live_quality(str(tmp_path / "log.parquet"), labels=str(tmp_path / "broken.csv"), model_name="merchant",
                         thresholds={})


def test_a_signed_labels_url_s_token_is_in_no_evaluation_log_or_registry_record(tmp_path, capsys):
    """A signed URL's signature in labels (a label file behind https://...?X-Goog-Signature=...) was written as
    given into the step's evaluation and each registry live record (and the missing-file warning's sibling
    fields), readable by anyone who reads the registry. The file is served by a server on loopback."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.steps import run_live_quality
    from kubepipe.components.registry import Registry

    reg = f"file://{tmp_path}/registry"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x")
    for _ in range(2):
        Registry(reg).register(str(tmp_path / "m"), name="merchant", metrics={"f1_macro": 0.9})
    log = _log()
    write_dataset(log.drop(columns="truth"), str(tmp_path / "log.parquet"))
    body = log[["request_id", "instance"]].assign(label=log["truth"]).to_csv(index=False).encode()

    class Labels(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            found = self.path.startswith("/labels.csv")
            self.send_response(200 if found else 404)
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            self.wfile.write(body if found else b"")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Labels)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    token = "Zm9vYmFyc2VjcmV0c2lnbmF0dXJl"
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        out = run_live_quality(str(tmp_path / "log.parquet"), labels=f"{base}/labels.csv?X-Goog-Signature={token}",
                               model_name="merchant", registry_uri=reg, thresholds={"f1_macro": {"min": 0.5}})
        gone = run_live_quality(str(tmp_path / "log.parquet"), labels=f"{base}/late.csv?X-Goog-Signature={token}",
                                model_name="merchant", thresholds={})
    finally:
        srv.shutdown()
        srv.server_close()
    assert out["labelled_rows"] == len(log) and sorted(out["recorded"]) == ["1", "2"]
    assert out["labels"] == f"{base}/labels.csv?X-Goog-Signature=<redacted>"
    assert "HTTP 404" in gone["warning"] and gone["versions"] == {}
    records = [read_live(reg, "merchant", v) for v in (1, 2)]
    for shown in (json.dumps(out), json.dumps(gone), json.dumps(records), capsys.readouterr().out):
        assert token not in shown


@pytest.mark.parametrize("encoding, said", [("latin-1", "byte 0xe9 at offset"), ("utf-16", "is UTF-16 encoded text")])
def test_labels_in_another_encoding_are_told_to_be_re_saved_not_to_set_an_encoding_live_quality_lacks(
        tmp_path, encoding, said):
    """A latin-1 (or UTF-16) label file was told 'set `encoding` (e.g. latin-1)' (UTF-16: 'set `encoding: utf-16` on
    the load-data step'): live-quality has no such setting, so what the error said to do could not be done."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring.steps import run_live_quality

    path = tmp_path / "log.parquet"
    write_dataset(_log(4).drop(columns="truth"), str(path))
    labels = tmp_path / "labels.csv"
    labels.write_bytes("request_id,label\nr0,café\n".encode(encoding))
    with pytest.raises(DataError) as err:
        run_live_quality(str(path), labels=str(labels), model_name="merchant", thresholds={})
    assert f"{labels}" in str(err.value) and said in str(err.value)
    assert "re-save the file as UTF-8 (this step reads it as UTF-8: it has no `encoding` setting)" in str(err.value)
    assert "set `encoding" not in str(err.value)


def test_a_canary_s_drop_is_not_the_verdict_when_the_champion_served_the_window_without_labels_yet(tmp_path):
    """The champion (v1) served the window, but the labels that arrived so far are of the canary's (v2) requests
    only: the verdict fell to the newest scored version, v2, and a rolled-back canary's drop retrained the model."""
    from types import SimpleNamespace

    from kfp.dsl import Artifact, Metrics

    from kubepipe.components.monitoring import ops
    from kubepipe.components.monitoring.steps import run_live_quality

    reg, log = _champion_and_a_worse_canary(tmp_path)
    canary = log[log["model_version"] == "2"]
    canary[["request_id", "instance"]].assign(label=canary["truth"]).to_csv(tmp_path / "labels.csv", index=False)
    out = run_live_quality(str(tmp_path / "log.parquet"), labels=str(tmp_path / "labels.csv"), model_name="merchant",
                           registry_uri=reg, thresholds={"accuracy": {"min": 0.6}})
    assert [c["passed"] for c in out["checks"]] == [False] and out["judged"] == ["2"]  # v2's drop is reported
    assert out["headline"] == "1" and out["quality_dropped"] is False  # not acted on: v1 serves, unjudged
    metrics = Metrics(name="metrics", uri=str(tmp_path / "metrics"))  # the step: no live metric of v2 as the model's
    outputs = ops.live_quality.python_func(
        predictions=SimpleNamespace(path=str(tmp_path / "log.parquet")), model_name="merchant",
        evaluation=Artifact(name="evaluation", uri=str(tmp_path / "evaluation.json")), metrics=metrics,
        labels=str(tmp_path / "labels.csv"), thresholds={"accuracy": {"min": 0.6}}, ctx_registry_uri=reg)
    assert outputs.quality_dropped is False and "live_accuracy" not in metrics.metadata


@pytest.mark.parametrize("labels", ["", "labels.csv"])
def test_the_step_without_labels_or_without_a_matching_one_measures_nothing_and_fails_nothing(tmp_path, labels):
    """A window without labels yet (the first day of a model, the flagship monitor's first run) returned before the
    verdict's version was set, and the step read it: KeyError 'headline', the monitor run failed."""
    from types import SimpleNamespace

    from kfp.dsl import Artifact, Metrics

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.monitoring import ops

    write_dataset(_log().drop(columns="truth"), str(tmp_path / "log.parquet"))
    (tmp_path / "labels.csv").write_text("request_id,instance,label\nnot-logged,0,coffee\n")
    metrics = Metrics(name="metrics", uri=str(tmp_path / "metrics"))
    outputs = ops.live_quality.python_func(
        predictions=SimpleNamespace(path=str(tmp_path / "log.parquet")), model_name="merchant",
        evaluation=Artifact(name="evaluation", uri=str(tmp_path / "evaluation.json")), metrics=metrics,
        labels=str(tmp_path / labels) if labels else "", thresholds={}, ctx_registry_uri="")
    assert outputs.quality_dropped is False and outputs.labelled == 0 and "live_accuracy" not in metrics.metadata


_DRIFT_ONLY = """apiVersion: kubepipe/v1
kind: Pipeline
metadata: {name: drift-only}
params: {recent_uri: {type: str, default: "predictions:m"}, reference_uri: {type: str, default: "champion:m"}}
steps:
  recent: {component: load-data, with: {source: "${params.recent_uri}", time_column: timestamp, window: 24h,
                                         allow_empty: true}}
  reference: {component: load-data, with: {source: "${params.reference_uri}"}}
  drift:
    component: detect-drift
    inputs: {data: "${steps.recent.outputs.dataset}", reference: "${steps.reference.outputs.dataset}"}
    with: {columns: [description]}
  report:
    component: monitor-report
    inputs: {predictions: "${steps.recent.outputs.dataset}", drift: "${steps.drift.outputs.report}"}
    with: {model_name: m}
"""


@pytest.mark.parametrize("target", ["local", "vertex"])
def test_a_drift_only_monitor_needs_no_live_quality_step(tmp_path, target):
    """A monitor without delayed labels had to add a live-quality step with no labels only to feed monitor-report's
    `live` (validate: "missing input `live`"); the report's live side then says no labels were joined."""
    import yaml

    import kubepipe

    path = tmp_path / "drift-only.yaml"
    path.write_text(_DRIFT_ONLY)
    root = Path(__file__).resolve().parents[1] / "golden" / "profiles"
    out = tmp_path / "ir.yaml"
    kubepipe.compile(path, target=target, out=out, profile=root / f"{target}.yaml")
    ir = yaml.safe_load(out.read_text())
    assert ir["components"]["comp-report"]["inputDefinitions"]["artifacts"]["live"].get("isOptional") is True
    html = tmp_path / "r.html"
    from kubepipe.components.monitoring.steps import run_monitor_report

    log = tmp_path / "log.parquet"
    pd.DataFrame({"request_id": ["a"], "instance": [0], "timestamp": [pd.Timestamp("2026-12-01", tz="UTC")],
                  "model_name": ["m"], "model_version": ["1"], "protocol": ["v1"], "latency_ms": [1.0],
                  "description": ["SHELL"], "prediction": ["fuel"], "probability": [0.9]}).to_parquet(log)
    summary = run_monitor_report(str(log), str(html), model_name="m", drift=None, live_path=None)
    assert summary["quality_dropped"] is False and "no delayed labels joined" in html.read_text()
