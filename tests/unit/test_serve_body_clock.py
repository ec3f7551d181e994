"""The body-read timeout's clock (serving/body_clock.py): a request is timed out only while its body is arriving.

Driven through the wrapped ASGI receive as uvicorn delivers a body (parts with `more_body`), and swept at a time past
every deadline; the end-to-end 408s are tests/e2e/test_serve_edges.py's."""

from __future__ import annotations

import asyncio
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.components.serving.body_clock import BodyClock


class _Task:  # stands in for the request's task: the sweep only calls cancel()
    def __init__(self):
        self.cancelled = 0

    def cancel(self):
        self.cancelled += 1


def _delivered(clock: BodyClock, messages: list[dict], counts: bool):
    task = _Task()

    async def receive():
        return messages.pop(0)

    async def read(n: int):
        timed, reading = clock.receive(receive, task, counts)
        return [await timed() for _ in range(n)], reading

    got, reading = asyncio.run(read(len(messages)))
    return task, reading, got


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.binary(max_size=40), min_size=1, max_size=8), complete=st.booleans(),
       disconnect=st.booleans(), counts=st.booleans())
def test_a_request_is_timed_out_only_while_its_body_is_arriving(parts, complete, disconnect, counts):
    """Oracle: the body's own framing. The last part without more_body, or a disconnect, ends the reading: a sweep past
    the deadline then leaves the request alone; a body still arriving is cancelled once, its bytes counted."""
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1 or not complete}
                for i, p in enumerate(parts)]
    if disconnect and not complete:
        messages.append({"type": "http.disconnect"})
    clock = BodyClock(30.0)
    task, reading, got = _delivered(clock, list(messages), counts)
    assert got == messages  # passed through as they came
    clock.sweep(math.inf)
    ended = complete or disconnect
    assert (task.cancelled, reading.timed_out, reading.read) == (0 if ended else 1, not ended, ended)
    assert reading.received == (sum(map(len, parts)) if counts else 0)
    clock.sweep(math.inf)  # swept once: a second sweep finds nothing
    assert task.cancelled == (0 if ended else 1)


def test_a_sweep_before_the_deadline_leaves_a_slow_body_alone_and_a_finished_request_is_forgotten():
    clock = BodyClock(30.0)
    task, reading, _ = _delivered(clock, [{"type": "http.request", "body": b"{", "more_body": True}], True)
    clock.sweep(reading.deadline - 1.0)
    assert task.cancelled == 0 and not reading.timed_out
    clock.done(reading)  # the request ended some other way (an error, its answer)
    clock.sweep(math.inf)
    assert task.cancelled == 0
