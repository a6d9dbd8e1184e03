"""Sink: the records the worker produces (recommendations, dead letters) and where they go.

Record builders are plain functions; the wire form is compact JSON following
schemas/recommendation.v1.json and schemas/dead_letter.v1.json. A `Topic` is anything with
Faust's `await topic.send(key=, value=)`, which returns a future that resolves once the broker
has the record; `MemoryTopic` is the in-process stand-in for tests and replays.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Protocol

from pipeline.source import ClickEvent, Rejection

SCHEMA_VERSION = 1


class Topic(Protocol):
    async def send(self, *, key: bytes | None, value: bytes) -> Awaitable[Any]: ...


@dataclass
class MemoryTopic:
    """An in-memory topic: `records` holds (key, value) in send order."""

    records: list[tuple[bytes | None, bytes]] = field(default_factory=list)

    async def send(self, *, key: bytes | None, value: bytes) -> Awaitable[Any]:
        self.records.append((key, value))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def decoded(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _, value in self.records]


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
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": click.event_id,
        "user_id": click.user_id,
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
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Sink:
    """Sends records; each `send_*` returns the broker-acknowledgement future to await."""

    def __init__(self, recommendations: Topic, dead_letters: Topic) -> None:
        self.recommendations = recommendations
        self.dead_letters = dead_letters

    async def send_recommendation(self, record: dict[str, Any]) -> Awaitable[Any]:
        return await self.recommendations.send(
            key=record["user_id"].encode("utf-8"), value=encode(record)
        )

    async def send_dead_letter(self, record: dict[str, Any], key: bytes | None) -> Awaitable[Any]:
        return await self.dead_letters.send(key=key, value=encode(record))


__all__ = [
    "MemoryTopic",
    "Sink",
    "Topic",
    "dead_letter_record",
    "encode",
    "recommendation_record",
]
