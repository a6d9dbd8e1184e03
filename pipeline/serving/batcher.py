"""Batcher: gathers accepted clicks into micro-batches for one forward pass each.

Why not `stream.take(max_, within)`: a table cannot be written inside `take()` (faust-streaming
#497: there is no current event), and the per-user history must be updated before the click is
scored. So the agent updates the table per event and `put()`s a request here; `run()` is a
separate task that cuts batches and hands them to a handler (runner + sink + ack).

A batch is cut when it has `max_size` requests, or when its *oldest* request has waited
`max_wait` since it was put, whichever comes first. While the handler works on one batch, the
next one fills; if inference is slower than arrivals the queue grows and the next batch is cut
at once, up to `max_size` (batches grow under load, latency stays bounded by the wait plus one
batch). `max_pending` bounds the queue: `put()` then waits, which pauses the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_size: int = 64
    max_wait_s: float = 0.005
    max_pending: int = 4096

    def __post_init__(self) -> None:
        if self.max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {self.max_size}")
        if self.max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {self.max_wait_s}")
        if self.max_pending < self.max_size:
            raise ValueError(f"max_pending ({self.max_pending}) must be >= max_size ({self.max_size})")


class MicroBatcher(Generic[T]):
    """An asyncio micro-batcher: `put()` items from one task, `run()` flushes them in another.

    `handler(batch)` is awaited for one batch at a time, in arrival order. If it raises, the
    error propagates out of `run()` (the batch's items were never acked, so Kafka redelivers
    them to whoever owns their partitions next).
    """

    def __init__(
        self,
        handler: Callable[[list[T]], Awaitable[None]],
        policy: BatchPolicy = BatchPolicy(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handler = handler
        self._policy = policy
        self._clock = clock
        self._items: deque[tuple[float, T]] = deque()
        self._arrived = asyncio.Event()  # set when _items gains an item
        self._space = asyncio.Event()  # set when _items is below max_pending
        self._space.set()
        self._idle = asyncio.Event()  # set when nothing is queued or in flight
        self._idle.set()
        self._in_flight = 0

    @property
    def pending(self) -> int:
        """Items put and not yet handled (queued plus in the batch being handled)."""
        return len(self._items) + self._in_flight

    async def put(self, item: T) -> None:
        while len(self._items) >= self._policy.max_pending:
            self._space.clear()
            await self._space.wait()
        self._items.append((self._clock(), item))
        self._idle.clear()
        n = len(self._items)
        if n == 1 or n >= self._policy.max_size:  # only these change what next_batch waits for
            self._arrived.set()

    async def next_batch(self) -> list[T]:
        """Wait for the next batch by the policy and take it off the queue."""
        policy = self._policy
        while not self._items:
            self._arrived.clear()
            await self._arrived.wait()
        while len(self._items) < policy.max_size:
            remaining = self._items[0][0] + policy.max_wait_s - self._clock()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                break
        n = min(policy.max_size, len(self._items))
        batch = [self._items.popleft()[1] for _ in range(n)]
        if len(self._items) < policy.max_pending:
            self._space.set()
        return batch

    async def run(self) -> None:
        """Cut and handle batches until cancelled."""
        while True:
            batch = await self.next_batch()
            self._in_flight = len(batch)
            try:
                await self._handler(batch)
            finally:
                self._in_flight = 0
                if not self._items:
                    self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until every item put so far has been handled (used at shutdown and in tests)."""
        await self._idle.wait()


__all__ = ["BatchPolicy", "MicroBatcher"]
