"""One place that configures Great Expectations 1.x for kubepipe: quiet, offline and fast.

Speed (see benchmarks/validate.py): GX's pandas engine filters the whole frame once per
expectation (`df[mask]`); without copy-on-write each filter that keeps every row deep-copies
every column (and re-consolidates the blocks). Under copy-on-write those copies are lazy.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, TypeGuard

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["gx_context", "fast_pandas"]


def _quiet_env() -> None:
    os.environ["GX_ANALYTICS_ENABLED"] = "false"  # never phone home from a pipeline step
    os.environ.setdefault("TQDM_DISABLE", "1")


def gx_context():
    """An ephemeral GX context (nothing written to disk), analytics and progress bars off."""
    _quiet_env()
    import logging

    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    _patch_decimal_scan()
    _skip_fingerprint()
    return ctx


@contextmanager
def fast_pandas(df) -> Iterator[object]:
    """Copy-on-write for the duration of a validation run (a lazy copy: the caller's frame is never touched)."""
    import pandas as pd

    with pd.option_context("mode.copy_on_write", True):
        yield df.copy(deep=False)


_PATCHED = False


def _skip_fingerprint() -> None:
    """GX hashes every frame under 1 GB (`HASH_THRESHOLD`) only to label the batch in its results.

    That hash is a third of a 1M-row validation; the Dataset artifact already carries a content hash.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0


def _patch_decimal_scan() -> None:
    """GX's column mean/sum/stdev scan every value in Python for `decimal.Decimal` objects.

    A numeric ndarray cannot hold Decimal objects, so answer False for non-object dtypes
    (same result, O(1) instead of a Python loop over 1M values); object arrays still get the scan.
    """
    global _PATCHED
    if _PATCHED:
        return
    import great_expectations.util as gx_util

    original = gx_util.does_ndarray_contain_decimal_dtype

    def does_ndarray_contain_decimal_dtype(data: npt.NDArray) -> TypeGuard[npt.NDArray]:
        if getattr(getattr(data, "dtype", None), "kind", "O") != "O":
            return False
        return original(data)

    gx_util.does_ndarray_contain_decimal_dtype = does_ndarray_contain_decimal_dtype
    _PATCHED = True
