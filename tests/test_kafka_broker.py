"""The foundation on a real broker: topics, keyed produce, consumer-group resume, restart."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from seqrec.pipeline.errors import BrokerError
from seqrec.pipeline.devtools.kafka_local import STATE_FILE, LocalKafka
from seqrec.pipeline.devtools.kafka_provider import (BOOTSTRAP_ENV, MISSING_TESTCONTAINERS, docker_available, kafka_in_container,
                                     testcontainers_installed as has_testcontainers)

N_MESSAGES = 10_000


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}}, wait_for_metadata=True)
    finally:
        admin.close()


def produce_keyed(bootstrap: str, topic: str, n: int) -> float:
    """Write n messages keyed by user; return messages per second."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    start = time.perf_counter()
    for i in range(n):
        producer.send(topic, key=f"user-{i % 97}".encode(), value=f"{i}".encode())
    producer.flush()
    rate = n / (time.perf_counter() - start)
    producer.close()
    return rate


def consumer_for(bootstrap: str, topic: str, group: str | None) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def read_values(consumer: KafkaConsumer, limit: int, timeout: float = 60.0) -> list[tuple[int, int, int]]:
    """(partition, offset, value) of up to `limit` records, stopping early when the topic runs dry."""
    records: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + timeout
    idle_polls = 0
    while len(records) < limit and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=1000, max_records=min(500, limit - len(records)))
        idle_polls = 0 if batch else idle_polls + 1
        if idle_polls >= 5 and records:
            break
        for tp_records in batch.values():
            records.extend((r.partition, r.offset, int(r.value)) for r in tp_records)
    return records


def test_group_resumes_from_committed_offsets(kafka_bootstrap: str, topic_name: str) -> None:
    create_topic(kafka_bootstrap, topic_name, partitions=4)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    assert len(admin.describe_topics([topic_name])[0]["partitions"]) == 4
    admin.close()

    produce_rate = produce_keyed(kafka_bootstrap, topic_name, N_MESSAGES)
    group = f"{topic_name}-group"

    first = consumer_for(kafka_bootstrap, topic_name, group)
    start = time.perf_counter()
    first_half = read_values(first, N_MESSAGES // 2)
    consume_rate = len(first_half) / (time.perf_counter() - start)
    assert len(first_half) == N_MESSAGES // 2
    committed: dict[TopicPartition, OffsetAndMetadata] = {}
    for partition, offset, _ in first_half:
        tp = TopicPartition(topic_name, partition)
        if tp not in committed or committed[tp].offset <= offset:
            committed[tp] = OffsetAndMetadata(offset + 1, "", -1)
    first.commit(committed)
    first.close()

    second = consumer_for(kafka_bootstrap, topic_name, group)
    second_half = read_values(second, N_MESSAGES)
    second.close()

    values = [v for _, _, v in first_half + second_half]
    assert len(values) == N_MESSAGES, "a message was lost or read twice"
    assert sorted(values) == list(range(N_MESSAGES))
    # Keyed messages stay in one partition per key, in produce order.
    by_key: dict[int, list[int]] = {}
    for partition, _, value in sorted(first_half + second_half, key=lambda r: (r[0], r[1])):
        by_key.setdefault(value % 97, []).append((partition, value))
    for key_records in by_key.values():
        assert len({p for p, _ in key_records}) == 1
        assert [v for _, v in key_records] == sorted(v for _, v in key_records)
    print(f"\nproduce {produce_rate:,.0f} msg/s, consume {consume_rate:,.0f} msg/s")


def test_restart_on_same_data_keeps_messages(tmp_path) -> None:
    broker = LocalKafka(data_dir=tmp_path / "kafka")
    bootstrap = broker.start()
    try:
        create_topic(bootstrap, "durable", partitions=2)
        produce_keyed(bootstrap, "durable", 1000)
    finally:
        broker.stop()
    assert broker.process is None

    restarted = LocalKafka(data_dir=tmp_path / "kafka")
    assert restarted.start() == bootstrap, "a restarted broker keeps its address"
    try:
        consumer = consumer_for(bootstrap, "durable", group=None)
        values = sorted(v for _, _, v in read_values(consumer, 1000))
        consumer.close()
    finally:
        restarted.stop()
    assert values == list(range(1000))


def test_kafka_in_container_when_docker_answers() -> None:
    if not docker_available():
        pytest.skip("no Docker engine answers here; the local broker path is tested instead")
    with kafka_in_container() as bootstrap:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        assert admin.describe_cluster()["brokers"]
        admin.close()


def test_without_testcontainers_a_docker_engine_goes_unused_with_one_line(caplog: pytest.LogCaptureFixture,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "testcontainers", None)  # as if the docker extra were not installed
    with caplog.at_level(logging.WARNING, logger="seqrec.pipeline.devtools.kafka_provider"):
        assert not has_testcontainers()
    assert [r.getMessage() for r in caplog.records] == [MISSING_TESTCONTAINERS]
    assert "pip install 'seqrec[docker]'" in MISSING_TESTCONTAINERS


def seqrec_kafka(*args: str) -> subprocess.CompletedProcess[str]:
    """`seqrec kafka ...` as a user runs it (this checkout's code; never an external cluster)."""
    env = {k: v for k, v in os.environ.items() if k != BOOTSTRAP_ENV}
    return subprocess.run([sys.executable, "-m", "seqrec.pipeline.cli", "kafka", *args],
                          capture_output=True, text=True, env=env, timeout=180)


def test_stop_with_clients_connected_then_start_again_at_once(tmp_path) -> None:
    """The broker's connections are left in TIME_WAIT when it stops with clients connected;
    they must not make the restart think that a broker still holds the ports."""
    data_dir = str(tmp_path / "kafka")
    started = seqrec_kafka("start", "--data-dir", data_dir)
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip()
    try:
        create_topic(bootstrap, "kept", partitions=1)
        produce_keyed(bootstrap, "kept", 100)
        consumer = consumer_for(bootstrap, "kept", group=None)
        assert len(read_values(consumer, 100)) == 100  # connected and fetching
        assert seqrec_kafka("stop", "--data-dir", data_dir).returncode == 0
        again = seqrec_kafka("start", "--data-dir", data_dir)  # at once, clients still open
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == bootstrap
        consumer.close()
        consumer = consumer_for(bootstrap, "kept", group=None)
        assert sorted(v for _, _, v in read_values(consumer, 100)) == list(range(100))
        consumer.close()
    finally:
        seqrec_kafka("stop", "--data-dir", data_dir)


def test_a_port_really_held_names_the_process_holding_it(tmp_path) -> None:
    data_dir = tmp_path / "kafka"
    data_dir.mkdir()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (data_dir / STATE_FILE).write_text(json.dumps({"cluster_id": "x", "port": port, "controller_port": port}))
        with pytest.raises(BrokerError) as error:
            LocalKafka(data_dir=data_dir).start()
    message = str(error.value)
    assert f"{port}: pid {os.getpid()} (" in message and "pytest" in message
    assert "\n" not in message
