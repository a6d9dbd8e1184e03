"""`seqrec worker --guarantee exactly_once` on the real broker: answers, history records and dead
letters are written in Kafka transactions that commit with the clicks' offsets, and a read_committed
consumer sees every answer once, also after one of two workers is killed with kill -9 mid-stream.
(Five runs of that under load, and broker outages: `benchmarks/crash_replay.py --guarantee
exactly_once`, docs/reliability.md.)"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from seqrec.pipeline.devtools.harness import (consume_until, produce_clicks, produce_raw, produce_steadily,
                                               read_changelog, read_to_end)
from seqrec.pipeline.serving.commit_gate import CommitGate
from seqrec.pipeline.serving.source import ClickEvent


def test_a_commit_runs_only_between_batches_and_never_after_a_failed_one() -> None:
    async def main() -> list[str]:
        gate, order = CommitGate(), []

        async def batch(name: str, seconds: float) -> None:
            await gate.enter()
            order.append(f"{name} sent")
            await asyncio.sleep(seconds)
            order.append(f"{name} acked")
            gate.leave()

        async def commit() -> None:
            async with gate.closed():
                order.append("commit")

        first = asyncio.create_task(batch("a", 0.05))
        await asyncio.sleep(0.01)
        committing = asyncio.create_task(commit())
        await asyncio.sleep(0.01)
        await asyncio.gather(first, committing, batch("b", 0.01))  # b comes while the commit waits
        await gate.enter()
        gate.leave(failure=ConnectionError("broker gone"))
        with pytest.raises(RuntimeError, match="must not commit"):
            await commit()
        return order

    assert asyncio.run(main()) == ["a sent", "a acked", "commit", "b sent", "b acked"]


def test_what_waits_for_a_commit_runs_after_one_succeeds_and_survives_one_that_fails() -> None:
    async def main() -> list[str]:
        gate, done = CommitGate(), []
        gate.after_commit("p0", lambda: done.append("p0 old"))
        gate.after_commit("p1", lambda: done.append("p1"))
        gate.after_commit("p0", lambda: done.append("p0 new"))  # the newest offset of a partition wins
        with pytest.raises(TimeoutError):
            async with gate.closed():
                raise TimeoutError("commit failed")
        assert done == []  # an aborted commit must not record its offsets
        async with gate.closed():
            assert done == []  # only once the commit returned
        async with gate.closed():
            pass  # nothing is run twice
        return done

    assert asyncio.run(main()) == ["p0 new", "p1"]


def test_exactly_once_answers_commit_in_transactions_and_each_is_read_once(deployment) -> None:
    d = deployment
    w = d.worker("--guarantee", "exactly_once")
    w.wait_ready(120)
    now = int(time.time() * 1000)
    clicks = [ClickEvent(f"e{j}", f"u{j % 30}", f"i{j % 100}", now + j) for j in range(300)]
    produce_clicks(d.bootstrap, d.clicks, clicks[:150])
    produce_raw(d.bootstrap, d.clicks, [(b"u1", b"{not json"), (None, json.dumps(
        {"event_id": "k", "user_id": "u2", "item_id": "i1", "timestamp": now}).encode())])
    produce_clicks(d.bootstrap, d.clicks, clicks[150:])

    ids = {c.event_id for c in clicks}
    recs = consume_until(d.bootstrap, d.recommendations, lambda r: ids <= {x["event_id"] for x in r},
                         timeout_s=90).records
    letters = consume_until(d.bootstrap, d.dead_letters, lambda r: len(r) >= 2, timeout_s=30).records
    time.sleep(1.5)  # a second answer would be committed by now
    recs = consume_until(d.bootstrap, d.recommendations, lambda r: False, timeout_s=2).records
    counts = Counter(r["event_id"] for r in recs)
    assert set(counts) == ids and max(counts.values()) == 1
    assert sorted(x["reason"] for x in letters) == ["invalid_json", "missing_key"]

    # Written in transactions: each commit left a marker in every partition it wrote to.
    for topic, records in ((d.recommendations, len(recs)), (d.dead_letters, 2), (d.changelog, None)):
        read, offsets = read_to_end(d.bootstrap, topic, committed_only=False)
        seen = len(read)
        assert records is None or seen == records, (topic, seen, records)
        assert offsets > seen, f"{topic}: {offsets} offsets for {seen} records: no transaction markers"

    assert w.stop() == 0, w.log_tail()
    expected: dict[str, list[str]] = {}
    for c in clicks:
        expected.setdefault(c.user_id, []).append(c.item_id)
    table = read_changelog(d.bootstrap, d.changelog)  # read_committed, as a recovering worker reads it
    assert {u: list(s.items) for u, s in table.items()} == {u: items[-d.history_len:] for u, items in expected.items()}


def test_kill_9_of_one_of_two_workers_mid_stream_answers_every_click_exactly_once(deployment) -> None:
    d = deployment
    survivor, victim = d.worker("--guarantee", "exactly_once"), d.worker("--guarantee", "exactly_once")
    survivor.wait_ready(120)
    victim.wait_ready(120)
    now = int(time.time() * 1000)
    clicks = [ClickEvent(f"e{j}", f"u{j % 40}", f"i{j}", now + j) for j in range(1200)]  # unique items

    producer = produce_steadily(d.bootstrap, d.clicks, clicks)
    consume_until(d.bootstrap, d.recommendations, lambda r: len(r) >= 400, timeout_s=90)
    victim.kill()
    ids = {c.event_id for c in clicks}
    before_kill = {r["event_id"] for r in consume_until(d.bootstrap, d.recommendations, lambda r: False,
                                                        timeout_s=1).records}
    assert len(before_kill) < len(ids), "the kill did not land mid-stream"
    producer.join()

    consume_until(d.bootstrap, d.recommendations, lambda r: ids <= {x["event_id"] for x in r}, timeout_s=120)
    time.sleep(1.5)  # a second answer would be committed by now (commit interval 0.5 s)
    recs = consume_until(d.bootstrap, d.recommendations, lambda r: False, timeout_s=2).records
    counts = Counter(r["event_id"] for r in recs)
    # A click the test's producer wrote twice (its retry on a busy machine) is two messages: each
    # gets its answer. Exactly once is per message.
    in_topic = Counter(json.loads(r.value)["event_id"] for r in read_to_end(d.bootstrap, d.clicks)[0])
    assert set(counts) == ids
    assert {e: n for e, n in counts.items() if n != in_topic[e]} == {}  # the killed one's open transactions aborted

    assert survivor.stop() == 0, survivor.log_tail()
    table = read_changelog(d.bootstrap, d.changelog)  # each click once in its user's history
    expected: dict[str, list[str]] = {}
    for c in clicks:
        expected.setdefault(c.user_id, []).append(c.item_id)
    assert {u: list(s.items) for u, s in table.items()} == {u: items[-d.history_len:] for u, items in expected.items()}
