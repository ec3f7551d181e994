"""Python calls a row on the served request path, and the batch-wide text checks that removed them.

On a GPU the server is bound by its own CPU a request (benchmarks/README.md, "Aten ops a request"): the per-row
checks of a text body and the rows' widths were ~10 Python calls a row. The guard counts calls with cProfile (the
loop's thread, passes inline) at two request sizes of one repeated text, so that the passes, labels and widths are
the same and only the rows differ: the difference is the calls a row. The batch-wide checks are held to the rules
written out here from the protocol's words (a string, the length limit, no lone surrogate, a visible character).
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.serving.payloads import BadRequest, InputSpec, parse_v1
from kubepipe.components.serving.textbatch import usual_texts

LIMIT = 40


def _acceptable(v) -> bool:
    """A text instance the server takes, by the rules themselves (not the server's code)."""
    return (type(v) is str and len(v) <= LIMIT and not any(0xD800 <= ord(c) <= 0xDFFF for c in v)
            and any(c.isprintable() and not c.isspace() for c in v))


INSTANCE = st.one_of(st.text(max_size=50), st.sampled_from(["", " ", "\u200b", "\ud800", "a\udc00", "x" * 41,
                                                            "\t\n", "#1", "\"quoted\"", "ok"]),
                     st.integers(), st.none(), st.floats(allow_nan=False))


@settings(max_examples=400, deadline=None)
@given(instances=st.lists(INSTANCE, min_size=1, max_size=12))
def test_the_batch_check_takes_exactly_the_batches_whose_every_row_is_acceptable(instances):
    assert usual_texts(instances, LIMIT) == all(_acceptable(v) for v in instances)


@settings(max_examples=200, deadline=None)
@given(instances=st.lists(INSTANCE, min_size=1, max_size=12))
def test_a_bad_row_is_still_named(instances):
    spec = InputSpec(task="text-classification", max_text_length=LIMIT)
    bad = [i for i, v in enumerate(instances) if not _acceptable(v)]
    if not bad:
        assert parse_v1({"instances": instances}, spec).items == instances
        return
    with pytest.raises(BadRequest) as err:
        parse_v1({"instances": instances}, spec)
    assert err.value.field == f"instances[{bad[0]}]"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("kserve")
    from kubepipe.components.serving.demo_model import train_demo_byte_model
    from kubepipe.components.serving.model import ServedModel

    path = train_demo_byte_model(tmp_path_factory.mktemp("byte") / "m", n=60, epochs=1, d_model=16, heads=2,
                                 max_length=32, seed=1)
    m = ServedModel("calls", str(path), max_batch_size=64, forward_thread="off", freeze_gc=False)
    m.load()
    m.pass_overhead_tokens = None  # one pass a request, as on a GPU
    return m


def _calls(model, loop, rows: int, repeats: int = 3) -> float:
    """Python calls a V1 request of `rows` copies of one text (the loop's thread; the passes run on it)."""
    body = {"instances": ["STARBUCKS STORE 1234 SEATTLE WA"] * rows}
    loop.run_until_complete(model(dict(body), {}))  # warm
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeats):
        loop.run_until_complete(model(dict(body), {}))
    prof.disable()
    return pstats.Stats(prof).total_calls / repeats


def test_a_request_costs_almost_no_python_call_a_row(served):
    loop = asyncio.new_event_loop()
    try:
        small, large = _calls(served, loop, 16), _calls(served, loop, 64)
    finally:
        loop.run_until_complete(served.batcher.stop())
        loop.close()
    per_row = (large - small) / 48
    assert per_row <= 1.0, f"{per_row:.1f} Python calls a row ({small:.0f} at 16 rows, {large:.0f} at 64)"


def test_text_cells_are_read_as_the_model_reads_them():
    """A column of str alone is taken as it is; a missing cell is no text, a number its digits."""
    np = pytest.importorskip("numpy")
    from kubepipe.components.training.encoders import ByteEncoder

    enc = ByteEncoder(max_length=16)
    mixed = ["coffee", None, float("nan"), 3, "uber"]
    for got, want in zip(enc.encode_rows(mixed), enc.encode_rows(["coffee", "", "", "3", "uber"])):
        np.testing.assert_array_equal(got, want)
    rows = enc.encode_rows(["ab", "c"])  # the bytes, shifted by one, after [CLS]
    assert [r.tolist()[1:] for r in rows] == [[ord("a") + 1, ord("b") + 1], [ord("c") + 1]]


def test_wordpiece_rows_are_the_tokenizers_own_ids(tmp_path):
    np = pytest.importorskip("numpy")
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer

    from kubepipe.components.training.encoders import WordPieceEncoder
    from tiny_bert import write_tokenizer

    path = write_tokenizer(tmp_path / "tokenizer.json")
    texts = ["starbucks coffee seattle", "uber trip", "", "amazon marketplace order 1234"]
    rows = WordPieceEncoder(str(path), max_length=24).encode_rows(texts)
    oracle = Tokenizer.from_file(str(path))
    oracle.enable_truncation(max_length=24)
    assert [r.dtype for r in rows] == [np.int64] * len(texts)
    assert [r.tolist() for r in rows] == [oracle.encode(t).ids for t in texts]
