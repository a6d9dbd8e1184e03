"""`seqrec worker` subprocesses on the real broker: delivery, dead letters, crash recovery and
scale-out. Each test has its own app id and topics; workers run with short session timeouts.
About 2 minutes together on 2 cores."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

from pipeline.harness import consume_until, produce_clicks, produce_raw, read_changelog
from pipeline.source import ClickEvent
from pipeline.state import persisted_changelog_offsets


def make_clicks(n: int, users: int, *, start: int = 0, prefix: str = "e") -> list[ClickEvent]:
    """Click j of the stream: user u{j % users}, a unique item per click (so a duplicate in a
    history would show), event time now + j ms."""
    now = int(time.time() * 1000)
    return [
        ClickEvent(f"{prefix}{j}", f"u{j % users}", f"i{j}", now + j)
        for j in range(start, start + n)
    ]


def expected_histories(clicks: list[ClickEvent], n: int) -> dict[str, tuple[str, ...]]:
    seqs: dict[str, list[str]] = {}
    for c in clicks:
        seqs.setdefault(c.user_id, []).append(c.item_id)
    return {u: tuple(items[-n:]) for u, items in seqs.items()}


def answered(ids: set[str]):
    return lambda records: ids <= {r["event_id"] for r in records}


def test_one_answer_per_click_bad_input_dead_lettered_and_history_kept(deployment):
    d = deployment
    w = d.worker()
    w.wait_ready()
    good = make_clicks(400, 25)
    now = int(time.time() * 1000)
    ok = {"event_id": "x", "user_id": "u1", "item_id": "ix", "timestamp": now}
    bad = [  # (key, value, reason)
        (b"u1", b"\xff\xfe\x00 not utf-8", "undecodable"),
        (b"u1", b'{"event_id": "broken"', "invalid_json"),
        (b"u1", json.dumps({k: v for k, v in ok.items() if k != "item_id"}).encode(), "missing_field"),
        (b"u1", json.dumps({**ok, "timestamp": "noon"}).encode(), "wrong_type"),
        (b"u1", json.dumps({**ok, "item_id": ""}).encode(), "schema_violation"),
        (b"u1", json.dumps({**ok, "item_id": "x" * 20_000}).encode(), "oversized"),
        (b"u1", json.dumps({**ok, "timestamp": 12}).encode(), "absurd_timestamp"),
        (b"u2", json.dumps(ok).encode(), "key_mismatch"),
    ]
    produce_clicks(d.bootstrap, d.clicks, good[:200])
    produce_raw(d.bootstrap, d.clicks, [(k, v) for k, v, _ in bad])
    produce_clicks(d.bootstrap, d.clicks, good[200:])

    ids = {c.event_id for c in good}
    recs = consume_until(d.bootstrap, d.recommendations, answered(ids), timeout_s=90).records
    letters = consume_until(d.bootstrap, d.dead_letters, lambda r: len(r) >= len(bad), timeout_s=30).records
    time.sleep(1.0)  # a late duplicate would show up now
    recs = consume_until(d.bootstrap, d.recommendations, lambda r: False, timeout_s=2).records

    counts = Counter(r["event_id"] for r in recs)
    assert set(counts) == ids, f"unanswered: {sorted(ids - set(counts))[:10]}"
    assert max(counts.values()) == 1, "a click was answered twice without any restart"
    assert all(len(r["items"]) == 10 and r["model_version"] for r in recs)
    assert sorted(x["reason"] for x in letters) == sorted(reason for _, _, reason in bad)
    assert all(x["source"]["topic"] == d.clicks and x["source"]["offset"] >= 0 for x in letters)
    assert w.metric("seqrec_events_in_total") == len(good) + len(bad)
    assert w.metric("seqrec_dead_letters_total") == len(bad)
    assert w.metric("seqrec_batch_size_count") >= 1
    assert w.get("/healthz")[0] == 200 and w.metric("seqrec_ready") == 1
    assert w.metric("seqrec_model_version_info") == 1

    assert w.stop() == 0, w.log_tail()
    expected = expected_histories(good, d.history_len)
    table = w.dump_state()  # the worker's own RocksDB files
    assert {u: s.items for u, s in table.items()} == expected
    assert {u: s.items for u, s in read_changelog(d.bootstrap, d.changelog).items()} == expected


def test_kill_9_mid_stream_then_a_new_worker_answers_every_click(deployment):
    d = deployment
    first = d.worker()
    first.wait_ready()
    clicks = make_clicks(3000, 40)
    ids = {c.event_id for c in clicks}

    def produce_slowly() -> None:  # a steady stream, so the kill lands mid-stream
        for i in range(0, len(clicks), 100):
            produce_clicks(d.bootstrap, d.clicks, clicks[i : i + 100])
            time.sleep(0.05)

    producer = threading.Thread(target=produce_slowly)
    producer.start()
    consume_until(d.bootstrap, d.recommendations, lambda r: len(r) >= 500, timeout_s=60)
    first.kill()
    producer.join()

    second = d.worker()  # a fresh data directory: the table comes back from the changelog
    second.wait_ready(timeout_s=120)
    recs = consume_until(d.bootstrap, d.recommendations, answered(ids), timeout_s=120).records
    counts = Counter(r["event_id"] for r in recs)
    assert set(counts) == ids, f"unanswered after the crash: {len(ids - set(counts))}"
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\nkill -9: {len(recs)} answers for {len(ids)} clicks, {duplicates} duplicates")

    assert second.stop() == 0, second.log_tail()
    expected = expected_histories(clicks, d.history_len)
    table = read_changelog(d.bootstrap, d.changelog)
    assert {u: s.items for u, s in table.items()} == expected  # no click lost or doubled


def test_two_workers_share_partitions_and_one_takes_over(deployment):
    d = deployment
    a, b = d.worker(), d.worker()
    a.wait_ready(timeout_s=120)
    b.wait_ready(timeout_s=120)
    first = make_clicks(800, 40)
    produce_clicks(d.bootstrap, d.clicks, first)
    consume_until(d.bootstrap, d.recommendations, answered({c.event_id for c in first}), timeout_s=90)
    served_a, served_b = a.metric("seqrec_events_in_total"), b.metric("seqrec_events_in_total")
    assert served_a > 0 and served_b > 0, (served_a, served_b)
    assert served_a + served_b >= len(first)

    assert b.stop() == 0, b.log_tail()
    second = make_clicks(800, 40, start=800)
    produce_clicks(d.bootstrap, d.clicks, second)
    ids = {c.event_id for c in first + second}
    consume_until(d.bootstrap, d.recommendations, answered(ids), timeout_s=120)
    assert a.metric("seqrec_events_in_total") - served_a >= len(second)  # a took b's share

    assert a.stop() == 0, a.log_tail()
    expected = expected_histories(first + second, d.history_len)
    assert {u: s.items for u, s in read_changelog(d.bootstrap, d.changelog).items()} == expected


def changelog_end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: end for tp, end in ends.items()}
    finally:
        consumer.close()


def test_restart_on_its_own_data_directory_continues_every_history(deployment):
    """The worker sends the table's changelog itself and records in RocksDB which changelog
    offset each partition's file holds, as Faust does for its own sends; a restart on the same
    files must resume from there with no click lost or applied twice."""
    d = deployment
    w = d.worker()
    w.wait_ready()
    first = make_clicks(300, 20)
    produce_clicks(d.bootstrap, d.clicks, first)
    consume_until(d.bootstrap, d.recommendations, answered({c.event_id for c in first}), timeout_s=90)
    assert w.stop() == 0, w.log_tail()

    persisted = persisted_changelog_offsets(w.datadir, "user-history")
    ends = changelog_end_offsets(d.bootstrap, d.changelog)
    assert persisted and set(persisted) <= set(ends)
    assert all(0 <= persisted[p] < ends[p] for p in persisted), (persisted, ends)

    w.start()
    w.wait_ready(timeout_s=120)
    second = make_clicks(300, 20, start=300)
    produce_clicks(d.bootstrap, d.clicks, second)
    consume_until(d.bootstrap, d.recommendations, answered({c.event_id for c in first + second}), timeout_s=90)
    assert w.stop() == 0, w.log_tail()
    expected = expected_histories(first + second, d.history_len)
    assert {u: s.items for u, s in w.dump_state().items()} == expected
    assert {u: s.items for u, s in read_changelog(d.bootstrap, d.changelog).items()} == expected
