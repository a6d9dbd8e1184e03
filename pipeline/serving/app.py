"""The Faust App, built from Settings and nothing else.

Every choice here answers a known faust-streaming pitfall (see docs/pipeline.md):
RocksDB through the rocksdict driver for the table store; the `/table` web view off (it would
serve users' histories over HTTP); short broker session timeouts so a replacement worker takes
over in seconds; offsets committed often, since a crash replays everything after the last commit.
The consumer's private hooks (fetch wait, commit before revoke) live in serving/internals.py.
"""

from __future__ import annotations

import faust

from seqrec.pipeline.kafka_security import faust_credentials
from seqrec.pipeline.serving.internals import Consumer
from seqrec.pipeline.settings import Settings

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
        processing_guarantee=settings.serving.guarantee,
        broker_session_timeout=k.session_timeout_s,
        broker_heartbeat_interval=k.heartbeat_interval_s,
        broker_rebalance_timeout=k.rebalance_timeout_s,
        broker_commit_interval=k.commit_interval_s,
        stream_buffer_maxsize=max(4096, settings.batching.max_pending),
        web_enabled=web.enabled,
        web_bind=web.host,
        web_port=web.port,
        web_host=web.host,
        canonical_url=web.advertised_url,  # None: Faust's http://host:port
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        worker_redirect_stdouts=False,
    )
    app.transport.Consumer = Consumer  # before the worker creates its consumer (see internals)
    return app


__all__ = ["broker_urls", "build_app"]
