"""Start-up time, resident memory and produce/consume rates of the local Kafka broker.

    python benchmarks/broker.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from seqrec.pipeline.devtools.kafka_local import LocalKafka


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores")

    with tempfile.TemporaryDirectory() as tmp:
        broker = LocalKafka(data_dir=Path(tmp) / "kafka")
        t0 = time.perf_counter()
        bootstrap = broker.start()
        print(f"cold start (format + start + ready): {time.perf_counter() - t0:.1f} s")
        assert broker.process is not None
        print(f"RSS after start: {rss_mib(broker.process.pid):.0f} MiB")

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics({"bench": {"num_partitions": 4, "replication_factor": 1}}, wait_for_metadata=True)
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        payload = b"x" * 120  # about the size of a click event
        t0 = time.perf_counter()
        for i in range(args.messages):
            producer.send("bench", key=str(i % 10_000).encode(), value=payload)
        producer.flush()
        print(f"produce (kafka-python, acks=all): {args.messages / (time.perf_counter() - t0):,.0f} msg/s")
        producer.close()

        consumer = KafkaConsumer("bench", bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
        seen, t0 = 0, time.perf_counter()
        while seen < args.messages:
            seen += sum(len(r) for r in consumer.poll(timeout_ms=1000, max_records=2000).values())
        print(f"consume (kafka-python): {seen / (time.perf_counter() - t0):,.0f} msg/s")
        consumer.close()
        print(f"RSS after load: {rss_mib(broker.process.pid):.0f} MiB")

        broker.stop()
        t0 = time.perf_counter()
        broker.start()
        print(f"warm restart on the same data: {time.perf_counter() - t0:.1f} s")
        broker.stop()


if __name__ == "__main__":
    main()
