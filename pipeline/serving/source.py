"""Source: the clicks topic's raw bytes → a validated `ClickEvent`, or a `Rejection` that says
why the message goes to the dead-letter topic.

The worker consumes raw bytes and validates here, in plain code, instead of in a Faust
deserializer: a deserializer that raises inside a stream ends or silently starves the agent
(robinhood/faust#586, faust-streaming#175). Nothing in this module raises on bad input.

Clicks are parsed with orjson, which is stricter than Python's json: NaN and Infinity (not
JSON) and lone surrogate escapes ("\\ud800", no character at all) are `invalid_json` (json took
them, and a lone surrogate in user_id then crashed the key check); nesting deeper than 1,024
levels is refused (json's limit was the interpreter's recursion limit); integers beyond 64 bits
become floats. tests/pipeline/test_click_codec.py pins every outcome against json + the schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import orjson

from seqrec import schemas

# Dead-letter reasons, in the order they are checked. They are the `reason` enum of
# dead_letter.v1.json and the label values of the dead-letter counter.
OVERSIZED = "oversized"
UNDECODABLE = "undecodable"
INVALID_JSON = "invalid_json"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
SCHEMA_VIOLATION = "schema_violation"
ABSURD_TIMESTAMP = "absurd_timestamp"
MISSING_KEY = "missing_key"
KEY_MISMATCH = "key_mismatch"
INFERENCE_FAILED = "inference_failed"  # valid click, but the model raised on its batch
REASONS = (
    OVERSIZED,
    UNDECODABLE,
    INVALID_JSON,
    MISSING_FIELD,
    WRONG_TYPE,
    SCHEMA_VIOLATION,
    ABSURD_TIMESTAMP,
    MISSING_KEY,
    KEY_MISMATCH,
    INFERENCE_FAILED,
)


@dataclass(frozen=True, slots=True)
class ClickEvent:
    event_id: str
    user_id: str
    item_id: str
    timestamp: int  # ms since the Unix epoch
    session_id: str | None = None
    context: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # one of REASONS
    error: str  # human-readable detail


@dataclass(frozen=True, slots=True)
class SourceLimits:
    max_payload_bytes: int = 16_384
    min_timestamp_ms: int = 1_000_000_000_000
    max_future_skew_ms: int = 86_400_000


_SCHEMA_RULE_REASONS = {"required": MISSING_FIELD, "type": WRONG_TYPE}


def decode_click(
    raw: bytes | None,
    key: bytes | None,
    *,
    now_ms: int,
    limits: SourceLimits = SourceLimits(),
    require_key: bool = True,
) -> ClickEvent | Rejection:
    """Validate one message of the clicks topic.

    `key` is the message key: the topic is keyed by user id so a user's clicks share a
    partition (and so the state table's partition). A click with no key lands on any partition
    and one under another key on the wrong one; either would split the user's history across
    partitions, so they are rejected (`missing_key`, `key_mismatch`). `require_key=False` skips
    the check, for readers of click logs that carry no message key.
    """
    if raw is None:
        return Rejection(INVALID_JSON, "message has no value (tombstone)")
    if len(raw) > limits.max_payload_bytes:
        return Rejection(OVERSIZED, f"{len(raw)} bytes > limit {limits.max_payload_bytes}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _undecodable(raw) or Rejection(INVALID_JSON, str(exc))
    try:
        schemas.validator("click")(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        if exc.path == ["data"] and exc.rule == "type":  # not an object at all
            return Rejection(SCHEMA_VIOLATION, exc.message)
        return Rejection(_SCHEMA_RULE_REASONS.get(exc.rule, SCHEMA_VIOLATION), exc.message)
    ts = data["timestamp"]
    if ts < limits.min_timestamp_ms or ts > now_ms + limits.max_future_skew_ms:
        return Rejection(
            ABSURD_TIMESTAMP,
            f"timestamp {ts} outside [{limits.min_timestamp_ms}, now + {limits.max_future_skew_ms} ms]",
        )
    user_id = data["user_id"]
    if require_key and key is None:
        return Rejection(MISSING_KEY, f"message has no key; produce it with the user_id {user_id[:64]!r} as key")
    if require_key and key != user_id.encode("utf-8"):
        return Rejection(KEY_MISMATCH, f"message key {key[:64]!r} is not the user_id {user_id[:64]!r}")
    return ClickEvent(
        event_id=data["event_id"],
        user_id=user_id,
        item_id=data["item_id"],
        timestamp=ts,
        session_id=data.get("session_id"),
        context=data.get("context"),
    )


def _undecodable(raw: bytes) -> Rejection | None:
    """Why `raw` is not UTF-8, or None. Checked only once orjson has refused `raw`: it refuses
    every input that is not UTF-8, and non-UTF-8 must stay `undecodable` even when its JSON is
    broken too."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(UNDECODABLE, f"not UTF-8: {exc.reason} at byte {exc.start}")
    return None


def encode_click(click: ClickEvent) -> bytes:
    """The wire form of a click (what producers send), for replay tools and tests."""
    data: dict[str, Any] = {
        "event_id": click.event_id,
        "user_id": click.user_id,
        "item_id": click.item_id,
        "timestamp": click.timestamp,
    }
    if click.session_id is not None:
        data["session_id"] = click.session_id
    if click.context is not None:
        data["context"] = click.context
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


__all__ = [
    "REASONS",
    "ClickEvent",
    "Rejection",
    "SourceLimits",
    "decode_click",
    "encode_click",
]
