"""Static shapes for CUDA graphs (`--torch-compile --compile-mode reduce-overhead`): passes padded to bucketed shapes.

A CUDA graph replays the one shape it was captured at, and torch.compile captures a new graph for each new shape
(its CUDA graph trees). A server's passes come in any rows x width, so in that mode every pass is padded up to a
bucket: rows to the next power of two (at most --max-batch-size), width to the batcher's length bucket
(`batcher.bucket_of`: the next power of two, at least 8), at most the model's max_length. The padded rows repeat the
first row (a row of padding alone attends to nothing) and are dropped from the answer; the padded columns are
padding (id 0, mask 0), which the attention mask hides, so a row's answer is the one it gets unpadded. A model with
max_length 32 served with --max-batch-size 64 has 7 x 3 = 21 shapes, all captured at load (`shapes`).
"""

from __future__ import annotations

import numpy as np

from kubepipe.components.serving.batcher import bucket_of

__all__ = ["row_bucket", "width_bucket", "shapes", "pad_to", "padded_width"]

# kubepipe's encodings whose 2-D arrays pad with 0 (masked, or EmbeddingBag's padding index); a user model's encoder
# may read 0 otherwise, and a tabular row's width is its features: those passes get row buckets only
ZERO_PADDED = ("wordpiece", "bytes", "hashed-ngrams")


def padded_width(input_spec: dict) -> int | None:
    """The widest row of a model of `input_spec` (its max_length) where its widths may be padded with zeros, else
    None."""
    widest = input_spec.get("max_length")
    return widest if input_spec.get("encoding") in ZERO_PADDED and isinstance(widest, int) and widest > 0 else None


def row_bucket(rows: int, max_rows: int) -> int:
    """The rows a pass of `rows` rows is padded to: the next power of two, at most `max_rows` (a pass never has more)."""
    return max(rows, min(max_rows, 1 << max(0, rows - 1).bit_length()))


def width_bucket(width: int, widest: int | None) -> int:
    """The width a pass of rows up to `width` tokens wide is padded to: `bucket_of`, at most `widest` (the model's
    max_length, when it has one)."""
    bucket = bucket_of(width)
    return max(width, min(bucket, widest)) if widest else bucket


def shapes(max_rows: int, widest: int | None) -> list[tuple[int, int | None]]:
    """Every (rows, width) bucket of passes of up to `max_rows` rows of up to `widest` tokens (None: rows not
    padded to a width, e.g. tabular ones: the rows' buckets alone)."""
    rows = sorted({row_bucket(n, max_rows) for n in range(1, max_rows + 1)})
    widths: list[int | None] = [None]
    if widest:
        widths = [*sorted({width_bucket(w, widest) for w in range(1, widest + 1)})]
    return [(r, w) for r in rows for w in widths]


def pad_to(encoded: dict[str, np.ndarray], rows: int, width: int | None) -> dict[str, np.ndarray]:
    """`encoded` padded to `rows` rows (repeats of its first row) and, where `width` is given, its 2-D arrays to
    `width` columns of zeros (padding tokens, masked)."""
    out = {}
    for key, value in encoded.items():
        extra = rows - value.shape[0]
        if extra > 0:
            value = np.concatenate([value, np.repeat(value[:1], extra, axis=0)])
        if width is not None and value.ndim == 2 and value.shape[1] < width:
            value = np.pad(value, ((0, 0), (0, width - value.shape[1])))
        out[key] = value
    return out
