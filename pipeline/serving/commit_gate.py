"""The commit gate of exactly-once serving.

A Kafka transaction commits every record sent in it, together with the consumer offsets handed to
it. The worker sends a batch's answers and history records first and acks its clicks only after
the broker has them, so a commit that came in between would publish answers whose clicks' offsets
it does not hold: a crash then answers those clicks again, visibly. The gate keeps the two apart:
a batch `enter()`s before its first send and `leave()`s once its clicks are acked; a commit
(`closed()`) holds new batches back, waits for the ones inside, and runs alone.

What may only happen once the records are committed waits here too (`after_commit`): the table's
persisted changelog offset, which Faust's recovery compares with the changelog's committed end and
refuses to start from when it is ahead (an aborted transaction's offset would be).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable


class CommitGate:
    def __init__(self) -> None:
        self._inside = 0  # batches between their first send and their last ack
        self._failure: BaseException | None = None
        self._empty = asyncio.Event()
        self._empty.set()
        self._open = asyncio.Event()
        self._open.set()
        self._committing = asyncio.Lock()
        self._after_commit: dict[Hashable, Callable[[], None]] = {}

    def after_commit(self, key: Hashable, action: Callable[[], None]) -> None:
        """Run `action` after the next commit that succeeds; a newer action of the same key replaces it."""
        self._after_commit[key] = action

    async def enter(self) -> None:
        while not self._open.is_set():
            await self._open.wait()
        self._inside += 1
        self._empty.clear()

    def leave(self, failure: BaseException | None = None) -> None:
        """The batch's clicks are acked; or, with `failure`, they never will be: its records must
        not be committed, so every later commit raises it (the worker stops, the transaction is
        aborted, the clicks go to the partitions' next owner)."""
        if failure is not None and self._failure is None:
            self._failure = failure
        self._inside -= 1
        if self._inside == 0:
            self._empty.set()

    @contextlib.asynccontextmanager
    async def closed(self) -> AsyncIterator[None]:
        """While inside: no batch is between sending and acking."""
        async with self._committing:
            self._open.clear()
            try:
                await self._empty.wait()
                if self._failure is not None:
                    raise RuntimeError("a batch was sent and not acked: its transaction must not commit") \
                        from self._failure
                waiting, self._after_commit = self._after_commit, {}
                try:
                    yield
                except BaseException:
                    self._after_commit = waiting | self._after_commit
                    raise
                for action in waiting.values():
                    action()
            finally:
                self._open.set()


__all__ = ["CommitGate"]
