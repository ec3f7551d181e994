"""Token-budget batching in the server: a request is tokenized once as it arrives, and passes are formed by
its rows' widths (length buckets, --max-batch-tokens) without changing any answer.

Oracles: the encoder's own `encode` (padding rows one by one must give the same batch), and the model's
answer to each request on its own (batching must not change it).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("kserve")

from kubepipe.components.training.encoders import ByteEncoder, WordPieceEncoder  # noqa: E402
from tiny_bert import write_tokenizer  # noqa: E402

TEXTS = st.lists(st.text(max_size=60), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    return WordPieceEncoder(str(write_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")), max_length=24)


@settings(max_examples=60, deadline=None)
@given(texts=TEXTS)
def test_rows_collated_are_the_encoders_own_batch(wordpiece, texts):
    for enc in (ByteEncoder(max_length=32), wordpiece):
        rows = enc.encode_rows(texts)
        assert len(rows) == len(texts) and all(r.ndim == 1 and len(r) >= 1 for r in rows)
        want, got = enc.encode(texts), enc.collate_rows(rows)
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
        assert enc.count_tokens(None, got) == enc.count_tokens(texts)  # one definition of tokens


@pytest.fixture(scope="module")
def byte_model(tmp_path_factory):
    from kubepipe.components.serving.demo_model import train_demo_byte_model

    return train_demo_byte_model(tmp_path_factory.mktemp("byte") / "m", n=100, epochs=1, d_model=32, heads=2,
                                 max_length=64, seed=1)


def test_passes_respect_the_token_budget_and_buckets_and_answers_do_not_change(byte_model):
    from kubepipe.components.serving.model import ServedModel
    from kubepipe.components.serving.payloads import parse_v1

    budget = 300
    m = ServedModel("m", str(byte_model), max_batch_size=32, max_batch_tokens=budget, max_wait_ms=5.0,
                    forward_thread="on", freeze_gc=False)
    m.load()
    assert m._rows is not None  # a padded encoder: requests are tokenized as they arrive
    seen: list[tuple[int, int]] = []
    real = m.run

    def watched(encoded):  # the real runner; we only record each pass's padded shape
        seen.append(tuple(encoded["ids"].shape))
        return real(encoded)

    m.run = watched
    short = ["uber", "SHELL 55", "lyft ride", "AMZN MKTP"]
    long_ = ["POS PURCHASE STARBUCKS STORE #1234 SEATTLE WA 98101 USA CARD 4417",
             "WHOLEFDS MKT 10234 N CHICAGO AVE CHICAGO IL 60610 REF 99887766"]
    requests = [[short[i % 4]] * (1 + i % 3) if i % 3 else [long_[i % 2]] * (1 + i % 2) for i in range(30)]

    async def main():
        outs = await asyncio.gather(*(m.predict((None, parse_v1({"instances": r}, m.spec))) for r in requests))
        await m.batcher.stop()
        return outs

    outs = asyncio.run(main())
    shapes = list(seen)  # the served passes (the oracle's own passes below are not)
    for req, (_, _, probs) in zip(requests, outs):
        np.testing.assert_allclose(probs, m._forward(req, observe=False), atol=1e-5)  # alone == batched
    assert sum(rows for rows, _ in shapes) == sum(len(r) for r in requests)
    assert len(shapes) < len(requests)  # requests did share passes
    # every request alone fits the budget (3 rows x 66 tokens), so every pass must: without the rows'
    # widths the batcher would count rows, not tokens, and pad short rows into 32-row passes of long ones
    assert all(rows * width <= budget for rows, width in shapes), shapes
    assert any(width > 32 for _, width in shapes) and any(width <= 16 for _, width in shapes)


def test_cli_rejects_a_negative_token_budget(byte_model, capsys):
    from kubepipe.components.serving.server import main

    with pytest.raises(SystemExit) as exc:
        main([str(byte_model), "--max-batch-tokens", "-1"])
    assert exc.value.code == 2 and "--max-batch-tokens must be 0 or more" in capsys.readouterr().err


def test_a_pass_of_mixed_widths_is_cut_by_width_and_answers_and_tokens_do_not_change(byte_model):
    from prometheus_client import REGISTRY

    from kubepipe.components.serving.model import ServedModel

    m = ServedModel("cut", str(byte_model), max_batch_size=32, forward_thread="on", freeze_gc=False)
    m.load()
    measured = m.pass_overhead_tokens  # the warm-up measured a pass's fixed cost on this runtime
    assert measured is not None and measured >= 1.0
    assert m.describe()["pass_overhead_tokens"] == (round(measured, 1) if measured < float("inf") else None)
    m.pass_overhead_tokens = 2.0  # cheap passes: any real difference in width is worth a cut
    shapes: list[tuple[int, int]] = []
    real = m.run

    def watched(encoded):
        shapes.append(tuple(encoded["ids"].shape))
        return real(encoded)

    m.run = watched
    texts = ["uber", "POS PURCHASE STARBUCKS STORE #1234 SEATTLE WA 98101 USA", "SHELL 55", "lyft ride",
             "WHOLEFDS MKT 10234 N CHICAGO AVE CHICAGO IL 60610", "AMZN MKTP"] * 3
    rows = m._rows(texts)
    before = REGISTRY.get_sample_value("kubepipe_serve_tokens_total", {"model_name": "cut"}) or 0.0
    probs = m._forward(rows)
    after = REGISTRY.get_sample_value("kubepipe_serve_tokens_total", {"model_name": "cut"})
    assert len(shapes) >= 2 and sum(n for n, _ in shapes) == len(texts)  # cut, every row once
    assert sum(n * w for n, w in shapes) < len(texts) * max(len(r) for r in rows)  # less padding than one pass
    assert after - before == m.model.count_tokens(texts)  # the one definition of tokens, cut or not
    m.run = real
    for i, row in enumerate(rows):  # each row alone: the cut changed no answer, nor the order
        np.testing.assert_allclose(probs[i], m._forward([row], observe=False)[0], atol=1e-5)
    m.pass_overhead_tokens = None  # never cut: one pass, the same answers
    np.testing.assert_allclose(m._forward(rows, observe=False), probs, atol=1e-5)
