"""build-index / VectorIndex: exact search is brute force, HNSW (faiss) finds what exact finds, files are checked."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kubepipe.components.errors import ModelError
from kubepipe.components.retrieval.index import INDEX_FILE, VectorIndex, build_index, exact_search

pytest.importorskip("faiss")


def _embeddings(tmp_path, n=600, dim=32, seed=0):
    """An embed step's output without the encoder (build_index copies embedder/ as it is)."""
    from kubepipe.components.retrieval.embedder import npy_bytes
    from kubepipe.components.data.io import write_dataset
    from kubepipe.util import sha256_file

    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    d = tmp_path / "emb"
    (d / "embedder").mkdir(parents=True)
    (d / "embedder" / "embedder.json").write_text("{}")
    (d / "vectors.npy").write_bytes(npy_bytes(v))
    write_dataset(pd.DataFrame({"passage_id": [f"p{i}" for i in range(n)], "doc_id": [f"d{i // 2}" for i in range(n)],
                                "offset": 0, "text": [f"t{i}" for i in range(n)]}), d / "passages.parquet")
    meta = {"count": n, "dim": dim, "embedder": {"id": "test", "weights_sha256": "0" * 64},
            "vectors_sha256": sha256_file(d / "vectors.npy")}
    (d / "embeddings.json").write_text(json.dumps(meta))
    return d, v


def test_exact_search_is_brute_force():
    rng = np.random.default_rng(1)
    v, q = rng.normal(size=(50, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    rows, scores = exact_search(v, q, 7)
    full = q @ v.T
    for i in range(5):
        want = np.argsort(-full[i], kind="stable")[:7]
        assert rows[i].tolist() == want.tolist()
        assert np.allclose(scores[i], full[i][want])
    assert exact_search(v, q, 100)[0].shape == (5, 50)  # k above the count: everything, ranked


def test_auto_picks_exact_for_small_and_hnsw_agrees_with_exact(tmp_path):
    src, v = _embeddings(tmp_path)
    small = build_index(src, tmp_path / "exact", method="auto", exact_below=10_000)
    assert small["method"] == "exact" and "index.faiss" not in small["files"]
    ann = build_index(src, tmp_path / "hnsw", method="auto", exact_below=100)
    assert ann["method"] == "hnsw" and ann["embedder"]["id"] == "test" and ann["count"] == 600
    q = v[:100] + 0.05 * np.random.default_rng(2).normal(size=(100, 32)).astype(np.float32)
    ex, ex_scores = VectorIndex(tmp_path / "exact").search(q, 10)
    hn, hn_scores = VectorIndex(tmp_path / "hnsw").search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ex.tolist(), hn.tolist())])
    assert recall >= 0.95
    same = hn[:, 0] == ex[:, 0]  # HNSW is approximate (and its build threaded): it may miss a top-1 now and then
    assert same.mean() >= 0.95
    assert np.allclose(hn_scores[same, 0], ex_scores[same, 0], atol=1e-4)  # same similarity scale (cosine)


def test_a_changed_file_is_refused(tmp_path):
    src, _ = _embeddings(tmp_path, n=40)
    build_index(src, tmp_path / "idx", method="hnsw")
    with open(tmp_path / "idx" / "vectors.npy", "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x00\x80\x7f")
    with pytest.raises(ModelError, match="vectors.npy: sha256 differs"):
        VectorIndex(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / INDEX_FILE).read_text())
    manifest["files"] = {"../x": "0"}
    (tmp_path / "idx" / INDEX_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not a file of the index directory"):
        VectorIndex(tmp_path / "idx")
    with pytest.raises(ModelError, match="not a retrieval index"):
        VectorIndex(tmp_path)


def test_recall_vs_exact_counts_ties_and_misses():
    from kubepipe.components.retrieval.index import recall_vs_exact

    rng = np.random.default_rng(3)
    v = rng.normal(size=(80, 8)).astype(np.float32)
    v[7] = v[3]  # a duplicate passage: either copy is a right answer
    q = rng.normal(size=(6, 8)).astype(np.float32)
    full = q @ v.T
    order = np.argsort(-full, axis=1, kind="stable")
    assert recall_vs_exact(v, q, order[:, :10], 10) == 1.0
    worst = order.copy()[:, :10]
    worst[:, 9] = order[:, -1]  # one of ten replaced by the farthest passage
    assert recall_vs_exact(v, q, worst, 10) == pytest.approx(0.9)
    swapped = order.copy()[:, :10]
    for i in range(len(q)):  # where row 3 is in the top 10, return its twin 7 in its place (and vice versa)
        swapped[i] = np.where(swapped[i] == 3, 7, np.where(swapped[i] == 7, 3, swapped[i]))
    assert recall_vs_exact(v, q, swapped, 10) == 1.0
    assert recall_vs_exact(v, q, np.full((6, 10), -1), 10) == 0.0  # nothing found


def test_hnsw_manifest_records_the_library_and_its_operating_point(tmp_path):
    import faiss

    src, v = _embeddings(tmp_path)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(3)  # not the build's 1, whatever OMP_NUM_THREADS the process started with
    try:
        m = build_index(src, tmp_path / "idx", method="hnsw", hnsw={"expansion_search": 32}, threads=1)
        assert faiss.omp_get_max_threads() == 3  # a build's thread count does not leak into the process
    finally:
        faiss.omp_set_num_threads(before)
    h = m["hnsw"]
    assert (h["library"], h["connectivity"], h["expansion_add"], h["expansion_search"]) == ("faiss-cpu", 16, 128, 32)
    assert h["library_version"] == faiss.__version__ and set(m["files"]) == {"vectors.npy", "passages.parquet", "index.faiss"}
    assert 0.9 <= h["sampled_recall@10"] <= 1.0
    loaded = VectorIndex(tmp_path / "idx")
    assert loaded.graph.hnsw.efSearch == 32  # the recorded operating point is the one searched at
    build_index(src, tmp_path / "idx", method="exact")  # rebuilt in place as exact: the stale graph goes
    assert not (tmp_path / "idx" / "index.faiss").exists()


def test_a_version_1_usearch_index_is_refused_with_what_to_do(tmp_path):
    src, v = _embeddings(tmp_path, n=40)
    build_index(src, tmp_path / "idx", method="exact")
    spec = tmp_path / "idx" / INDEX_FILE
    manifest = json.loads(spec.read_text())
    spec.write_text(json.dumps({**manifest, "format_version": 1}))  # version 1 exact: same layout, still loads
    assert VectorIndex(tmp_path / "idx").search(v[:2], 3)[0][:, 0].tolist() == [0, 1]
    spec.write_text(json.dumps({**manifest, "format_version": 1, "method": "hnsw",
                                "hnsw": {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}}))
    with pytest.raises(ModelError, match=r"index\.usearch: an HNSW index of format_version 1 .*rerun the pipeline's "
                                         r"build-index step"):
        VectorIndex(tmp_path / "idx")
    spec.write_text(json.dumps({**manifest, "format_version": 9}))
    with pytest.raises(ModelError, match="format_version 9; expected a retrieval-index of version 2"):
        VectorIndex(tmp_path / "idx")


def test_whole_dict_hnsw_settings_arrive_as_floats_and_a_fraction_is_refused(tmp_path):
    """`hnsw: ${params.hnsw}`: KFP's Struct delivers {connectivity: 16} as 16.0, untagged."""
    from types import SimpleNamespace

    from kubepipe.components.errors import ConfigError
    from kubepipe.components.retrieval.ops import build_index as component

    src, _ = _embeddings(tmp_path, n=200)

    def run(hnsw, name):
        index = SimpleNamespace(path=str(tmp_path / name), metadata={})
        report = SimpleNamespace(path=str(tmp_path / f"{name}.html"), metadata={})
        return component.python_func(embeddings=SimpleNamespace(path=str(src)), index=index, report=report,
                                     method="hnsw", hnsw=hnsw), index

    out, index = run({"connectivity": 16.0, "expansion_search": 32.0}, "ok")
    assert out.method == "hnsw"
    record = json.loads((tmp_path / "ok" / INDEX_FILE).read_text())["hnsw"]
    assert (record["connectivity"], record["expansion_search"]) == (16, 32)
    with pytest.raises(ConfigError) as exc:
        run({"connectivity": 16.5}, "bad")
    assert str(exc.value) == "build-index: hnsw.connectivity: must be a whole number from 2 to 256, got 16.5"
    assert not (tmp_path / "bad").exists()  # refused before anything was written


class _FakeEmbedder:
    def __init__(self, dim):
        self.dim = dim

    def embed(self, texts, batch_size=64):
        v = np.random.default_rng(len(texts)).normal(size=(len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_evaluation_refuses_queries_whose_relevant_ids_are_none_of_the_index(tmp_path, monkeypatch):
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import DataError
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval

    emb, _ = _embeddings(tmp_path, n=40)
    build_index(emb, tmp_path / "idx", method="exact")
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: _FakeEmbedder(32)))
    queries = tmp_path / "q.parquet"
    write_dataset(pd.DataFrame({"query": ["a", "b"], "name": ["Blue Bottle", "Shell"], "relevant": ["d1", "d30"]}),
                  queries)
    want = r"no relevant id in `name` is a document of the index \(e.g. \['Blue Bottle'\]"
    with pytest.raises(DataError, match=want):
        evaluate_retrieval(tmp_path / "idx", queries, relevant_column="name", baseline="none",
                           thresholds={"recall@5": {"min": 0.5}})
    ev = evaluate_retrieval(tmp_path / "idx", queries, baseline="none", thresholds={"recall@5": {"min": 0.0}})
    assert ev["holdout"]["unknown_relevant"] == 1 and ev["passed"]  # d30 is not in the index (d0..d19)


def _rehashed(d, m, name: str, write) -> None:
    """`write` the index file `name` anew and record its sha256: another tool's index, or one edited by hand."""
    from kubepipe.util import sha256_file

    write(d / name)
    m["files"][name] = sha256_file(d / name)


def _vectors(change):
    return lambda path: np.save(path, change(np.load(path)), allow_pickle=True)


def _nan_row(v):
    v[3] = np.nan
    return v


@pytest.mark.parametrize("damage, message", [
    (lambda d, m: m.update(hnsw=None), r"method 'hnsw', files dict, hnsw None, embedder dict: not what build-index "),
    # without the embedder's record its files were not checked at all (and a text one was a TypeError)
    (lambda d, m: m.pop("embedder"), r"hnsw \{.*\}, embedder NoneType: not what build-index writes .* the embedder's "
                                     r"record with its weights_sha256"),
    (lambda d, m: m.update(embedder="minilm"), r", embedder str: not what build-index writes"),
    (lambda d, m: m.update(method="graph"), r"method 'graph', .*: not what build-index writes"),
    (lambda d, m: m.update(files={}), r"files: no sha256 for vectors.npy, passages.parquet, index.faiss"),
    (lambda d, m: m["files"].pop("index.faiss"), r"files: no sha256 for index.faiss"),
    (lambda d, m: (d / "index.faiss").unlink(), r"index.faiss: cannot read this file of the index \(No such file"),
    # files whose sha256 was recorded again (another tool's index, an edit by hand): vectors of another width failed
    # the first query with numpy's matmul ValueError, a passages file without doc_id with KeyError 'doc_id', a graph
    # faiss cannot read with its RuntimeError, and a NaN vector's document was silently never found
    (lambda d, m: _rehashed(d, m, "vectors.npy", _vectors(lambda v: v[:, :10].copy())),
     r"vectors.npy: float32 \(40, 10\), expected float32 \(n, 32\); rebuild the index"),
    (lambda d, m: _rehashed(d, m, "vectors.npy", _vectors(lambda v: v.astype(np.float64))),
     r"vectors.npy: float64 \(40, 32\), expected float32"),
    (lambda d, m: _rehashed(d, m, "vectors.npy", _vectors(_nan_row)),
     r"vectors.npy: 1 row\(s\) hold NaN or infinite values \(first: row 3\), which no search can rank"),
    (lambda d, m: _rehashed(d, m, "vectors.npy", _vectors(lambda v: np.array([{"a": 1}], dtype=object))),
     r"vectors.npy: not an index's vectors \(Object arrays cannot be loaded"),
    (lambda d, m: _rehashed(d, m, "passages.parquet",
                            lambda p: pd.read_parquet(p).drop(columns=["doc_id"]).to_parquet(p)),
     r"passages.parquet: no `doc_id` column"),
    (lambda d, m: _rehashed(d, m, "index.faiss", lambda p: p.write_bytes(b"garbage" * 10)),
     r"index.faiss: not a faiss graph \(.*not recognized\); rebuild the index"),
])
def test_a_damaged_index_is_refused_naming_what_is_wrong(tmp_path, damage, message):
    src, _ = _embeddings(tmp_path, n=40)
    build_index(src, tmp_path / "idx", method="hnsw")
    manifest = json.loads((tmp_path / "idx" / INDEX_FILE).read_text())
    damage(tmp_path / "idx", manifest)
    (tmp_path / "idx" / INDEX_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=message):
        VectorIndex(tmp_path / "idx")


def test_a_manifest_or_embeddings_record_that_is_no_json_object_is_named(tmp_path):
    """A kubepipe-index.json holding a JSON list failed with AttributeError: 'list' object has no attribute 'get'."""
    src, _ = _embeddings(tmp_path, n=40)
    build_index(src, tmp_path / "idx", method="exact")
    (tmp_path / "idx" / INDEX_FILE).write_text("[1, 2]")
    with pytest.raises(ModelError, match=r"kubepipe-index.json: holds a JSON list, not an index's manifest"):
        VectorIndex(tmp_path / "idx")
    (src / "embeddings.json").write_text('"x"')
    with pytest.raises(ModelError, match=r"embeddings.json: holds a JSON str, not an embed step's record"):
        build_index(src, tmp_path / "idx2", method="exact")


def test_embeddings_with_a_nan_row_are_refused_before_an_index_is_built(tmp_path):
    from kubepipe.components.retrieval.embedder import npy_bytes
    from kubepipe.util import sha256_file

    src, v = _embeddings(tmp_path, n=40)
    v[7, 0] = np.inf
    (src / "vectors.npy").write_bytes(npy_bytes(v))
    meta = json.loads((src / "embeddings.json").read_text())
    (src / "embeddings.json").write_text(json.dumps({**meta, "vectors_sha256": sha256_file(src / "vectors.npy")}))
    with pytest.raises(ModelError, match=r"vectors.npy: 1 row\(s\) hold NaN or infinite values \(first: row 7\).*"
                                         r"re-run the embed step"):
        build_index(src, tmp_path / "idx", method="exact")
    assert not (tmp_path / "idx").exists()


def test_a_damaged_champion_index_is_named_as_the_champion(tmp_path, monkeypatch):
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.registry import Registry, RegistryError
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval

    emb, _ = _embeddings(tmp_path, n=40)
    build_index(emb, tmp_path / "idx", method="exact")
    reg = Registry(f"file://{tmp_path / 'reg'}")
    reg.register(str(tmp_path / "idx"), name="idx", metrics={"recall@5": 0.5})
    reg.promote("idx", 1, reason="first")
    damaged = tmp_path / "reg" / "idx" / "versions" / "1" / "model" / "vectors.npy"
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:-4] + b"\x00\x00\x80\x7f")
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: _FakeEmbedder(32)))
    queries = tmp_path / "q.parquet"
    write_dataset(pd.DataFrame({"query": ["a"], "relevant": ["d1"]}), queries)
    with pytest.raises(RegistryError, match=r"^model `idx` v1: files changed after registration in .*/reg/idx/"
                                            r"versions/1/model \(changed: vectors\.npy\); refusing to use them: "
                                            r"register the model again, or promote a sound version"):
        evaluate_retrieval(tmp_path / "idx", queries, model_name="idx", registry_uri=f"file://{tmp_path / 'reg'}",
                           thresholds={"recall@5": {"min": 0.0}})


def test_hits_carry_json_values_for_every_record_column(tmp_path):
    import datetime
    import decimal

    import orjson

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.retriever import Retriever

    emb, _ = _embeddings(tmp_path, n=2, dim=8)
    write_dataset(pd.DataFrame({"passage_id": ["p0", "p1"], "doc_id": ["a", "b"], "offset": 0, "text": ["x", "y"],
                                "opened": pd.to_datetime(["2020-01-02 03:04:05", None]),
                                "day": [datetime.date(2020, 1, 2), None], "tags": [["t", "u"], []],
                                "blob": [b"ok", b"\xff"], "price": [decimal.Decimal("1.5"), None]}),
                  emb / "passages.parquet")
    build_index(emb, tmp_path / "idx", method="exact")
    hits = Retriever(tmp_path / "idx", embedder=_FakeEmbedder(8)).retrieve(["q"], 2)[0]
    by_doc = {h["doc_id"]: h for h in hits}
    assert {k: by_doc["a"][k] for k in ("opened", "day", "tags", "blob", "price")} == \
        {"opened": "2020-01-02T03:04:05", "day": "2020-01-02", "tags": ["t", "u"], "blob": "ok", "price": 1.5}
    assert by_doc["b"]["opened"] is None and by_doc["b"]["day"] is None and by_doc["b"]["blob"] == "\ufffd"
    orjson.dumps(hits)  # what :retrieve and :predict answer with (V2 records: json.dumps)
    json.dumps(hits)


def test_register_refuses_an_index_the_evaluation_did_not_score(tmp_path, monkeypatch):
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import ComponentError
    from kubepipe.components.evaluation.registration import register_challenger
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval

    for name, seed in (("a", 0), ("b", 1)):
        emb, _ = _embeddings(tmp_path / name, n=40, seed=seed)
        build_index(emb, tmp_path / name / "idx", method="exact")
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: _FakeEmbedder(32)))
    queries = tmp_path / "q.parquet"
    write_dataset(pd.DataFrame({"query": ["a"], "relevant": ["d1"]}), queries)
    ev = evaluate_retrieval(tmp_path / "a" / "idx", queries, baseline="none", thresholds={"recall@5": {"min": 0.0}})
    registry = f"file://{tmp_path / 'reg'}"
    with pytest.raises(ComponentError, match=r"register-model: the evaluation is of another index \(evaluated at "
                                             r".*wire `model` from the build-index step"):
        register_challenger(str(tmp_path / "b" / "idx"), ev, model_name="idx", registry_uri=registry)
    assert register_challenger(str(tmp_path / "a" / "idx"), ev, model_name="idx", registry_uri=registry).version == 1


def test_misses_are_the_queries_whose_first_hit_is_not_relevant(tmp_path, monkeypatch):
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval

    emb, v = _embeddings(tmp_path, n=40)
    build_index(emb, tmp_path / "idx", method="exact")

    class Exact(_FakeEmbedder):  # query i embeds as passage i: its first hit is document d{i // 2}
        def embed(self, texts, batch_size=64):
            return v[[int(t) for t in texts]]

    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: Exact(32)))
    queries = tmp_path / "q.parquet"
    write_dataset(pd.DataFrame({"query": ["4", "6", "8"], "relevant": ["d2|d9", "d9", "d4"]}), queries)
    ev = evaluate_retrieval(tmp_path / "idx", queries, baseline="none", thresholds={"recall@5": {"min": 0.0}})
    assert [m["query"] for m in ev["misses"]] == ["6"]  # "4": first hit d2 is relevant, d9 is the other one


def test_the_misses_shown_mask_card_numbers_and_addresses_in_queries(tmp_path, monkeypatch):
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval
    from kubepipe.components.retrieval.report import render_retrieval_report

    emb, v = _embeddings(tmp_path, n=40)
    build_index(emb, tmp_path / "idx", method="exact")
    asked = {"card 4111 1111 1111 1111 declined": 6, "mail jane.doe@example.com": 8}

    class Exact(_FakeEmbedder):
        def embed(self, texts, batch_size=64):
            return v[[asked[t] for t in texts]]

    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: Exact(32)))
    queries = tmp_path / "q.parquet"
    write_dataset(pd.DataFrame({"query": list(asked), "relevant": ["d9", "d9"]}), queries)
    ev = evaluate_retrieval(tmp_path / "idx", queries, baseline="none", thresholds={"recall@5": {"min": 0.0}})
    # before: the evaluation JSON and its report listed each missed query as it was asked, card number and all
    assert [m["query"] for m in ev["misses"]] == ["card **** **** **** 1111 declined", "mail j***@example.com"]
    shown = json.dumps(ev, default=str) + render_retrieval_report(ev)
    assert "4111 1111 1111 1111" not in shown and "jane.doe" not in shown


def test_a_retriever_on_device_auto_loads_its_embedder_on_a_real_device(tmp_path, monkeypatch):
    """evaluate-retrieval's documented `device: auto` reached torch as 'auto' (RuntimeError)."""
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.retriever import Retriever

    emb, _ = _embeddings(tmp_path, n=4)
    build_index(emb, tmp_path / "idx", method="exact")
    seen = []
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, device="cpu", **kw: seen.append(device)
                                                      or _FakeEmbedder(32)))
    Retriever(tmp_path / "idx", device="auto")
    assert seen and seen[0] in ("cpu", "cuda")


def test_hnsw_settings_large_enough_to_run_a_build_out_of_memory_are_refused():
    # `connectivity: 1000000` validated: ~2 x 10^6 links a passage
    from kubepipe.components.retrieval.checks import check_build_index

    (issue,) = check_build_index({"hnsw": {"connectivity": 1_000_000}})
    assert issue.path == ("hnsw", "connectivity") and issue.message == (
        "must be a whole number from 2 to 256, got 1000000")
    assert check_build_index({"hnsw": {"connectivity": 256, "expansion_add": 4096, "expansion_search": 4096}}) == []


@pytest.mark.parametrize("k", [0, 1001, 2.0, True])
def test_a_k_outside_1_to_1000_is_refused_from_python_not_clamped(tmp_path, k):
    # Retriever.retrieve(q, 5000) answered 1000 documents and k=0 one: the caller never knew
    from kubepipe.components.retrieval.index import build_index
    from kubepipe.components.retrieval.retriever import Retriever

    emb, _ = _embeddings(tmp_path, n=3, dim=8)
    build_index(emb, tmp_path / "idx", method="exact")
    retriever = Retriever(tmp_path / "idx", embedder=_FakeEmbedder(8))
    with pytest.raises(ValueError, match=rf"^k must be a whole number from 1 to 1000, got {k!r}$"):
        retriever.retrieve(["q"], k)
    assert len(retriever.retrieve(["q"], 1)[0]) == 1


def test_one_text_for_queries_is_refused_not_searched_letter_by_letter(tmp_path):
    # Retriever.retrieve("NETFLIX", 2) answered 7 lists of hits: one for each letter
    from kubepipe.components.retrieval.retriever import Retriever

    emb, _ = _embeddings(tmp_path, n=3, dim=8)
    build_index(emb, tmp_path / "idx", method="exact")
    retriever = Retriever(tmp_path / "idx", embedder=_FakeEmbedder(8))
    with pytest.raises(TypeError, match=r"^queries must be a list of texts, got one text \(7 characters\); pass \[text\]$"):
        retriever.retrieve("NETFLIX", 2)
    with pytest.raises(TypeError, match=r"^queries\[1\] must be a text, got int$"):
        retriever.search_docs(("a", 5), 2)
    assert len(retriever.retrieve(("NETFLIX",), 2)) == 1 and retriever.retrieve([], 2) == []


def test_float_doc_ids_are_the_ids_the_queries_name(tmp_path, monkeypatch):
    """Passages whose doc_id column was read as float (a CSV with a gap: 101 -> 101.0) gave an index of ids '101.0',
    which no query's relevant '101' named (every metric 0, or 'no relevant id ... is a document of the index'), and
    hits with doc_id 101.0; ids are read by the one id rule, and a passage without one is refused at embed."""
    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.errors import DataError
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.embeddings import embed_passages
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval
    from kubepipe.components.retrieval.retriever import Retriever

    emb, _ = _embeddings(tmp_path, n=40)
    passages = pd.read_parquet(emb / "passages.parquet")
    passages["doc_id"] = [100.0 + i // 2 for i in range(40)]
    write_dataset(passages, emb / "passages.parquet")
    build_index(emb, tmp_path / "idx", method="exact")
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: _FakeEmbedder(32)))
    retriever = Retriever(tmp_path / "idx")
    assert retriever.doc_ids[:3].tolist() == ["100", "100", "101"]
    assert {h["doc_id"] for h in retriever.retrieve(["a"], 20)[0]} == {str(100 + i) for i in range(20)}
    queries = tmp_path / "q.parquet"
    write_dataset(pd.DataFrame({"query": ["a", "b"], "relevant": ["101", "105|119"]}), queries)
    ev = evaluate_retrieval(tmp_path / "idx", queries, baseline="none", thresholds={"recall@20": {"min": 1.0}})
    assert ev["holdout"]["unknown_relevant"] == 0 and ev["passed"]  # all 20 documents: every relevant id found
    passages["doc_id"] = [f"{100 + i // 2}  " for i in range(40)]  # padded (a CHAR column): '100' all the same
    write_dataset(passages, emb / "passages.parquet")
    build_index(emb, tmp_path / "padded", method="exact")
    assert Retriever(tmp_path / "padded").doc_ids[:3].tolist() == ["100", "100", "101"]
    gap = pd.DataFrame({"doc_id": [1.0, float("nan")], "text": ["coffee", "tea"]})
    with pytest.raises(DataError, match=r"passages: `doc_id` is empty in 1 row\(s\) \(first: row 1\); every passage "
                                        "needs the id of its document"):
        embed_passages(gap, tmp_path / "emb2", _FakeEmbedder(32))


def test_exact_search_takes_queries_a_block_at_a_time(monkeypatch):
    """All queries' scores were one [queries, passages] matrix (and its negation): 50,000 evaluation queries over a
    20,000-passage exact index held 8 GB. A block at a time gives the same answer."""
    from kubepipe.components.retrieval import index

    rng = np.random.default_rng(3)
    v, q = rng.normal(size=(40, 8)).astype(np.float32), rng.normal(size=(23, 8)).astype(np.float32)
    whole = exact_search(v, q, 5)
    monkeypatch.setattr(index, "SCORE_BLOCK", 40 * 4)  # 4 queries a block: 6 blocks, the last of 3
    calls = []
    real = np.partition
    monkeypatch.setattr(np, "partition", lambda a, *args, **kw: calls.append(a.shape) or real(a, *args, **kw))
    rows, scores = exact_search(v, q, 5)
    assert rows.tolist() == whole[0].tolist() and np.allclose(scores, whole[1])
    assert calls == [(4, 40)] * 5 + [(3, 40)]


def test_the_latency_gate_measures_an_hnsw_index_on_the_served_threads(tmp_path, monkeypatch):
    """query_p99_ms ran faiss on every OpenMP thread while `kubepipe serve` gives a query --torch-threads (1)."""
    import faiss
    import torch

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.embedder import Embedder
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval
    from kubepipe.components.retrieval.retriever import Retriever

    emb, _ = _embeddings(tmp_path, n=40)
    build_index(emb, tmp_path / "idx", method="hnsw", threads=1)
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: _FakeEmbedder(32)))
    seen, search = [], Retriever.search_docs

    def spy(self, queries, k, **kw):
        if len(queries) == 1:  # the latency measurement: one query at a time
            seen.append((faiss.omp_get_max_threads(), torch.get_num_threads()))
        return search(self, queries, k, **kw)

    monkeypatch.setattr(Retriever, "search_docs", spy)
    queries = tmp_path / "q.parquet"
    write_dataset(pd.DataFrame({"query": ["a", "b"], "relevant": ["d1", "d2"]}), queries)
    omp_before, torch_at_start = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(3)
    torch_before = torch.get_num_threads()  # 3 too where torch and faiss share one OpenMP runtime
    try:
        ev = evaluate_retrieval(tmp_path / "idx", queries, baseline="none", thresholds={"recall@5": {"min": 0.0}})
        assert seen == [(1, 1), (1, 1)]
        assert ev["latency"] == {"queries": 2, "threads": 1}
        assert faiss.omp_get_max_threads() == 3 and torch.get_num_threads() == torch_before  # put back
    finally:
        torch.set_num_threads(torch_at_start)
        faiss.omp_set_num_threads(omp_before)
