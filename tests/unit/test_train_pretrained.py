"""`architecture: pretrained-encoder` on a tiny BERT directory: pooling, layer-wise rates, artifact, hashes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.training.artifact import load_model  # noqa: E402
from kubepipe.components.training.config import TrainConfig  # noqa: E402
from kubepipe.components.training.sample_data import merchant_frame  # noqa: E402
from kubepipe.components.training.trainer import train  # noqa: E402
from tiny_bert import make_base_model  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base_model(tmp_path_factory.mktemp("tiny-bert"))


def _cfg(base, **kw):
    hp = {"base_model": str(base), "max_length": 16, "layer_lr_decay": 0.8, **kw.pop("hp", {})}
    return TrainConfig(model="pretrained-encoder", label_column="category", epochs=kw.pop("epochs", 1),
                       batch_size=32, seed=3, learning_rate=3e-3, warmup_fraction=0.1, hyperparameters=hp, **kw)


def test_mean_pooling_matches_a_hand_computed_mean():
    from kubepipe.components.training.models.pretrained_encoder import mean_pool

    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    want = []
    for b in range(2):
        rows = [hidden[b, i].tolist() for i in range(4) if mask[b, i]]
        want.append([sum(r[j] for r in rows) / len(rows) for j in range(3)])
    assert mean_pool(hidden, mask).tolist() == want
    assert mean_pool(hidden, torch.zeros(2, 4)).abs().sum() == 0  # no real token: zeros, not NaN


def test_layer_wise_learning_rates(base):
    from kubepipe.components.training.base_models import resolve_base_model
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

    b = resolve_base_model(str(base))
    model = PretrainedEncoderClassifier(5, {"vocab_size": 10}, config=b.config, layer_lr_decay=0.5)
    groups = model.param_groups(1e-2, 0.01)
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert len(lr_of) == len(names) == sum(len(g["params"]) for g in groups)  # each parameter once
    expect = {"head.weight": 1e-2, "encoder.encoder.layer.1.output.dense.weight": 5e-3,
              "encoder.encoder.layer.0.attention.self.query.weight": 2.5e-3,
              "encoder.embeddings.word_embeddings.weight": 1.25e-3}
    for name, lr in expect.items():
        assert lr_of[id(names[name])] == (pytest.approx(lr), 0.01), name
    assert lr_of[id(names["encoder.embeddings.LayerNorm.weight"])] == (pytest.approx(1.25e-3), 0.0)
    assert lr_of[id(names["head.bias"])] == (pytest.approx(1e-2), 0.0)
    assert groups[0]["lr"] == pytest.approx(1e-2)  # the head first: the trainer logs groups[0]'s rate
    # the trainer's optimizer keeps those rates, scaled by the warm-up/decay schedule
    from kubepipe.components.training.loop import _param_groups, lr_factor

    opt = torch.optim.AdamW(_param_groups(model, 1e-2, 0.01), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor("linear", 2, 10))
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx(sorted(g["lr"] * 0.5 for g in groups))
    opt.step()
    sched.step()
    assert max(g["lr"] for g in opt.param_groups) == pytest.approx(1e-2)


def test_pretrained_weights_are_loaded_and_checked(base, tmp_path):
    from safetensors.torch import load_file

    from kubepipe.components.training.base_models import resolve_base_model
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

    b = resolve_base_model(str(base))
    ref = load_file(str(base / "model.safetensors"))
    for folder in (base, make_base_model(tmp_path / "prefixed", prefix="bert.")):
        b = resolve_base_model(str(folder))
        model = PretrainedEncoderClassifier(3, {}, config=b.config, base_model=b.record())
        model.load_pretrained()
        own = model.encoder.state_dict()
        assert torch.equal(own["encoder.layer.1.output.dense.weight"], ref["encoder.layer.1.output.dense.weight"])
        assert torch.equal(own["embeddings.word_embeddings.weight"], ref["embeddings.word_embeddings.weight"])
    with pytest.raises(ModelError, match="sha256 .* differs from the expected"):
        resolve_base_model(str(base), "0" * 64)
    with pytest.raises(ModelError, match="has no tokenizer.json, model.safetensors; a base model directory holds"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text("{}")
        resolve_base_model(str(tmp_path / "empty"))


def test_fine_tune_save_load_round_trip(base, tmp_path):
    df = merchant_frame(320, seed=4)
    trained = train(df, _cfg(base, epochs=2, hp={"dropout": 0.0}))
    res = trained.result
    assert res["epochs_run"] == 2 and all(math.isfinite(r["train_loss"]) for r in res["history"])
    assert res["history"][-1]["train_loss"] < res["history"][0]["train_loss"]
    out = trained.save(tmp_path / "model")
    assert sorted(p.name for p in out.iterdir()) == ["kubepipe-model.json", "metadata.json", "model.safetensors",
                                                    "tokenizer.json"]
    spec = json.loads((out / "kubepipe-model.json").read_text())
    assert spec["architecture"] == "pretrained-encoder"
    assert spec["preprocessing"]["encoding"] == "wordpiece" and spec["preprocessing"]["tokenizer_file"] == "tokenizer.json"
    import hashlib

    assert spec["weights_sha256"] == hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert spec["model_kwargs"]["base_model"]["weights_sha256"] == hashlib.sha256(
        (base / "model.safetensors").read_bytes()).hexdigest()
    model = load_model(out)
    texts = df["description"].tolist()[:9]
    batch = model.encode(texts)
    assert set(batch) == {"input_ids", "attention_mask"} and batch["input_ids"].shape[1] <= 16
    with torch.no_grad():
        want = trained.module.eval()(batch)
    assert torch.allclose(model.forward(batch), want, atol=1e-6)
    proba = model.predict_proba(texts)
    assert proba.shape == (9, len(model.labels)) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert model.predict(texts) == [model.labels[i] for i in proba.argmax(1)]
    # served in a batch with a longer request: padding changes nothing
    both = model.collate([model.encode(texts[:1]), model.encode(["x " * 40])])
    assert torch.allclose(model.forward(both)[0], model.forward(model.encode(texts[:1]))[0], atol=1e-5)


def test_tampered_weights_or_tokenizer_are_refused(base, tmp_path):
    out = train(merchant_frame(96, seed=1), _cfg(base)).save(tmp_path / "model")
    load_model(out)
    weights = out / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0x01  # a valid file with one weight changed
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=r"model\.safetensors: sha256 .* differs from the .* recorded"):
        load_model(out)
    raw[-3] ^= 0x01
    weights.write_bytes(bytes(raw))
    load_model(out)
    tok = out / "tokenizer.json"
    data = json.loads(tok.read_text())
    data["model"]["vocab"]["zzz"] = len(data["model"]["vocab"])
    tok.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"tokenizer\.json: sha256 .* differs from the recorded"):
        load_model(out)


def test_artifact_tokenizer_file_must_stay_inside_the_model_directory(base, tmp_path):
    out = train(merchant_frame(96, seed=1), _cfg(base)).save(tmp_path / "model")
    spec_file = out / "kubepipe-model.json"
    spec = json.loads(spec_file.read_text())
    spec["preprocessing"]["tokenizer_file"] = str(base / "tokenizer.json")
    spec_file.write_text(json.dumps(spec))
    with pytest.raises(ModelError, match="kubepipe-model.json: preprocessing: .*inside the model directory"):
        load_model(out)


def test_count_tokens_are_tokenizer_tokens_without_specials_or_padding(base, tmp_path):
    from tokenizers import Tokenizer

    out = train(merchant_frame(96, seed=1), _cfg(base)).save(tmp_path / "model")
    model = load_model(out)
    oracle = Tokenizer.from_file(str(base / "tokenizer.json"))  # the library itself, no truncation
    texts = ["STARBUCKS STORE #1234 SEATTLE WA", "", "uber", "x " * 40]
    plain = [len(oracle.encode(t, add_special_tokens=False).ids) for t in texts]
    assert plain[1] == 0 and plain[3] == 40
    want = sum(min(n, 16 - 2) for n in plain)  # max_length 16 holds [CLS] + 14 + [SEP]
    assert model.count_tokens(texts) == want
    batch = model.encode(texts)
    assert int(batch["attention_mask"].sum()) - 2 * len(texts) == want  # = real positions less [CLS]/[SEP]


def test_bad_settings_are_named(base):
    with pytest.raises(ModelError, match="exceeds the base model's 64 positions"):
        train(merchant_frame(64, seed=1), _cfg(base, hp={"max_length": 128}))
    with pytest.raises(ModelError, match="no hyperparameter 'depth'"):
        train(merchant_frame(64, seed=1), _cfg(base, hp={"depth": 3}))
    with pytest.raises(ModelError, match="not a directory"):
        train(merchant_frame(64, seed=1), _cfg(base, hp={"base_model": str(base / "nope")}))
    # the cause, not the base model's resolved config (dozens of keys and a cache path) before it
    with pytest.raises(ModelError) as exc:
        train(merchant_frame(64, seed=1), _cfg(base, hp={"layer_lr_decay": 0}))
    assert str(exc.value) == ("model 'pretrained-encoder' could not be built with {'layer_lr_decay': 0, 'config': "
                              "{...}, 'base_model': {...}}: ValueError: layer_lr_decay must be in (0, 1], got 0")


def test_step_checks_and_the_path_rule_for_base_model(tmp_path, monkeypatch):
    import kubepipe
    from kubepipe.components.training.checks import check_train

    issues = check_train({"architecture": "pretrained-encoder", "base_model_sha256": "abc",
                          "hyperparameters": {"base_model": "x", "max_length": 1000, "layer_lr_decay": 0}})
    assert sorted(i.path for i in issues) == [("base_model_sha256",), ("hyperparameters", "base_model"),
                                              ("hyperparameters", "layer_lr_decay"), ("hyperparameters", "max_length")]
    assert "move it up" in next(i.hint for i in issues if i.path == ("hyperparameters", "base_model"))
    assert [i.path for i in check_train({"architecture": "text-classifier", "base_model": "package:x"})] == [
        ("base_model",)]
    assert check_train({"architecture": "pretrained-encoder", "base_model": "package:all-minilm-l6-v2",
                        "hyperparameters": {"max_length": 32, "layer_lr_decay": 0.9, "dropout": 0.1}}) == []
    folder = tmp_path / "project"
    (folder / "models").mkdir(parents=True)
    pipeline = folder / "p.yaml"
    pipeline.write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: p}\nsteps:\n"
        "  load: {component: load-data, with: {source: gs://b/train.csv}}\n"
        "  train:\n    component: train-torch\n    inputs: {dataset: '${steps.load.outputs.dataset}'}\n"
        "    with: {architecture: pretrained-encoder, base_model: models/minilm}\n")
    monkeypatch.chdir(tmp_path)
    local = kubepipe.compile(pipeline, "local").ir_yaml
    assert "project/models/minilm" in local  # next to the pipeline file, not the working directory
    profile = Path(__file__).resolve().parents[1] / "golden" / "profiles" / "kubeflow.yaml"
    with pytest.raises(kubepipe.ValidationError, match="`base_model` is a local path on this machine"):
        kubepipe.compile(pipeline, "kubeflow", profile=profile)
    pipeline.write_text(pipeline.read_text().replace("models/minilm", "package:all-minilm-l6-v2"))
    assert "package:all-minilm-l6-v2" in kubepipe.compile(pipeline, "kubeflow", profile=profile).ir_yaml


def test_bf16_autocast_fine_tune_keeps_loss_and_weights_float32(base):
    """precision: bf16 on CPU, as on a GPU: the encoder's matmuls run in bf16, loss and weights stay float32."""
    from kubepipe.components.training.base_models import resolve_base_model
    from kubepipe.components.training.encoders import WordPieceEncoder
    from kubepipe.components.training.models.pretrained_encoder import PretrainedEncoderClassifier

    b = resolve_base_model(str(base))
    model = PretrainedEncoderClassifier(4, {}, config=b.config, base_model=b.record())
    model.load_pretrained()
    batch = {k: torch.from_numpy(v) for k, v in
             WordPieceEncoder(str(b.tokenizer_file), max_length=16).encode(["uber trip", "starbucks store"]).items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(batch)
    assert logits.dtype == torch.bfloat16  # the matmuls ran in bf16 ...
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1]))
    loss.backward()
    assert loss.dtype == torch.float32 and all(p.grad is None or p.grad.dtype == torch.float32
                                               for p in model.parameters())  # ... the loss and gradients not
    trained = train(merchant_frame(128, seed=2), _cfg(base, epochs=2, precision="bf16"))
    assert trained.result["precision"] == "bf16"
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in trained.result["history"])
    assert all(v.dtype == torch.float32 for v in trained.module.state_dict().values() if v.is_floating_point())


def test_batches_are_cut_to_their_own_longest_row(base, monkeypatch):
    """The data set is padded to its longest row once; a batch of short rows must not carry that padding
    into the encoder (compute spent on nothing)."""
    from transformers import BertModel

    df = merchant_frame(96, seed=1)
    df.loc[0, "description"] = "starbucks " * 70  # one row reaches max_length (60); the others are far shorter
    seen = []  # (width of input_ids, longest real row) of every encoder call
    original = BertModel.forward

    def spy(self, *args, **kwargs):
        mask = kwargs["attention_mask"]  # [B, L], or [B, 1, 1, L] as the model passes it to transformers 5
        seen.append((int(kwargs["input_ids"].shape[1]), int(mask.reshape(mask.shape[0], -1).sum(dim=1).max())))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertModel, "forward", spy)
    train(df, _cfg(base, hp={"dropout": 0.0, "max_length": 60}))
    assert seen and all(width == longest for width, longest in seen)  # no batch wider than its longest row
    assert min(w for w, _ in seen) < 40 and max(w for w, _ in seen) == 60  # only row 0's batch ran at 60
