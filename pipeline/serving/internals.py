"""Every hook into faust-streaming's and aiokafka's private parts, in one place.

Each one is here because a measurement asked for it (docs/pipeline.md, docs/reliability.md), and
each one breaks silently when the library changes. `CHECKED_VERSIONS` names the versions they
were checked against; tests/pipeline/test_internals.py fails with a clear message when an installed
version differs or a hooked attribute is gone, and fails when any other module reaches into a
private attribute. An upgrade then means: re-read the hooks below against the new source, re-run
the benchmarks they cite, and update CHECKED_VERSIONS.

- `Consumer`: Faust's aiokafka consumer with a short fetch wait (`_create_worker_consumer`,
  `_new_consumer_thread`, aiokafka's `_fetch_max_wait_ms`), changelog ends asked of the broker
  (`_highwaters`, `_ensure_consumer`), a commit before partitions are
  revoked (Faust's own revocation forgets the acked offsets first), and each fetch given a copy
  of the active partitions, never an empty set (`_getmany`).
- `started_producer`: Faust's started aiokafka producer (`_ensure_producer`), for record batches
  sent without Faust's per-message send path.
- `transaction_producer`: under exactly_once, Faust's transactional aiokafka producer of one
  partition (`_transaction_producers`, keyed as Faust's TransactionManager names them; aiokafka's
  `_txn_manager` says whether it is in a transaction), for the same
  record batches inside the transaction that Faust commits with that partition's offsets; and
  `Consumer.force_commit` waits for the commit gate (serving/commit_gate.py).
- `partition_for`: the partition aiokafka's default partitioner picks (`_wait_on_metadata`,
  `_partitioner`), for records whose partition is not given.
- `table_store`: a Faust table's RocksDB store (`Table.data`), written without Faust's per-write
  changelog send; the worker sends the changelog records itself.
- `read_partition`: one key of one partition's RocksDB database of a table (`_db_for_partition`);
  outside stream iteration Faust's own read searches every database, standby copies included.
- `FAUST_OFFSET_KEY`: the key under which Faust's RocksDB store keeps its changelog offset.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

CHECKED_VERSIONS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}

# Faust 0.15.3 hard-codes fetch_max_wait_ms=1500 for the worker's consumer. A fetch request in
# flight holds back new clicks on partitions it did not include (their previous records were
# still buffered) until it returns: measured here, this put the median click → answer latency
# near 1 s at 200 clicks/s. A short wait costs a few more idle fetch requests per second.
FETCH_MAX_WAIT_MS = 20

FAUST_OFFSET_KEY = b"__faust\x00offset__"


class _LowLatencyConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):  # type: ignore[no-untyped-def]
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when its fetcher starts
        return consumer

    async def _highwaters(self, partitions: list) -> Any:
        # Under exactly_once Faust 0.15.3 takes each changelog partition's end from aiokafka's
        # `last_stable_offset`, which is known only after a fetch from that partition: for a
        # partition just assigned it is None, Faust reads that as "empty" (-1), and its recovery
        # stops the worker with a ConsistencyError when the local table holds any persisted
        # offset (seen after a broker outage moved partitions: issue 30). A ListOffsets request
        # asks the broker; under read_committed it answers the last stable offset.
        return await self._ensure_consumer().end_offsets(partitions)


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a short fetch wait, and a commit before partitions are
    revoked.

    Faust 0.15.3 (`Consumer.on_partitions_revoked`) forgets the acked offsets of the revoked
    partitions *before* the app waits for its in-flight events and commits, so that commit has
    nothing to commit. With Kafka's eager rebalancing every partition is revoked on every
    rebalance, so each one replayed everything since the last periodic commit, also on the
    partitions that stayed with this worker (measured: 164-186 duplicate answers on the
    survivor's own partitions when the other of two workers was killed at 450 clicks/s, 0
    after; benchmarks/crash_replay.py, docs/reliability.md). Here the in-flight events are
    answered, acked and committed first; Faust's own revocation then finds nothing left to wait for.
    Install with `app.transport.Consumer = Consumer` before the worker creates its consumer.
    """

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _LowLatencyConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _getmany(self, active_partitions: set | None, timeout: float) -> Any:  # type: ignore[override]
        # Faust 0.15.3 hands aiokafka's thread its live set of active partitions, which the event
        # loop keeps changing (pause/resume in a rebalance) while that thread waits for records,
        # and aiokafka reads an *empty* set as "every partition": records of paused partitions are
        # then taken out of aiokafka and dropped by Faust's filter without a seek back. A copy, and
        # no call at all when it is empty, keep each fetch to what was active when it started.
        snapshot = None if active_partitions is None else set(active_partitions)
        if snapshot is not None and not snapshot:
            return {}
        return await super()._getmany(snapshot, timeout)

    async def force_commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        # Every commit goes through here (the timer, a revocation, the stop). Under exactly_once the
        # worker sets `app.seqrec_commit_gate`: a transaction commits only between batches.
        gate = getattr(self.app, "seqrec_commit_gate", None)
        if gate is None:
            return await super().force_commit(topics, start_new_transaction=start_new_transaction)
        async with gate.closed():
            # A commit of offsets with no transaction open fails ("Not in the middle of a
            # transaction"): Faust's stop ends every transaction, then commits what was acked since.
            for producer in list(self.app.producer._transaction_producers.values()):
                await _in_transaction(producer)
            return await super().force_commit(topics, start_new_transaction=start_new_transaction)

    async def on_partitions_revoked(self, revoked: set) -> None:  # type: ignore[override]
        if not self.app.should_stop and self.assignment():
            try:
                await self._finish_in_flight_and_commit()
            except Exception as exc:
                # aiokafka logs a failed rebalance callback and rebalances on. Under exactly_once
                # the answers of the uncommitted transaction are then aborted while this worker
                # holds them as answered, and would only ack those clicks if they came back: stop.
                if getattr(self.app, "seqrec_commit_gate", None) is not None:
                    await self.app.crash(exc)
                raise
        await super().on_partitions_revoked(revoked)

    async def _finish_in_flight_and_commit(self) -> None:
        # The steps of Faust's App._on_partitions_revoked, while the offsets are still known.
        assignment = self.assignment()
        self.stop_flow()
        self.app.flow_control.suspend()
        self.pause_partitions(assignment)
        self.app.flow_control.clear()  # fetched, not yet started: the next owner reads them
        await self.wait_empty()  # every started event acked, then a commit of all of them


def started_producer(app: Any) -> Any:
    """The app's started `aiokafka.AIOKafkaProducer` (Faust starts it with the app)."""
    return app.producer._ensure_producer()


async def transaction_producer(app: Any, topic: str, partition: int) -> Any:
    """Under exactly_once, the transactional `aiokafka.AIOKafkaProducer` Faust began for `partition`
    of `topic`'s group when it was assigned here (Faust 0.15.3 names it "{app id}-{group}-{partition}",
    `TransactionManager.send`), inside a transaction. Faust's `wait_empty` ends every transaction
    it commits (`commit_and_end_transactions`) and begins them again only for the partitions of the
    next assignment; a batch sent in between failed with "Can't send messages while not in
    transaction" (seen after a broker outage, issue 30). Begun here, the transaction commits with
    that partition's next offsets."""
    transactional_id = f"{app.conf.id}-{app.assignor.group_for_topic(topic)}-{partition}"
    producer = app.producer._transaction_producers.get(transactional_id)
    if producer is None:
        raise RuntimeError(f"no transaction for {topic} partition {partition}: not assigned to this worker")
    return await _in_transaction(producer)


async def _in_transaction(producer: Any) -> Any:
    if not producer._txn_manager.is_in_transaction():
        await producer.begin_transaction()  # fails in an error state: the batch or commit fails, the worker stops
    return producer


async def partition_for(producer: Any, topic: str, key: bytes | None) -> int:
    """The partition aiokafka's default partitioner gives `key` on `topic` (as a send without a
    partition would), after the topic's metadata is known."""
    await producer.client._wait_on_metadata(topic)
    partitions = sorted(producer.client.cluster.partitions_for_topic(topic))
    return producer._partitioner(key, partitions, partitions)


def table_store(table: Any) -> Any:
    """A Faust table's store (bytes → bytes, RocksDB): its writes send no changelog record."""
    return table.data


def read_partition(table: Any, partition: int, key: bytes) -> bytes | None:
    """`key` in the database of `partition` of a Faust table's RocksDB store, or None. The caller
    checks that this worker owns the partition: a database not yet open is opened."""
    return table.data._db_for_partition(partition).get(key)


__all__ = ["CHECKED_VERSIONS", "FAUST_OFFSET_KEY", "FETCH_MAX_WAIT_MS", "Consumer", "partition_for",
           "read_partition", "started_producer", "table_store", "transaction_producer"]
