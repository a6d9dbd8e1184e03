"""`seqrec worker` subprocesses on the real broker: delivery, dead letters, crash recovery and
scale-out. Each test has its own app id and topics; workers run with short session timeouts.
About 2 minutes together on 2 cores."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from seqrec.pipeline.devtools.harness import (WorkerProcess, consume_until, produce_clicks, produce_raw, produce_steadily,
                                               read_changelog)
from seqrec.pipeline.serving.source import ClickEvent, encode_click
from seqrec.pipeline.serving.state import persisted_changelog_offsets


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


class ReadyProbe(threading.Thread):
    """Polls a worker's /ready from its start: (wall time, status, detail) per answer."""

    def __init__(self, worker: WorkerProcess) -> None:
        super().__init__(daemon=True)
        self.worker = worker
        self.samples: list[tuple[float, int, str]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                status, body = self.worker.get("/ready")
                self.samples.append((time.time(), status, json.loads(body).get("detail", "")))
            except (OSError, ValueError):  # web server not up yet
                pass
            time.sleep(0.1)


def log_time(worker: WorkerProcess, text: str) -> float | None:
    """Wall time of the first log line of `worker` that contains `text`."""
    for line in worker.log_path.read_text(errors="replace").splitlines():
        if text in line and line.startswith("["):
            return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def test_kill_9_mid_stream_then_a_new_worker_answers_every_click(deployment):
    d = deployment
    first = d.worker()
    first.wait_ready()
    clicks = make_clicks(3000, 40)
    ids = {c.event_id for c in clicks}

    producer = produce_steadily(d.bootstrap, d.clicks, clicks)
    consume_until(d.bootstrap, d.recommendations, lambda r: len(r) >= 1000, timeout_s=60)
    first.kill()
    before_kill = {r["event_id"] for r in consume_until(d.bootstrap, d.recommendations, lambda r: False,
                                                        timeout_s=3).records}
    assert 1000 <= len(before_kill) < len(ids), "the kill did not land mid-stream"
    producer.join()

    second = d.worker()  # a fresh data directory: the table comes back from the changelog
    probe = ReadyProbe(second)
    probe.start()
    second.wait_ready(timeout_s=120)
    ready_at = time.time()
    probe.stopping.set()
    recs = consume_until(d.bootstrap, d.recommendations, answered(ids), timeout_s=120).records
    counts = Counter(r["event_id"] for r in recs)
    assert set(counts) == ids, f"unanswered after the crash: {len(ids - set(counts))}"
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\nkill -9: {len(before_kill)} answered before the kill, {len(recs)} answers for "
          f"{len(ids)} clicks, {duplicates} duplicates")
    # Resumed from the committed offsets, not from offset 0, which would answer again every click
    # answered before the kill. (The replay after the last commit is about a second of traffic,
    # 500 answers at this rate when the machine is loaded, so half of them is no safe bound.)
    assert duplicates < len(before_kill), "the new worker started over from offset 0"

    # /ready said no until the table was back from the changelog.
    restored, done = log_time(second, "Restoring state from changelog"), log_time(second, "Done reading from changelog")
    assert restored is not None and done is not None, second.log_tail()
    assert ready_at >= done and all(t >= done for t, status, _ in probe.samples if status == 200)
    assert any(status != 200 for _, status, _ in probe.samples), probe.samples[:5]

    assert second.stop() == 0, second.log_tail()
    expected = expected_histories(clicks, d.history_len)
    # The new worker's own files hold the pre-kill histories: recovered from the changelog.
    assert {u: s.items for u, s in second.dump_state().items()} == expected
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


@pytest.mark.parametrize("inference", ["thread", "process"])
def test_restart_on_its_own_data_directory_continues_every_history(deployment, inference: str):
    """The worker sends the table's changelog itself and records in RocksDB which changelog
    offset each partition's file holds, as Faust does for its own sends; a restart on the same
    files must resume from there with no click lost or applied twice. With the model in a
    process of its own, a graceful stop also stops that process."""
    d = deployment
    w = d.worker("--inference", inference)
    w.wait_ready()
    first = make_clicks(300, 20)
    produce_clicks(d.bootstrap, d.clicks, first)
    consume_until(d.bootstrap, d.recommendations, answered({c.event_id for c in first}), timeout_s=90)
    children = w.model_processes()
    assert len(children) == (1 if inference == "process" else 0), children
    assert w.stop() == 0, w.log_tail()
    assert not any(Path(f"/proc/{child}").exists() for child in children), "the model's process outlived the worker"

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


def test_keyless_clicks_are_dead_lettered_and_never_cost_a_keyed_click(deployment):
    """The trial's sequence: 6 clicks without a message key for a user, then 3 keyed ones.
    The keyless ones used to be answered from partitions of their own and the keyed ones then
    taken for replays: answered, but missing from the history."""
    d = deployment
    w = d.worker()
    w.wait_ready()
    now = int(time.time() * 1000)
    keyless = [ClickEvent(f"k{j}", "u-k", f"free{j}", now + j) for j in range(6)]
    keyed = [ClickEvent(f"c{j}", "u-k", f"kept{j}", now + 10 + j) for j in range(3)]
    for c in keyless:  # one send each, so they spread over partitions as kcat's did
        produce_raw(d.bootstrap, d.clicks, [(None, encode_click(c))])
    produce_clicks(d.bootstrap, d.clicks, keyed)

    letters = consume_until(d.bootstrap, d.dead_letters, lambda r: len(r) >= 6, timeout_s=60).records
    recs = consume_until(d.bootstrap, d.recommendations, answered({c.event_id for c in keyed}), timeout_s=60).records
    assert sorted(x["reason"] for x in letters) == ["missing_key"] * 6
    assert {r["event_id"] for r in recs} == {c.event_id for c in keyed}
    assert w.metric('seqrec_dead_letters_total{reason="missing_key"}') == 6

    assert w.stop() == 0, w.log_tail()
    assert w.dump_state()["u-k"].items == ("kept0", "kept1", "kept2")
    assert read_changelog(d.bootstrap, d.changelog)["u-k"].items == ("kept0", "kept1", "kept2")


def test_a_duplicate_event_id_is_answered_again_but_enters_no_history(deployment):
    """A producer's retry or a client's re-send: same event_id, new offset."""
    d = deployment
    w = d.worker()
    w.wait_ready()
    clicks = make_clicks(60, 6)
    resent = [clicks[10], clicks[10], clicks[40], clicks[45]]  # twice in a row, and later
    produce_clicks(d.bootstrap, d.clicks, clicks[:30] + resent[:2] + clicks[30:50] + resent[2:] + clicks[50:])

    ids = {c.event_id for c in clicks}
    expected_answers = len(clicks) + len(resent)
    recs = consume_until(d.bootstrap, d.recommendations, lambda r: len(r) >= expected_answers, timeout_s=60).records
    counts = Counter(r["event_id"] for r in recs)
    assert set(counts) == ids
    assert {e: n for e, n in counts.items() if n > 1} == {"e10": 3, "e40": 2, "e45": 2}
    assert w.metric("seqrec_duplicate_clicks_total") == len(resent)
    assert w.metric("seqrec_replayed_clicks_total") == 0

    assert w.stop() == 0, w.log_tail()
    expected = expected_histories(clicks, d.history_len)
    assert {u: s.items for u, s in w.dump_state().items()} == expected
    assert {u: s.items for u, s in read_changelog(d.bootstrap, d.changelog).items()} == expected


def wait_ready_status(worker: WorkerProcess, ready: bool, timeout_s: float) -> tuple[float, str]:
    """Poll /ready until it is (or is not) 200; return (seconds waited, its detail)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            status, body = worker.get("/ready")
        except OSError:
            status, body = 0, b"{}"
        if (status == 200) == ready:
            return time.monotonic() - started, json.loads(body).get("detail", "")
        time.sleep(0.2)
    raise TimeoutError(f"/ready never became {'200' if ready else 'non-200'}:\n{worker.log_tail()}")


def test_ready_says_no_while_the_broker_is_down_and_yes_after_it_is_back(own_broker):
    """On a broker of the test's own, stopped and started again on its data directory."""
    broker, d = own_broker
    w = d.worker()
    w.wait_ready(timeout_s=120)
    broker.stop()
    waited, detail = wait_ready_status(w, ready=False, timeout_s=20)
    print(f"\n/ready non-200 {waited:.1f} s after the broker stopped ({detail})")
    assert detail == "broker unreachable"
    assert w.get("/healthz")[0] == 200  # alive all the same
    assert broker.start() == d.bootstrap
    waited, _ = wait_ready_status(w, ready=True, timeout_s=120)
    print(f"/ready 200 again {waited:.1f} s after the broker was back")
    clicks = make_clicks(50, 5)
    produce_clicks(d.bootstrap, d.clicks, clicks)
    consume_until(d.bootstrap, d.recommendations, answered({c.event_id for c in clicks}), timeout_s=60)
    assert w.stop() == 0, w.log_tail()
