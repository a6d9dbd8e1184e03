"""Runtime settings of every `seqrec` command family (worker, retrain, models, replay, kafka): one
pydantic-settings object, built once at the entry point and passed down. Nothing else in the
pipeline reads the environment.

Every setting has exactly one environment variable: the prefix ``SEQREC_`` and ``__`` between a
group and its field, e.g. ``SEQREC_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092``,
``SEQREC_BATCHING__MAX_SIZE=128``, ``SEQREC_SERVING__CHECKPOINT=ckpt.pt``. A command-line option
that sets a setting is made from it (pipeline/cli/options.py) and overrides the environment. The
docstring under a field is its description, shown by `--help` and docs/configuration.md. The
model's architecture is not here: it travels inside the checkpoint.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from seqrec.pipeline.errors import ConfigError

log = logging.getLogger(__name__)

ENV_PREFIX = "SEQREC_"
ENV_DELIMITER = "__"
DEFAULT_HISTORY_LEN = 50  # items kept per user: the worker, replay evaluation and the retrain gate
DEFAULT_MODEL_STORE = "models"  # the store `seqrec models` and `retrain` manage when none is set

# Names read before each setting had one variable: old name -> the setting it now feeds. Read in
# place of the SEQREC_ name (never over it), each with a one-line warning; remove in a later release.
DEPRECATED_ENV: dict[str, tuple[str, ...]] = {
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "SEQREC_MODEL_STORE": ("serving", "model_store"),
}
# Read outside Settings, where they are read: not ours to rename.
OTHER_ENV = {"JAVA_HOME": "the Java of the local development broker (`seqrec kafka start`)"}

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

from seqrec.pipeline.serving.state import ID_WINDOW


class _Group(BaseModel):
    """A group of settings; the docstring under each field is its description (docs, --help)."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class KafkaSecuritySettings(_Group):
    """How every Kafka client of the project connects (see docs/operations.md). From the
    environment only: no command-line option sets these (`ps` shows a command line)."""

    protocol: SecurityProtocol = "PLAINTEXT"
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"""
    ssl_cafile: Path | None = None
    """PEM file of the CA(s) to trust; default: the system's"""
    ssl_certfile: Path | None = None
    """client certificate (PEM) for mutual TLS"""
    ssl_keyfile: Path | None = None
    """its private key (PEM), with ssl_certfile"""
    ssl_check_hostname: bool = True
    """the broker's certificate must name the host dialled"""
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    """PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"""
    sasl_username: str | None = None
    """the SASL user name"""
    sasl_password: SecretStr | None = None
    """the SASL password; prefer sasl_password_file outside development"""
    sasl_password_file: Path | None = None
    """a file holding the password (trailing newline ignored)"""

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _complete(self) -> "KafkaSecuritySettings":
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (mutual TLS)")
        if self.uses_sasl:
            if not self.sasl_username:
                raise ValueError(f"{self.protocol} needs sasl_username")
            if (self.sasl_password is None) == (self.sasl_password_file is None):
                raise ValueError(f"{self.protocol} needs exactly one of sasl_password and sasl_password_file")
        return self


class KafkaSettings(_Group):
    bootstrap_servers: str = "127.0.0.1:9092"
    """Kafka bootstrap servers, host:port[,host:port]"""
    clicks_topic: str = "clicks"
    """topic of the click events (keyed by user id)"""
    recommendations_topic: str = "recommendations"
    """topic of the answers"""
    dead_letter_topic: str = "clicks.dlq"
    """topic of the clicks that could not be answered, with the reason"""
    partitions: int = Field(8, ge=1)
    """partitions of the topics a worker creates; the clicks topic and the table changelog must have
    the same count (Faust checks)"""
    replication_factor: int = Field(1, ge=1)
    """replicas of the topics a worker creates"""
    session_timeout_s: float = Field(10.0, gt=0)
    """Kafka consumer session timeout (s). Faust's 60 s makes a replacement worker wait a minute for a
    dead one's partitions; 10 s still rides out a GC pause or a slow batch."""
    heartbeat_interval_s: float = Field(3.0, gt=0)
    """Kafka heartbeat interval (s)"""
    rebalance_timeout_s: float = Field(30.0, gt=0)
    """Kafka rebalance timeout (s)"""
    commit_interval_s: float = Field(1.0, gt=0)
    """seconds between offset commits; a crash replays at most this much (at-least-once)"""
    security: KafkaSecuritySettings = KafkaSecuritySettings()
    broker_wait_s: float = Field(10.0, gt=0)
    """seconds a starting worker waits for the broker before it gives up with one line"""


class StoreSettings(_Group):
    datadir: Path = Path("seqrec-data")
    """this worker's own RocksDB directory, one per worker process (RocksDB holds a lock)"""
    history_len: int = Field(DEFAULT_HISTORY_LEN, ge=1)
    """items kept per user, newest last (replay evaluation and the retrain gate keep as many)"""
    session_gap_s: float = Field(1800.0, gt=0)
    """seconds of inactivity that start a new session"""
    recent_event_ids: int = Field(ID_WINDOW, ge=0)
    """recent event ids kept per user: a click whose event_id is among them is a duplicate (answered again, not added)"""
    block_cache_mib: int = Field(8, ge=1)
    """RocksDB block cache per partition database (MiB); Faust's default is 2 GiB, a user's record is tiny"""
    standby_replicas: int = Field(1, ge=0)
    """warm copies of other workers' partitions, so a takeover needs not replay the changelog"""
    cache_users: int = Field(100_000, ge=0)
    """users whose state is also kept in memory (reads skip RocksDB); emptied on a rebalance"""


class BatchingSettings(_Group):
    max_size: int = Field(64, ge=1)
    """largest inference batch: a batch is run as soon as it has this many clicks"""
    max_wait_ms: float = Field(5.0, ge=0)
    """...or when its oldest click has waited this long (ms)"""
    max_pending: int = Field(4096, ge=1)
    """clicks accepted but not yet answered; beyond it the stream waits (backpressure)"""


class ServingSettings(_Group):
    checkpoint: Path | None = None
    """model checkpoint to start with (default: the model store's serving version)"""
    model_store: str | None = None
    """model store: a directory (a shared volume) or an fsspec URL (file://, s3://, gs://, memory://;
    credentials from the backend's own environment: AWS_*, GOOGLE_APPLICATION_CREDENTIALS...). A
    worker serves its serving version and hot-swaps to each new one (unset: no store, --checkpoint
    only); `seqrec models` and `seqrec retrain` manage it (unset: ./models)"""
    model_poll_s: float = Field(5.0, gt=0)
    """seconds between a worker's looks at the model store's LATEST pointer"""
    device: str | None = None
    """torch device (default: cuda when available, else cpu)"""
    torch_threads: int | None = Field(None, ge=1)
    """torch intra-op threads of a worker (default: torch's)"""
    guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    """at_least_once: a crash may answer a click twice (same event_id). exactly_once: a click's answer,
    its history's changelog record and its offset commit in one Kafka transaction per partition, so
    a read_committed consumer sees each answer once; answers become visible at each commit
    (kafka.commit_interval_s) and the topics need the clicks topic's partition count
    (docs/reliability.md)"""
    inference: Literal["thread", "process"] = "thread"
    """where the model runs: a thread of the worker, or a process of its own, whose forward never
    waits for the event loop's GIL (costs a second interpreter with torch, ~1 ms per batch of IPC)"""
    top_k: int = Field(10, ge=1)
    """recommendations per answer"""
    exclude_seen: bool = True
    """leave the user's history out of the answer"""
    max_payload_bytes: int = Field(16_384, ge=64)
    """larger clicks go to the dead-letter topic"""
    min_timestamp_ms: int = 1_000_000_000_000
    """event times before this (ms since epoch, 2001-09-09) are absurd"""
    max_future_skew_s: float = Field(86_400.0, ge=0)
    """...and so are event times this far in the future (s)"""
    api_token: SecretStr | None = None
    """bearer token the request API (web.recommend_api) demands in `Authorization: Bearer ...`;
    unset (and no api_token_file): no token is asked. `seqrec recommend` sends it"""
    api_token_file: Path | None = None
    """a file holding that token (trailing newline ignored), instead of api_token"""

    @model_validator(mode="after")
    def _one_token(self) -> "ServingSettings":
        if self.api_token is not None and self.api_token_file is not None:
            raise ValueError("set one of api_token and api_token_file")
        return self

    def store_url(self) -> str:
        """The model store the `models` and `retrain` commands manage."""
        return self.model_store or DEFAULT_MODEL_STORE

    def bearer_token(self) -> str | None:
        """The request API's token, from api_token or its file (None: no token asked); an
        unreadable file is a ConfigError naming the file, never its content."""
        if self.api_token is not None:
            return self.api_token.get_secret_value()
        if self.api_token_file is None:
            return None
        try:
            token = self.api_token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the API token file {self.api_token_file}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"the API token file {self.api_token_file} is empty")
        return token


class RecordSettings(_Group):
    dir: Path | None = None
    """log consumed clicks and produced recommendations here (rotated JSONL), for replay"""
    max_file_mib: int = Field(64, ge=1)
    """rotate a log file past this size (MiB)"""


class WebSettings(_Group):
    enabled: bool = True
    """serve the metrics and health endpoints (/metrics, /healthz, /ready)"""
    host: str = "127.0.0.1"
    """address the endpoints listen on"""
    port: int = Field(6066, ge=0, le=65535)
    """port of the endpoints, one per worker on a host"""
    recommend_api: bool = False
    """serve GET /users/{user_id}/recommendations?k=N (answered by the worker that owns the user's
    partition; the others forward to it)"""
    advertised_url: str | None = None
    """URL the other workers reach this one at, for forwarded requests (default http://host:port:
    set it when host is 0.0.0.0)"""


class ArchiveSettings(_Group):
    url: str | None = None
    """where `seqrec archive` writes the click archive and `seqrec retrain --archive` reads it: a
    path or an fsspec URL (file://, s3://, gs://, memory://); credentials come from the backend's
    own environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS...)"""
    group_id: str = "seqrec-archive"
    """consumer group of the archivers: instances in one group share the topic's partitions"""
    max_file_clicks: int = Field(200_000, ge=1)
    """an archiver writes its buffered clicks once it holds this many..."""
    max_file_seconds: float = Field(60.0, gt=0)
    """...or once its oldest buffered click has waited this long (s): the archive's lag behind the topic"""


class _DeprecatedEnv(PydanticBaseSettingsSource):
    """The names read before there was one name per setting (DEPRECATED_ENV): honoured, below the
    SEQREC_ name, with a one-line warning naming the variable to set instead."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # all the work is in __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for old, path in DEPRECATED_ENV.items():
            value = os.environ.get(old, "").strip()
            if not value:
                continue
            new = env_name(path)
            ignored = new in os.environ
            _warn_deprecated(old, new, ignored)
            if not ignored:
                group = values
                for part in path[:-1]:
                    group = group.setdefault(part, {})
                group[path[-1]] = value
        return values


@functools.cache  # once per process, however often settings are built
def _warn_deprecated(old: str, new: str, ignored: bool) -> None:
    if ignored:
        log.warning("%s is deprecated and ignored: %s is set; unset %s", old, new, old)
    else:
        log.warning("%s is deprecated: set %s instead (read in its place for now)", old, new)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER, extra="ignore", use_attribute_docstrings=True
    )

    app_id: str = "seqrec"
    """Faust app id: consumer group and changelog topic prefix"""
    table_name: str = "user-history"
    """name of the per-user history table (and of its changelog topic)"""
    log_level: str = "info"
    """log level of a worker"""
    kafka: KafkaSettings = KafkaSettings()
    store: StoreSettings = StoreSettings()
    batching: BatchingSettings = BatchingSettings()
    serving: ServingSettings = ServingSettings()
    web: WebSettings = WebSettings()
    record: RecordSettings = RecordSettings()
    archive: ArchiveSettings = ArchiveSettings()

    @property
    def changelog_topic(self) -> str:
        """The table's changelog topic, named as Faust names it."""
        return f"{self.app_id}-{self.table_name}-changelog"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _DeprecatedEnv(settings_cls), dotenv_settings, file_secret_settings


def env_name(path: tuple[str, ...]) -> str:
    """The one environment variable of a setting: ("kafka", "partitions") -> SEQREC_KAFKA__PARTITIONS."""
    return ENV_PREFIX + ENV_DELIMITER.join(path).upper()


def leaf_fields(model: type[BaseModel] = Settings) -> dict[tuple[str, ...], FieldInfo]:
    """Every setting of `model`, nested groups flattened, in declaration order: path -> field."""
    fields: dict[tuple[str, ...], FieldInfo] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields.update({(name, *path): f for path, f in leaf_fields(annotation).items()})
        else:
            fields[(name,)] = field
    return fields


def load_settings(**values: object) -> Settings:
    """Settings from the environment and `values`. Invalid ones raise a one-line ConfigError that
    names the fields and the rule, never the values given (one of them may be a password)."""
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None


__all__ = [
    "ArchiveSettings",
    "BatchingSettings",
    "KafkaSecuritySettings",
    "KafkaSettings",
    "RecordSettings",
    "ServingSettings",
    "Settings",
    "StoreSettings",
    "WebSettings",
    "DEFAULT_HISTORY_LEN",
    "DEPRECATED_ENV",
    "OTHER_ENV",
    "env_name",
    "leaf_fields",
    "load_settings",
]
