"""What a local run shares with the process that calls it (backends.local.process_state)."""

from __future__ import annotations

import threading
import time

import pytest

from kubepipe.backends.local.process_state import one_run_at_a_time
from kubepipe.errors import UserError


def test_runs_in_two_threads_go_one_after_another():
    """Two kubepipe.run at once in one process (a notebook's threads, an Airflow worker's) both failed, each with
    the other's steps: kfp.local keeps one global config. The second waits for the first."""
    order = []

    def second():
        with one_run_at_a_time("b"):
            order.append("b")

    with one_run_at_a_time("a"):
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.2)
        order.append("a done")
    other.join(5)
    assert order == ["a done", "b"]


def test_a_run_started_from_inside_a_run_is_refused_not_waiting_for_itself():
    with one_run_at_a_time("outer"):
        with pytest.raises(UserError) as exc:
            with one_run_at_a_time("inner"):
                pass
    assert str(exc.value).startswith("cannot run `inner` from inside the local run of `outer` (its on_event callback)")
    with one_run_at_a_time("next"):  # the lock was given back
        pass
