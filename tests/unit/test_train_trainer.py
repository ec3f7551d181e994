"""The trainer on real data and real torch: quality, determinism, schedules, early stopping, outputs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")

from kubepipe.components.training.artifact import load_model  # noqa: E402
from kubepipe.components.training.config import TrainConfig  # noqa: E402
from kubepipe.components.training.loop import lr_factor  # noqa: E402
from kubepipe.components.training.sample_data import merchant_frame  # noqa: E402
from kubepipe.components.training.step import train_torch_step  # noqa: E402
from kubepipe.components.training.trainer import train  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "pipelines" / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the suite shares two cores; one thread is faster and deterministic
    yield
    torch.set_num_threads(before)


def _flagship():
    """(train, holdout, text column, label column): the shipped merchant data, else synthetic."""
    train_csv, hold_csv = DATA / "merchants_train.csv", DATA / "merchants_holdout.csv"
    if train_csv.is_file() and hold_csv.is_file():
        tr, ho = pd.read_csv(train_csv), pd.read_csv(hold_csv)
        label = next((c for c in ("category", "label") if c in tr.columns), None)
        text = next((c for c in ("description", "text", "merchant") if c in tr.columns), None)
        if label and text:
            return tr, ho, text, label
    return merchant_frame(3000, seed=0), merchant_frame(1000, seed=1), "description", "category"


def _f1(trained, folder, frame, text, label) -> float:
    """Hold-out macro-F1 of the saved and reloaded model, by scikit-learn (the oracle, not our own metrics)."""
    from sklearn.metrics import f1_score

    model = load_model(trained.save(folder))
    return f1_score(frame[label].astype(str), model.predict(frame[text].fillna("").astype(str).tolist()),
                    average="macro")


def test_text_classifier_reaches_holdout_macro_f1(tmp_path):
    tr, ho, text, label = _flagship()
    cfg = TrainConfig(model="text-classifier", text_column=text, label_column=label, epochs=3, batch_size=64, seed=0)
    trained = train(tr, cfg)
    f1 = _f1(trained, tmp_path / "m", ho, text, label)
    assert f1 >= 0.90, f"holdout macro-F1 {f1:.3f}"
    model = load_model(tmp_path / "m")
    hist = trained.result["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] / 3
    assert model.metadata["epochs_run"] == 3 and model.metadata["framework"]["torch"] == torch.__version__
    # no early stopping: the last epoch's weights are kept, and the reported metrics are that epoch's
    assert trained.result["kept_epoch"] == 3 and trained.final == hist[-1]
    assert model.metadata["metrics"]["val_f1_macro"] == hist[-1]["val_f1_macro"]
    # the bar needs what the text says about the label: the same trainer on shuffled labels stays far below it
    rows = tr.iloc[:1000]
    shuffled = rows.assign(**{label: np.random.default_rng(0).permutation(rows[label].to_numpy())})
    assert _f1(train(shuffled, cfg), tmp_path / "shuffled", ho, text, label) < 0.3


def test_hyperparameter_tables_match_the_model_signatures():
    import inspect

    from kubepipe.components.training.encoders import ENCODINGS
    from kubepipe.components.training.models import ENCODER_KEYS, MODEL_KEYS, resolve_model_class

    # pretrained-encoder: the step's `base_model` (a name or directory) becomes `config` + a `base_model`
    # record in resolve_hyperparameters before the constructor sees them
    resolved = {"pretrained-encoder": ("config", "base_model")}
    for name, keys in MODEL_KEYS.items():
        params = list(inspect.signature(resolve_model_class(name).__init__).parameters)[3:]
        assert tuple(p for p in params if p not in resolved.get(name, ())) == keys, name
    from kubepipe.components.training.hashing import HashingSpec

    ctor = {"hashed-ngrams": HashingSpec.__init__, "bytes": ENCODINGS["bytes"].__init__}
    for enc, init in ctor.items():
        assert ENCODER_KEYS[enc] == ENCODINGS[enc].keys == tuple(inspect.signature(init).parameters)[1:]
    # wordpiece: the user sets max_length; the tokenizer file comes from the base model
    assert ENCODER_KEYS["wordpiece"] == ENCODINGS["wordpiece"].keys == ("max_length",)
    assert "max_length" in inspect.signature(ENCODINGS["wordpiece"].__init__).parameters


def test_same_seed_same_weights_other_seed_differs():
    df = merchant_frame(400, seed=2)
    cfg = dict(model="text-classifier", label_column="category", epochs=2, hyperparameters={"buckets": 2048, "dropout": 0.2})
    a = train(df, TrainConfig(seed=5, **cfg)).module.state_dict()
    b = train(df, TrainConfig(seed=5, **cfg)).module.state_dict()
    c = train(df, TrainConfig(seed=6, **cfg)).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_schedules():
    cos, lin, const = (lr_factor(s, 10, 110) for s in ("cosine", "linear", "constant"))
    assert [round(cos(i), 3) for i in (0, 4, 9)] == [0.1, 0.5, 1.0]  # warmup is linear for all
    assert cos(10) == pytest.approx(1.0) and cos(60) == pytest.approx(0.5) and cos(110) == pytest.approx(0.0)
    assert lin(60) == pytest.approx(0.5) and lin(200) == 0.0 and const(100) == 1.0


def test_early_stopping_keeps_the_best_epoch():
    df = merchant_frame(300, seed=4, label_noise=0.3)
    val = merchant_frame(200, seed=5, label_noise=0.3)
    trained = train(df, TrainConfig(model="text-classifier", label_column="category", epochs=30, learning_rate=0.2,
                                    early_stopping_patience=2, early_stopping_metric="val_loss",
                                    hyperparameters={"buckets": 2048}), val_df=val)
    res = trained.result
    assert res["stopped_early"] and res["epochs_run"] < 30
    assert res["epochs_run"] == res["best_epoch"] + 2
    losses = [r["val_loss"] for r in res["history"]]
    assert res["best_epoch"] == int(np.argmin(losses)) + 1
    # the kept weights are the best epoch's: their validation loss is the minimum, not the last
    from kubepipe.components.training.loop import evaluate

    enc = trained.encoder.encode(val["description"].tolist())
    index = {lab: i for i, lab in enumerate(trained.labels)}
    y = torch.tensor([index[v] for v in val["category"]])
    score = evaluate(trained.module, {k: torch.from_numpy(v) for k, v in enc.items()}, y,
                     device=torch.device("cpu"), amp=False, n_labels=len(index))
    assert score["loss"] == pytest.approx(min(losses), rel=1e-5)


def test_tabular_mlp_on_numeric_features(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 3)) * [1.0, 100.0, 0.01] + [0, 500, 0]
    y = np.where(x[:, 0] + (x[:, 1] - 500) / 100 > 0, "high", "low")
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y})
    df.loc[3, "a"] = np.nan  # a missing value is imputed, not fatal
    trained = train(df, TrainConfig(model="tabular-mlp", epochs=15, seed=0))
    assert trained.columns == {"feature_columns": ["a", "b", "c"]}
    assert trained.final["val_accuracy"] >= 0.9
    # a row of numbers has no tokens: tokens_per_s was samples_per_s under another name (each row one token)
    assert trained.result["tokens_per_s"] is None and trained.result["samples_per_s"] > 0
    trained.save(tmp_path / "tab")
    model = load_model(tmp_path / "tab")
    assert model.task == "tabular-classification"
    assert model.predict([{"a": 3.0, "b": 800.0, "c": 0.0}, {"a": -3.0, "b": 200.0, "c": 0.0}]) == ["high", "low"]


def test_an_infinite_feature_value_is_missing_like_nan():
    """One inf made the fitted mean inf (saved as 1.8e308), the column -inf in float32, and training stopped at
    'training loss became nan ... check the data for extreme values' without naming a column."""
    from kubepipe.components.training.encoders import TabularEncoder

    enc = TabularEncoder(["a"]).fit(pd.DataFrame({"a": [1.0, np.inf, 3.0, -np.inf, np.nan]}))
    assert (enc.mean.tolist(), enc.std.tolist()) == ([2.0], [1.0])
    assert enc.encode(pd.DataFrame({"a": [np.inf, 4.0]}))["x"].tolist() == [[0.0], [2.0]]
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    df = pd.DataFrame({"a": x, "label": np.where(x > 0, "high", "low")})
    df.loc[:2, "a"] = np.inf
    trained = train(df, TrainConfig(model="tabular-mlp", epochs=5, seed=0))
    assert np.isfinite(trained.final["train_loss"]) and trained.final["val_accuracy"] >= 0.8


def test_a_value_past_float32_once_standardised_is_nan_for_every_architecture_not_a_saturated_answer():
    """6e38 (3e38 at std 0.5) was inf in float32; a network that saturates answered it with a finite, confident
    probability, where a NaN reaches the output and the server / evaluate refuse the row naming the feature."""
    import torch

    from kubepipe.components.training.encoders import TabularEncoder

    enc = TabularEncoder(["a", "b"], mean=[0.0, 0.0], std=[0.5, 1.0])
    x = enc.encode(pd.DataFrame({"a": [3e38, -3e38, 1.0], "b": [1.0, 2.0, 3e38]}))["x"]
    assert x.dtype == np.float32 and np.isnan(x[0, 0]) and np.isnan(x[1, 0]) and x[1, 1] == 2.0
    assert x[2, 0] == 2.0 and np.isclose(x[2, 1], 3e38, rtol=1e-6)  # within float32's range: kept
    saturating = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh(), torch.nn.Softmax(-1))
    with torch.no_grad():
        assert torch.isnan(saturating(torch.from_numpy(x[:1]))).all()  # inf would give finite probabilities


def test_transformer_trains_and_round_trips(tmp_path):
    df = merchant_frame(300, seed=3)
    trained = train(df, TrainConfig(model="transformer-classifier", label_column="category", epochs=2, batch_size=32,
                                    hyperparameters={"d_model": 32, "layers": 1, "heads": 2, "max_length": 32}))
    hist = trained.result["history"]
    assert all(np.isfinite(r["train_loss"]) for r in hist) and hist[1]["train_loss"] < hist[0]["train_loss"]
    trained.save(tmp_path / "tf")
    model = load_model(tmp_path / "tf")
    texts = df["description"].tolist()[:5]
    assert np.allclose(model.predict_proba(texts),
                       torch.softmax(trained.module(model.encode(texts)), -1).detach().numpy(), atol=1e-5)


def test_step_writes_model_metrics_and_curve(tmp_path):
    from kfp.dsl import HTML, Dataset, Metrics, Model

    from kubepipe.components.data.io import write_dataset

    data = Dataset(name="dataset", uri=str(tmp_path / "train"))
    write_dataset(merchant_frame(500, seed=8), data)
    model = Model(name="model", uri=str(tmp_path / "model"))
    curve, metrics = HTML(name="curve", uri=str(tmp_path / "curve.html")), Metrics(name="metrics", uri=str(tmp_path / "m"))
    train_torch_step(dataset=data, model=model, metrics=metrics, curve=curve, label_column="category", epochs=2,
                     hyperparameters={"buckets": 4096, "warmup_fraction": 0.1},
                     ctx_state_dir=str(tmp_path / "state"), ctx_run_id="run/1", ctx_step="train")
    logged = metrics.metadata
    assert set(logged) >= {"train_loss", "val_loss", "val_accuracy", "val_f1_macro", "samples_per_s"}
    # the component's reference (kubepipe components train-torch, docs/components.md) names every metric logged
    import re

    from kubepipe.components.training.ops import train_torch

    doc = re.search(r"metrics: (.*?)\n\s+curve:", train_torch.python_func.__doc__, re.S).group(1)
    assert set(re.findall(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b", doc)) == set(logged)
    assert logged["samples_per_s"] > 0 and 0 <= logged["val_f1_macro"] <= 1 and logged["tokens_per_s"] > 0
    loaded = load_model(model.path)
    assert loaded.metadata["data_hash"] == data.metadata["content_hash"]
    assert loaded.metadata["config"]["warmup_fraction"] == 0.1
    page = Path(curve.path).read_text()
    assert page.count("<svg") == 2 and "train_loss" in page and "<script" not in page
    # checkpoints were written during training (the folder exists), and removed once the step succeeded
    assert (tmp_path / "state" / "checkpoints").is_dir()
    assert not (tmp_path / "state" / "checkpoints" / "run_1").exists()


def test_integer_labels_with_a_blank_cell_keep_their_names(tmp_path):
    """An int label column with one blank reads as floats: the model's labels were '0.0', '1.0', ..., so an int
    holdout was 'label(s) the model was not trained on: ['0', '1', ...]' and the server answered '3.0'."""
    from kubepipe.components.evaluation.evaluate import evaluate_model

    df = merchant_frame(400, seed=0)
    names = sorted(df["category"].unique())
    codes = df["category"].map({c: i for i, c in enumerate(names)})
    train_df = df.assign(category=codes.astype(float))
    train_df.loc[0, "category"] = np.nan  # one unlabelled row: pandas reads the column as float64
    val_df = df.iloc[:80].assign(category=codes.iloc[:80])  # int labels in the validation set
    trained = train(train_df, TrainConfig(label_column="category", epochs=1), val_df=val_df)
    assert trained.labels == sorted(str(i) for i in range(len(names)))
    assert trained.result["history"][-1]["val_accuracy"] is not None  # the int rows were validated on
    trained.save(tmp_path / "m")
    holdout = merchant_frame(100, seed=1)
    holdout = holdout.assign(category=holdout["category"].map({c: i for i, c in enumerate(names)}))
    holdout.to_parquet(tmp_path / "h.parquet")
    ev = evaluate_model(tmp_path / "m", tmp_path / "h.parquet", thresholds={"accuracy": {"min": 0}}, baseline="none")
    assert ev["labels"] == trained.labels and sum(ev["support"].values()) == 100
    holdout.assign(category=holdout["category"].astype(float)).to_parquet(tmp_path / "hf.parquet")  # and floats
    as_floats = evaluate_model(tmp_path / "m", tmp_path / "hf.parquet", thresholds={"accuracy": {"min": 0}},
                               baseline="none")
    assert (as_floats["support"], as_floats["metrics"]["f1_macro"]) == (ev["support"], ev["metrics"]["f1_macro"])
    # a champion trained before that rule (labels '0.0', '1.0', ...) still reads the holdout: it is re-scored
    from kubepipe.components.evaluation.evaluate import label_indices

    old = [f"{i}.0" for i in range(len(names))]
    assert label_indices(holdout, "category", old).tolist() == label_indices(holdout, "category", trained.labels).tolist()
    import json
    import shutil

    from kubepipe.components.evaluation.evaluate import score

    shutil.copytree(tmp_path / "m", tmp_path / "old")
    spec = json.loads((tmp_path / "old" / "kubepipe-model.json").read_text())
    (tmp_path / "old" / "kubepipe-model.json").write_text(json.dumps({**spec, "labels": old}))
    champion, _ = score(load_model(tmp_path / "old"), holdout, "category", labels=trained.labels)
    assert champion["f1_macro"] == ev["metrics"]["f1_macro"]


def test_a_blank_label_is_no_label_not_a_class(tmp_path):
    """A label column of text with empty strings (a Parquet or SQL source; a CSV gives NaN) trained a class ''
    that the model then predicted; the holdout's blanks were 'label(s) the model was not trained on: ['']'. Both
    sides now leave such rows out by one rule (data.io.labelled_rows): training drops them, and so does the
    holdout (it was refused: a holdout with some blank labels could not gate a model trained on such data)."""
    from sklearn.metrics import accuracy_score, f1_score

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import DataError
    from kubepipe.components.evaluation.evaluate import evaluate_model
    from kubepipe.components.training.artifact import load_model

    df = merchant_frame(200, seed=0)
    df.loc[:9, "category"] = ["", "  "] * 5
    trained = train(df, TrainConfig(label_column="category", epochs=1))
    assert "" not in trained.labels and "  " not in trained.labels
    assert trained.labels == sorted(df["category"].iloc[10:].unique())
    trained.save(tmp_path / "m")
    holdout = merchant_frame(50, seed=1)
    holdout.loc[:2, "category"] = ["", "  ", None]
    write_dataset(holdout, tmp_path / "h.parquet")
    ev = evaluate_model(tmp_path / "m", tmp_path / "h.parquet", thresholds={"accuracy": {"min": 0}}, baseline="none")
    assert ev["holdout"]["rows"] == 47 and ev["holdout"]["unlabelled"] == 3
    assert ev["decision"].endswith("; scored on 47 labelled holdout row(s), 3 with no `category` left out")
    labelled = holdout.iloc[3:]  # oracle: sklearn on the labelled rows alone
    predicted = load_model(tmp_path / "m").predict(labelled["description"].tolist())
    truth = labelled["category"].tolist()
    assert ev["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert ev["metrics"]["f1_macro"] == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    blank = holdout.assign(category="")
    write_dataset(blank, tmp_path / "b.parquet")
    with pytest.raises(DataError, match=r"^holdout: label column `category` is empty in all 50 row\(s\): no row to "):
        evaluate_model(tmp_path / "m", tmp_path / "b.parquet", thresholds={"accuracy": {"min": 0}}, baseline="none")


def test_evaluate_refuses_the_models_own_training_data_as_holdout(tmp_path):
    """`holdout: ${steps.load.outputs.dataset}` (or holdout_uri naming the training file) scored the model on the
    rows it learned from, and the inflated scores passed the gate."""
    from kfp.dsl import HTML, Dataset, Metrics, Model

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import DataError
    from kubepipe.components.evaluation.evaluate import evaluate_model

    data = Dataset(name="dataset", uri=str(tmp_path / "train"))
    write_dataset(merchant_frame(200, seed=8), data)
    model = Model(name="model", uri=str(tmp_path / "model"))
    train_torch_step(dataset=data, model=model, metrics=Metrics(name="m", uri=str(tmp_path / "m")),
                     curve=HTML(name="c", uri=str(tmp_path / "c.html")), label_column="category", epochs=1)
    gate = {"thresholds": {"accuracy": {"min": 0.0}}, "baseline": "none"}
    with pytest.raises(DataError) as exc:
        evaluate_model(model.path, data.path, **gate)
    assert str(exc.value).startswith(f"holdout {data.path} is the model's training data (content hash sha256:")
    assert str(exc.value).endswith("the gate would score rows the model learned from; wire a holdout it did not "
                                   "train on")
    other = Dataset(name="holdout", uri=str(tmp_path / "holdout"))
    write_dataset(merchant_frame(100, seed=9), other)
    assert evaluate_model(model.path, other.path, **gate)["passed"]
    folder = tmp_path / "folder"  # a directory artifact holding one Parquet file is read as before
    folder.mkdir()
    write_dataset(merchant_frame(100, seed=9), folder / "part.parquet")
    assert evaluate_model(model.path, str(folder), **gate)["passed"]


def test_evaluate_refuses_the_training_rows_re_saved_or_drawn_as_the_holdout(tmp_path):
    """The check compared file bytes: the training rows re-saved (columns in another order, CRLF, every field
    quoted, a trailing newline; or as a hand-made CSV) or a holdout drawn mostly from them passed as unseen data."""
    import csv

    from kfp.dsl import HTML, Dataset, Metrics, Model

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import DataError
    from kubepipe.components.evaluation.evaluate import evaluate_model

    frame = merchant_frame(300, seed=8)
    data = Dataset(name="dataset", uri=str(tmp_path / "train"))
    write_dataset(frame, data)
    model = Model(name="model", uri=str(tmp_path / "model"))
    train_torch_step(dataset=data, model=model, metrics=Metrics(name="m", uri=str(tmp_path / "m")),
                     curve=HTML(name="c", uri=str(tmp_path / "c.html")), label_column="category", epochs=1)
    gate = {"thresholds": {"accuracy": {"min": 0.0}}, "baseline": "none"}
    resaved = tmp_path / "resaved.csv"
    frame[list(reversed(frame.columns))].to_csv(resaved, index=False, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    with resaved.open("a", newline="") as f:
        f.write("\r\n")
    fresh = merchant_frame(300, seed=9)
    oracle = set(zip(frame["description"], frame["category"]))  # the share of rows the model trained on, counted
    for name, holdout in (("resaved", str(resaved)), ("parquet", frame.sample(frac=1.0, random_state=1)),
                          ("mostly", pd.concat([frame.iloc[:200], fresh.iloc[:100]]))):
        path = holdout if isinstance(holdout, str) else str(tmp_path / f"{name}.parquet")
        if not isinstance(holdout, str):
            write_dataset(holdout, path)
        with pytest.raises(DataError) as exc:
            evaluate_model(model.path, path, **gate)
        share = 1.0 if name != "mostly" else sum(r in oracle for r in zip(fresh["description"].iloc[:100],
                                                                         fresh["category"].iloc[:100])) / 300 + 2 / 3
        got = re.match(r"holdout: about (\d+)% of its rows are rows of the model's training data \((\d+) of the "
                       r"(\d+) holdout rows", str(exc.value))
        assert got, str(exc.value)
        assert abs(int(got.group(1)) / 100 - share) <= 0.006  # 300 training rows: the sketch holds them all
        assert "compared by their values in description, category, not by the file's bytes" in str(exc.value)
    holdout = tmp_path / "fresh.parquet"
    write_dataset(fresh, holdout)
    ev = evaluate_model(model.path, str(holdout), **gate)  # a few rows in common by chance pass, and are counted
    seen = ev["holdout"]["seen_rows"]["training"]
    expected = sum(r in oracle for r in zip(fresh["description"], fresh["category"])) / len(fresh)
    assert ev["passed"] and seen["checked"] == len(fresh) and seen["share"] == pytest.approx(expected)
    if seen["found"]:  # the report says what was found
        from kubepipe.components.evaluation.report import render_report

        assert f"{seen['found']} of 300 rows checked are training rows ({expected:.0%})" in render_report(ev)


def test_evaluate_refuses_the_validation_rows_re_saved_as_the_holdout(tmp_path):
    """Early stopping chose the kept epoch on the `validation` rows: gating on them again (re-saved, so other
    bytes) scores the model on the rows it was selected on."""
    from kfp.dsl import HTML, Dataset, Metrics, Model

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import DataError
    from kubepipe.components.evaluation.evaluate import evaluate_model

    data, validation = (Dataset(name=n, uri=str(tmp_path / n)) for n in ("dataset", "validation"))
    write_dataset(merchant_frame(200, seed=8), data)
    held = merchant_frame(80, seed=5)
    write_dataset(held, validation)
    model = Model(name="model", uri=str(tmp_path / "model"))
    train_torch_step(dataset=data, validation=validation, model=model, label_column="category", epochs=1,
                     metrics=Metrics(name="m", uri=str(tmp_path / "m")), curve=HTML(name="c", uri=str(tmp_path / "c")))
    held.sample(frac=1.0, random_state=2).to_csv(tmp_path / "holdout.csv", index=False)
    with pytest.raises(DataError, match=r"^holdout: about 100% of its rows are rows of the model's validation data"):
        evaluate_model(model.path, str(tmp_path / "holdout.csv"), thresholds={"accuracy": {"min": 0}},
                       baseline="none")


def test_evaluate_refuses_tabular_training_rows_re_saved_with_other_float_text(tmp_path):
    """A tabular model's rows written back with 17 significant digits read back 1 ulp off in pandas' CSV parser for
    some values: compared as exact floats, 41% of a re-saved copy of the fraud training data passed as unseen."""
    from types import SimpleNamespace

    from kubepipe.components.errors import DataError
    from kubepipe.components.evaluation.evaluate import evaluate_model

    root = Path(__file__).resolve().parents[2] / "pipelines" / "data"
    frame = pd.read_csv(root / "fraud_train.csv").iloc[:600]
    frame.to_csv(tmp_path / "train.csv", index=False)
    features = [c for c in frame.columns if c != "is_fraud" and frame[c].dtype.kind in "fiu"]
    out = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("model", "curve")}
    train_torch_step(dataset=SimpleNamespace(path=str(tmp_path / "train.csv"), metadata={}), architecture="tabular-mlp",
                     label_column="is_fraud", feature_columns=features, epochs=1,
                     metrics=SimpleNamespace(log_metric=lambda k, v: None), ctx_state_dir=str(tmp_path / "s"), **out)
    frame[list(reversed(frame.columns))].to_csv(tmp_path / "again.csv", index=False, float_format="%.17g")
    with pytest.raises(DataError, match=r"^holdout: about 100% of its rows are rows of the model's training data "
                                        r"\(600 of the 600 holdout rows"):
        evaluate_model(out["model"].path, str(tmp_path / "again.csv"), baseline="none",
                       thresholds={"accuracy": {"min": 0}})
    ev = evaluate_model(out["model"].path, str(root / "fraud_holdout.csv"), baseline="none",
                        thresholds={"accuracy": {"min": 0}})
    assert ev["holdout"]["seen_rows"]["training"]["found"] == 0  # the shipped holdout shares no row with it


def test_the_step_logs_which_epoch_its_validation_scores_and_weights_are(tmp_path, monkeypatch):
    """Without early stopping the model keeps the last epoch's weights and logs its scores, beside best_epoch (the
    epoch of the best score): `val_f1_macro 0.85, best_epoch 1` read as epoch 1's score and weights."""
    from types import SimpleNamespace

    from kubepipe.components.training import loop

    scores = iter([0.9, 0.5, 0.4])
    monkeypatch.setattr(loop, "evaluate", lambda *a, **kw: {"loss": 1.0, "accuracy": 0.5, "f1_macro": next(scores)})
    frame = merchant_frame(200, seed=3)
    frame.to_csv(tmp_path / "train.csv", index=False)
    logged: dict = {}
    out = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("model", "curve")}
    train_torch_step(dataset=SimpleNamespace(path=str(tmp_path / "train.csv"), metadata={}), label_column="category",
                     text_column="description", epochs=3, metrics=SimpleNamespace(log_metric=logged.__setitem__),
                     ctx_state_dir=str(tmp_path / "s"), **out)
    assert (logged["best_epoch"], logged["kept_epoch"], logged["val_f1_macro"]) == (1, 3, 0.4)
    assert "<th>kept epoch (its weights)</th><td>3</td>" in (tmp_path / "curve.html").read_text()


def test_evaluate_takes_a_fair_holdout_of_data_whose_rows_repeat(tmp_path):
    """A table of a few binary features repeats nearly every row, so a fair split's holdout rows are nearly all
    training rows by their values: the row check refused every such holdout. The training rows' own repeats say
    how much overlap chance gives; a copy of them is still refused where they repeat little."""
    from types import SimpleNamespace

    from kubepipe.components.evaluation.evaluate import evaluate_model

    rng = np.random.default_rng(3)

    def table(n):
        a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
        return pd.DataFrame({"a": a.astype(float), "b": b.astype(float), "y": (a ^ b).astype(int)})

    table(400).to_csv(tmp_path / "train.csv", index=False)
    out = {k: SimpleNamespace(path=str(tmp_path / k), metadata={}) for k in ("model", "curve")}
    train_torch_step(dataset=SimpleNamespace(path=str(tmp_path / "train.csv"), metadata={}), architecture="tabular-mlp",
                     label_column="y", feature_columns=["a", "b"], epochs=1,
                     metrics=SimpleNamespace(log_metric=lambda k, v: None), ctx_state_dir=str(tmp_path / "s"), **out)
    table(200).to_csv(tmp_path / "holdout.csv", index=False)
    ev = evaluate_model(out["model"].path, str(tmp_path / "holdout.csv"), baseline="none",
                        thresholds={"accuracy": {"min": 0}})
    seen = ev["holdout"]["seen_rows"]["training"]
    assert seen["share"] == 1.0 and seen["by_chance"] == 1.0  # four distinct rows, each repeated ~100 times
    assert "row_sketch" not in ev["model"]["metadata"] and "data_hash" in ev["model"]["metadata"]  # not copied on
