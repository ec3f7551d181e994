"""An index file swapped after it was checked is never served: each file is read once, hashed as it is read.

The swap is made by a Python audit hook (sys.addaudithook, the interpreter's own `open` event): after a file's
first open, the next open of any file replaces it on disk with another valid file of the same kind. An index
that hashed its files and then opened them again to load them loaded the replacement unchecked.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from kubepipe.components.errors import ModelError
from kubepipe.components.retrieval.index import INDEX_FILE, VectorIndex, build_index

faiss = pytest.importorskip("faiss")

_SWAP: dict = {}  # the swap in progress (an audit hook stays for the process: it does nothing when this is empty)


def _on_open(event, args):
    if event != "open" or not _SWAP or _SWAP.get("done") or isinstance(args[0], int) or args[0] is None:
        return
    if not _SWAP.get("armed"):
        _SWAP["armed"] = Path(os.fsdecode(args[0])).resolve() == _SWAP["target"]
        return
    _SWAP["done"] = True
    os.replace(_SWAP["replacement"], _SWAP["target"])  # before this later open happens


sys.addaudithook(_on_open)


def _unit(n, dim, seed):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _two_indexes(tmp_path, n=200, dim=16):
    """The index under test (tmp_path/idx) and another of the same shape (tmp_path/other) whose files replace its."""
    from small_index import build_small_index

    v = _unit(n, dim, 0)
    os.replace(build_small_index(tmp_path / "a", v, [f"d{i}" for i in range(n)], "hnsw"), tmp_path / "idx")
    os.replace(build_small_index(tmp_path / "b", _unit(n, dim, 1), [f"e{i}" for i in range(n)], "hnsw"),
               tmp_path / "other")
    return v, [f"d{i}" for i in range(n)]


@pytest.mark.parametrize("name", ["vectors.npy", "passages.parquet", "index.faiss"])
def test_a_file_replaced_after_its_first_read_is_not_loaded(tmp_path, name):
    v, docs = _two_indexes(tmp_path)
    target = (tmp_path / "idx" / name).resolve()
    _SWAP.update(target=target, replacement=tmp_path / "other" / name)
    try:
        idx = VectorIndex(tmp_path / "idx")
    except ModelError as exc:  # refused: as good, if it names the file
        assert name in str(exc)
        return
    finally:
        swapped = _SWAP.get("done")
        _SWAP.clear()
    # what is loaded is what the manifest's sha256 named, whether or not the file was swapped behind it
    assert np.array_equal(idx.vectors, v)
    assert idx.passages["doc_id"].tolist() == docs
    assert np.array_equal(idx.graph.reconstruct_n(0, idx.graph.ntotal), v)
    if name != "index.faiss":  # the graph is the last file read: no later open to swap it at
        assert swapped and hashlib.sha256(target.read_bytes()).hexdigest() != idx.manifest["files"][name]


@pytest.mark.parametrize("name", ["vectors.npy", "passages.parquet", "index.faiss"])
def test_a_replaced_file_is_refused_naming_it_and_both_sha256s(tmp_path, name):
    _two_indexes(tmp_path)
    recorded = json.loads((tmp_path / "idx" / INDEX_FILE).read_text())["files"][name]
    os.replace(tmp_path / "other" / name, tmp_path / "idx" / name)
    read = hashlib.sha256((tmp_path / "idx" / name).read_bytes()).hexdigest()
    with pytest.raises(ModelError) as err:
        VectorIndex(tmp_path / "idx")
    msg = str(err.value)
    assert f"{tmp_path / 'idx' / name}: sha256 differs from the one recorded in {INDEX_FILE}" in msg
    assert read in msg and recorded in msg and "rebuild" in msg


def test_vectors_are_parsed_as_np_load_parses_them(tmp_path):
    """The .npy parser of checked bytes against numpy's own np.load: dtypes, orders, shapes, and what it refuses."""
    from kubepipe.components.retrieval.checked_files import npy_from_buffer

    rng = np.random.default_rng(3)
    for arr in (rng.normal(size=(7, 5)).astype(np.float32), np.asfortranarray(rng.normal(size=(4, 6))),
                np.zeros((0, 3), np.float32), rng.integers(0, 9, size=(2, 3, 4)).astype(">i4"), np.float64(2.5)):
        np.save(tmp_path / "a.npy", arr)
        got = npy_from_buffer(bytearray((tmp_path / "a.npy").read_bytes()))
        want = np.load(tmp_path / "a.npy", allow_pickle=False)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        npy_from_buffer(bytearray((tmp_path / "o.npy").read_bytes()))
    np.save(tmp_path / "a.npy", np.ones((100, 4), np.float32))
    with pytest.raises(ValueError, match="cut short"):
        npy_from_buffer(bytearray((tmp_path / "a.npy").read_bytes()[:-4]))
    with pytest.raises(ValueError):
        npy_from_buffer(bytearray(b"PAR1 not an npy"))


@pytest.mark.parametrize("name", ["vectors.npy", "passages.parquet"])
def test_an_embed_output_file_replaced_after_its_first_read_is_not_indexed(tmp_path, name):
    """build-index checked the embed step's files and then copied them: one swapped in between was indexed, under
    a new sha256 of its own, and loaded without a word."""
    v, docs = _two_indexes(tmp_path)
    target = (tmp_path / "a" / "emb" / name).resolve()
    _SWAP.update(target=target, replacement=tmp_path / "b" / "emb" / name)
    try:
        build_index(tmp_path / "a" / "emb", tmp_path / "rebuilt", method="exact")
    except ModelError as exc:
        assert name in str(exc)
        return
    finally:
        swapped = _SWAP.get("done")
        _SWAP.clear()
    assert swapped
    idx = VectorIndex(tmp_path / "rebuilt")
    assert np.array_equal(idx.vectors, v) and idx.passages["doc_id"].tolist() == docs
