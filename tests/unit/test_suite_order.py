"""The suite's order (tests/fixtures/suite_order.py, applied by tests/conftest.py): the slowest files first, so that neither worker of `make test` is left
with a long file when the other has nothing more to do."""

from __future__ import annotations

from pathlib import Path

from suite_order import SLOW_FIRST, slow_first_rank

ROOT = Path(__file__).resolve().parents[2]


def test_every_file_the_order_names_is_there():
    """A slow file renamed or removed would go back to xdist's place for it, unsaid."""
    missing = [p for p in SLOW_FIRST if not (ROOT / p).exists()]
    assert missing == [], f"tests/conftest.py SLOW_FIRST names {missing}: update it"
    assert len(set(SLOW_FIRST)) == len(SLOW_FIRST)


def test_the_journey_comes_first_then_e2e_then_the_listed_files_then_the_rest():
    assert slow_first_rank("tests/e2e/test_journey.py::test_journey_core_only") == 0
    assert slow_first_rank("tests/e2e/test_flagship_demo.py::test_x") == 1
    assert 1 < slow_first_rank("tests/unit/test_train_bench.py::test_flops_and_peaks") < len(SLOW_FIRST)
    assert slow_first_rank(f"tests/unit/{Path(__file__).name}::test_x") == len(SLOW_FIRST)
