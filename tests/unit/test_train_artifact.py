"""Model artifact round trip, preprocessing, and clear errors for broken artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.training.artifact import load_model, save_model  # noqa: E402
from kubepipe.components.training.encoders import ByteEncoder, HashingEncoder, TabularEncoder  # noqa: E402
from kubepipe.components.training.hashing import HashingSpec, hash_ngrams, normalise  # noqa: E402
from kubepipe.components.training.models import build_model, resolve_model_class  # noqa: E402

LABELS = ["groceries", "travel", "dining"]


def _save(tmp_path, name="text-classifier", encoder=None, kwargs=None, columns=None):
    encoder = encoder or HashingEncoder(buckets=4096)
    kwargs = kwargs if kwargs is not None else {}
    torch.manual_seed(0)
    module = build_model(resolve_model_class(name), len(LABELS), encoder.spec(), kwargs)
    out = save_model(tmp_path / "model", module, architecture=name, model_kwargs=kwargs, labels=LABELS,
                     encoder=encoder, columns=columns or {"text_column": "description"},
                     metadata={"data_hash": "abc"})
    return out, module


def test_round_trip_gives_identical_logits(tmp_path):
    out, module = _save(tmp_path)
    loaded = load_model(out)
    texts = ["WHOLEFDS MKT #10234", "UNITED AIRLINES 0162", "", "Café Noir"]
    batch = loaded.encode(texts)
    with torch.no_grad():
        expect = module.eval()(batch)
    assert torch.equal(loaded.forward(batch), expect)
    proba = loaded.predict_proba(texts)
    assert proba.shape == (4, 3) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert loaded.predict(texts) == [LABELS[i] for i in proba.argmax(axis=1)]
    assert loaded.task == "text-classification" and loaded.labels == LABELS
    assert loaded.input_spec["text_column"] == "description" and loaded.metadata["data_hash"] == "abc"
    assert loaded.count_tokens(texts) == 3 + 3 + 0 + 2


@pytest.mark.parametrize("max_features,char_ngrams", [(256, (3, 5)), (16, (3, 5)), (7, (4, 4)), (2, (9, 9))])
def test_hashed_tokens_are_the_words_the_kept_ngrams_reach(max_features, char_ngrams):
    """count_tokens counted every whitespace word, also those past `max_features` n-grams that the model never
    reads: a 300-word text was 300 tokens, while its first 256 character 3-grams reach 86 words. Oracle: the
    fewest leading words whose ids are the whole text's (the words the model reads)."""
    enc = HashingEncoder(buckets=1 << 30, word_ngrams=2, char_ngrams=char_ngrams, max_features=max_features)
    long = " ".join(f"w{i:03d}" for i in range(300))
    texts = [long, "Café Noir, 12 rue de l'été", "a", "", "!!!", "x y", "STARBUCKS STORE #1234 SEATTLE WA " * 9]

    def read(text):
        words, full = normalise(text).split(), hash_ngrams([text], enc.hashing)
        return next(k for k in range(len(words) + 1)
                    if np.array_equal(hash_ngrams([" ".join(words[:k])], enc.hashing), full))

    assert [enc.count_tokens([t]) for t in texts] == [read(t) for t in texts]
    assert enc.count_tokens(texts) == sum(map(read, texts))
    encoded, tokens = enc.encode_counted(texts)  # the server's pass: one normalisation for both
    assert tokens == sum(map(read, texts)) and np.array_equal(encoded["ids"], enc.encode(texts)["ids"])
    if max_features == 256:
        assert enc.count_tokens([long]) == 86  # `w0` once normalised: 3 bytes a word, 258 bytes read


@pytest.mark.parametrize("name,encoder,columns", [
    ("transformer-classifier", ByteEncoder(max_length=32), {"text_column": "t"}),
    ("tabular-mlp", TabularEncoder(["a", "b"], mean=[1.0, 2.0], std=[2.0, 4.0]), {"feature_columns": ["a", "b"]}),
])
def test_other_builtins_round_trip(tmp_path, name, encoder, columns):
    out, module = _save(tmp_path, name, encoder, columns=columns)
    loaded = load_model(out)
    inputs = ["abc", "a much longer merchant string"] if encoder.encoding == "bytes" else [{"a": 1, "b": 2}, {"a": 3, "b": 0}]
    with torch.no_grad():
        expect = module.eval()(loaded.encode(inputs))
    assert torch.allclose(loaded.forward(loaded.encode(inputs)), expect)
    assert loaded.predict_proba(inputs).shape == (2, 3)
    if name == "tabular-mlp":
        assert loaded.task == "tabular-classification"
        assert np.allclose(loaded.encode(np.array([[1.0, 2.0]]))["x"].numpy(), 0.0)


def test_hashing_is_per_text_and_stable():
    spec = HashingSpec(buckets=1000)
    alone = hash_ngrams(["STARBUCKS #123"], spec)
    mixed = hash_ngrams(["x", "STARBUCKS #123", "another text here"], spec)
    width = (alone[0] > 0).sum()
    assert np.array_equal(alone[0, :width], mixed[1, :width]) and (mixed[1, width:] == 0).all()
    assert ((alone >= 0) & (alone < 1000)).all()
    assert normalise("STARBUCKS #1234-A") == normalise("starbucks #99 a") == "starbucks 0 a"
    # pinned values: a saved model depends on them never changing
    small = HashingSpec(buckets=101, char_ngrams=(3, 3), word_ngrams=1)
    assert hash_ngrams(["ab"], small).tolist() == [[50, 9, 60]]
    assert hash_ngrams(["AB"], small).tolist() == [[50, 9, 60]]  # normalised before hashing
    mixed_spec = HashingSpec(buckets=97, char_ngrams=(2, 3), word_ngrams=2)
    assert hash_ngrams(["Tea cup", ""], mixed_spec).tolist() == [
        [14, 1, 42, 39, 21, 47, 83, 76, 6, 40, 81, 38, 84, 88, 28, 31, 91, 1],
        [86] + [0] * 17,
    ]


def test_collate_pads_ragged_batches(tmp_path):
    out, _ = _save(tmp_path)
    loaded = load_model(out)
    one, two = loaded.encode(["a"]), loaded.encode(["a much longer text", "b"])
    joined = loaded.collate([one, two])
    assert joined["ids"].shape[0] == 3
    assert torch.allclose(loaded.forward(joined), torch.cat([loaded.forward(one), loaded.forward(two)]), atol=1e-6)


def _break(out, how):
    spec_file = out / "kubepipe-model.json"
    if how == "no-dir":
        return out / "nope", "not found"
    if how == "no-spec":
        spec_file.unlink()
        return out, "kubepipe-model.json: missing"
    if how == "bad-json":
        spec_file.write_text("{not json")
        return out, "kubepipe-model.json: not valid JSON"
    spec = json.loads(spec_file.read_text())
    if how == "version":
        spec["format_version"] = 99
        msg = "format_version 99"
    elif how == "architecture":
        spec["architecture"] = "text-clasifier"
        msg = "did you mean `text-classifier`"
    elif how == "shape":
        spec["model_kwargs"] = {"dim": 16}
        msg = "model.safetensors: cannot load weights"
    elif how == "no-weights":
        (out / "model.safetensors").unlink()
        msg = "model.safetensors: missing"
    elif how in ("truncated", "truncated-unrecorded"):
        data = (out / "model.safetensors").read_bytes()
        (out / "model.safetensors").write_bytes(data[: len(data) // 3])
        msg = "model.safetensors: sha256 "  # the recorded hash catches it before safetensors reads it
        if how == "truncated-unrecorded":  # an artifact from before weights_sha256 was recorded
            del spec["weights_sha256"]
            msg = "model.safetensors: cannot load weights"
    elif how in ("pickle", "pickle-unrecorded"):
        torch.save({"x": 1}, out / "model.safetensors")
        msg = "model.safetensors: sha256 "
        if how == "pickle-unrecorded":
            del spec["weights_sha256"]
            msg = "model.safetensors: cannot load weights"
    spec_file.write_text(json.dumps(spec))
    return out, msg


@pytest.mark.parametrize("how", ["no-dir", "no-spec", "bad-json", "version", "architecture", "shape",
                                 "no-weights", "truncated", "truncated-unrecorded", "pickle", "pickle-unrecorded"])
def test_broken_artifact_names_the_file(tmp_path, how):
    out, _ = _save(tmp_path)
    path, msg = _break(out, how)
    with pytest.raises(ModelError) as err:
        load_model(path)
    assert msg in str(err.value)


def test_the_weights_get_the_permissions_of_every_other_file(tmp_path):
    # safetensors wrote model.safetensors 0600 beside 0644 JSON: a model baked into an image (COPY keeps the
    # mode) or a registry copy could not be read by a server of another uid (the runtime images run as 1000)
    import os
    import stat

    old = os.umask(0o022)
    try:
        out, _ = _save(tmp_path)
    finally:
        os.umask(old)
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in out.iterdir()}
    assert modes == {"model.safetensors": 0o644, "kubepipe-model.json": 0o644, "metadata.json": 0o644}
    assert [f.name for f in out.iterdir() if f.name.startswith(".")] == []  # no temp file left


def test_a_model_directory_without_its_tokenizer_says_so_and_what_to_do(tmp_path):
    # it was 'kubepipe-model.json: preprocessing: bad wordpiece preprocessing state: .../tokenizer.json: tokenizer
    # file not found', blaming the JSON and saying nothing to do
    from kubepipe.components.training.encoders import encoder_from_state

    state = {"encoding": "wordpiece", "max_length": 32, "tokenizer_file": "tokenizer.json", "tokenizer_sha256": "0" * 64}
    with pytest.raises(ModelError) as exc:
        encoder_from_state(state, where="m/kubepipe-model.json: preprocessing", root=tmp_path)
    assert str(exc.value) == (f"{tmp_path / 'tokenizer.json'}: missing; the model reads its text with this tokenizer "
                              "(copied into the model directory at training): re-copy the whole model directory, "
                              "or retrain")


def test_the_folder_above_a_model_names_the_model_inside(tmp_path):
    # `kubepipe serve .kubepipe/runs/.../train-teacher` (the step's folder): 'kubepipe-model.json: missing; this is
    # not a kubepipe model directory (train it with train-torch)', though its `model` folder is one
    out, _ = _save(tmp_path)
    with pytest.raises(ModelError) as exc:
        load_model(tmp_path)
    assert str(exc.value) == (f"{tmp_path / 'kubepipe-model.json'}: missing; this is not a kubepipe model directory, "
                              f"but {out} is: pass that")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"missing; this is not a kubepipe model directory \(train it with"):
        load_model(tmp_path / "empty")


def test_a_registered_model_s_folder_names_its_newest_version(tmp_path):
    """`kubepipe serve .kubepipe/registry/starter` (the registry's folder of the model) said 'not a kubepipe model
    directory (train it with train-torch)', though the model was trained and registered under versions/N/model."""
    import shutil

    out, _ = _save(tmp_path)
    folder = tmp_path / "registry" / "starter"
    for n in ("2", "10"):
        shutil.copytree(out, folder / "versions" / n / "model")
    (folder / "versions" / "11").mkdir()  # a registration that died before its files: not offered
    with pytest.raises(ModelError) as exc:
        load_model(folder)
    assert str(exc.value) == (f"{folder / 'kubepipe-model.json'}: missing; this is a registered model's folder, not a "
                              f"model directory: its newest version is {folder / 'versions' / '10' / 'model'} "
                              "(`kubepipe models list starter` lists the others and the champion)")


USER_MODEL = '''
from torch import nn

from kubepipe.components.training.models.text_classifier import TextClassifier


class Held(nn.Module):
    """A user's model that holds its body as `self.{attr}`."""

    def __init__(self, num_labels, input_spec):
        super().__init__()
        self.{attr} = TextClassifier(num_labels, input_spec)
        self.scale = nn.Linear(num_labels, num_labels)

    def forward(self, batch):
        return self.scale(self.{attr}(batch))
'''


@pytest.mark.parametrize("attr", ["module", "_orig_mod"])
def test_a_model_holding_a_submodule_named_as_a_wrapper_s_is_saved_whole(tmp_path, monkeypatch, attr):
    """save_model unwrapped DDP and torch.compile by attribute name: a user's model with a `self.module` was saved
    as that child's weights alone; its training succeeded and evaluate / serve failed 'cannot load weights'."""
    name = f"held_{attr.strip('_')}_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(USER_MODEL.format(attr=attr))
    monkeypatch.syspath_prepend(str(tmp_path))
    enc = HashingEncoder(buckets=512)
    torch.manual_seed(0)
    module = build_model(resolve_model_class(f"{name}:Held"), len(LABELS), enc.spec(), {})
    out = save_model(tmp_path / "model", module, architecture=f"{name}:Held", model_kwargs={}, labels=LABELS,
                     encoder=enc, columns={"text_column": "t"})
    loaded = load_model(out, allow_user_code=True)
    batch = loaded.encode(["UNITED AIRLINES 0162"])
    with torch.no_grad():
        assert torch.equal(loaded.forward(batch), module.eval()(batch))


def test_a_data_parallel_model_is_saved_as_the_model_it_wraps(tmp_path):
    encoder = HashingEncoder(buckets=512)
    module = build_model(resolve_model_class("text-classifier"), len(LABELS), encoder.spec(), {})
    out = save_model(tmp_path / "model", torch.nn.DataParallel(module), architecture="text-classifier",
                     model_kwargs={}, labels=LABELS, encoder=encoder, columns={"text_column": "t"})
    batch = load_model(out).encode(["café"])
    with torch.no_grad():
        assert torch.equal(load_model(out).forward(batch), module.eval()(batch))
