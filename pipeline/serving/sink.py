"""Sink: the records the worker produces (recommendations, dead letters) and where they go.

Record builders are plain functions; the wire form is compact JSON following
schemas/recommendation.v1.json and schemas/dead_letter.v1.json. A `Topic` takes many records
at once and returns futures that resolve once the broker has them: `KafkaBatchTopic` (answers,
one record batch per partition), `FaustTopic` (dead letters) and `MemoryTopic`, the in-process
stand-in for tests and replays.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence

import orjson

from seqrec.pipeline.serving.internals import partition_for
from seqrec.pipeline.serving.source import ClickEvent, Rejection

SCHEMA_VERSION = 1


Record = tuple[int | None, bytes | None, bytes]  # (partition or None to hash the key, key, value)


class Topic(Protocol):
    async def send_many(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        """Hand records to the producer; each future resolves once the broker has them."""
        ...


@dataclass
class MemoryTopic:
    """An in-memory topic: `records` holds (key, value) in send order, `partitions` alongside."""

    records: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    partitions: list[int | None] = field(default_factory=list)

    async def send_many(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        for partition, key, value in records:
            self.records.append((key, value))
            self.partitions.append(partition)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return [done]

    def decoded(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _, value in self.records]


class FaustTopic:
    """A Faust topic, one `topic.send` per record (fine for the rare dead letter)."""

    def __init__(self, topic: Any) -> None:
        self.topic = topic

    async def send_many(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        return [await self.topic.send(key=k, value=v, partition=p) for p, k, v in records]


class KafkaBatchTopic:
    """Records go straight to an aiokafka producer as one record batch per partition.

    Per record this skips Faust's send path (future message, sensors, callbacks), which cost
    about 0.3 ms of event-loop time per recommendation on this machine. `producer(partition)`
    returns (awaited) the started `aiokafka.AIOKafkaProducer` for a partition's records: the app's one
    (`internals.started_producer`), or under exactly_once the transactional producer of that
    partition (`internals.transaction_producer`; every record then has its partition given);
    `producer(None)` hashes the keys of records without one.
    """

    def __init__(self, producer: Callable[[int | None], Awaitable[Any]], name: str) -> None:
        self._producer = producer
        self.name = name

    async def send_many(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        for partition, key, value in records:
            if partition is None:
                partition = await partition_for(await self._producer(None), self.name, key)
            by_partition.setdefault(partition, []).append((key, value))
        futures = []
        for partition, items in by_partition.items():
            producer = await self._producer(partition)
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(timestamp=None, key=key, value=value) is None:  # batch full
                    futures.append(await producer.send_batch(batch, self.name, partition=partition))
                    batch = producer.create_batch()
                    batch.append(timestamp=None, key=key, value=value)
            futures.append(await producer.send_batch(batch, self.name, partition=partition))
        return futures



def _encode_raw(raw: bytes | None) -> tuple[str | None, str]:
    if raw is None:
        return None, "none"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def recommendation_record(
    click: ClickEvent,
    items: list[tuple[str, float]],
    *,
    model_version: str,
    produced_at_ms: int,
    latency_ms: float,
) -> dict[str, Any]:
    return answer_record(click.event_id, click.user_id, items, model_version=model_version,
                         produced_at_ms=produced_at_ms, latency_ms=latency_ms)


def answer_record(
    event_id: str,
    user_id: str,
    items: list[tuple[str, float]],
    *,
    model_version: str,
    produced_at_ms: int,
    latency_ms: float,
) -> dict[str, Any]:
    """schemas/recommendation.v1.json: the answer to a click (`event_id` its id) or to a request."""
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event_id,
        "user_id": user_id,
        "items": [{"item_id": item, "score": float(score)} for item, score in items],
        "model_version": model_version,
        "produced_at": produced_at_ms,
        "latency_ms": round(max(latency_ms, 0.0), 3),
    }


def dead_letter_record(
    raw: bytes | None,
    key: bytes | None,
    rejection: Rejection,
    *,
    topic: str,
    partition: int,
    offset: int,
    failed_at_ms: int,
) -> dict[str, Any]:
    payload, payload_encoding = _encode_raw(raw)
    key_text, key_encoding = _encode_raw(key)
    return {
        "schema_version": SCHEMA_VERSION,
        "reason": rejection.reason,
        "error": rejection.error,
        "payload": payload,
        "payload_encoding": payload_encoding,
        "key": key_text,
        "key_encoding": key_encoding,
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "failed_at": failed_at_ms,
    }


def encode(record: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON. orjson writes a NaN as null where json wrote NaN (not JSON at all);
    answers carry none: a model is swapped in only if its scores are finite."""
    return orjson.dumps(record)


class Sink:
    """Sends answers and dead letters. With `keep_partition`, an answer goes to the partition
    number its click came from: the recommendations topic is keyed by user id like the clicks
    topic, so with equal partition counts that is where the key hashes anyway. With
    `letters_keep_partition`, so does a dead letter (exactly_once: each record goes in its click
    partition's transaction)."""

    def __init__(self, recommendations: Topic, dead_letters: Topic, *, keep_partition: bool = False,
                 letters_keep_partition: bool = False) -> None:
        self.recommendations = recommendations
        self.dead_letters = dead_letters
        self.keep_partition = keep_partition
        self.letters_keep_partition = letters_keep_partition

    def encode_recommendations(self, answers: Sequence[tuple[dict[str, Any], int]]) -> list[Record]:
        """(record, source partition) pairs → the records to send (apart from sending, so that
        encoding and producing are timed as stages of their own)."""
        keep = self.keep_partition
        return [
            (partition if keep else None, record["user_id"].encode("utf-8"), encode(record))
            for record, partition in answers
        ]

    async def send_recommendations(self, records: Sequence[Record]) -> list[Awaitable[Any]]:
        """Encoded answers (`encode_recommendations`) → delivery futures."""
        return await self.recommendations.send_many(records)

    async def send_dead_letters(
        self, letters: Sequence[tuple[dict[str, Any], bytes | None]]
    ) -> list[Awaitable[Any]]:
        """(record, original message key) pairs → delivery futures."""
        keep = self.letters_keep_partition
        return await self.dead_letters.send_many(
            [(record["source"]["partition"] if keep else None, key, encode(record)) for record, key in letters])


__all__ = [
    "FaustTopic",
    "KafkaBatchTopic",
    "MemoryTopic",
    "Record",
    "Sink",
    "Topic",
    "answer_record",
    "dead_letter_record",
    "encode",
    "recommendation_record",
]
