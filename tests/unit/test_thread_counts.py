"""Process-wide thread counts a latency gate sets for its measurement (components/threads.py)."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")


def _fresh_thread_count() -> int:
    """The torch thread count a thread started now begins with (torch's process-wide default for new threads; a
    thread that set its own keeps it)."""
    got = []
    t = threading.Thread(target=lambda: got.append(torch.get_num_threads()))
    t.start()
    t.join(5)
    return got[0]


def test_two_evaluate_gates_in_two_threads_put_the_process_thread_count_back(monkeypatch):
    """measure_serving set torch's threads to serve's 1 and put back what it had read, unlocked: a second gate in
    another thread of the process (the Python API's) read the first one's 1 as what was there and put it back
    last, so every thread started afterwards (and the second gate's own) ran on one thread for good. A failed
    measurement puts it back too."""
    from kubepipe.components.evaluation import serving_latency

    a_in, b_in, a_done, seen = threading.Event(), threading.Event(), threading.Event(), {}

    class Parser:
        def get_default(self, key):
            return {"torch_threads": 1, "max_text_length": 64}[key]

    class FailingModel:
        def __init__(self, name, path, **kwargs):
            self.name = name

        def load(self):
            seen[self.name] = torch.get_num_threads()
            if self.name == "a":
                a_in.set()
                b_in.wait(0.5)  # the second gate, were it not waiting, starts meanwhile
            else:
                b_in.set()
                a_done.wait(5)  # ... and ends after the first
            raise RuntimeError(f"{self.name}: the model did not load")

    monkeypatch.setattr(serving_latency, "_serving_parts", lambda: (FailingModel, Parser()))
    settings = {"device": "cpu", "batch_size": 1, "requests": 1, "warmup": 0, "max_seconds": 1, "repeats": 1}
    errors = []

    def gate(name):
        try:
            serving_latency.measure_serving({name: "/nonexistent"}, lambda m: [], settings)
        except RuntimeError as exc:
            errors.append(str(exc))

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        first = threading.Thread(target=gate, args=("a",))
        first.start()
        assert a_in.wait(5)
        second = threading.Thread(target=gate, args=("b",))
        second.start()
        first.join(10)
        a_done.set()
        second.join(10)
        assert sorted(errors) == ["a: the model did not load", "b: the model did not load"]
        assert seen == {"a": 1, "b": 1}  # each measured on serve's thread count
        assert _fresh_thread_count() == 3  # what the process had, put back
    finally:
        torch.set_num_threads(before)


def test_the_evaluate_and_retrieval_gates_share_one_lock(monkeypatch):
    """The retrieval gate's search_threads held its own lock, the evaluate gate none: the two in two threads
    interleaved as two evaluate gates did. One lock (threads.thread_counts) for both; re-entrant in one thread."""
    from kubepipe.components.retrieval.index import search_threads
    from kubepipe.components.threads import thread_counts

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    entered = threading.Event()
    try:
        with thread_counts(1) as n:
            assert n == 1 and torch.get_num_threads() == 1
            with thread_counts(2):  # the same thread: no wait on itself
                assert torch.get_num_threads() == 2
            assert torch.get_num_threads() == 1

            def other():
                with search_threads(2, graph=False):
                    entered.set()

            t = threading.Thread(target=other)
            t.start()
            assert not entered.wait(0.3)  # waits for this block to end
        t.join(5)
        assert entered.is_set() and torch.get_num_threads() == 3 and _fresh_thread_count() == 3
    finally:
        torch.set_num_threads(before)
