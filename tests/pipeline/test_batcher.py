import asyncio

import pytest

from seqrec.pipeline.serving.batcher import BatchPolicy, MicroBatcher


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_flushes_at_max_size_without_waiting():
    async def main():
        batches = []

        async def handler(batch):
            batches.append(batch)

        b = MicroBatcher(handler, BatchPolicy(max_size=3, max_wait_s=60, max_pending=10))
        task = asyncio.create_task(b.run())
        for i in range(7):
            await b.put(i)
        await asyncio.sleep(0.05)
        task.cancel()
        return batches

    assert run(main()) == [[0, 1, 2], [3, 4, 5]]  # the 7th waits for its 60 s deadline


def test_flushes_a_partial_batch_after_max_wait():
    async def main():
        batches = []
        b = MicroBatcher(lambda batch: _append(batches, batch), BatchPolicy(max_size=100, max_wait_s=0.02))
        task = asyncio.create_task(b.run())
        await b.put("a")
        await b.put("b")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await b.wait_idle()
        elapsed = loop.time() - t0
        task.cancel()
        return batches, elapsed

    batches, elapsed = run(main())
    assert batches == [["a", "b"]]
    assert 0.015 <= elapsed < 1.0


async def _append(batches, batch):
    batches.append(batch)


def test_batches_grow_while_the_handler_is_busy():
    async def main():
        sizes, started, release = [], asyncio.Event(), asyncio.Event()

        async def slow(batch):
            sizes.append(len(batch))
            started.set()
            await release.wait()

        b = MicroBatcher(slow, BatchPolicy(max_size=64, max_wait_s=0.001, max_pending=1000))
        task = asyncio.create_task(b.run())
        await b.put(0)
        await started.wait()  # the first batch, [0], is being handled
        for i in range(1, 101):
            await b.put(i)
        release.set()
        await b.wait_idle()
        task.cancel()
        return sizes

    assert run(main()) == [1, 64, 36]  # what queued meanwhile goes out at once, capped at max_size


def test_put_waits_when_max_pending_is_reached():
    async def main():
        release = asyncio.Event()

        async def blocked(batch):
            await release.wait()

        b = MicroBatcher(blocked, BatchPolicy(max_size=2, max_wait_s=0, max_pending=2))
        task = asyncio.create_task(b.run())
        await b.put(0)
        await asyncio.sleep(0.01)  # batch [0] is in flight now
        await b.put(1)
        await b.put(2)  # queue full
        fifth = asyncio.create_task(b.put(3))
        await asyncio.sleep(0.05)
        was_blocked = not fifth.done()
        release.set()
        await asyncio.wait_for(fifth, 1)
        await b.wait_idle()
        task.cancel()
        return was_blocked, b.pending

    was_blocked, pending = run(main())
    assert was_blocked and pending == 0


def test_handler_error_ends_run():
    async def main():
        async def boom(batch):
            raise RuntimeError("broker gone")

        b = MicroBatcher(boom, BatchPolicy(max_size=1, max_wait_s=0))
        task = asyncio.create_task(b.run())
        await b.put(1)
        with pytest.raises(RuntimeError, match="broker gone"):
            await task

    run(main())


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        BatchPolicy(max_size=0)
    with pytest.raises(ValueError):
        BatchPolicy(max_size=10, max_pending=5)
