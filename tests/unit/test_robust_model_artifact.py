"""kubepipe-model.json with wrong field types, and user model classes named by an artifact."""

from __future__ import annotations

import json
import sys

import pytest

torch = pytest.importorskip("torch")

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.training.artifact import ALLOW_USER_MODEL_ENV, load_model, save_model  # noqa: E402
from kubepipe.components.training.encoders import HashingEncoder, TabularEncoder  # noqa: E402
from kubepipe.components.training.models import build_model, resolve_model_class  # noqa: E402

LABELS = ["a", "b"]


def _save(tmp_path, tabular=False):
    enc = TabularEncoder(["x", "y"], mean=[0.0, 0.0], std=[1.0, 1.0]) if tabular else HashingEncoder(buckets=512)
    name = "tabular-mlp" if tabular else "text-classifier"
    torch.manual_seed(0)
    module = build_model(resolve_model_class(name), len(LABELS), enc.spec(), {})
    cols = {"feature_columns": ["x", "y"]} if tabular else {"text_column": "t"}
    return save_model(tmp_path / "model", module, architecture=name, model_kwargs={}, labels=LABELS, encoder=enc,
                      columns=cols)


def _edit(out, path, value):
    f = out / "kubepipe-model.json"
    spec = json.loads(f.read_text())
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    f.write_text(json.dumps(spec))


CASES = [
    (("architecture",), 5, "architecture"),
    (("architecture",), ["text-classifier"], "architecture"),
    (("architecture",), {"a": 1}, "architecture"),
    (("input_spec",), "text", "input_spec"),
    (("input_spec", "feature_columns"), 3, "input_spec.feature_columns"),
    (("input_spec", "text_column"), ["t"], "input_spec.text_column"),
    (("model_kwargs",), [1], "model_kwargs"),
    (("model_kwargs",), "dim=4", "model_kwargs"),
    (("preprocessing",), [1, 2], "preprocessing"),
    (("preprocessing",), "hashed", "preprocessing"),
    (("preprocessing", "encoding"), ["hashed-ngrams"], "preprocessing.encoding"),
    (("preprocessing", "buckets"), "many", "preprocessing.buckets"),
    (("preprocessing", "char_ngrams"), 3, "preprocessing.char_ngrams"),
    (("labels",), [{"x": 1}, "b"], "labels[0]"),
    (("format_version",), True, "format_version"),
    (("task",), ["text-classification"], "task"),
]


@pytest.mark.parametrize("path,value,field", CASES, ids=[f"{'.'.join(c[0])}={c[1]!r}" for c in CASES])
def test_wrong_field_type_is_model_error(tmp_path, path, value, field):
    out = _save(tmp_path)
    _edit(out, path, value)
    with pytest.raises(ModelError) as info:
        load_model(out)
    msg = str(info.value)
    assert "kubepipe-model.json" in msg and field.split("[")[0].split(".")[0] in msg


@pytest.mark.parametrize("path,value,field", [
    (("preprocessing", "feature_columns"), 7, "preprocessing.feature_columns"),
    (("preprocessing", "feature_columns"), "xy", "preprocessing.feature_columns"),
    (("preprocessing", "mean"), [0.0], "preprocessing.mean"),
    (("preprocessing", "std"), "1", "preprocessing.std"),
    (("input_spec", "feature_columns"), "xy", "input_spec.feature_columns"),
    (("input_spec", "num_features"), "2", "input_spec.num_features"),
])
def test_tabular_wrong_types(tmp_path, path, value, field):
    out = _save(tmp_path, tabular=True)
    _edit(out, path, value)
    with pytest.raises(ModelError, match=field.replace(".", r"\.")) as info:
        load_model(out)
    assert "kubepipe-model.json" in str(info.value)


def test_metadata_not_object(tmp_path):
    out = _save(tmp_path)
    (out / "metadata.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="metadata.json"):
        load_model(out)


USER_MODULE = '''
import pathlib
pathlib.Path(__file__).with_name("imported.marker").write_text("yes")
from kubepipe.components.training.models.text_classifier import TextClassifier as Net
'''


@pytest.fixture()
def user_artifact(tmp_path, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    modname = f"robust_user_model_{tmp_path.name.replace('-', '_')}"
    (code / f"{modname}.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.delenv(ALLOW_USER_MODEL_ENV, raising=False)
    out = _save(tmp_path)
    _edit(out, ("architecture",), f"{modname}:Net")
    yield out, code / "imported.marker"
    sys.modules.pop(modname, None)


def test_user_architecture_refused_by_default(user_artifact):
    out, marker = user_artifact
    with pytest.raises(ModelError, match=r"user model class.*--allow-user-model.*KUBEPIPE_ALLOW_USER_MODEL") as info:
        load_model(out)
    assert "kubepipe-model.json" in str(info.value)
    assert not marker.exists()  # the module was never imported


def test_user_architecture_allowed_explicitly(user_artifact):
    out, marker = user_artifact
    model = load_model(out, allow_user_code=True)
    assert marker.exists() and len(model.predict(["hello"])) == 1


def test_user_architecture_allowed_by_env(user_artifact, monkeypatch):
    out, marker = user_artifact
    monkeypatch.setenv(ALLOW_USER_MODEL_ENV, "1")
    assert len(load_model(out).predict(["hello"])) == 1 and marker.exists()


def test_explicit_false_beats_env(user_artifact, monkeypatch):
    out, marker = user_artifact
    monkeypatch.setenv(ALLOW_USER_MODEL_ENV, "1")
    with pytest.raises(ModelError, match="user model class"):
        load_model(out, allow_user_code=False)
    assert not marker.exists()


def test_builtins_always_load(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_USER_MODEL_ENV, raising=False)
    assert load_model(_save(tmp_path), allow_user_code=False).architecture == "text-classifier"


def test_serve_cli_passes_allow_flag(tmp_path, monkeypatch):
    import kubepipe.components.serving.server as server
    from kubepipe.cli.app import main

    seen = {}
    monkeypatch.setattr(server, "main", lambda argv: seen.setdefault("argv", argv) and 0)
    main(["serve", str(tmp_path), "--allow-user-model"])
    assert "--allow-user-model" in seen["argv"]
    assert server.build_parser().parse_args([str(tmp_path), "--allow-user-model"]).allow_user_model
