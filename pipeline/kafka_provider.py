"""Where a Kafka cluster comes from, in order of preference:

1. `KAFKA_BOOTSTRAP_SERVERS` is set: use that cluster as it is.
2. A Docker engine answers and testcontainers is installed (`seqrec[docker]`): its Kafka module
   in KRaft mode.
3. Otherwise: a local Apache Kafka 4.x broker from the Maven jars (pipeline.kafka_local).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.kafka_local import LocalKafka

log = logging.getLogger(__name__)

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
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
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield external, f"{BOOTSTRAP_ENV}"
        return
    if docker_available() and testcontainers_installed():
        with kafka_in_container() as bootstrap:
            yield bootstrap, "testcontainers"
        return
    with local_kafka(data_dir) as bootstrap:
        yield bootstrap, "local broker"
