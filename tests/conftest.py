"""Shared test set-up: user fixture components importable as `ops:...`, GX analytics off."""

from __future__ import annotations

import builtins
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = ROOT.parent / "shared"

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# ONNX exports (kubepipe serve --runtime onnx/auto, Triton) cache outside ~/.cache in tests; servers inherit it
os.environ.setdefault("KUBEPIPE_ONNX_CACHE", os.path.join(tempfile.gettempdir(), f"kubepipe-onnx-tests-{os.getuid()}"))
# One OpenMP thread (torch, faiss) in the test process and every process it starts (kfp.local tasks, servers, the
# CLI), as `kubepipe serve` runs: `make test` runs two workers on two cores, where a process's second OpenMP thread
# mostly spins waiting for a descheduled sibling (a flagship run's train/evaluate/guardrail tasks: 21.0 -> 16.9 s CPU,
# the same model and verdict). Tests of thread counts set the counts they check; a caller's own value is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(FIXTURES), os.environ.get("PYTHONPATH", "")) if p)

from suite_order import slow_first_rank  # noqa: E402 - tests/fixtures, on sys.path from here


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist's --loadscope-reorder: the files as ordered here
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: slow_first_rank(item.nodeid))  # stable: a file's tests, and the rest, keep their order


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder (runs, registry and state land there), with the repo's configs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    return tmp_path


_PRINT = builtins.print  # before any test: kfp.local's parallel tasks can leave it indenting (process_state.py)


@pytest.fixture(autouse=True)
def _fresh_kfp_local():
    """kfp.local keeps one global config; a test that inits it must not leak it into the next. Nor a print left
    indenting by a test that ran parallel kfp.local tasks itself (kubepipe's own runs put it back)."""
    yield
    config = sys.modules.get("kfp.local.config")
    if config is not None:
        config.LocalExecutionConfig.instance = None
    builtins.print = _PRINT


@pytest.fixture(autouse=True)
def _thawed_heap():
    """A served model loaded in the test process freezes the heap (gc.freeze after warm-up, as `kubepipe serve`
    does): thawed after the test, or every later test of that xdist worker would keep it out of the collector."""
    yield
    import gc

    if gc.get_freeze_count():
        gc.unfreeze()


@pytest.fixture(autouse=True)
def _quiet_closed():
    """A kubepipe.clients.quiet() block left open (entered, never exited) keeps sys.stdout a _QuietStdout and this
    thread's prints dropped for the rest of its xdist worker (pytest re-sets sys.stdout between phases, so that
    alone is not seen): named here, at the test that left it."""
    yield
    clients = sys.modules.get("kubepipe.clients")
    if clients is None:
        return
    left, dropping = clients._quieting, clients._QUIET.get()
    if left or dropping:
        clients._quieting = 0
        clients._QUIET.set(False)
        if isinstance(sys.stdout, clients._QuietStdout):
            sys.stdout = sys.stdout.inner
        pytest.fail(f"this test left kubepipe.clients.quiet() open ({left} block(s); this thread's output dropped: "
                    f"{dropping}): later tests of this worker would print nothing", pytrace=False)


@pytest.fixture(scope="module")
def ddp_forkserver_stopped():
    """For a module whose tests train with DDP (`pytestmark = pytest.mark.usefixtures("ddp_forkserver_stopped")`):
    the forkserver its launches start is stopped when the module ends, not left for the rest of the worker's life."""
    yield
    from forkserver_stop import stop_forkserver

    stop_forkserver()


@pytest.fixture(scope="module")
def cli_words():
    """Messages name the CLI's options (`--param n=...`), as under `kubepipe` (kubepipe.arguments); outside it they
    name the API's arguments (`params['n']=...`). For a module of the CLI's words:
    `pytestmark = pytest.mark.usefixtures("cli_words")` (module-scoped: hypothesis's tests take it)."""
    from kubepipe.arguments import cli_arguments

    with cli_arguments():
        yield
