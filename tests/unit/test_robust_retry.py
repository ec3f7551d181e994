"""Local runs stop at once on a failure a retry cannot change, and still retry a transient one."""

from __future__ import annotations

import re

import pytest

import kubepipe

pytestmark = pytest.mark.slow

PIPELINE = """\
apiVersion: kubepipe/v1
kind: Pipeline
metadata: {{name: retry-demo}}
defaults:
  retries: {{count: 2, backoff: {backoff}}}
steps:
{steps}
"""


def _log(run) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", open(run.log, encoding="utf-8").read())


def _write(tmp_path, steps: str, backoff: str = "0s"):
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.format(backoff=backoff, steps=steps))
    return path


def test_a_missing_file_fails_once_not_three_times(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a 20 s backoff: had kfp.local retried, the run would sleep 20 s + 40 s (the 61 s)
    path = _write(tmp_path, f"  load:\n    component: load-data\n    with: {{source: {tmp_path / 'nope.csv'}}}\n",
                  backoff="20s")
    run = kubepipe.run(path)
    assert not run.ok and "no such file" in run.step("load").error
    log = _log(run)
    assert log.count("Executing task 'load'") == 1, log
    assert "kubepipe: not retried: SourceMissing cannot change on a retry" in log  # a DataError (22702df3)
    assert "Retrying in" not in log


def test_a_transient_failure_is_still_retried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, f"  flaky:\n    component: ops:flaky\n    with: {{marker: {tmp_path / 'seen'}}}\n")
    run = kubepipe.run(path)
    assert run.ok, run.error
    log = _log(run)
    assert log.count("Executing task 'flaky'") == 2 and "ConnectionError: the service hiccuped" in log
    assert "not retried" not in log


def test_the_guard_wraps_kfp_locals_task_executor():
    """The private kfp.local API the guard relies on is still there (kfp 2.17's layout)."""
    from kfp.local.orchestrator import task_executor

    from kubepipe.backends.local import retry

    retry.apply()
    assert task_executor.execute_single_task.__module__ == "kubepipe.backends.local.retry"
