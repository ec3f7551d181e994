"""An index is gated like a model: against the registry's champion index on the same labelled queries, a better
candidate passes and is promoted, a worse one is rejected and the champion stays (real registry, exact indexes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kubepipe.components.errors import GateFailed
from kubepipe.components.retrieval.embedder import Embedder


def test_a_better_index_is_promoted_and_a_worse_one_rejected(tmp_path, monkeypatch):
    from test_retrieval_ties import _index, _TableEmbedder

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.evaluation.registration import register_challenger
    from kubepipe.components.registry import Registry
    from kubepipe.components.retrieval.evaluate import evaluate_retrieval

    rng = np.random.default_rng(7)
    docs = rng.normal(size=(8, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = {f"q{i}": docs[i] + 0.05 * rng.normal(size=16).astype(np.float32) for i in range(8)}
    ids = [f"m{i}" for i in range(8)]
    good = _index(tmp_path / "good", docs, ids)
    swapped = docs.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # a broken join: two merchants' texts under each other's ids
    worse = _index(tmp_path / "worse", swapped, ids)
    monkeypatch.setattr(Embedder, "load", classmethod(lambda cls, path, **kw: _TableEmbedder(queries)))
    write_dataset(pd.DataFrame({"query": list(queries), "relevant": ids}), tmp_path / "q.parquet")
    uri = f"file://{tmp_path / 'reg'}"
    gate = dict(model_name="idx", registry_uri=uri, thresholds={"recall@1": {"min": 0.5}},
                relative={"recall@1": {"max_regression": 0.01}})

    first = evaluate_retrieval(worse, tmp_path / "q.parquet", **gate)
    assert first["passed"] and first["decision"].startswith("first-run:") and first["metrics"]["recall@1"] == 0.75
    assert register_challenger(str(worse), first, model_name="idx", registry_uri=uri, promote=True).version == 1

    better = evaluate_retrieval(good, tmp_path / "q.parquet", **gate)
    assert better["passed"] and better["decision"].startswith("promote:"), better["decision"]
    assert (better["metrics"]["recall@1"], better["champion"]["metrics"]["recall@1"]) == (1.0, 0.75)
    assert register_challenger(str(good), better, model_name="idx", registry_uri=uri, promote=True).version == 2
    assert Registry(uri).alias("idx", "champion").version == 2

    again = evaluate_retrieval(worse, tmp_path / "q.parquet", **gate)  # v1's index against champion v2
    assert not again["passed"] and again["decision"].startswith("reject:") and "recall@1" in again["decision"]
    with pytest.raises(GateFailed, match="the gate rejected this model"):
        register_challenger(str(worse), again, model_name="idx", registry_uri=uri, promote=True)
    assert Registry(uri).alias("idx", "champion").version == 2
