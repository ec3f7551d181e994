"""Micro-batching: concurrent requests share forward passes, never over the max, results routed back."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kubepipe.components.serving.batcher import MicroBatcher


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_coalesce_and_get_their_own_rows():
    passes = []

    def forward(items):
        passes.append(list(items))
        return [x * 10 for x in items]

    async def main():
        b = MicroBatcher(forward, max_batch_size=8, max_wait_s=0.05)
        outs = await asyncio.gather(*[b.submit([i, i + 100]) for i in range(4)])
        await b.stop()
        return outs

    outs = run(main())
    assert outs == [[i * 10, (i + 100) * 10] for i in range(4)]
    assert len(passes) < 4 and max(len(p) for p in passes) > 2  # requests really shared a pass


def test_batches_never_exceed_max_and_requests_never_split():
    seen = []

    def forward(items):
        seen.append(len(items))
        return list(items)

    async def main():
        b = MicroBatcher(forward, max_batch_size=5, max_wait_s=0.02)
        reqs = [[f"{i}-{j}" for j in range(n)] for i, n in enumerate([3, 3, 2, 4, 1, 5])]
        outs = await asyncio.gather(*[b.submit(r) for r in reqs])
        await b.stop()
        return reqs, outs

    reqs, outs = run(main())
    assert outs == reqs
    assert max(seen) <= 5 and sum(seen) == 18


def test_forward_error_reaches_every_request_of_the_pass_and_the_batcher_survives():
    calls = {"n": 0}

    def forward(items):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return list(items)

    async def main():
        b = MicroBatcher(forward, max_batch_size=8, max_wait_s=0.05)
        first = await asyncio.gather(b.submit([1]), b.submit([2]), return_exceptions=True)
        second = await b.submit([3])
        await b.stop()
        return first, second

    first, second = run(main())
    assert all(isinstance(e, RuntimeError) for e in first) and second == [3]


def test_forward_runs_off_the_event_loop_thread():
    threads = []

    def forward(items):
        threads.append(threading.current_thread().name)
        return list(items)

    async def main():
        b = MicroBatcher(forward, max_batch_size=4, max_wait_s=0.0)
        await b.submit([1])
        await b.stop()

    run(main())
    assert threads and threads[0].startswith("kubepipe-forward")


def test_stop_finishes_queued_requests():
    async def main():
        b = MicroBatcher(lambda items: list(items), max_batch_size=2, max_wait_s=0.01)
        tasks = [asyncio.ensure_future(b.submit([i])) for i in range(6)]
        await asyncio.sleep(0)
        await b.stop()
        return [t.result() for t in tasks]

    assert run(main()) == [[i] for i in range(6)]


@pytest.mark.parametrize("wait", [0.0, 0.002])
def test_single_request_is_not_held_longer_than_max_wait(wait):
    import time

    async def main():
        b = MicroBatcher(lambda items: list(items), max_batch_size=64, max_wait_s=wait)
        await b.submit([0])  # starts the thread pool
        t0 = time.perf_counter()
        await b.submit([1])
        dt = time.perf_counter() - t0
        await b.stop()
        return dt

    assert run(main()) < wait + 1.0  # generous for a loaded 2-core CI box; latency belongs in benchmarks/


def test_waits_for_requests_that_are_on_their_way_but_not_for_nobody():
    import time

    passes = []

    def forward(items):
        passes.append(list(items))
        return list(items)

    async def main():
        state = {"arriving": 1}
        b = MicroBatcher(forward, max_batch_size=8, max_wait_s=3.0, arriving=lambda: state["arriving"])

        async def late():
            await asyncio.sleep(0.05)
            state["arriving"] = 0
            return await b.submit([2])

        first = asyncio.ensure_future(b.submit([1]))
        await asyncio.gather(first, late())
        state["arriving"] = 0
        t0 = time.perf_counter()
        await b.submit([3])  # nobody else arriving: dispatched at once, not after max_wait (3 s)
        alone = time.perf_counter() - t0
        await b.stop()
        return alone

    alone = run(main())
    assert passes[0] == [1, 2] and passes[1] == [3] and alone < 1.5  # half of max_wait: room for a loaded box
