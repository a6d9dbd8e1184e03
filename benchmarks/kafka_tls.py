"""What TLS and SCRAM cost: connect time and produce/consume events/s, PLAINTEXT vs SASL_SSL
(SCRAM-SHA-512 over TLS) side by side, against one local broker that has both listeners.

    python benchmarks/kafka_tls.py [--messages 200000] [--size 200] [--rounds 2] [--out results.json]

Connect: a kafka-python producer built and its first metadata answered (what every CLI command
pays once), and the bare handshake alone (TCP, TLS, SASL login: pipeline.kafka_security's check).
Throughput: kafka-python, one producer (linger 20 ms, 256 KiB batches, acks=1) then one consumer
reading the topic from the start, click-sized messages. The modes alternate for `--rounds`
rounds, so a load change on a shared machine hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

from seqrec.pipeline.devtools.kafka_local import LocalKafka  # noqa: E402
from seqrec.pipeline.kafka_security import check_connection, open_client  # noqa: E402
from seqrec.pipeline.devtools.local_tls import MECHANISM, USERNAME  # noqa: E402
from seqrec.pipeline.settings import KafkaSecuritySettings  # noqa: E402


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def connect(bootstrap: str, security: KafkaSecuritySettings) -> None:
    producer = open_client(KafkaProducer, bootstrap, security)
    producer.partitions_for("bench-connect")  # the first metadata round trip
    producer.close()


def produce(bootstrap: str, security: KafkaSecuritySettings, topic: str, n: int, size: int) -> float:
    producer = open_client(KafkaProducer, bootstrap, security, linger_ms=20, batch_size=256 * 1024, acks=1,
                           enable_idempotence=False)
    value = b"x" * size
    start = time.perf_counter()
    for i in range(n):
        producer.send(topic, key=str(i % 1000).encode(), value=value)
    producer.flush()
    seconds = time.perf_counter() - start
    producer.close()
    return n / seconds


def consume(bootstrap: str, security: KafkaSecuritySettings, topic: str, n: int) -> float:
    consumer = open_client(KafkaConsumer, bootstrap, security, group_id=None, enable_auto_commit=False,
                           max_partition_fetch_bytes=4 * 1024 * 1024)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    seen = 0
    start = time.perf_counter()
    while seen < n:
        for records in consumer.poll(timeout_ms=500, max_records=10_000).values():
            seen += len(records)
    seconds = time.perf_counter() - start
    consumer.close()
    return n / seconds


def measure(bootstrap: str, security: KafkaSecuritySettings, args: argparse.Namespace) -> dict[str, float]:
    topic = f"bench-{security.protocol.lower()}-{uuid.uuid4().hex[:6]}"
    return {
        "handshake_ms": 1000 * median_s(lambda: check_connection(bootstrap, security), args.connects),
        "connect_ms": 1000 * median_s(lambda: connect(bootstrap, security), args.connects),
        "produce_per_s": produce(bootstrap, security, topic, args.messages, args.size),
        "consume_per_s": consume(bootstrap, security, topic, args.messages),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--size", type=int, default=200, help="bytes per message (a click is about 150)")
    p.add_argument("--connects", type=int, default=7, help="connections timed per mode (median)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "argv": sys.argv[1:] if argv is None else argv,
        "load_average_start": os.getloadavg(),
        "rounds": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalKafka(data_dir=Path(tmp) / "kafka", secure=True)
        broker.start()
        try:
            assert broker.state is not None and broker.state.secure_bootstrap
            files = broker.secure_files
            modes = {
                "PLAINTEXT": (broker.state.bootstrap, KafkaSecuritySettings()),
                "SASL_SSL": (broker.state.secure_bootstrap, KafkaSecuritySettings(
                    protocol="SASL_SSL", ssl_cafile=files.ca, sasl_mechanism=MECHANISM, sasl_username=USERNAME,
                    sasl_password_file=files.password_file)),
            }
            for r in range(args.rounds):
                order = list(modes) if r % 2 == 0 else list(reversed(modes))
                results["rounds"].append({mode: measure(*modes[mode], args) for mode in order})
                print(json.dumps(results["rounds"][-1]), flush=True)
        finally:
            broker.stop(remove_data=True)
    results["load_average_end"] = os.getloadavg()
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


def table(results: dict[str, Any]) -> str:
    lines = ["| round | mode | handshake (ms) | producer ready (ms) | produce (msg/s) | consume (msg/s) |",
             "|---|---|---:|---:|---:|---:|"]
    for i, rnd in enumerate(results["rounds"], 1):
        for mode, m in rnd.items():
            lines.append(f"| {i} | {mode} | {m['handshake_ms']:.1f} | {m['connect_ms']:.1f} | "
                         f"{m['produce_per_s']:,.0f} | {m['consume_per_s']:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
