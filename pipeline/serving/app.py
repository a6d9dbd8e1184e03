"""The Faust App, built from Settings and nothing else.

Every choice here answers a known faust-streaming pitfall (see docs/pipeline.md):
RocksDB through the rocksdict driver for the table store; the `/table` web view off (it would
serve users' histories over HTTP); short broker session timeouts so a replacement worker takes
over in seconds; offsets committed often, since a crash replays everything after the last commit.
"""

from __future__ import annotations

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from seqrec.pipeline.kafka_security import faust_credentials
from seqrec.pipeline.settings import Settings

# Faust 0.15.3 hard-codes fetch_max_wait_ms=1500 for the worker's consumer. A fetch request in
# flight holds back new clicks on partitions it did not include (their previous records were
# still buffered) until it returns: measured here, this put the median click → answer latency
# near 1 s at 200 clicks/s. A short wait costs a few more idle fetch requests per second.
FETCH_MAX_WAIT_MS = 20


class _LowLatencyConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):  # type: ignore[no-untyped-def]
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when its fetcher starts
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a short fetch wait, and a commit before partitions are
    revoked.

    Faust 0.15.3 (`Consumer.on_partitions_revoked`) forgets the acked offsets of the revoked
    partitions *before* the app waits for its in-flight events and commits, so that commit has
    nothing to commit. With Kafka's eager rebalancing every partition is revoked on every
    rebalance, so each one replayed everything since the last periodic commit, also on the
    partitions that stayed with this worker (measured: 164-186 duplicate answers on the
    survivor's own partitions when the other of two workers was killed at 450 clicks/s, 0
    after; benchmarks/crash_replay.py, docs/reliability.md). Here the
    in-flight events are answered, acked and committed first; Faust's own revocation then
    finds nothing left to wait for.
    """

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _LowLatencyConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set) -> None:  # type: ignore[override]
        if not self.app.should_stop and self.assignment():
            await self._finish_in_flight_and_commit()
        await super().on_partitions_revoked(revoked)

    async def _finish_in_flight_and_commit(self) -> None:
        # The steps of Faust's App._on_partitions_revoked, while the offsets are still known.
        assignment = self.assignment()
        self.stop_flow()
        self.app.flow_control.suspend()
        self.pause_partitions(assignment)
        self.app.flow_control.clear()  # fetched, not yet started: the next owner reads them
        await self.wait_empty()  # every started event acked, then a commit of all of them


def broker_urls(bootstrap_servers: str) -> list[str]:
    """'h1:9092,h2:9092' → ['kafka://h1:9092', 'kafka://h2:9092']."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    if not hosts:
        raise ValueError("kafka.bootstrap_servers is empty")
    return [h if "://" in h else f"kafka://{h}" for h in hosts]


def build_app(settings: Settings) -> faust.App:
    k, store, web = settings.kafka, settings.store, settings.web
    app = faust.App(
        settings.app_id,
        broker=broker_urls(k.bootstrap_servers),
        broker_credentials=faust_credentials(k.security),
        store="rocksdb://",
        datadir=str(store.datadir),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="json",
        topic_partitions=k.partitions,
        topic_replication_factor=k.replication_factor,
        table_standby_replicas=store.standby_replicas,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        broker_session_timeout=k.session_timeout_s,
        broker_heartbeat_interval=k.heartbeat_interval_s,
        broker_rebalance_timeout=k.rebalance_timeout_s,
        broker_commit_interval=k.commit_interval_s,
        stream_buffer_maxsize=max(4096, settings.batching.max_pending),
        web_enabled=web.enabled,
        web_bind=web.host,
        web_port=web.port,
        web_host=web.host,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        worker_redirect_stdouts=False,
    )
    app.transport.Consumer = _Consumer  # before the worker creates its consumer
    return app


__all__ = ["broker_urls", "build_app"]
