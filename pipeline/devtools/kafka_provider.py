"""Where a Kafka cluster comes from, in order of preference:

1. `SEQREC_KAFKA__BOOTSTRAP_SERVERS` is set (the setting kafka.bootstrap_servers): use that
   cluster as it is.
2. A Docker engine answers and testcontainers is installed (`seqrec[docker]`): its Kafka module
   in KRaft mode.
3. Otherwise: a local Apache Kafka 4.x broker from the Maven jars (pipeline.devtools.kafka_local).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from seqrec.pipeline.devtools.kafka_local import LocalKafka
from seqrec.pipeline.settings import env_name, load_settings

log = logging.getLogger(__name__)

BOOTSTRAP_ENV = env_name(("kafka", "bootstrap_servers"))
TESTCONTAINERS_IMAGE = "confluentinc/cp-kafka:7.6.0"  # testcontainers' class needs Confluent's scripts
MISSING_TESTCONTAINERS = ("a Docker engine answers, but Kafka in a container needs testcontainers "
                          "(pip install 'seqrec[docker]'); using the local broker")


def docker_available() -> bool:
    """True when a Docker engine answers a ping (the CLI alone is not enough)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to reach the engine means "no Docker"
        return False


def testcontainers_installed() -> bool:
    """testcontainers is an optional part (the `docker` extra); without it a Docker engine goes unused."""
    try:
        import testcontainers  # noqa: F401
    except ImportError:
        log.warning(MISSING_TESTCONTAINERS)
        return False
    return True


@contextlib.contextmanager
def kafka_in_container() -> Iterator[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer  # current path
    except ImportError:
        from testcontainers.kafka import KafkaContainer  # older releases
    container = KafkaContainer(TESTCONTAINERS_IMAGE).with_kraft()
    container.start()
    try:
        yield container.get_bootstrap_server()
    finally:
        container.stop()


def configured_bootstrap() -> str | None:
    """The bootstrap servers the settings name explicitly (not their default), if any."""
    kafka = load_settings().kafka
    return kafka.bootstrap_servers if "bootstrap_servers" in kafka.model_fields_set else None


@contextlib.contextmanager
def local_kafka(data_dir: str | Path | None = None) -> Iterator[str]:
    broker = LocalKafka(data_dir=data_dir)
    bootstrap = broker.start()
    try:
        yield bootstrap
    finally:
        broker.stop()


@contextlib.contextmanager
def provide_kafka(data_dir: str | Path | None = None) -> Iterator[tuple[str, str]]:
    """Yield (bootstrap servers, where they came from) and tear down whatever was started."""
    external = configured_bootstrap()
    if external:
        yield external, BOOTSTRAP_ENV
        return
    if docker_available() and testcontainers_installed():
        with kafka_in_container() as bootstrap:
            yield bootstrap, "testcontainers"
        return
    with local_kafka(data_dir) as bootstrap:
        yield bootstrap, "local broker"
