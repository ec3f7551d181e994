"""Data validation reaches into great_expectations internals GX does not document (decision 0018): pinned here,
and a GX that moved or reshaped one is named with its version, not an ImportError or AttributeError mid-run."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pandas as pd
import pytest
from packaging.version import Version

pytest.importorskip("great_expectations")

from kubepipe.components.data import gx_runtime  # noqa: E402
from kubepipe.components.errors import ComponentError  # noqa: E402


def test_the_gx_internals_kubepipe_uses_are_there():
    import great_expectations.util as gx_util
    from great_expectations.execution_engine import pandas_execution_engine

    assert isinstance(pandas_execution_engine.HASH_THRESHOLD, (int, float))
    assert "< HASH_THRESHOLD" in inspect.getsource(pandas_execution_engine)  # read at call time: 0 skips the hash
    # called through the module's own name, so the patched one is what GX's numeric checks run
    assert "= does_ndarray_contain_decimal_dtype(data=" in inspect.getsource(gx_util)
    registry = gx_runtime.gx_internal("great_expectations.expectations.registry", "get_expectation_impl",
                                      ["expectation_name"])
    assert registry("expect_column_values_to_not_be_null").__name__ == "ExpectColumnValuesToNotBeNull"
    gx_runtime.gx_internal("great_expectations.data_context.types.base", "ProgressBarsConfig")
    gx_runtime.gx_context()  # applies both patches


def test_a_gx_without_an_internal_is_named_with_its_version(monkeypatch):
    from great_expectations.expectations import registry

    from kubepipe.components.data.validate import validate_frame
    from kubepipe.components.data.suite import ExpectationSpec

    monkeypatch.delattr(registry, "get_expectation_impl")
    spec = ExpectationSpec(index=0, name="expect_column_values_to_not_be_null", kwargs={"column": "a"},
                           severity="fail")
    with pytest.raises(ComponentError) as exc:
        validate_frame(pd.DataFrame({"a": [1, 2]}), [spec])
    assert str(exc.value).startswith(
        f"kubepipe's data validation cannot run on great-expectations {version('great-expectations')}: "
        "great_expectations.expectations.registry.get_expectation_impl is gone (AttributeError: ")
    have = version("great-expectations")
    if Version(have) == Version("1.24.1"):  # the range's first release: nothing earlier to install (ccd42115)
        assert str(exc.value).endswith(
            f"great-expectations {have} is the earliest release the range kubepipe declares "
            "(great-expectations>=1.24.1,<1.25) allows, yet changed this: no release kubepipe supports is without the "
            "change; upgrade kubepipe")
    else:
        assert str(exc.value).endswith(
            f"great-expectations {have} is within the range kubepipe declares (great-expectations>=1.24.1,<1.25) yet "
            f"changed this: install an earlier release (pip install 'great-expectations>=1.24.1,<1.25,<{have}') or "
            "upgrade kubepipe")


def test_a_renamed_hash_threshold_is_named_not_set_for_nothing(monkeypatch):
    from great_expectations.execution_engine import pandas_execution_engine

    monkeypatch.delattr(pandas_execution_engine, "HASH_THRESHOLD")
    with pytest.raises(ComponentError, match=r"pandas_execution_engine\.HASH_THRESHOLD is gone"):
        gx_runtime.gx_context()
    assert not hasattr(pandas_execution_engine, "HASH_THRESHOLD")
