"""`kubepipe serve --torch-compile --compile-mode`: the mode reaches torch.compile, and reduce-overhead's bucketed
shapes (serving/buckets.py) answer as the eager model does. On the CPU: torch.compile really compiles (inductor), CUDA
graphs are what it skips there; torch's own `get_compiler_config()` (the public API of a compiled module) says which
mode it was given."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from kubepipe.components.serving.buckets import pad_to, row_bucket, shapes, width_bucket  # noqa: E402
from kubepipe.components.serving.runtime import TorchRunner  # noqa: E402
from kubepipe.components.training.artifact import load_model  # noqa: E402
from tiny_bert import save_classifier  # noqa: E402

pytestmark = pytest.mark.timeout(1200)  # inductor compiles C++: minutes on 2 busy cores
TEXTS = ["starbucks coffee seattle", "uber trip", "amazon marketplace order 1234 seattle wa"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return save_classifier(tmp_path_factory.mktemp("compile"), max_length=16)


@pytest.mark.parametrize("mode, cudagraphs, autotune", [("default", False, False), ("reduce-overhead", True, False),
                                                         ("max-autotune-no-cudagraphs", False, True)])
def test_the_mode_reaches_torch_compile(artifact, mode, cudagraphs, autotune):
    runner = TorchRunner(load_model(artifact), compile=True, compile_mode=mode)
    config = runner.module.get_compiler_config()
    assert bool(config["triton.cudagraphs"]) is cudagraphs and bool(config["max_autotune"]) is autotune
    assert runner.bucketed is cudagraphs and runner.describe["compile_mode"] == mode


def test_buckets_cover_every_pass_and_pad_with_masked_columns_and_repeated_rows():
    assert [row_bucket(n, 64) for n in (1, 2, 3, 5, 33, 64)] == [1, 2, 4, 8, 64, 64]
    assert row_bucket(48, 48) == 48 and row_bucket(40, 48) == 48  # never past --max-batch-size
    assert [width_bucket(w, 32) for w in (1, 8, 9, 17, 32)] == [8, 8, 16, 32, 32]
    assert width_bucket(100, 100) == 100 and width_bucket(20, None) == 32
    assert shapes(4, 16) == [(1, 8), (1, 16), (2, 8), (2, 16), (4, 8), (4, 16)]
    assert shapes(2, None) == [(1, None), (2, None)]
    ids = np.array([[2, 7, 3], [2, 3, 0]])
    got = pad_to({"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}, 4, 8)
    assert got["input_ids"].tolist() == [[2, 7, 3, 0, 0, 0, 0, 0], [2, 3, 0, 0, 0, 0, 0, 0]] + \
        [[2, 7, 3, 0, 0, 0, 0, 0]] * 2
    assert got["attention_mask"].sum(1).tolist() == [3, 2, 3, 3]


@pytest.mark.slow
def test_reduce_overhead_serves_bucketed_passes_warmed_at_load_as_the_eager_model_answers(artifact):
    """A compiled server (a real inductor compile on the CPU, where CUDA graphs are skipped) warms every bucket at
    load and answers each row of passes of 1, 3 and 4 rows (padded to 1, 4, 4 rows) as the eager model does."""
    from kubepipe.components.serving.model import ServedModel

    model = ServedModel("m", str(artifact), max_batch_size=4, torch_compile=True, compile_mode="reduce-overhead",
                        freeze_gc=False)
    model.load()
    card = model.describe()
    assert card["compile_mode"] == "reduce-overhead" and card["bucket_shapes"] == len(shapes(4, 16)) == 6
    eager = load_model(artifact)

    async def go():
        try:
            return [await model({"instances": texts, "return_probabilities": True})
                    for texts in (TEXTS, TEXTS[:1], TEXTS + TEXTS[:1])]
        finally:
            await model.batcher.stop()

    for texts, answer in zip((TEXTS, TEXTS[:1], TEXTS + TEXTS[:1]), asyncio.run(go())):
        answer = answer[0] if isinstance(answer, tuple) else answer  # kserve: (body, headers)
        got = np.array([p["probabilities"] for p in answer["predictions"]])
        want = eager.predict_proba(texts)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)
