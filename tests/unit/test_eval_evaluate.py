"""evaluate_model on real Model artifacts and Parquet holdouts; champion from a real registry."""

from __future__ import annotations

import json
import math
import re

import pytest
from eval_models import tabular_holdout, tabular_model, text_holdout, text_model

from kubepipe.components.errors import ComponentError, DataError, GateFailed
from kubepipe.components.evaluation.artifacts import read_evaluation, write_outputs
from kubepipe.components.evaluation.evaluate import evaluate_model
from kubepipe.components.evaluation.registration import register_challenger
from kubepipe.components.evaluation.report import render_report
from kubepipe.components.registry import Registry

GATE = {"accuracy": {"min": 0.7}}


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEPIPE_USER", "tester")
    return {
        "good": tabular_model(tmp_path / "good", w=4.0),
        "weak": tabular_model(tmp_path / "weak", w=1.0, w1=0.8),  # also leans on the noise feature
        "bad": tabular_model(tmp_path / "bad", w=-4.0),
        "holdout": tabular_holdout(tmp_path / "holdout.parquet"),
        "reg": f"file://{tmp_path / 'registry'}",
        "tmp": tmp_path,
    }


def _eval(env, model, **kw):
    kw.setdefault("thresholds", GATE)
    return evaluate_model(env[model], env["holdout"], model_name="clf", registry_uri=env["reg"], **kw)


def test_register_model_promotes_only_over_the_champion_its_gate_compared_with(env):
    """`promote: true` replaced whatever champion there was: a `models promote` between the evaluate step and
    register-model was replaced by a model the gate never compared with it."""
    from kubepipe.components.registry import ChampionMoved

    reg = Registry(env["reg"])
    reg.promote("clf", register_challenger(env["weak"], _eval(env, "weak"), model_name="clf",
                                           registry_uri=env["reg"]).version, reason="first")
    ev = _eval(env, "good", relative={"accuracy": {"min_improvement": 0.0}})
    assert ev["passed"] and ev["champion"]["version"] == 1
    reg.promote("clf", reg.register(env["bad"], name="clf").version, reason="by hand")  # v2, during the run
    with pytest.raises(ChampionMoved) as err:
        register_challenger(env["good"], ev, model_name="clf", registry_uri=env["reg"], promote=True)
    assert str(err.value).startswith("register-model: `clf` v3 is registered but not champion: the gate compared it "
                                     "with the champion of its evaluation; model `clf`: the champion moved from v1 "
                                     "to v2 while you were promoting v3 (promote by tester at ")
    assert "`kubepipe models promote clf 3 --reason ...`" in str(err.value)
    assert reg.alias("clf", "champion").version == 2 and [v.version for v in reg.versions("clf")] == [1, 2, 3]
    again = register_challenger(env["good"], _eval(env, "good", baseline="none"), model_name="clf",
                                registry_uri=env["reg"], promote=True)  # no champion baseline: any champion
    assert again.version == 3 and reg.alias("clf", "champion").version == 3


def test_register_model_refuses_a_name_other_than_the_one_its_gate_compared_with(env):
    """A gate that compared the model with the champion of `clf` registered and promoted it as `clf-v2`, never
    compared with `clf-v2`'s champion (validate refuses such a YAML; a param can still name the model at run time)."""
    reg = Registry(env["reg"])
    reg.promote("clf-v2", reg.register(env["good"], name="clf-v2").version, reason="the real champion")
    ev = _eval(env, "weak", relative={"accuracy": {"max_regression": 0.0}})  # clf has no champion: a first run
    assert ev["passed"] and ev["decision"].startswith("first-run:")
    with pytest.raises(ComponentError) as err:
        register_challenger(env["weak"], ev, model_name="clf-v2", registry_uri=env["reg"], promote=True)
    assert str(err.value).startswith("register-model: the evaluation compared the model with the champion of `clf`, "
                                     "not of `clf-v2`: it would be registered as `clf-v2` without being compared")
    assert [v.version for v in reg.versions("clf-v2")] == [1] and reg.alias("clf-v2", "champion").version == 1
    none = _eval(env, "weak", baseline="none")  # no champion compared: any name
    assert register_challenger(env["weak"], none, model_name="clf-v2", registry_uri=env["reg"]).version == 2


def test_first_run_then_champion_comparison_on_same_holdout(env):
    ev = _eval(env, "weak", relative={"accuracy": {"max_regression": 0.0}})
    assert ev["passed"] and ev["champion"] is None and ev["decision"].startswith("first-run: accuracy")
    assert 0.7 < ev["metrics"]["accuracy"] < 1 and ev["metrics"]["roc_auc"] > 0.8 and ev["metrics"]["latency_ms"] > 0
    reg = Registry(env["reg"])
    v1 = register_challenger(env["weak"], ev, model_name="clf", registry_uri=env["reg"], run_id="run-1")
    reg.promote("clf", v1.version, reason="first deploy")

    ev2 = _eval(env, "good", relative={"accuracy": {"min_improvement": 0.01}})
    assert ev2["champion"]["version"] == 1
    # the champion is re-scored on this holdout, so its metrics equal a fresh evaluation of it
    assert ev2["champion"]["metrics"]["accuracy"] == pytest.approx(ev["metrics"]["accuracy"])
    gain = ev2["metrics"]["accuracy"] - ev["metrics"]["accuracy"]
    assert gain > 0.01 and ev2["passed"]
    assert re.search(rf"^promote: accuracy .* \+{gain:.3f} accuracy vs champion v1$", ev2["decision"])

    # the champion's own files (a run resumed after it promoted them): it IS the champion, not a 0-gain reject
    same = _eval(env, "weak", relative={"accuracy": {"min_improvement": 0.01}})
    assert same["passed"] and same["champion"]["same_files"] is True
    assert same["decision"].endswith("the candidate IS champion v1 (the same files: a resumed or re-run pipeline)")
    again = register_challenger(env["weak"], same, model_name="clf", registry_uri=env["reg"], run_id="run-1b",
                                promote=True)
    assert (again.version, again.run_id, [v.version for v in reg.versions("clf")]) == (1, "run-1", [1])
    assert len(reg.history("clf")) == 1  # already champion: nothing moved
    assert _eval(env, "good", relative={"accuracy": {"min_improvement": 0.0}})["champion"]["same_files"] is False

    env["twin"] = tabular_model(env["tmp"] / "twin", w=2.0, w1=1.6)  # the champion's predictions, other bytes
    worse = _eval(env, "twin", thresholds={"accuracy": {"min": 0.5}}, relative={"accuracy": {"min_improvement": 0.01}})
    assert not worse["passed"] and "needs improvement >= 0.010" in worse["decision"]


def test_reject_force_and_register_keeps_audit(env):
    ev = _eval(env, "bad", baseline="none")
    assert not ev["passed"] and ev["decision"].startswith("reject: accuracy")
    with pytest.raises(GateFailed, match="the gate rejected this model"):
        register_challenger(env["bad"], ev, model_name="clf", registry_uri=env["reg"])
    forced = _eval(env, "bad", baseline="none", force=True, force_reason="label schema changed")
    assert forced["passed"] and forced["decision"].startswith("forced: reject:")
    mv = register_challenger(env["bad"], forced, model_name="clf", registry_uri=env["reg"], run_id="run-9")
    stored = Registry(env["reg"]).get("clf", mv.version)
    force_rec = [a for a in stored.audit if a["action"] == "force-gate"]
    assert force_rec and force_rec[0]["by"] == "tester" and force_rec[0]["reason"] == "label schema changed"
    assert stored.run_id == "run-9" and stored.data_hash == "sha256:train" and stored.metrics["accuracy"] < 0.5
    assert "# clf" in stored.model_card and "forced" in stored.model_card
    assert Registry(env["reg"]).alias("clf", "champion") is None  # registering never promotes


def test_register_with_promote_makes_the_champion_and_gates_the_next_run(env):
    first = _eval(env, "weak", relative={"accuracy": {"max_regression": 0.0}})
    v1 = register_challenger(env["weak"], first, model_name="clf", registry_uri=env["reg"], run_id="run-1",
                             promote=True)
    reg = Registry(env["reg"])
    assert v1.aliases == ("champion",) and reg.alias("clf", "champion").version == 1
    second = _eval(env, "good", relative={"accuracy": {"max_regression": 0.0}})
    assert "vs champion v1" in second["decision"]  # the relative gate engaged without any deploy step
    v2 = register_challenger(env["good"], second, model_name="clf", registry_uri=env["reg"], run_id="run-2",
                             promote=True)
    assert reg.alias("clf", "champion").version == v2.version == 2 and reg.alias("clf", "previous").version == 1
    moves = reg.history("clf")
    assert [(h["action"], h["version"], h["from_version"], h["run_id"], h["by"]) for h in moves] == [
        ("promote", 1, None, "run-1", "tester"), ("promote", 2, 1, "run-2", "tester")]
    assert moves[1]["reason"].startswith("register-model: passed the gate (promote: accuracy")
    third = _eval(env, "good", relative={"accuracy": {"max_regression": 0.0}})
    register_challenger(env["good"], third, model_name="clf", registry_uri=env["reg"])  # promote defaults off
    assert reg.alias("clf", "champion").version == 2 and len(reg.history("clf")) == 2


def test_register_model_step_succeeds_when_the_old_champion_s_folder_is_gone(env):
    # the step registered the model, then failed reading the old champion for its `champion` output
    # ('champion is v1, but .../versions/1 is gone'), so a run with baseline: none failed after registering
    import shutil

    from kfp.dsl import Artifact, Model

    from kubepipe.components.evaluation.ops import register_model

    reg = Registry(env["reg"])
    reg.promote("clf", reg.register(env["weak"], name="clf", metrics={}).version, reason="first")
    shutil.rmtree(env["tmp"] / "registry" / "clf" / "versions" / "1")
    ev = _eval(env, "good", baseline="none")
    record = Artifact(name="evaluation", uri=str(env["tmp"] / "evaluation.json"))
    write_outputs(ev, evaluation=record)
    out = register_model.python_func(model=Model(name="model", uri=env["good"]), evaluation=record,
                                     model_name="clf", ctx_registry_uri=env["reg"])
    assert (out.version, out.champion) == (2, 1)


def test_register_refuses_a_model_the_evaluation_did_not_score(env):
    """`model` from the teacher's train step, `evaluation` from the student's evaluate step: the teacher was
    registered (and promoted) with the student's metrics and gate decision."""
    ev = _eval(env, "good", baseline="none")
    with pytest.raises(ComponentError) as exc:
        register_challenger(env["weak"], ev, model_name="clf", registry_uri=env["reg"], promote=True)
    assert str(exc.value).startswith("register-model: the evaluation is of another model (weights sha256 ")
    assert f"not of this step's `model` ({env['weak']}, weights " in str(exc.value)
    assert "wire `model` from the train step whose model the evaluate step scored" in str(exc.value)
    assert Registry(env["reg"]).alias("clf", "champion") is None
    assert register_challenger(env["good"], ev, model_name="clf", registry_uri=env["reg"]).version == 1


def test_slices_and_per_class_threshold(env):
    ev = _eval(env, "good", baseline="none", thresholds={"recall:yes": {"min": 0.5}},
               slices={"column": "region", "thresholds": {"accuracy": {"min": 0.99}}, "min_rows": 10})
    assert set(ev["slices"]["metrics"]) == {"north", "south"}
    assert not ev["passed"] and "[region=" in ev["decision"]
    # the report's slice rows are counts (the record's metrics are floats: it read '100.0000' rows)
    assert "<td class='l'>region=north</td><td>100</td>" in render_report(ev)


def test_slices_of_an_int_column_with_blanks_are_named_as_its_values(env):
    """A store id column with a blank cell reads as floats: its slices were `1.0`, `2.0` and `nan`, not the `1`
    and `2` the user knows (and a monitor or a report names)."""
    import pandas as pd

    df = pd.read_parquet(env["holdout"])
    path = env["tmp"] / "stores.parquet"
    df.assign(store=[1.0, 2.0, float("nan"), 2.0] * (len(df) // 4)).to_parquet(path)
    ev = evaluate_model(env["good"], str(path), model_name="clf", registry_uri=env["reg"], baseline="none",
                        thresholds=GATE, slices={"column": "store", "thresholds": {"accuracy": {"min": 0.1}}})
    assert set(ev["slices"]["metrics"]) == {"1", "2", "(missing)"}


def test_metrics_this_model_cannot_have_are_named_not_a_reject_of_every_run(env):
    """`recall:yess` (a misspelt label) and roc_auc of a 3-label model rejected every run: 'recall:yess is not
    computed for this model/holdout'; they now fail the step naming the labels (did-you-mean)."""
    with pytest.raises(ComponentError) as exc:
        _eval(env, "good", baseline="none", thresholds={"recall:yess": {"min": 0.5}})
    assert str(exc.value) == ("evaluate: thresholds.recall:yess: the model has no label `yess` (labels: no, yes) "
                              "(did you mean `recall:yes`?)")
    with pytest.raises(ComponentError, match=r"^evaluate: slices.thresholds.f1:maybe: the model has no label"):
        _eval(env, "good", baseline="none", thresholds=GATE,
              slices={"column": "region", "thresholds": {"f1:maybe": {"min": 0.5}}})
    three = tabular_model(env["tmp"] / "three", labels=("a", "b", "c"))
    with pytest.raises(ComponentError, match=r"^evaluate: relative.roc_auc: `roc_auc` is for binary tasks; this "
                                             r"model has 3 labels"):
        evaluate_model(three, env["holdout"], thresholds=GATE, relative={"roc_auc": {"max_regression": 0}},
                       model_name="clf", registry_uri=env["reg"])
    ev = _eval(env, "good", baseline="none", thresholds={"recall:yes": {"min": 0.5}, "roc_auc": {"min": 0.5}})
    assert ev["passed"]  # the binary model's own labels and metrics still gate


def test_whole_dict_slices_from_a_param_arrive_with_float_counts(env):
    """`slices: ${params.slices}`: KFP's Struct delivers min_rows 10 as 10.0, untagged; 10.5 is named."""
    slices = {"column": "region", "thresholds": {"accuracy": {"min": 0.99}}}
    ev = _eval(env, "good", baseline="none", slices={**slices, "min_rows": 10.0})
    assert set(ev["slices"]["metrics"]) == {"north", "south"} and not ev["passed"]
    with pytest.raises(ComponentError) as exc:
        _eval(env, "good", baseline="none", slices={**slices, "min_rows": 10.5})
    assert str(exc.value) == "evaluate: slices.min_rows: must be a whole number >= 1, got 10.5"


def test_label_column_defaults_to_the_models_own(env):
    """A trained model records its label column; evaluate without `label_column` reads that one."""
    import pandas as pd

    from kubepipe.components.data.io import read_dataset, write_dataset

    df = read_dataset(env["holdout"]).rename(columns={"label": "outcome"})
    write_dataset(df, env["tmp"] / "renamed.parquet")
    meta_file = env["tmp"] / "good" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["config"] = {"label_column": "outcome"}
    meta_file.write_text(json.dumps(meta))
    ev = evaluate_model(env["good"], str(env["tmp"] / "renamed.parquet"), baseline="none", thresholds=GATE)
    assert ev["label_column"] == "outcome" and ev["holdout"]["rows"] == len(pd.read_parquet(env["tmp"] / "renamed.parquet"))


def test_bad_inputs_give_clear_errors(env):
    with pytest.raises(DataError, match=r"label column `labl` is missing .*did you mean `label`"):
        _eval(env, "good", baseline="none", label_column="labl")
    text = text_model(env["tmp"] / "text")
    # no label_column and a model that does not record its own: an error, never a silent `label`
    with pytest.raises(ComponentError, match=r"`label_column` is not set and the model .* does not record"):
        evaluate_model(text, env["holdout"], baseline="none", thresholds=GATE)
    with pytest.raises(ComponentError, match=r"text-classification model reading column `description`.*looks tabular"):
        evaluate_model(text, env["holdout"], baseline="none", thresholds=GATE, label_column="label")
    th = text_holdout(env["tmp"] / "text.parquet")
    with pytest.raises(ComponentError, match=r"tabular-classification model needing feature columns \['x0', 'x1'\].*looks like text"):
        evaluate_model(env["good"], th, baseline="none", thresholds=GATE)
    with pytest.raises(ComponentError, match="unknown metric `acuracy`.*did you mean `accuracy`"):
        _eval(env, "good", thresholds={"acuracy": {"min": 0.5}})
    with pytest.raises(ComponentError, match="no thresholds"):
        _eval(env, "good", thresholds={})
    with pytest.raises(ComponentError, match="set `model_name`"):
        evaluate_model(env["good"], env["holdout"], thresholds=GATE)


def test_a_header_only_holdout_is_said_to_have_no_rows(env):
    """A header-only CSV reads its columns as text: a tabular model's holdout was 'feature column(s) ['x0', 'x1'] are
    not numeric; fix their dtype upstream', a fix that could not help."""
    empty = env["tmp"] / "empty.csv"
    empty.write_text("x0,x1,label\n")
    for model in (env["good"], text_model(env["tmp"] / "text")):
        with pytest.raises(DataError) as exc:
            evaluate_model(model, str(empty), baseline="none", thresholds=GATE, label_column="label")
        assert str(exc.value) == f"the holdout has no rows (a header only?); model {model} needs at least one row to read"


def test_a_holdout_with_no_text_in_any_row_is_named(env):
    """A blank text column scored the model on nothing and passed `accuracy: {min: 0.5}` on label frequencies."""
    import pandas as pd

    from kubepipe.components.data.io import write_dataset

    text = text_model(env["tmp"] / "text")
    blank = env["tmp"] / "blank.parquet"
    write_dataset(pd.DataFrame({"description": [None, "", " "] * 4, "label": ["groceries", "travel"] * 6}), blank)
    with pytest.raises(DataError) as exc:
        evaluate_model(text, str(blank), label_column="label", baseline="none", thresholds=GATE)
    assert str(exc.value) == (f"holdout: text column `description` is empty in all 12 row(s); model {text} reads "
                              "this column; check the upstream step's output")


def test_a_champion_s_answers_of_a_class_the_candidate_lacks_count_as_its_errors(env):
    """A champion trained on `maybe` too, answering it on every row (accuracy 0), had that column dropped and its
    second choice scored (accuracy 0.86): the gate rejected a candidate at 0.76 as a regression."""
    import torch

    from kubepipe.components.training.artifact import save_model
    from kubepipe.components.training.encoders import TabularEncoder
    from kubepipe.components.training.models.tabular_mlp import TabularMLP

    m = TabularMLP(num_labels=3, input_spec={"num_features": 2}, layers=0)
    with torch.no_grad():
        m.net[0].weight.zero_()
        m.net[0].weight[1, 0], m.net[0].weight[2, 0] = -2.0, 2.0  # no / yes follow x0, as the good model's
        m.net[0].bias.copy_(torch.tensor([10.0, 0.0, 0.0]))  # but `maybe` wins every row
    save_model(env["tmp"] / "maybe", m, architecture="tabular-mlp", model_kwargs={"layers": 0},
               labels=["maybe", "no", "yes"], encoder=TabularEncoder(["x0", "x1"]),
               columns={"feature_columns": ["x0", "x1"]}, metadata={"config": {"label_column": "label"}})
    reg = Registry(env["reg"])
    reg.promote("clf", reg.register(env["tmp"] / "maybe", name="clf").version, reason="old label set")
    ev = _eval(env, "weak", relative={"accuracy": {"min_improvement": 0.0}, "f1_macro": {"min_improvement": 0.0}})
    assert ev["champion"]["metrics"]["accuracy"] == 0.0 and ev["champion"]["metrics"]["f1_macro"] == 0.0
    assert ev["passed"] and ev["decision"].startswith("promote:")


def test_a_champion_whose_entry_is_damaged_is_named_as_the_gate_s_problem(env):
    """The registry's 'model `clf` v1 is corrupt: ...; register the model again' was the evaluate step's error as it
    was: nothing said that the gate needs a sound champion (or none)."""
    from kubepipe.components.registry import RegistryError

    reg = Registry(env["reg"])
    reg.promote("clf", reg.register(env["weak"], name="clf").version, reason="first")
    entry = env["tmp"] / "registry" / "clf" / "versions" / "1" / "version.json"
    entry.write_text(entry.read_text()[:50])
    with pytest.raises(RegistryError) as err:
        _eval(env, "good", relative={"accuracy": {"max_regression": 0.0}})
    assert str(err.value).startswith("the champion of `clf` cannot be read to compare the candidate with: model `clf` "
                                     f"v1 is corrupt: {entry}: ")
    assert str(err.value).endswith("Promote a sound version (kubepipe models promote clf VERSION --reason ...), or "
                                   "set baseline: none")
    assert _eval(env, "good", baseline="none")["passed"]


def test_champion_of_another_task_is_a_clear_error(env):
    reg = Registry(env["reg"])
    text = text_model(env["tmp"] / "text")
    reg.promote("clf", reg.register(text, name="clf", metrics={}).version, reason="old text model")
    with pytest.raises(ComponentError, match=r"champion `clf` v1 is a text-classification model .* baseline: none"):
        _eval(env, "good")


def test_a_champion_whose_manifest_changed_in_the_registry_is_refused_not_scored(env):
    # the loader checks only the weights' sha256: a kubepipe-model.json edited in the registry (two labels swapped)
    # was loaded and re-scored as the champion, and the relative gate compared the candidate with that
    from kubepipe.components.registry import RegistryError

    reg = Registry(env["reg"])
    reg.promote("clf", reg.register(env["good"], name="clf", metrics={}).version, reason="first")
    spec = env["tmp"] / "registry" / "clf" / "versions" / "1" / "model" / "kubepipe-model.json"
    d = json.loads(spec.read_text())
    d["labels"] = d["labels"][::-1]
    spec.write_text(json.dumps(d))
    with pytest.raises(RegistryError, match=r"^model `clf` v1: files changed after registration in .*/registry/clf/"
                                            r"versions/1/model \(changed: kubepipe-model\.json\); refusing to use "
                                            r"them: register the model again, or promote a sound version"):
        _eval(env, "good", relative={"accuracy": {"max_regression": 0.5}})


def test_a_champion_that_cannot_be_loaded_is_named_where_it_is_not_where_it_was_downloaded(env):
    # (a version registered before the registry recorded its files' sha256s: the loader's own check refuses it)
    # was the loader's '/tmp/kubepipe-registry-y49dhb5i/2d7082b2/model.safetensors: sha256 ...: retrain or re-copy
    # the artifact', as if the candidate were at fault, and naming only the download
    import uuid

    import fsspec

    from kubepipe.components.errors import ModelError

    uri = f"memory://reg-{uuid.uuid4().hex}"
    reg = Registry(uri)
    reg.promote("clf", reg.register(env["good"], name="clf", metrics={}).version, reason="first")
    fs, base = fsspec.filesystem("memory"), f"{uri.removeprefix('memory://')}/clf/versions/1"
    meta = json.loads(fs.cat_file(f"{base}/version.json"))
    fs.pipe_file(f"{base}/version.json", json.dumps({k: v for k, v in meta.items() if k != "files"}).encode())
    fs.pipe_file(f"{base}/model/model.safetensors", fs.cat_file(f"{base}/model/model.safetensors")[:-1] + b"!")
    with pytest.raises(ModelError, match=rf"^champion `clf` v1 \(memory:///{uri[9:]}/clf/versions/1/model\) "
                                         r"cannot be loaded to compare the candidate with: .*model\.safetensors: "
                                         r"sha256 .*\. Promote a sound version \(kubepipe models promote clf VERSION "
                                         r"--reason \.\.\.\), or set baseline: none$"):
        evaluate_model(env["good"], env["holdout"], model_name="clf", registry_uri=uri, thresholds=GATE)


def test_outputs_and_report(env, tmp_path):
    from kfp.dsl import HTML, Artifact, ClassificationMetrics, Metrics

    ev = _eval(env, "good", baseline="none")
    ev["model_name"] = "clf<script>"
    arts = {k: cls(uri=str(tmp_path / k)) for k, cls in
            (("metrics", Metrics), ("classification", ClassificationMetrics), ("report", HTML), ("evaluation", Artifact))}
    write_outputs(ev, **arts)
    assert arts["metrics"].metadata["accuracy"] == pytest.approx(ev["metrics"]["accuracy"])
    cm = arts["classification"].metadata["confusionMatrix"]
    assert [c["displayName"] for c in cm["annotationSpecs"]] == ["no", "yes"]
    assert sum(map(sum, (r["row"] for r in cm["rows"]))) == 400
    roc = arts["classification"].metadata["confidenceMetrics"]
    assert 2 < len(roc) <= 200 and roc[0]["falsePositiveRate"] == 0
    assert read_evaluation(arts["evaluation"].path)["decision"] == ev["decision"]
    html = open(arts["report"].path).read()
    assert "<script>" not in html and "clf&lt;script&gt;" in html
    assert html.count("<svg") == 5  # bars, confusion, reliability, ROC, PR
    with pytest.raises(ComponentError, match="not an evaluation record"):
        (tmp_path / "x.json").write_text(json.dumps({"a": 1}))
        read_evaluation(str(tmp_path / "x.json"))
    assert "<svg" in render_report({**ev, "roc": None, "pr": None})


def test_an_undefined_per_class_score_is_drawn_as_missing_not_as_nan(env):
    """A label the model never predicts and the holdout lacks has NaN precision, recall and f1 (sklearn's
    zero_division=nan): its bars were drawn at y='nan' (a browser drops or misplaces them)."""
    import xml.etree.ElementTree as ET

    model = tabular_model(env["tmp"] / "three", w=4.0, labels=("no", "maybe", "yes"))  # `maybe` never wins
    ev = evaluate_model(model, env["holdout"], thresholds=GATE, baseline="none")
    assert all(math.isnan(ev["metrics"][f"{m}:maybe"]) for m in ("precision", "recall", "f1"))
    html = render_report(ev)
    svg = ET.fromstring(re.search(r"<svg[^>]*><title>Per-class precision.*?</svg>", html, re.S).group(0))
    ns = "{http://www.w3.org/2000/svg}"
    values = [v for el in svg.iter() for v in el.attrib.values()]
    assert not [v for v in values if "nan" in v.lower()]
    titles = [t.text for t in svg.iter(f"{ns}title")]
    assert "maybe precision: undefined: the model predicted no `maybe` row" in titles
    assert "maybe recall: undefined: the holdout has no `maybe` rows" in titles
    assert not [t for t in titles if t.startswith("maybe ") and t[-1].isdigit()]  # no bar, not a 0 bar
    assert sum(t.startswith("yes ") for t in titles) == 3  # the defined ones keep their bars
    assert any((el.text or "").startswith("– undefined on this holdout") for el in svg.iter(f"{ns}text"))


def test_the_evaluation_record_is_plain_json_and_an_undefined_metric_reads_back_as_nan(env, tmp_path):
    """`recall:maybe` of a label the holdout lacks is NaN: the record said `NaN`, which jq and JSON.parse refuse."""
    import math

    from kfp.dsl import Artifact

    from kubepipe.components.evaluation.registration import default_model_card

    ev = _eval(env, "good", baseline="none")
    ev["metrics"]["roc_auc"] = float("nan")
    art = Artifact(uri=str(tmp_path / "evaluation"))
    write_outputs(ev, evaluation=art)
    strict = json.loads(open(art.path).read(), parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert strict["metrics"]["roc_auc"] is None
    back = read_evaluation(art.path)
    assert math.isnan(back["metrics"]["roc_auc"]) and back["metrics"]["accuracy"] == ev["metrics"]["accuracy"]
    assert "| roc_auc | nan |" in default_model_card("clf", back)


def test_a_hand_made_csv_holdout_is_read_as_train_torch_reads_one(env):
    # evaluate_model(model, "holdout.csv") said 'not a readable Parquet dataset: Parquet magic bytes not found'
    import pandas as pd

    csv = env["tmp"] / "holdout.csv"
    pd.read_parquet(env["holdout"]).to_csv(csv, index=False)
    from_csv = evaluate_model(env["good"], str(csv), baseline="none", thresholds=GATE)
    from_parquet = evaluate_model(env["good"], env["holdout"], baseline="none", thresholds=GATE)
    same = ("accuracy", "f1_macro", "roc_auc")  # latency_ms is measured, not computed
    assert {k: from_csv["metrics"][k] for k in same} == {k: from_parquet["metrics"][k] for k in same}
    (env["tmp"] / "bad.csv").write_bytes(b"\x1f\x8b\x08binary")
    with pytest.raises(DataError, match=r"^the holdout dataset .*bad\.csv.*load-data step"):
        evaluate_model(env["good"], str(env["tmp"] / "bad.csv"), baseline="none", thresholds=GATE)


def test_positive_label_chooses_the_class_average_precision_and_the_curves_are_about(env):
    # a fraud model with labels fraud/legit had average_precision computed for `legit` (the second label)
    import numpy as np
    import pandas as pd
    from sklearn.metrics import average_precision_score

    from kubepipe.components.training.artifact import load_model

    holdout = pd.read_parquet(env["holdout"])
    proba = np.asarray(load_model(env["weak"]).predict_proba(holdout[["x0", "x1"]]))
    y = holdout["label"].astype(str).to_numpy()
    default = evaluate_model(env["weak"], env["holdout"], baseline="none", thresholds=GATE)
    as_no = evaluate_model(env["weak"], env["holdout"], baseline="none", thresholds=GATE, positive_label="no")
    assert default["positive_label"] == "yes" and as_no["positive_label"] == "no"
    assert default["metrics"]["average_precision"] == pytest.approx(average_precision_score(y == "yes", proba[:, 1]))
    assert as_no["metrics"]["average_precision"] == pytest.approx(average_precision_score(y == "no", proba[:, 0]))
    assert as_no["metrics"]["average_precision"] != pytest.approx(default["metrics"]["average_precision"])
    assert as_no["metrics"]["roc_auc"] == pytest.approx(default["metrics"]["roc_auc"])  # symmetric for two labels
    with pytest.raises(ComponentError, match=r"positive_label 'Yes' is not a label of the model \(its labels: no, "
                                             r"yes\); did you mean `yes`"):
        evaluate_model(env["weak"], env["holdout"], baseline="none", thresholds=GATE, positive_label="Yes")


def test_a_blank_positive_label_is_refused_at_validate():
    from kubepipe.components.evaluation.checks import check_evaluate

    (issue,) = check_evaluate({"thresholds": GATE, "baseline": "none", "positive_label": " "})
    assert issue.path == ("positive_label",) and "one of the model's labels" in issue.message
    assert check_evaluate({"thresholds": GATE, "baseline": "none", "positive_label": "fraud"}) == []


def test_slicing_on_an_id_column_is_refused_with_what_to_slice_on(env, monkeypatch):
    # every value became its own slice: ~1 s and a 1 MB evaluation per 1,000 rows, and a gate over single rows
    import pandas as pd

    from kubepipe.components.evaluation import evaluate as ev_mod

    monkeypatch.setattr(ev_mod, "MAX_SLICES", 50)
    holdout = pd.read_parquet(env["holdout"])
    holdout["row_id"] = [f"r{i}" for i in range(len(holdout))]
    path = env["tmp"] / "ids.parquet"
    holdout.to_parquet(path)
    with pytest.raises(DataError, match=rf"slice column `row_id` has {len(holdout):,} distinct values, more than 50; "
                                        "slice on a column that groups rows"):
        evaluate_model(env["good"], str(path), baseline="none", thresholds=GATE,
                       slices={"column": "row_id", "thresholds": {"accuracy": {"min": 0.5}}})
    ev = evaluate_model(env["good"], str(path), baseline="none", thresholds=GATE,
                        slices={"column": "region", "thresholds": {"accuracy": {"min": 0.5}}})
    assert set(ev["slices"]["metrics"]) == {"north", "south"}


def test_the_default_model_card_lists_labels_only_when_the_model_has_them():
    # an index's card had an empty `- labels:` line
    from kubepipe.components.evaluation.registration import default_model_card

    index = default_model_card("shops", {"task": "retrieval", "metrics": {"recall@5": 0.9}, "decision": "promote"})
    assert "- labels" not in index and "| recall@5 | 0.9000 |" in index
    clf = default_model_card("clf", {"task": "text-classification", "labels": ["no", "yes"], "metrics": {}})
    assert "- labels: no, yes" in clf


def test_a_holdout_row_the_model_answers_with_nan_is_named_not_scored(env):
    # x0 = 1e39 overflows float32 once standardised: NaN probabilities, and the gate passed with log_loss nan
    import pandas as pd

    holdout = pd.read_parquet(env["holdout"])
    holdout.loc[holdout.index[7], "x0"] = 1e39
    path = env["tmp"] / "far.parquet"
    holdout.to_parquet(path)
    with pytest.raises(DataError, match=r"^holdout row 7: model .*'s probabilities are not numbers \(1 row\(s\)\): "
                                        r"`x0` = 1e\+39 is .* standard deviations from its training mean"):
        evaluate_model(env["good"], str(path), baseline="none", thresholds=GATE)


def test_a_full_disk_leaves_no_half_evaluation_record(tmp_path, monkeypatch):
    """The record was written in place: a disk filling up mid-write left half a JSON file, which a failed step's
    artifact list (`runs show`) named; it is written as the reports are, whole or not at all."""
    import builtins
    import errno
    import os

    from kfp.dsl import Artifact

    def full_disk(opener):
        def opened(target, mode="r", *args, **kwargs):
            fh = opener(target, mode, *args, **kwargs)
            if "w" in mode:  # the disk fills up halfway through the text
                def write(text):
                    real_write(text[:len(text) // 2])
                    fh.flush()
                    raise OSError(errno.ENOSPC, "No space left on device")
                real_write, fh.write = fh.write, write
            return fh
        return opened

    monkeypatch.setattr(builtins, "open", full_disk(builtins.open))
    monkeypatch.setattr(os, "fdopen", full_disk(os.fdopen))
    record = Artifact(name="evaluation", uri=str(tmp_path / "evaluate" / "evaluation"))
    ev = {"passed": True, "decision": "first-run", "model_name": "clf", "metrics": {"f1_macro": 0.9}}
    with pytest.raises(OSError):
        write_outputs(ev, evaluation=record)
    assert not (tmp_path / "evaluate" / "evaluation").exists()


def test_a_remote_champion_s_download_is_removed_after_the_evaluation(env, tmp_path, monkeypatch):
    # every local run against an s3:// registry left the champion's files in /tmp/kubepipe-registry-*
    import tempfile
    import uuid

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    uri = f"memory://reg-{uuid.uuid4().hex}"
    reg = Registry(uri)
    reg.promote("clf", reg.register(env["weak"], name="clf", metrics={}).version, reason="first")
    ev = evaluate_model(env["good"], env["holdout"], model_name="clf", registry_uri=uri, thresholds=GATE,
                        relative={"accuracy": {"min_improvement": 0.0}, "latency_ms": {"max_regression": 1e6}})
    assert ev["champion"]["version"] == 1 and ev["champion"]["path"] == f"memory:///{uri[9:]}/clf/versions/1/model"
    assert "latency_ms" in ev["champion"]["metrics"]  # the champion was served from its download, then dropped
    assert list(scratch.iterdir()) == []


def test_a_retried_register_step_reuses_the_version_its_run_registered(tmp_path):
    """A register-model step retried after its registration committed (the promote, or the Vertex alias sync, failed
    transiently) registered the same model again: champion v3 over `previous` v2, one model twice, so a rollback
    went back to the very model it should leave. A version of this run with the same files is reused."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w")
    ev = {"passed": True, "decision": "promote: ok", "metrics": {"accuracy": 0.9}}
    uri = f"file://{tmp_path / 'registry'}"
    first = register_challenger(str(model), ev, model_name="clf", registry_uri=uri, run_id="run-1", promote=True)
    again = register_challenger(str(model), ev, model_name="clf", registry_uri=uri, run_id="run-1", promote=True)
    assert (first.version, again.version) == (1, 1) and "champion" in again.aliases
    assert [h["version"] for h in Registry(uri).history("clf")] == [1]
    (model / "w.bin").write_bytes(b"retrained")  # another model: a new version
    assert register_challenger(str(model), ev, model_name="clf", registry_uri=uri, run_id="run-1").version == 2
    # the same files from another run (a resumed run has its own id) are that version too, not v3
    assert register_challenger(str(model), ev, model_name="clf", registry_uri=uri, run_id="run-2").version == 2


def test_a_holdout_of_one_class_is_refused_not_a_pass(env):
    """A holdout holding only `yes` rows: a model answering `yes` to everything scored f1_macro 1.0 (sklearn's
    macro average over the labels present) and the gate passed it, unsaid."""
    import pandas as pd
    from sklearn.metrics import f1_score

    from kubepipe.components.data.io import write_dataset

    assert f1_score(["yes"] * 5, ["yes"] * 5, average="macro") == 1.0  # what the gate would have read
    df = pd.read_parquet(env["holdout"])
    one = env["tmp"] / "one.parquet"
    write_dataset(df[df["label"] == "yes"], one)
    with pytest.raises(DataError) as exc:
        evaluate_model(env["good"], str(one), model_name="clf", registry_uri=env["reg"], thresholds=GATE,
                       force=True, force_reason="no gate")
    rows = int((df["label"] == "yes").sum())
    assert str(exc.value) == (f"holdout: label column `label` holds one class ('yes') in all {rows} row(s): a "
                              "classifier's scores on it say nothing (f1_macro is 1.0 for a model that answers 'yes' "
                              "to everything), so the gate cannot decide; draw a holdout with rows of at least two of "
                              "the model's labels ['no', 'yes'] (a stratified split), or check `label_column`")
    two = env["tmp"] / "two.parquet"
    write_dataset(pd.concat([df[df["label"] == "yes"], df[df["label"] == "no"].head(1)]), two)
    assert evaluate_model(env["good"], str(two), model_name="clf", registry_uri=env["reg"], thresholds=GATE)["passed"]


def test_a_step_s_registry_error_names_the_profile_s_registry_uri_not_the_cli_s_flags(env):
    """`kubepipe run ... --set registry_uri=file:///tmp/afile` failed its evaluate step with 'point --registry /
    KUBEPIPE_REGISTRY at a folder', flags that command does not have: a step's registry is the profile's."""
    from kubepipe.components.registry import RegistryError

    afile = env["tmp"] / "afile"
    afile.write_text("x")
    where = re.escape("the profile's registry_uri (configs/<target>.yaml or --set registry_uri)")
    with pytest.raises(RegistryError, match=rf"^registry path {re.escape(str(afile))} is a file, not a folder; "
                                            rf"point {where} at a folder"):
        evaluate_model(env["good"], env["holdout"], model_name="clf", registry_uri=f"file://{afile}", thresholds=GATE)
    first = _eval(env, "good", baseline="none")
    with pytest.raises(RegistryError, match=rf"is a file, not a folder; point {where} at a folder"):
        register_challenger(env["good"], first, model_name="clf", registry_uri=f"file://{afile}")


def test_a_first_run_under_a_name_close_to_a_champion_s_says_so(env):
    """`model_name: clff` (a typo of clf, which has a champion) was a first run: every relative rule was skipped
    and the gate passed, unsaid. The decision names the near champion; a first run with no near name says nothing."""
    reg = Registry(env["reg"])
    first = _eval(env, "weak")  # an empty registry: nothing near, nothing said
    assert first["decision"].endswith("no champion yet, absolute thresholds only")
    reg.promote("clf", register_challenger(env["weak"], first, model_name="clf", registry_uri=env["reg"]).version,
                reason="first")
    typo = evaluate_model(env["good"], env["holdout"], model_name="clff", registry_uri=env["reg"], thresholds=GATE,
                          relative={"accuracy": {"min_improvement": 0.5}})
    assert typo["passed"] and typo["champion"] is None  # still a first run: a new model may be named so
    assert ("no champion yet, absolute thresholds only (relative thresholds skipped); model_name `clff` has no "
            "champion in the registry, `clf` has (v1): did you mean `clf`?") in typo["decision"]
    other = evaluate_model(env["good"], env["holdout"], model_name="fraud-detector", registry_uri=env["reg"],
                           thresholds=GATE)
    assert "did you mean" not in other["decision"]


def test_the_holdouts_labels_are_read_once_for_scores_checks_slices_champion_and_curve(env, monkeypatch):
    """evaluate read the label column into indices five times (the challenger's scores, the one-class check, the
    slices, the champion's scores, the PR curve): once, and the figures are sklearn's on those labels."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import accuracy_score, average_precision_score

    from kubepipe.components.evaluation import evaluate as ev_mod
    from kubepipe.components.training.artifact import load_model

    reg = Registry(env["reg"])
    reg.promote("clf", register_challenger(env["weak"], _eval(env, "weak"), model_name="clf",
                                           registry_uri=env["reg"]).version, reason="first")
    calls = []
    real = ev_mod.label_indices
    monkeypatch.setattr(ev_mod, "label_indices", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    ev = _eval(env, "good", relative={"accuracy": {"min_improvement": 0.0}},
               slices={"column": "region", "thresholds": {"accuracy": {"min": 0.5}}})
    assert calls == ["label"], calls
    assert ev["champion"]["version"] == 1 and set(ev["slices"]["metrics"]) == {"north", "south"}
    holdout = pd.read_parquet(env["holdout"])
    y = holdout["label"].astype(str).to_numpy()
    for name, key in (("good", "metrics"), ("weak", "champion")):
        proba = np.asarray(load_model(env[name]).predict_proba(holdout[["x0", "x1"]]))
        got = ev["metrics"] if key == "metrics" else ev["champion"]["metrics"]
        assert got["accuracy"] == pytest.approx(accuracy_score(y, np.where(proba[:, 1] > proba[:, 0], "yes", "no")))
        assert got["average_precision"] == pytest.approx(average_precision_score(y == "yes", proba[:, 1]))
    north = (holdout["region"] == "north").to_numpy()
    proba = np.asarray(load_model(env["good"]).predict_proba(holdout[["x0", "x1"]]))
    assert ev["slices"]["metrics"]["north"]["accuracy"] == pytest.approx(
        accuracy_score(y[north], np.where(proba[north, 1] > proba[north, 0], "yes", "no")))


def test_the_champion_difference_says_which_way_is_better(env):
    """The report's Δ column was challenger − champion for every metric: a log_loss that fell read -0.1 beside an
    accuracy that fell by as much, one an improvement and the other not."""
    model = tabular_model(env["tmp"] / "m", w=4.0)
    ev = evaluate_model(model, env["holdout"], thresholds=GATE, baseline="none")
    m = ev["metrics"]
    ev["champion"] = {"version": "1", "metrics": {**m, "accuracy": m["accuracy"] + 0.1, "log_loss": m["log_loss"] + 0.1,
                                                  "ece": m["ece"], "f1_macro": float("nan")}}
    html = render_report(ev)
    cells = dict(re.findall(r"<tr><td class='l'>([a-z_0-9]+)</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td></tr>", html))
    assert "Δ (challenger − champion)" in html
    assert cells["accuracy"] == "-0.1000 (worse)"  # higher is better: lower than the champion
    assert cells["log_loss"] == "-0.1000 (better)"  # lower is better
    assert cells["ece"] == "0.0000 (same)"
    assert cells["f1_macro"] == "–"
