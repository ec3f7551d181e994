"""An index's files read once: the sha256 is updated block by block as the bytes arrive in the one buffer that is
then parsed, so what was checked is what is loaded.

Hashing a file and then opening it again to load it left a window (TOCTOU) in which a file swapped between the two
was served unchecked. The buffer is parsed in place: the vectors are a view of it (np.frombuffer past the .npy
header, no second copy), the passages are decoded from it (pyarrow BufferReader) and the graph deserialised from
it a block at a time; no parser sees a byte before its file's sha256 matched.
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np

from kubepipe.components.errors import ModelError

__all__ = ["read_checked", "npy_from_buffer", "graph_from_buffer", "BLOCK"]

BLOCK = 1 << 20  # bytes read (and hashed) at a time


def read_checked(path: str | os.PathLike, want: str | None, *, owner: str, record: str, remedy: str,
                 unreadable: str) -> np.ndarray:
    """The bytes of `path` (uint8 [size]), read once; refused (ModelError naming the file and both hashes) unless
    they hash to `want` (None: not checked). `owner` names what the file is part of, `record` where `want` was recorded;
    `remedy` says what to do about a file that differs, `unreadable` about one that cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            # np.empty, not bytearray: its pages are not zeroed before the file is read into them
            buf = np.empty(os.fstat(fh.fileno()).st_size, dtype=np.uint8)
            with buf.data as view:  # the array's own memoryview
                got = 0
                while got < len(buf):
                    n = fh.readinto(view[got:got + BLOCK])
                    if not n:  # the file shrank while it was read
                        break
                    if want is not None:
                        h.update(view[got:got + n])
                    got += n
            buf = buf[:got]
            # grown while read: what was read is not the whole file; the rest is hashed too (for the message) and
            # the file refused
            while want is not None and (more := fh.read(BLOCK)):
                h.update(more)
                got = -1
    except OSError as exc:
        raise ModelError(f"{path}: cannot read this file of {owner} ({exc.strerror or exc}); {unreadable}") from None
    digest = h.hexdigest()
    if want is not None and (got < 0 or digest != want):
        raise ModelError(f"{path}: sha256 differs from {record}; {remedy} (read sha256 {digest}, "
                         f"recorded {want})")
    return buf


def npy_from_buffer(buf) -> np.ndarray:
    """The array of a .npy file's bytes, as a view of `buf` past its header (np.load would copy them); never
    pickled objects. ValueError (as np.load's) for no .npy at all, an object array or too few bytes."""
    from numpy.lib import format as npf

    head = io.BytesIO(bytes(memoryview(buf)[:1 << 16]))  # the header only (numpy reads <= 10,000 bytes of one)
    version = npf.read_magic(head)
    if version == (1, 0):
        shape, fortran, dtype = npf.read_array_header_1_0(head)
    elif version in ((2, 0), (3, 0)):  # 3.0 differs in utf-8 field names only, which vectors never have
        shape, fortran, dtype = npf.read_array_header_2_0(head)
    else:
        raise ValueError(f"npy format version {version} is not one numpy writes")
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    count = int(np.prod(shape, dtype=np.int64))
    offset = head.tell()
    if len(buf) - offset < count * dtype.itemsize:
        raise ValueError(f"{len(buf) - offset} bytes of data for an array of shape {shape} and dtype {dtype} "
                         f"({count * dtype.itemsize} bytes): the file is cut short")
    flat = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran else "C")


def graph_from_buffer(faiss, buf):
    """A faiss index read from `buf` a block at a time (faiss.deserialize_index first copied the whole buffer into
    a std::vector: the file's bytes held twice while the graph was built, 32 MiB more peak at 20,000 passages)."""
    view, at = memoryview(buf), 0

    def read(n: int) -> bytes:
        nonlocal at
        chunk = bytes(view[at:at + n])
        at += len(chunk)
        return chunk

    try:
        return faiss.read_index(faiss.PyCallbackIOReader(read, BLOCK))
    finally:
        view.release()
