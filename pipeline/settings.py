"""Runtime settings of the streaming worker: one pydantic-settings object, built once at the
entry point and passed down. Nothing else in the pipeline reads the environment.

Every field can be set from the environment with the prefix ``SEQREC_``; nested groups use a
double underscore, e.g. ``SEQREC_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092``,
``SEQREC_BATCHING__MAX_SIZE=128``, ``SEQREC_SERVING__CHECKPOINT=ckpt.pt``. The `seqrec worker`
command's options override the environment. The model's architecture is not here: it travels
inside the checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.state import ID_WINDOW


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"  # comma-separated host:port list
    clicks_topic: str = "clicks"
    recommendations_topic: str = "recommendations"
    dead_letter_topic: str = "clicks.dlq"
    # The clicks topic and the table changelog must have the same partition count (Faust checks).
    partitions: int = Field(8, ge=1)
    replication_factor: int = Field(1, ge=1)
    # Faust's defaults (60 s session) make a replacement worker wait a minute for a dead one's
    # partitions; 10 s still rides out a GC pause or a slow batch.
    session_timeout_s: float = Field(10.0, gt=0)
    heartbeat_interval_s: float = Field(3.0, gt=0)
    rebalance_timeout_s: float = Field(30.0, gt=0)
    # How often acked offsets are committed; a crash replays at most this much (at-least-once).
    commit_interval_s: float = Field(1.0, gt=0)


class StoreSettings(BaseModel):
    datadir: Path = Path("seqrec-data")  # one per worker process (RocksDB holds a lock)
    history_len: int = Field(50, ge=1)  # items kept per user, newest last
    session_gap_s: float = Field(1800.0, gt=0)  # inactivity that starts a new session
    # Recent event ids kept per user: a click whose event_id is among them is a duplicate.
    recent_event_ids: int = Field(ID_WINDOW, ge=0)
    # Faust's default is 2 GiB of block cache per partition database; a user's record is tiny.
    block_cache_mib: int = Field(8, ge=1)
    # Warm copies of other workers' partitions, so a takeover needs not replay the changelog.
    standby_replicas: int = Field(1, ge=0)
    # Users whose state is also kept in memory (reads skip RocksDB); emptied on a rebalance.
    cache_users: int = Field(100_000, ge=0)


class BatchingSettings(BaseModel):
    max_size: int = Field(64, ge=1)  # a batch is run as soon as it has this many clicks
    max_wait_ms: float = Field(5.0, ge=0)  # ...or when its oldest click has waited this long
    # Clicks accepted but not yet answered; beyond it the stream waits (backpressure).
    max_pending: int = Field(4096, ge=1)


class ServingSettings(BaseModel):
    checkpoint: Path | None = None  # the checkpoint to start with (default: the model store's serving version)
    model_store: Path | None = None  # model store directory followed for hot-swaps (shared volume)
    model_poll_s: float = Field(5.0, gt=0)  # how often the worker reads the store's LATEST pointer
    device: str | None = None  # None: CUDA when available, else CPU
    top_k: int = Field(10, ge=1)
    exclude_seen: bool = True  # leave the user's history out of the answer
    max_payload_bytes: int = Field(16_384, ge=64)  # larger clicks go to the dead-letter topic
    # Event times before this (ms since epoch, 2001-09-09) or this far in the future are absurd.
    min_timestamp_ms: int = 1_000_000_000_000
    max_future_skew_s: float = Field(86_400.0, ge=0)


class RecordSettings(BaseModel):
    dir: Path | None = None  # log consumed clicks and produced recommendations here (JSONL), for replay
    max_file_mib: int = Field(64, ge=1)  # rotate a log file past this size


class WebSettings(BaseModel):
    enabled: bool = True  # metrics, /healthz and /ready
    host: str = "127.0.0.1"
    port: int = Field(6066, ge=0, le=65535)  # one per worker on a host


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SEQREC_", env_nested_delimiter="__", extra="ignore"
    )

    app_id: str = "seqrec"  # Faust app id: consumer group and changelog topic prefix
    table_name: str = "user-history"
    log_level: str = "info"
    kafka: KafkaSettings = KafkaSettings()
    store: StoreSettings = StoreSettings()
    batching: BatchingSettings = BatchingSettings()
    serving: ServingSettings = ServingSettings()
    web: WebSettings = WebSettings()
    record: RecordSettings = RecordSettings()

    @property
    def changelog_topic(self) -> str:
        """The table's changelog topic, named as Faust names it."""
        return f"{self.app_id}-{self.table_name}-changelog"


__all__ = [
    "BatchingSettings",
    "KafkaSettings",
    "RecordSettings",
    "ServingSettings",
    "Settings",
    "StoreSettings",
    "WebSettings",
]
