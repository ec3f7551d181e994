"""One place that configures Great Expectations 1.x for kubepipe: quiet, offline and fast.

Speed (see benchmarks/validate.py): GX's pandas engine filters the whole frame once per
expectation (`df[mask]`); without copy-on-write each filter that keeps every row deep-copies
every column (and re-consolidates the blocks). Under copy-on-write those copies are lazy.

GX internals used here and in validate.py (decision 0018) are read through `gx_internal`, which names
the installed GX and what changed instead of an ImportError or AttributeError inside a validation;
tests/unit/test_gx_pins.py pins them.
"""

from __future__ import annotations

import importlib
import os
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, TypeGuard

from kubepipe.components.errors import ComponentError
from kubepipe.dependency_pins import changed, signature_problem

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["gx_context", "fast_pandas", "gx_internal", "DECLARED"]

DECLARED = "great-expectations>=1.24.1,<1.25"


def gx_internal(module: str, name: str, params: list[str] | None = None) -> Any:
    """`module.name` of great_expectations, which GX does not document; `params`: the parameters a function of it
    must take. A GX that moved or reshaped it is a ComponentError naming the GX version and what changed."""
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise _changed(f"{module}.{name} is gone ({type(exc).__name__}: {exc})") from None
    problem = signature_problem(found, params) if params is not None else None
    if problem:
        raise _changed(f"{module}.{name} {problem}")
    return found


def _changed(why: str) -> ComponentError:
    return ComponentError(changed("kubepipe's data validation cannot run on", "great-expectations", why, DECLARED))


def _quiet_env() -> None:
    os.environ["GX_ANALYTICS_ENABLED"] = "false"  # never phone home from a pipeline step
    os.environ.setdefault("TQDM_DISABLE", "1")


def gx_context():
    """An ephemeral GX context (nothing written to disk), analytics and progress bars off."""
    _quiet_env()
    import logging

    import great_expectations as gx

    progress_bars = gx_internal("great_expectations.data_context.types.base", "ProgressBarsConfig")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = progress_bars(globally=False, metric_calculations=False)
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
_PATCHING = threading.Lock()  # GX's util module is the process's: one thread patches it, once


def _skip_fingerprint() -> None:
    """GX hashes every frame under 1 GB (`HASH_THRESHOLD`) only to label the batch in its results.

    That hash is a third of a 1M-row validation; the Dataset artifact already carries a content hash.
    """
    module = "great_expectations.execution_engine.pandas_execution_engine"
    if not isinstance(gx_internal(module, "HASH_THRESHOLD"), (int, float)):  # setting a new name would do nothing
        raise _changed(f"{module}.HASH_THRESHOLD is no longer a number")
    engine: Any = importlib.import_module(module)  # a module whose names mypy cannot see
    engine.HASH_THRESHOLD = 0


def _patch_decimal_scan() -> None:
    """GX's column mean/sum/stdev scan every value in Python for `decimal.Decimal` objects.

    A numeric ndarray cannot hold Decimal objects, so answer False for non-object dtypes
    (same result, O(1) instead of a Python loop over 1M values); object arrays still get the scan.
    """
    global _PATCHED
    with _PATCHING:
        if not _PATCHED:
            _wrap_decimal_scan()
            _PATCHED = True


def _wrap_decimal_scan() -> None:
    import great_expectations.util as gx_util

    original = gx_internal("great_expectations.util", "does_ndarray_contain_decimal_dtype", ["data"])

    def does_ndarray_contain_decimal_dtype(data: npt.NDArray) -> TypeGuard[npt.NDArray]:
        if getattr(getattr(data, "dtype", None), "kind", "O") != "O":
            return False
        return original(data)

    gx_util.does_ndarray_contain_decimal_dtype = does_ndarray_contain_decimal_dtype
