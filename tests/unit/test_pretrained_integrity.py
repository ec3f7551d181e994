"""pretrained-encoder integrity: what is hashed is what is loaded (a file replaced between the check and the load
cannot load under the verified hash), and the artifact's tokenizer.json encodes as kubepipe does."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from safetensors.torch import load as st_load  # noqa: E402

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.training.artifact import load_model, save_model  # noqa: E402
from kubepipe.components.training.base_models import resolve_base_model  # noqa: E402
from kubepipe.components.training.encoders import WordPieceEncoder, encoder_from_state  # noqa: E402
from kubepipe.components.training.models.pretrained_encoder import (PretrainedEncoderClassifier,  # noqa: E402
                                                                    resolve_pretrained)
from tiny_bert import make_base_model  # noqa: E402

MINILM = "package:all-minilm-l6-v2"


class _SwapOnClose:
    """A real file object; closing it (the first read of `target` is over) replaces `target` with other bytes,
    as a concurrent writer's `os.replace` would."""

    def __init__(self, fh, swap):
        self._fh, self._swap = fh, swap

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self):
        return iter(self._fh)

    def close(self):
        self._fh.close()
        self._swap()


@pytest.fixture
def swap_after_first_read(monkeypatch):
    """arm(target, replacement bytes): the first time `target` is opened for reading by Python and closed, it is
    atomically replaced. Readers outside Python (safetensors', tokenizers' Rust) see whatever is there then."""
    real_open = io.open

    def arm(target: Path, replacement: bytes) -> list:
        done: list = []
        target = Path(target).resolve()

        def swap():
            if not done:
                tmp = target.with_name(target.name + ".swap")
                tmp.write_bytes(replacement)
                os.replace(tmp, target)
                done.append(True)

        def opener(file, mode="r", *args, **kwargs):
            fh = real_open(file, mode, *args, **kwargs)
            if (not done and "r" in mode and "+" not in mode and isinstance(file, (str, os.PathLike))
                    and Path(file).resolve() == target):
                return _SwapOnClose(fh, swap)
            return fh

        monkeypatch.setattr(io, "open", opener)
        monkeypatch.setattr(builtins, "open", opener)
        return done

    return arm


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """Weights of the same shapes, other values: what a concurrent writer swaps in."""
    return make_base_model(tmp_path_factory.mktemp("tiny-bert-other"), seed=7)


@pytest.fixture(scope="module")
def minilm_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("kubepipe-cache")
    try:
        resolve_base_model(MINILM, cache=cache)
    except ModelError as exc:  # the wheel is installed by make setup
        pytest.skip(str(exc))
    return cache


def _artifact(base: Path, out: Path, seed: int, max_length: int = 16) -> Path:
    b = resolve_base_model(str(base))
    torch.manual_seed(seed)
    module = PretrainedEncoderClassifier(3, {}, config=b.config, base_model=b.record())
    encoder = WordPieceEncoder(str(b.tokenizer_file), max_length=max_length)
    return save_model(out, module, architecture="pretrained-encoder",
                      model_kwargs={"config": b.config, "base_model": b.record()}, labels=["a", "b", "c"],
                      encoder=encoder, columns={"text_column": "description"})


def _same_state(module, state: dict) -> bool:
    """Every tensor of `state` the module has (a base model's pooler is not kept) equals the module's."""
    own = module.state_dict()
    shared = [k for k in state if k in own]
    assert len(shared) > len(own) // 2
    return all(torch.equal(own[k], state[k]) for k in shared)


def test_base_weights_replaced_after_the_hash_do_not_load(base, other, tmp_path, swap_after_first_read):
    folder = make_base_model(tmp_path / "base", seed=0)
    original = (folder / "model.safetensors").read_bytes()
    b = resolve_base_model(str(folder))
    model = PretrainedEncoderClassifier(3, {}, config=b.config, base_model=b.record())
    done = swap_after_first_read(folder / "model.safetensors", (other / "model.safetensors").read_bytes())
    model.load_pretrained()
    assert done, "the weights were never read through Python"
    assert (folder / "model.safetensors").read_bytes() != original  # the file was replaced after the read...
    want = st_load(original)  # ...yet the encoder holds the tensors whose hash was checked
    assert _same_state(model.encoder, want)
    assert hashlib.sha256(original).hexdigest() == b.weights_sha256


def test_artifact_weights_replaced_after_the_hash_do_not_load(base, tmp_path, swap_after_first_read):
    out = _artifact(base, tmp_path / "model", seed=1)
    swapped = _artifact(base, tmp_path / "other", seed=2) / "model.safetensors"
    original = (out / "model.safetensors").read_bytes()
    done = swap_after_first_read(out / "model.safetensors", swapped.read_bytes())
    loaded = load_model(out)
    assert done
    assert _same_state(loaded.module, st_load(original))
    assert not _same_state(loaded.module, st_load(swapped.read_bytes()))


def test_artifact_tokenizer_replaced_after_the_hash_does_not_load(base, tmp_path, swap_after_first_read):
    out = _artifact(base, tmp_path / "model", seed=1)
    want = load_model(out).encode(["starbucks coffee zzz"])["input_ids"].tolist()
    data = json.loads((out / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    vocab["zzz"] = len(vocab)  # a tokenizer that reads the same text as other ids
    done = swap_after_first_read(out / "tokenizer.json", json.dumps(data).encode())
    loaded = load_model(out)
    assert done
    assert loaded.encode(["starbucks coffee zzz"])["input_ids"].tolist() == want


def test_pinned_config_replaced_after_the_hash_does_not_load(minilm_cache, swap_after_first_read):
    b = resolve_base_model(MINILM, cache=minilm_cache)
    path = b.directory / "config.json"
    raw = path.read_bytes()
    original = json.loads(raw)
    edited = {**original, "layer_norm_eps": 0.5}  # the same weights, another computation
    done = swap_after_first_read(path, json.dumps(edited).encode())
    try:
        again = resolve_base_model(MINILM, cache=minilm_cache)
    finally:
        assert done
        path.write_bytes(raw)  # the module's cache as it was
    assert again.config == original


def test_pinned_tokenizer_replaced_after_the_check_is_refused(minilm_cache, swap_after_first_read, monkeypatch):
    monkeypatch.setenv("KUBEPIPE_CACHE", str(minilm_cache))
    path = resolve_base_model(MINILM, cache=minilm_cache).tokenizer_file
    original = path.read_bytes()
    data = json.loads(original)
    data["model"]["vocab"]["[unused0]"], data["model"]["vocab"]["the"] = (data["model"]["vocab"]["the"],
                                                                          data["model"]["vocab"]["[unused0]"])
    done = swap_after_first_read(path, json.dumps(data).encode())
    try:
        enc_kwargs, _ = resolve_pretrained({"max_length": 16}, {"base_model": MINILM})
        with pytest.raises(ModelError, match=r"tokenizer\.json: sha256 .* differs from the recorded "
                                             r"be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"):
            WordPieceEncoder(**enc_kwargs)
    finally:
        assert done
        path.write_bytes(original)


def _raw_batch(tokenizer_json: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """What a client holding only the artifact's tokenizer.json computes (Triton's clients do this)."""
    encs = tokenizers.Tokenizer.from_file(str(tokenizer_json)).encode_batch(texts)
    return {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64)}


_WORDS = st.sampled_from(["starbucks", "coffee", "amazon", "mktp", "uber", "trip", "#1234", "café", "naïve",
                          "東京", "🙂", "x" * 40, "", "\t", "PAY*PAL"])
_TEXT = st.one_of(st.text(max_size=300), st.lists(_WORDS, max_size=120).map(" ".join))


@pytest.mark.parametrize("max_length", [8, 40])
def test_artifact_tokenizer_json_encodes_as_kubepipe(minilm_cache, tmp_path_factory, monkeypatch, max_length):
    """Oracle: the raw `tokenizers` library on the artifact's file, against kubepipe's encoder."""
    monkeypatch.setenv("KUBEPIPE_CACHE", str(minilm_cache))
    enc_kwargs, _ = resolve_pretrained({"max_length": max_length}, {"base_model": MINILM})
    encoder = WordPieceEncoder(**enc_kwargs)
    out = tmp_path_factory.mktemp("artifact")
    encoder.save_files(out)
    state = encoder.state()
    assert state["tokenizer_sha256"] == hashlib.sha256((out / "tokenizer.json").read_bytes()).hexdigest()
    served = encoder_from_state(state, root=out)  # as load_model rebuilds it: the recorded hash is the file's
    assert served.state() == state

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(_TEXT, min_size=1, max_size=6))
    def check(texts):
        want = served.encode(texts)
        got = _raw_batch(out / "tokenizer.json", texts)
        assert {k: v.tolist() for k, v in got.items()} == {k: v.tolist() for k, v in want.items()}

    check()
    long = ["coffee " * 200, "a"]
    assert _raw_batch(out / "tokenizer.json", long)["input_ids"].shape == (2, max_length)


def test_trained_artifact_records_the_tokenizer_it_wrote(base, tmp_path):
    out = _artifact(base, tmp_path / "model", seed=1, max_length=12)
    spec = json.loads((out / "kubepipe-model.json").read_text())
    written = (out / "tokenizer.json").read_bytes()
    assert spec["preprocessing"]["tokenizer_sha256"] == hashlib.sha256(written).hexdigest()
    assert json.loads(written)["truncation"]["max_length"] == 12
    assert json.loads(written)["padding"]["strategy"] == "BatchLongest"
    # the base model's record stays about the base model's own files
    assert spec["model_kwargs"]["base_model"]["weights_sha256"] == hashlib.sha256(
        (base / "model.safetensors").read_bytes()).hexdigest()
    # a second copy (Triton's repository) writes the same bytes under the same hash
    again = tmp_path / "copy"
    again.mkdir()
    load_model(out).encoder.save_files(again)
    assert (again / "tokenizer.json").read_bytes() == written


@pytest.mark.parametrize("file", ["tokenizer.json", "config.json"])
def test_index_embedder_file_replaced_after_its_check_is_refused(base, tmp_path, swap_after_first_read, file):
    """An index's embedder: its files are checked against the manifest's record, then loaded; a file replaced in
    between (another vocabulary, another layer_norm_eps) was loaded under the record's hash."""
    from kubepipe.components.retrieval.embedder import Embedder

    saved = tmp_path / "embedder"
    record = Embedder.from_base_model(str(base), max_length=16).save(saved)
    data = json.loads((saved / file).read_text())
    if file == "tokenizer.json":
        data["model"]["vocab"]["zzz"] = len(data["model"]["vocab"])
    else:
        data["layer_norm_eps"] = 0.5
    done = swap_after_first_read(saved / file, json.dumps(data).encode())
    with pytest.raises(ModelError, match=rf"{file}: sha256 .* differs from the expected"):
        Embedder.load(saved, expected=record)
    assert done


def test_weights_replaced_as_they_are_saved_are_not_recorded_as_the_trained_ones(base, tmp_path, monkeypatch):
    """save_model hashed model.safetensors by reading it back once it had its name: a file another writer put there
    in between was recorded as the trained weights, and loaded without a word. Now the file it wrote is hashed."""
    other = _artifact(base, tmp_path / "other", seed=2) / "model.safetensors"
    real_replace, done = os.replace, []

    def replace_then_overwritten(src, dst, *a, **kw):
        real_replace(src, dst, *a, **kw)
        if Path(dst).name == "model.safetensors" and Path(dst).parent.name == "model" and not done:
            done.append(dst)
            Path(dst).write_bytes(other.read_bytes())  # another writer, right after the rename

    monkeypatch.setattr(os, "replace", replace_then_overwritten)
    out = _artifact(base, tmp_path / "model", seed=1)
    monkeypatch.setattr(os, "replace", real_replace)
    assert done
    with pytest.raises(ModelError, match="sha256"):
        load_model(out)
