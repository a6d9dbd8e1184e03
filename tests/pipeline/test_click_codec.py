"""`decode_click` (orjson + the compiled schema) against a reference: Python's json, the schema
compiled here from schemas/click.v1.json, and the dead-letter reason rules. Over a corpus of
good and bad raw clicks, the decoder must give the reference's outcome: the same ClickEvent, or
a rejection with the same reason. The few rows where orjson is meant to differ carry the
expected outcome and why it is the better one."""

import json
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from seqrec.pipeline.serving.source import (
    INFERENCE_FAILED,
    REASONS,
    ClickEvent,
    Rejection,
    SourceLimits,
    decode_click,
)

NOW = 1_800_000_000_000
LIMITS = SourceLimits()  # the worker's: 16 KiB, so deep nesting fits under the size limit
TS = NOW - 1000
SCHEMA = fastjsonschema.compile(
    json.loads((Path(__file__).parents[2] / "schemas" / "click.v1.json").read_text("utf-8"))
)
SCHEMA_REASONS = {"required": "missing_field", "type": "wrong_type"}

Outcome = ClickEvent | str  # an accepted click, or a rejection's reason
ACCEPTED = "accepted"  # any ClickEvent: for a context too deep to compare with ==


def reference(raw: bytes | None, key: bytes | None) -> Outcome:
    """What the worker did before orjson: decode UTF-8, json.loads, the schema, then the rules."""
    if raw is None:
        return "invalid_json"
    if len(raw) > LIMITS.max_payload_bytes:
        return "oversized"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "undecodable"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "invalid_json"
    try:
        SCHEMA(data)
    except fastjsonschema.JsonSchemaValueException as exc:
        top_level_type = exc.path == ["data"] and exc.rule == "type"
        return "schema_violation" if top_level_type else SCHEMA_REASONS.get(exc.rule, "schema_violation")
    if not LIMITS.min_timestamp_ms <= data["timestamp"] <= NOW + LIMITS.max_future_skew_ms:
        return "absurd_timestamp"
    if key is None:
        return "missing_key"
    if key != data["user_id"].encode("utf-8"):
        return "key_mismatch"
    return ClickEvent(data["event_id"], data["user_id"], data["item_id"], data["timestamp"],
                      data.get("session_id"), data.get("context"))


def outcome(decoder: Any, raw: bytes | None, key: bytes | None) -> Outcome:
    try:
        got = decoder(raw, key)
    except Exception as exc:  # the reference's own crashes show up as outcomes too
        return f"raised {type(exc).__name__}"
    return got.reason if isinstance(got, Rejection) else got


def decoder(raw: bytes | None, key: bytes | None) -> ClickEvent | Rejection:
    return decode_click(raw, key, now_ms=NOW, limits=LIMITS)


def fields(**overrides: Any) -> dict[str, Any]:
    data = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "timestamp": TS}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not DROP}


DROP = object()


def msg(**overrides: Any) -> bytes:
    return json.dumps(fields(**overrides), ensure_ascii=False).encode("utf-8")


def splice(value: str, field: str = "item_id") -> bytes:
    """A click whose `field` is the raw JSON text `value` (for what json.dumps cannot write)."""
    return msg(**{field: "@@"}).replace(b'"@@"', value.encode("utf-8"))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_context(depth: int) -> bytes:
    """A click whose context (an object, as the schema wants) nests arrays `depth` levels deep."""
    return splice('{"a": ' + nested(depth - 1) + "}", "context")


# (name, raw value, message key); every row's outcome must equal the reference's.
CORPUS: list[tuple[str, bytes | None, bytes | None]] = [
    ("minimal", msg(), b"u1"),
    ("session id", msg(session_id="s9"), b"u1"),
    ("session id null", msg(session_id=None), b"u1"),
    ("context", msg(context={"page": "home", "n": [1, 2.5, None, True]}), b"u1"),
    ("context null", msg(context=None), b"u1"),
    ("schema version 1", msg(schema_version=1), b"u1"),
    ("every optional field", msg(schema_version=1, session_id="s", context={}), b"u1"),
    ("unicode ids as UTF-8", msg(user_id="üser-用户-😀", item_id="é"), "üser-用户-😀".encode()),
    ("unicode ids as escapes", json.dumps(fields(user_id="ü😀")).encode(), "ü😀".encode()),
    ("escaped NUL in an id", splice('"a\\u0000b"'), b"u1"),
    ("ids of 128 characters", msg(event_id="e" * 128, item_id="é" * 128), b"u1"),
    ("duplicate key: the last wins", splice('"a", "item_id": "b"'), b"u1"),
    ("pretty-printed", json.dumps(fields(), indent=2).encode() + b"\n", b"u1"),
    ("timestamp 1.7e12, integral", splice("1.7e12", "timestamp"), b"u1"),
    ("timestamp written as x.0", splice(f"{TS}.0", "timestamp"), b"u1"),
    ("timestamp at the oldest allowed", msg(timestamp=LIMITS.min_timestamp_ms), b"u1"),
    ("timestamp at the newest allowed", msg(timestamp=NOW + LIMITS.max_future_skew_ms), b"u1"),
    ("64-bit integer in context", msg(context={"n": 2**64 - 1, "m": -(2**63)}), b"u1"),
    ("context nested 500 deep", deep_context(500), b"u1"),
    ("tombstone", None, b"u1"),
    ("oversized", msg(context={"pad": "x" * LIMITS.max_payload_bytes}), b"u1"),
    ("oversized and not UTF-8", b"\xff" * (LIMITS.max_payload_bytes + 1), b"u1"),
    ("UTF-16 BOM", b"\xff\xfe{}", b"u1"),
    ("Latin-1 id", msg(item_id="@@").replace(b"@@", "é".encode("latin-1")), b"u1"),
    ("overlong encoding", msg(item_id="@@").replace(b"@@", b"\xc0\xaf"), b"u1"),
    ("UTF-8-encoded surrogate", msg(item_id="@@").replace(b"@@", b"\xed\xa0\x80"), b"u1"),
    ("beyond U+10FFFF", msg(item_id="@@").replace(b"@@", b"\xf4\x90\x80\x80"), b"u1"),
    ("truncated sequence", msg(item_id="@@").replace(b"@@", b"\xe2\x82"), b"u1"),
    ("not UTF-8 after the document", msg() + b" \xff", b"u1"),
    ("not UTF-8 and not JSON", b'{"event_id": \xff', b"u1"),
    ("empty", b"", b"u1"),
    ("whitespace only", b" \n\t ", b"u1"),
    ("truncated", msg()[:-1], b"u1"),
    ("trailing data", msg() + b" x", b"u1"),
    ("two documents", msg() + msg(), b"u1"),
    ("trailing comma", msg()[:-1] + b",}", b"u1"),
    ("single quotes", msg().replace(b'"', b"'"), b"u1"),
    ("unquoted key", msg().replace(b'"item_id"', b"item_id"), b"u1"),
    ("comment", b"/* c */" + msg(), b"u1"),
    ("UTF-8 BOM", b"\xef\xbb\xbf" + msg(), b"u1"),
    ("raw control character", msg(item_id="@@").replace(b"@@", b"a\x01b"), b"u1"),
    ("Python literals", splice("None", "session_id"), b"u1"),
    ("nested 2,000 deep in context", splice(nested(2000), "context"), b"u1"),
    ("nested 8,000 deep", nested(8000).encode(), b"u1"),
    ("top level: array", b"[1, 2]", b"u1"),
    ("top level: string", b'"x"', b"u1"),
    ("top level: number", b"123", b"u1"),
    ("top level: null", b"null", b"u1"),
    ("empty object", b"{}", b"u1"),
    ("no event_id", msg(event_id=DROP), b"u1"),
    ("no user_id", msg(user_id=DROP), b"u1"),
    ("no item_id", msg(item_id=DROP), b"u1"),
    ("no timestamp", msg(timestamp=DROP), b"u1"),
    ("user_id a number", msg(user_id=7), b"7"),
    ("event_id null", msg(event_id=None), b"u1"),
    ("timestamp a string", msg(timestamp="yesterday"), b"u1"),
    ("timestamp a bool", msg(timestamp=True), b"u1"),
    ("timestamp a fraction", msg(timestamp=TS + 0.5), b"u1"),
    ("session_id a number", msg(session_id=3), b"u1"),
    ("context a list", msg(context=[1]), b"u1"),
    ("event_id a big integer", msg(event_id=2**70), b"u1"),
    ("empty item_id", msg(item_id=""), b"u1"),
    ("item_id of 129 characters", msg(item_id="i" * 129), b"u1"),
    ("session_id of 129 characters", msg(session_id="s" * 129), b"u1"),
    ("extra field", msg(extra=1), b"u1"),
    ("schema version 2", msg(schema_version=2), b"u1"),
    ("schema version a big integer", msg(schema_version=2**70), b"u1"),
    ("negative timestamp", msg(timestamp=-5), b"u1"),
    ("timestamp below -2**63", msg(timestamp=-(2**64)), b"u1"),
    ("timestamp in seconds", msg(timestamp=NOW // 1000), b"u1"),
    ("timestamp too far ahead", msg(timestamp=NOW + LIMITS.max_future_skew_ms + 1), b"u1"),
    ("timestamp beyond 64 bits", msg(timestamp=2**64), b"u1"),
    ("no key", msg(), None),
    ("another user's key", msg(), b"u2"),
    ("key in another normalisation", msg(user_id="e\u0301"), "\u00e9".encode()),
]

# Rows where orjson differs from json on purpose: (name, raw, key, expected outcome, why).
BY_DESIGN: list[tuple[str, bytes, bytes | None, Outcome, str]] = [
    ("NaN in context", splice('{"x": NaN}', "context"), b"u1", "invalid_json",
     "NaN is not JSON (json accepted it, and no other reader of the click would)"),
    ("NaN timestamp", splice("NaN", "timestamp"), b"u1", "invalid_json",
     "not JSON; json read a float and the schema called it wrong_type"),
    ("-Infinity timestamp", splice("-Infinity", "timestamp"), b"u1", "invalid_json",
     "not JSON; json read a float and the schema called it wrong_type"),
    ("1e400 in context", splice('{"x": 1e400}', "context"), b"u1", "invalid_json",
     "a number no double holds; json made it inf, which no JSON writer can write back"),
    ("lone surrogate in item_id", splice('"a\\ud800"'), b"u1", "invalid_json",
     "no Unicode character; json accepted it, and the id can never be encoded to UTF-8"),
    ("lone surrogate in user_id", splice('"u\\udc00"', "user_id"), b"u1", "invalid_json",
     "json accepted it and the key check then raised UnicodeEncodeError inside decode_click"),
    ("integer beyond 64 bits in context", msg(context={"n": 2**64 + 1}), b"u1",
     ClickEvent("e1", "u1", "i1", TS, None, {"n": float(2**64 + 1)}),
     "orjson reads it as a float (json kept 2**64 + 1 exact); context is carried, never used"),
    ("context nested 1,020 deep", deep_context(1020), b"u1", ACCEPTED,
     "orjson's limit is a fixed 1,024 levels; json's was the interpreter's recursion limit"),
]


@pytest.mark.parametrize("name, raw, key", CORPUS, ids=[row[0] for row in CORPUS])
def test_decoder_gives_the_reference_outcome(name, raw, key):
    expected = outcome(reference, raw, key)
    assert not str(expected).startswith("raised"), expected
    assert outcome(decoder, raw, key) == expected


@pytest.mark.parametrize("name, raw, key, expected, why", BY_DESIGN, ids=[row[0] for row in BY_DESIGN])
def test_where_orjson_differs_from_json_by_design(name, raw, key, expected, why):
    got = outcome(decoder, raw, key)
    assert isinstance(got, ClickEvent) if expected == ACCEPTED else got == expected, why
    old = outcome(reference, raw, key)
    assert not (isinstance(old, ClickEvent) if expected == ACCEPTED else old == expected), "belongs in CORPUS"


def test_corpus_holds_every_click_outcome():
    seen = [outcome(reference, raw, key) for _, raw, key in CORPUS]
    assert {o for o in seen if isinstance(o, str)} == set(REASONS) - {INFERENCE_FAILED}
    assert sum(isinstance(o, ClickEvent) for o in seen) >= 15
