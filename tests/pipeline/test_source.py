import json

import pytest

from seqrec import schemas
from seqrec.pipeline.serving.source import (
    REASONS,
    ClickEvent,
    Rejection,
    SourceLimits,
    decode_click,
    encode_click,
)

NOW = 1_800_000_000_000
LIMITS = SourceLimits(max_payload_bytes=512, min_timestamp_ms=1_000_000_000_000, max_future_skew_ms=60_000)


def click(**overrides):
    data = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "timestamp": NOW - 1000}
    data.update(overrides)
    return json.dumps(data).encode()


def decode(raw, key=b"u1"):
    return decode_click(raw, key, now_ms=NOW, limits=LIMITS)


def test_good_click_decodes_with_optional_fields():
    got = decode(click(session_id="s9", context={"page": "home"}, schema_version=1))
    assert got == ClickEvent("e1", "u1", "i1", NOW - 1000, "s9", {"page": "home"})


def test_encode_round_trips():
    event = ClickEvent("e1", "u1", "i1", NOW, None, {"a": 1})
    assert decode(encode_click(event)) == event


@pytest.mark.parametrize(
    "raw, key, reason",
    [
        (b"x" * 600, b"u1", "oversized"),
        (b"\xff\xfe{}", b"u1", "undecodable"),
        (b'{"event_id": "e1",', b"u1", "invalid_json"),
        (None, b"u1", "invalid_json"),
        (json.dumps({"event_id": "e1", "user_id": "u1", "item_id": "i1"}).encode(), b"u1", "missing_field"),
        (click(timestamp="yesterday"), b"u1", "wrong_type"),
        (click(user_id=7), b"7", "wrong_type"),
        (click(timestamp=True), b"u1", "wrong_type"),
        (click(item_id=""), b"u1", "schema_violation"),
        (click(extra_field=1), b"u1", "schema_violation"),
        (b"[1, 2]", b"u1", "schema_violation"),
        (click(timestamp=5), b"u1", "absurd_timestamp"),
        (click(timestamp=NOW + 3_600_000), b"u1", "absurd_timestamp"),
        (click(), b"someone-else", "key_mismatch"),
        (click(), None, "missing_key"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(raw, key, reason):
    got = decode(raw, key)
    assert isinstance(got, Rejection), got
    assert got.reason == reason and got.reason in REASONS
    assert got.error


def test_a_click_log_without_keys_can_skip_the_key_check():
    assert isinstance(decode_click(click(), None, now_ms=NOW, limits=LIMITS, require_key=False), ClickEvent)


def test_reasons_are_the_dead_letter_schema_enum():
    enum = schemas.load_schema("dead_letter")["properties"]["reason"]["enum"]
    assert sorted(enum) == sorted(REASONS)


def test_unknown_schema_name():
    with pytest.raises(ValueError, match="known"):
        schemas.load_schema("nope")
