import asyncio
import json

from seqrec import schemas
from seqrec.pipeline.serving.sink import KafkaBatchTopic, dead_letter_record, encode, recommendation_record
from seqrec.pipeline.serving.source import ClickEvent, Rejection


class FakeBatch:
    def __init__(self, capacity):
        self.items, self.capacity = [], capacity

    def append(self, *, timestamp, key, value):
        if len(self.items) >= self.capacity:
            return None
        self.items.append((key, value))
        return object()


class FakeCluster:
    def partitions_for_topic(self, topic):
        return {0, 1, 2}


class FakeClient:
    cluster = FakeCluster()

    async def _wait_on_metadata(self, topic):
        return None


class FakeProducer:
    client = FakeClient()

    def __init__(self):
        self.sent = []

    def create_batch(self):
        return FakeBatch(capacity=2)

    def _partitioner(self, key, all_partitions, available):
        return len(key) % len(all_partitions)

    async def send_batch(self, batch, topic, *, partition):
        self.sent.append((topic, partition, list(batch.items)))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def test_one_batch_per_partition_split_when_full_and_keys_hashed_without_partition():
    producer = FakeProducer()
    async def producer_for(partition: int | None) -> FakeProducer:
        return producer

    topic = KafkaBatchTopic(producer_for, "recs")
    records = [(1, b"a", b"1"), (1, b"b", b"2"), (1, b"c", b"3"), (None, b"xy", b"4"), (0, b"d", b"5")]
    futures = asyncio.run(topic.send_many(records))
    assert len(futures) == len(producer.sent)
    assert producer.sent == [
        ("recs", 1, [(b"a", b"1"), (b"b", b"2")]),
        ("recs", 1, [(b"c", b"3")]),
        ("recs", 2, [(b"xy", b"4")]),  # len(b"xy") % 3 partitions
        ("recs", 0, [(b"d", b"5")]),
    ]


def test_encoded_records_are_what_json_readers_and_the_schemas_expect():
    click = ClickEvent("é-1", "用户😀", "i", 1)
    answer = recommendation_record(click, [("ä", 0.1 + 0.2), ("b", -1e-05), ("c", 3)],
                                   model_version="v", produced_at_ms=2, latency_ms=1.23456)
    letter = dead_letter_record(b"\xff{", "ü".encode(), Rejection("undecodable", "not UTF-8"),
                                topic="clicks", partition=0, offset=9, failed_at_ms=3)
    for name, record in (("recommendation", answer), ("dead_letter", letter)):
        raw = encode(record)
        assert json.loads(raw) == record  # replay, evaluation and the benchmarks read with json
        assert raw.decode("utf-8") == json.dumps(record, separators=(",", ":"), ensure_ascii=False).replace(
            "1e-05", "0.00001")  # compact UTF-8 as before; orjson spells small floats out
        schemas.validator(name)(json.loads(raw))
