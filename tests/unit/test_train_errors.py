"""Bad input to train-torch: each a clear error naming the cause (no traceback needed)."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.usefixtures("ddp_forkserver_stopped")  # its DDP forkserver ends with this module

from kubepipe.components.errors import DataError, ModelError  # noqa: E402
from kubepipe.components.training.checks import check_train  # noqa: E402
from kubepipe.components.training.config import TrainConfig  # noqa: E402
from kubepipe.components.training.loop import TrainingError  # noqa: E402
from kubepipe.components.training.sample_data import merchant_frame  # noqa: E402
from kubepipe.components.training.trainer import _apply_trainer_keys, train  # noqa: E402

USER_MODELS = textwrap.dedent('''
    import os

    import torch
    from torch import nn

    class Tiny(nn.Module):
        encoding = "bytes"
        def __init__(self, num_labels: int, input_spec: dict, width: int = 8):
            super().__init__()
            self.emb = nn.EmbeddingBag(input_spec["vocab_size"], width, padding_idx=0)
            self.out = nn.Linear(width, num_labels)
        def forward(self, batch):
            return self.out(self.emb(batch["ids"]))

    class GoesNaN(Tiny):
        def __init__(self, num_labels, input_spec, after: int = 3):
            super().__init__(num_labels, input_spec)
            self.after, self.calls = after, 0
        def forward(self, batch):
            self.calls += self.training
            out = super().forward(batch)
            return out * float("nan") if self.calls > self.after else out

    class EnvProbe(Tiny):  # builds in the parent; in a DDP worker (RANK set) fails naming a variable's value
        def __init__(self, num_labels, input_spec):
            super().__init__(num_labels, input_spec)
            if "RANK" in os.environ:
                raise RuntimeError("probe=" + os.environ.get("KUBEPIPE_TEST_PROBE", "unset"))

    class WrongSignature(nn.Module):
        def __init__(self, n_classes):
            super().__init__()

    class Explodes(nn.Module):
        def __init__(self, num_labels, input_spec):
            raise RuntimeError("out of cheese")

    class NotAModule:
        def __init__(self, num_labels, input_spec):
            pass

    not_a_class = 3
''')


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(USER_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.set_num_threads(1)
    return "my_models"


def _cfg(**kw):
    base = dict(label_column="category", epochs=1, hyperparameters={})
    return TrainConfig(**{**base, **kw})


def test_empty_dataset():
    with pytest.raises(DataError, match=r"dataset: the training dataset is empty \(0 rows\)"):
        train(merchant_frame(10).iloc[:0], _cfg())


def test_missing_label_column_suggests_the_near_one():
    with pytest.raises(DataError, match=r"label column 'categroy' not found.*did you mean `category`"):
        train(merchant_frame(20), _cfg(label_column="categroy"))


def test_ambiguous_text_column_and_single_class():
    df = merchant_frame(20).assign(note="x")
    with pytest.raises(DataError, match=r"cannot tell which column holds the text.*set `text_column`"):
        train(df, _cfg())
    with pytest.raises(DataError, match="has one class"):
        train(merchant_frame(20).assign(category="dining"), _cfg())


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_text_column_with_no_text_in_any_row_is_named(blank):
    """It trained: a model reading nothing, whose val_f1_macro was the label frequencies'."""
    df = merchant_frame(40).assign(description=blank)
    with pytest.raises(DataError, match=r"^dataset: text column `description` is empty in all 40 row\(s\); check the "
                                        r"upstream step's output, or set `text_column`"):
        train(df, _cfg(text_column="description"))
    df.loc[3, "description"] = "STARBUCKS"  # one row of text is a (poor) training set, not an error
    train(df, _cfg(text_column="description"))


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_validation_text_column_with_no_text_in_any_row_is_named(blank):
    """The training rows were checked, the validation rows not: val_loss, val_f1_macro and the kept epoch were
    scored on empty texts (the label frequencies), as evaluate refuses for a holdout."""
    val = merchant_frame(20, seed=1).assign(description=blank)
    with pytest.raises(DataError) as exc:
        train(merchant_frame(40), _cfg(text_column="description"), val_df=val)
    assert str(exc.value) == ("validation: text column `description` is empty in all 20 row(s); check the step that "
                              "makes the validation dataset")


@pytest.mark.parametrize("ref,message", [
    ("no_such_module_xyz:Model", "cannot import module `no_such_module_xyz`: ModuleNotFoundError"),
    ("my_models:Missing", "module `my_models` has no attribute `Missing`"),
    ("my_models:not_a_class", "`not_a_class` is not a class"),
    ("my_models:WrongSignature", r"constructor is WrongSignature\(n_classes\); a kubepipe model needs "
                                 r"__init__\(self, num_labels: int, input_spec: dict, \*\*hyperparameters\)"),
    ("my_models:Explodes", "could not be built with {}: RuntimeError: out of cheese"),
    ("my_models:NotAModule", "is not a torch.nn.Module"),
    ("text-clasifier", "did you mean `text-classifier`"),
])
def test_bad_user_model(user_models, ref, message):
    with pytest.raises(ModelError, match=message):
        train(merchant_frame(30), _cfg(model=ref))


def test_unknown_hyperparameter_and_bad_setting():
    with pytest.raises(ModelError, match=r"no hyperparameter 'dimm'.*did you mean `dim`"):
        train(merchant_frame(30), _cfg(hyperparameters={"dimm": 8}))
    with pytest.raises(ModelError, match=r"`epochs` must be an integer >= 1, got 0"):
        train(merchant_frame(30), _cfg(epochs=0))
    with pytest.raises(ModelError, match=r"`lr_schedule` must be one of"):
        train(merchant_frame(30), _cfg(hyperparameters={"warmup_fraction": 0.1}, lr_schedule="cosin"))


@pytest.mark.parametrize("model,hp,message", [
    # each crashed mid-training (OverflowError, IndexError, an embedding id past its table) or trained a model
    # that reads nothing (max_features 0, bytes max_length 1)
    ("text-classifier", {"buckets": 0}, r"`buckets` must be an integer >= 2 \(ids 1..buckets-1; 0 pads\), got 0"),
    ("text-classifier", {"buckets": 1}, r"`buckets` must be an integer >= 2"),
    ("text-classifier", {"char_ngrams": [3]}, r"`char_ngrams` must be \[shortest, longest\] with 1 <= shortest"),
    ("text-classifier", {"char_ngrams": [0, 0]}, r"`char_ngrams` must be .* got \[0, 0\]"),
    ("text-classifier", {"max_features": 0}, r"`max_features` must be an integer >= 1 \(n-grams kept per text\)"),
    ("transformer-classifier", {"max_length": 1}, r"`max_length` must be an integer >= 2 \(room for \[CLS\] and"),
    ("my_models:Tiny", {"max_length": 0}, r"`max_length` must be an integer >= 2"),  # a user model's encoding too
])
def test_bad_preprocessing_hyperparameters_are_named(user_models, model, hp, message):
    with pytest.raises(ModelError, match="^hyperparameters: " + message):
        train(merchant_frame(30), _cfg(model=model, hyperparameters=hp))
    if ":" not in model:  # and `kubepipe validate` locates them
        (issue,) = check_train({"architecture": model, "hyperparameters": hp})
        assert issue.path == ("hyperparameters", next(iter(hp))) and issue.message.startswith(f"`{next(iter(hp))}`")


def test_preprocessing_hyperparameters_as_kfp_carries_them_pass():
    assert check_train({"architecture": "text-classifier", "hyperparameters": {
        "buckets": 1024.0, "char_ngrams": [2, 4], "max_features": "${params.k}", "word_ngrams": 0}}) == []
    trained = train(merchant_frame(30), _cfg(hyperparameters={"buckets": 1024.0, "char_ngrams": [2.0, 4.0]}))
    assert trained.encoder.state()["buckets"] == 1024


@pytest.mark.parametrize("seed", [-1, 2**70])
def test_a_seed_the_generators_refuse_is_named(seed):
    """-1 failed as 'bad preprocessing hyperparameters {}: expected non-negative integer', 2**70 as a bare
    'ValueError: Overflow when unpacking long long'."""
    want = f"`seed` must be an integer from 0 to {2**63 - 1}, got {seed}"
    with pytest.raises(ModelError, match=f"^{want}$"):
        train(merchant_frame(30), _cfg(seed=seed))
    assert [(i.path, i.message) for i in check_train({"seed": seed})] == [(("seed",), want)]


def test_early_stopping_without_validation_rows_is_named():
    """It trained every epoch and kept the last, as if `early_stopping_patience` were not set."""
    with pytest.raises(DataError, match=r"^early_stopping_patience 2 needs validation rows, and validation_fraction "
                                        r"0.0 holds out no row of the dataset; give a `validation` dataset, raise"):
        train(merchant_frame(60), _cfg(epochs=3, early_stopping_patience=2, validation_fraction=0.0))
    train(merchant_frame(60), _cfg(epochs=2, validation_fraction=0.0))  # without early stopping: fine


@pytest.mark.parametrize("patience", [2, 0])
@pytest.mark.parametrize("rows,why", [
    (lambda f: f.assign(category="a-label-never-trained"), "its labels ['a-label-never-trained'] are none of the "
                                                           "training data's ['dining', 'entertainment', "),
    (lambda f: f.assign(category=""), "every row's 'category' is empty"),
    (lambda f: f.iloc[:0], "it has no rows"),
])
def test_a_validation_dataset_with_no_row_to_score_is_refused(patience, rows, why):
    """Without early stopping it trained on with a warning alone, and no validation score at all."""
    with pytest.raises(DataError) as exc:
        train(merchant_frame(60), _cfg(epochs=2, early_stopping_patience=patience), val_df=rows(merchant_frame(20)))
    assert str(exc.value).startswith(f"validation: no validation row to score: {why}")
    assert str(exc.value).endswith("; wire held-out rows of the training classes as `validation`, or leave it out "
                                   "to hold out `validation_fraction` of the dataset")


def test_the_label_as_the_models_input_is_named():
    """`text_column: category, label_column: category` (a copy-paste) trained to val_f1_macro 1.0 on its answer."""
    leak = "`text_column` and `label_column` are both 'category': the model would read its answer"
    with pytest.raises(ModelError, match=f"^{leak}"):
        train(merchant_frame(60), _cfg(text_column="category"))
    assert [(i.path, i.message[:len(leak)]) for i in check_train({"text_column": "category", "label_column": "category"})] \
        == [(("text_column",), leak)]
    assert check_train({"text_column": "label"})[0].path == ("text_column",)  # the default label column
    assert check_train({"text_column": "label", "label_column": "${params.label}"}) == []  # known at run time
    (tab,) = check_train({"architecture": "tabular-mlp", "feature_columns": ["amount", "label"]})
    assert tab.path == ("feature_columns",) and tab.message.startswith("`feature_columns` holds the label column 'label'")


def test_nan_loss_names_epoch_and_step(user_models):
    with pytest.raises(TrainingError, match=r"training loss became nan at epoch 1, step 4 of \d+: lower `learning_rate`"):
        train(merchant_frame(400), _cfg(model="my_models:GoesNaN", batch_size=32))


def test_nan_loss_in_a_ddp_worker_comes_back_clean(user_models):
    with pytest.raises(TrainingError, match=r"training loss became nan at epoch 1, step 4"):
        train(merchant_frame(400), _cfg(model="my_models:GoesNaN", batch_size=32), num_procs=2, backend="gloo")


def test_ddp_workers_see_the_environment_of_each_launch(user_models, monkeypatch):
    """Workers fork from a server that outlives one launch: each must still get the parent's environment now."""
    for value in ("first", "second"):
        monkeypatch.setenv("KUBEPIPE_TEST_PROBE", value)
        with pytest.raises(ModelError, match=f"could not be built with {{}}: RuntimeError: probe={value}$"):
            train(merchant_frame(64), _cfg(model="my_models:EnvProbe"), num_procs=2, backend="gloo")


def test_user_model_trains_and_loads(user_models, tmp_path):
    from kubepipe.components.training.artifact import load_model

    trained = train(merchant_frame(200), _cfg(model="my_models:Tiny", epochs=2, hyperparameters={"width": 4,
                                                                                                 "max_length": 16}))
    trained.save(tmp_path / "m")
    model = load_model(tmp_path / "m")
    assert model.architecture == "my_models:Tiny" and model.input_spec["encoding"] == "bytes"
    assert len(model.predict(["STARBUCKS"])) == 1


def test_check_reports_every_problem_without_torch():
    issues = {i.path: i for i in check_train({
        "model": "text-classifier", "architecture": "transformer-clasifier", "epochs": -1, "batch_size": "big",
        "lr_schedule": "step", "num_gpus": 1.5, "validation_fraction": 0.95})}
    assert set(issues) == {("model",), ("architecture",), ("epochs",), ("batch_size",), ("lr_schedule",),
                           ("num_gpus",), ("validation_fraction",)}
    assert issues[("architecture",)].hint == "did you mean `transformer-classifier`?"
    assert issues[("model",)].hint == "rename `model:` to `architecture:`"
    hp = check_train({"architecture": "text-classifier", "hyperparameters": {"bucket": 10, "dim": 8, "warmup_fraction": 0.1}})
    assert [(i.path, i.hint) for i in hp] == [(("hyperparameters", "bucket"), "did you mean `buckets`?")]
    assert check_train({"architecture": "tabular-mlp", "text_column": "d"})[0].path == ("text_column",)
    assert check_train({"architecture": "my_pkg.models:Net", "epochs": "${params.epochs}", "learning_rate": 0}) == []


def test_check_registered_and_light():
    import subprocess
    import sys

    code = ("import sys; from kubepipe.components.builtins import BUILTINS; import importlib; "
            "b = BUILTINS['train-torch']; m, f = b.check.split(':'); "
            "getattr(importlib.import_module(m), f)({'architecture': 'text-classifier'}); "
            "print(sorted(x for x in ('torch', 'pandas', 'numpy') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_int_hyperparameters_given_as_kfp_carries_them_build_as_ints():
    """A hand-written KFP pipeline's `hyperparameters={"layers": 1}` arrives as 1.0 (KFP's Struct), a channel
    inside it as "2.0": the model is built with the ints its constructor declares."""
    from kubepipe.components.training.models import build_model
    from kubepipe.components.training.models.tabular_mlp import TabularMLP

    model = build_model(TabularMLP, 2, {"num_features": 3, "encoding": "tabular"},
                        {"layers": 1.0, "hidden": "16.0", "dropout": "0.25"})
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(16, 3), (2, 16)]
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.25]
    # a trainer knob inside the mapping, likewise (a dict param arrives as KFP's Struct: floats)
    cfg = _apply_trainer_keys(_cfg(hyperparameters={"checkpoint_every_steps": 100.0, "warmup_fraction": "0.1",
                                                     "dim": 8}))
    assert (cfg.checkpoint_every_steps, cfg.warmup_fraction, cfg.hyperparameters) == (100, 0.1, {"dim": 8})
    assert type(cfg.checkpoint_every_steps) is int
    with pytest.raises(ModelError, match=r"`checkpoint_every_steps` must be an integer >= 0, got 1.5"):
        _apply_trainer_keys(_cfg(hyperparameters={"checkpoint_every_steps": 1.5}))
    with pytest.raises(ModelError, match=r"could not be built with \{'layers': 1.5\}"):
        build_model(TabularMLP, 2, {"num_features": 3, "encoding": "tabular"}, {"layers": 1.5})


def test_a_failure_encoding_the_rows_is_not_blamed_on_the_hyperparameters(monkeypatch):
    # any TypeError/ValueError while preparing the data read 'bad preprocessing hyperparameters {}: ...'
    from kubepipe.components.training import encoders

    def broken(self, texts):
        raise ValueError("cannot encode row 3")

    monkeypatch.setattr(encoders.ENCODINGS["hashed-ngrams"], "encode", broken)
    with pytest.raises(ModelError) as exc:
        train(merchant_frame(40), _cfg())
    assert str(exc.value) == "preparing the training data failed: ValueError: cannot encode row 3"


def test_labels_that_differ_only_in_surrounding_spaces_are_named_not_trained_as_two_classes():
    # 'fuel' and 'fuel ' trained as two classes, splitting fuel's rows between them
    df = merchant_frame(60)
    first = df["category"].iloc[0]
    df.loc[df.index[:5], "category"] = first + " "
    df.loc[df.index[5:10], "category"] = first
    with pytest.raises(DataError, match=rf"holds '{first}' and '{first} ', which differ only in spaces"):
        train(df, _cfg())


def test_a_trainer_setting_given_twice_is_named():
    # `early_stopping_metric: val_loss` at the top and `val_f1_macro` in hyperparameters: the latter won silently
    issues = check_train({"label_column": "category", "early_stopping_metric": "val_loss",
                          "hyperparameters": {"early_stopping_metric": "val_f1_macro"}})
    assert [(i.path, i.message) for i in issues] == [
        (("hyperparameters", "early_stopping_metric"), "`early_stopping_metric` is given twice, as a step setting "
                                                        "and inside `hyperparameters` (which would win)")]
    assert check_train({"label_column": "category", "hyperparameters": {"early_stopping_metric": "val_loss"}}) == []


def test_trainer_knobs_inside_hyperparameters_are_checked_by_validate():
    # the only place for them (train-torch has no warmup_fraction input): they passed validate and stopped the
    # train step after the data had loaded
    issues = check_train({"architecture": "pretrained-encoder", "hyperparameters": {
        "warmup_fraction": 2, "precision": "fp16", "max_grad_norm": -1, "checkpoint_every_steps": "${params.n}"}})
    assert [(i.path, i.message) for i in issues] == [
        (("hyperparameters", "warmup_fraction"), "`warmup_fraction` must be a number in [0, 1], got 2"),
        (("hyperparameters", "max_grad_norm"), "`max_grad_norm` must be a number in [0, 1000000000.0], got -1"),
        (("hyperparameters", "precision"), "`precision` must be one of ['auto', 'fp32', 'bf16'], got 'fp16'")]
    # as KFP carries them (2 -> 2.0): what the trainer takes, validate takes
    assert check_train({"hyperparameters": {"checkpoint_every_steps": 5.0, "warmup_fraction": 0.1}}) == []


def test_a_label_smoothing_of_one_is_refused_by_validate():
    # every smoothed target is then uniform: it trained a model that predicts no label, and the step succeeded
    issues = check_train({"architecture": "tabular-mlp", "hyperparameters": {"label_smoothing": 1}})
    assert [(i.path, i.message.split(":")[0]) for i in issues] == [
        (("hyperparameters", "label_smoothing"), "`label_smoothing` 1 makes every target uniform")]
    assert "it must be in [0, 1)" in issues[0].message
    assert check_train({"architecture": "tabular-mlp", "hyperparameters": {"label_smoothing": 0.99}}) == []


@pytest.mark.parametrize("arch", ["text-classifier", "transformer-classifier", "pretrained-encoder"])
def test_a_dropout_that_drops_everything_is_refused_not_trained(arch):
    # dropout 1 (nn.Dropout takes it) zeroed every activation: a model at chance level (val F1 0.06), trained
    # without a word
    want = ("`dropout` must be a number in [0, 1) (the share of activations dropped while training; 1 drops them "
            "all), got 1")
    assert [(i.path, i.message) for i in check_train({"architecture": arch, "hyperparameters": {"dropout": 1}})] == [
        (("hyperparameters", "dropout"), want)]
    assert check_train({"architecture": arch, "hyperparameters": {"dropout": 0.3}}) == []
    if arch == "text-classifier":  # the trainer says it alike, before reading any row
        with pytest.raises(ModelError, match=r"^hyperparameters: `dropout` must be a number in \[0, 1\)"):
            train(merchant_frame(16, seed=1), _cfg(hyperparameters={"dropout": 1.0}))


def test_model_sizes_that_build_nothing_or_crash_are_refused_by_validate_and_the_trainer():
    # layers -1 built a transformer with no block (range(-1)) and trained it without a word; heads 0 stopped the
    # step with 'ZeroDivisionError: integer modulo by zero'; a tabular hidden 0 built a constant model
    said = {(arch, i.path[-1]): i.message for arch, hp in (
        ("transformer-classifier", {"layers": -1, "heads": 0}), ("tabular-mlp", {"hidden": 0}), ("text-classifier", {"dim": 0}))
        for i in check_train({"architecture": arch, "hyperparameters": hp})}
    assert said == {
        ("transformer-classifier", "layers"): "`layers` must be an integer >= 0 (transformer blocks), got -1",
        ("transformer-classifier", "heads"): "`heads` must be an integer >= 1 (attention heads), got 0",
        ("tabular-mlp", "hidden"): "`hidden` must be an integer >= 1 (layer width), got 0",
        ("text-classifier", "dim"): "`dim` must be an integer >= 1 (embedding width), got 0"}
    assert [i.message for i in check_train({"architecture": "transformer-classifier",
                                            "hyperparameters": {"heads": 3}})] == [
        "`d_model` (128) must be a multiple of `heads` (3): each head reads d_model / heads dimensions"]
    assert check_train({"architecture": "transformer-classifier", "hyperparameters": {
        "d_model": 32.0, "heads": 4, "layers": 0, "ff_mult": "${params.ff}"}}) == []  # as KFP carries them
    with pytest.raises(ModelError, match=r"^hyperparameters: `layers` must be an integer >= 0"):
        train(merchant_frame(16, seed=1), _cfg(model="transformer-classifier", hyperparameters={"layers": -1}))


def test_a_validation_row_that_overflows_float32_is_named_not_a_nan_val_loss():
    """A validation value in the wrong units (1e300) was encoded as NaN: val_loss was NaN every epoch (and in
    metadata.json), and early stopping on it never found a best epoch; it is named as evaluate names it."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    df = pd.DataFrame({"a": x, "b": rng.normal(size=120), "label": np.where(x > 0, "y", "n")})
    val = df.iloc[:30].copy()
    val.loc[7, "b"] = 1e300
    cfg = _cfg(model="tabular-mlp", feature_columns=["a", "b"], label_column="label", text_column=None)
    with pytest.raises(DataError) as exc:
        train(df, cfg, val_df=val)
    assert str(exc.value).startswith("validation: row 7 (1 row(s) in all): `b` = 1e+300 is ")
    assert str(exc.value).endswith("standard deviations from its training mean, too far for the model's float32; "
                                   "check its units; fix the value or drop the row upstream")


@pytest.mark.parametrize("value,why", [
    (1e300, "row 7 holds 1e+300, which makes the column's variance overflow float64"),
    (-1e300, "row 7 holds -1e+300, which makes the column's variance overflow float64"),
])
def test_a_training_feature_one_value_scales_to_zeros_is_refused(value, why):
    """A training value of 1e300 made `b`'s std float64's largest: every standardised `b` ~1e-9, the column
    trained as zeros, unsaid. It is refused naming the column, the row and the value."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    df = pd.DataFrame({"a": x, "b": rng.normal(size=120), "label": np.where(x > 0, "y", "n")})
    df.loc[7, "b"] = value
    cfg = _cfg(model="tabular-mlp", feature_columns=["a", "b"], label_column="label", text_column=None,
               validation_fraction=0.0, epochs=1)
    with pytest.raises(DataError) as exc:
        train(df, cfg)
    assert str(exc.value) == (f"dataset: feature column 'b': {why}; the model would read the whole column as ~0: "
                              "fix the value (its units?) or drop the row upstream, or rescale the column")
    df["b"] = np.arange(120) * 1e-20  # a spread under 1e-12 is not scaled up: every value ~0
    with pytest.raises(DataError, match=r"^dataset: feature column 'b': its values spread by less than 1e-12 \(row "
                                        r"119 holds 1\.19e-18\), too little to standardise; "):
        train(df, cfg)
    df["b"] = 3.0  # a constant column: nothing to lose
    train(df, cfg)


@pytest.mark.parametrize("value", [1e150, -1e150, 1e12])
def test_a_training_feature_one_far_value_flattens_to_a_flag_is_refused(value):
    """A finite value far from the rest (1e150 among values near 1) passed the overflow check, yet its std
    (~1e149) standardised every other row of `b` to one float32 value: the column trained as a 0/1 flag for that
    row, unsaid. It is refused naming the column, the row and the value, as the other degenerate features."""
    import numpy as np

    from kubepipe.components.training.encoders import TabularEncoder

    rng = np.random.default_rng(0)
    x = rng.normal(size=120)
    df = pd.DataFrame({"a": x, "b": rng.normal(size=120), "label": np.where(x > 0, "y", "n")})
    df.loc[7, "b"] = value
    enc = TabularEncoder(["a", "b"]).fit(df)
    assert len(np.unique(np.delete(enc.encode(df)["x"][:, 1], 7))) == 1  # what it trained on: one value but row 7
    cfg = _cfg(model="tabular-mlp", feature_columns=["a", "b"], label_column="label", text_column=None,
               validation_fraction=0.0, epochs=1)
    with pytest.raises(DataError) as exc:
        train(df, cfg)
    assert str(exc.value).startswith(f"dataset: feature column 'b': row 7 holds {value:g}, so far from the column's "
                                     "other values that standardising it (std ")
    assert str(exc.value).endswith("maps the middle half of them to one value; the model would read the column as a "
                                   "flag for that row alone: fix the value (its units?) or drop the row upstream, or "
                                   "rescale the column (log, clip)")
    df.loc[7, "b"] = 1e4  # far, but the others keep their spread: it trains
    train(df, cfg)


def test_a_model_too_large_for_memory_names_the_preprocessing_size_that_made_it():
    """`hyperparameters: {buckets: 10000000000000}` validated, and training said only 'could not be built with {}:
    ... can't allocate memory': buckets is a preprocessing setting, no model hyperparameter, so nothing named it."""
    with pytest.raises(ModelError) as exc:
        train(merchant_frame(40), _cfg(hyperparameters={"buckets": 10**13}))
    assert str(exc.value).startswith("model 'text-classifier' could not be built with {}: RuntimeError: ")
    assert str(exc.value).endswith("; the model is too large for this machine's memory: its input is vocab_size "
                                   "10000000000000, max_length 256 (vocab_size is `buckets` of a hashed-ngrams "
                                   "model): lower it, or the model's width, in `hyperparameters`")


def test_a_label_column_empty_in_every_row_says_what_to_set():
    """It said only 'every row has an empty label column', no way out (a wrong `label_column`, most often)."""
    with pytest.raises(DataError) as exc:
        train(merchant_frame(20).assign(category=""), _cfg())
    assert str(exc.value) == ("dataset: label column 'category' is empty in all 20 row(s); set `label_column` to the "
                              "column that holds the classes, or check the upstream step's output")
