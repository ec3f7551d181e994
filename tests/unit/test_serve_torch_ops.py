"""The CPU a served pretrained-encoder pass costs in aten ops, against the bare forward a user writes with transformers.

On a GPU the teacher's server is bound by its CPU, mostly per-op dispatch and kernel launches, so the aten ops a pass
dispatches (torch.profiler: every thread, every dispatcher entry) stand for that cost where a CPU can count them.
The oracle is the bare forward: the same weights through the transformers encoder as its documentation calls it (the
2-D attention mask), a masked mean and the head, fp32 eager, softmax (benchmarks/serve.py's bare server, written
without kubepipe's model code). kubepipe's pass is `TorchRunner` at bf16, as `kubepipe serve --device cuda` runs it.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from kubepipe.components.serving.runtime import TorchRunner  # noqa: E402
from kubepipe.components.training.artifact import load_model  # noqa: E402
from tiny_bert import save_classifier  # noqa: E402

TEXTS = ["starbucks coffee seattle", "uber trip", "amazon marketplace order 1234 seattle wa", "shell oil",
         "target store", "coffee"] * 4  # 24 rows of 3-9 tokens: padded, as a request's rows are


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return save_classifier(tmp_path_factory.mktemp("ops"))


def _bare(loaded, encoded: dict) -> np.ndarray:
    """The bare forward (see the module docstring): probabilities."""
    ids, mask = torch.from_numpy(encoded["input_ids"]), torch.from_numpy(encoded["attention_mask"])
    module = loaded.module
    with torch.inference_mode():
        hidden = module.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        return torch.softmax(module.head(module.drop((hidden * m).sum(1) / m.sum(1))), -1).numpy()


def _ops(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    fn()  # warm: lazy initialisation is no per-pass cost
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(1 for e in prof.events() if e.name.startswith("aten::"))


def test_a_served_bf16_pass_dispatches_fewer_ops_than_the_bare_fp32_forward(artifact):
    """Before: 443 ops against bare's 428 (the tiny BERT, 24 rows): bf16 casts of the pooled mean and of the logits,
    dropout ops at eval, and the encoder's own mask building (~70 ops and a `mask.all()`, which syncs a GPU). Now 364."""
    bare, runner = load_model(artifact), TorchRunner(load_model(artifact), precision="bf16")
    encoded = bare.encoder.encode(TEXTS)
    assert encoded["attention_mask"].min() == 0  # padded
    ours, theirs = _ops(lambda: runner(encoded)), _ops(lambda: _bare(bare, encoded))
    assert ours <= theirs - 50, (ours, theirs)


@pytest.mark.parametrize("precision, tol", [("fp32", 1e-5), ("bf16", 0.05)])
def test_served_probabilities_are_the_bare_forward_s(artifact, precision, tol):
    """The served pass (4-D SDPA mask, pooled without a float32 copy, no dropout layers) answers as the bare forward:
    fp32 to rounding, bf16 within the server's bf16 tolerance (test_serve_runtime); rows alone as in a padded batch."""
    bare, runner = load_model(artifact), TorchRunner(load_model(artifact), precision=precision)
    encoded = bare.encoder.encode(TEXTS)
    want = _bare(bare, encoded)
    got = torch.softmax(torch.from_numpy(runner(encoded)), -1).numpy()
    assert np.abs(got - want).max() <= tol
    alone = np.concatenate([torch.softmax(torch.from_numpy(runner(bare.encoder.encode([t]))), -1).numpy()
                            for t in TEXTS[:6]])
    assert np.abs(alone - want[:6]).max() <= tol
