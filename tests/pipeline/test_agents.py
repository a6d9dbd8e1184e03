"""The click path without Kafka: ClickPipeline with a dict table and in-memory topics."""

import asyncio
import time
import json
import socket

import pytest

from seqrec import schemas
from seqrec.pipeline.serving.agents import AnsweredOffsets, ClickPipeline, broker_reachable, stats_line
from seqrec.pipeline.serving.telemetry import STAGES, Health, Metrics
from seqrec.pipeline.serving.runner import Runner
from seqrec.pipeline.settings import Settings
from seqrec.pipeline.serving.sink import MemoryTopic, Sink
from seqrec.pipeline.serving.state import UserHistory

NOW_S = int(time.time())


class FakeModel:
    def __init__(self, version="v1", fail=False):
        self.version = version
        self.fail = fail
        self.batches = []

    def recommend(self, histories, k=10, exclude_seen=True):
        if self.fail:
            raise RuntimeError("cuda on fire")
        self.batches.append([list(h) for h in histories])
        return [[(f"next-{h[-1]}", 1.0)][:k] for h in histories]


def click(event_id, user, item, ts_ms=NOW_S * 1000):
    return json.dumps({"event_id": event_id, "user_id": user, "item_id": item, "timestamp": ts_ms}).encode()


def make(model, table=None, **batching):
    """A pipeline on in-memory topics; pass the `table` of an earlier one to play its successor
    after a crash (same table, nothing else kept)."""
    settings = Settings(batching={"max_size": 4, "max_wait_ms": 1, **batching}, store={"history_len": 3})
    acked = []

    async def ack(handle):
        acked.append(handle)

    recs, dlq = MemoryTopic(), MemoryTopic()
    table = {} if table is None else table
    metrics = Metrics()
    pipe = ClickPipeline(settings, Runner(model, top_k=1), Sink(recs, dlq), table, MemoryTopic(), ack, metrics)
    return pipe, table, recs, dlq, acked, metrics


async def feed(pipe, messages):
    task = asyncio.create_task(pipe.batcher.run())
    for offset, (key, value) in enumerate(messages):
        await pipe.accept(value, key, topic="clicks", partition=0, offset=offset, timestamp_s=NOW_S, handle=offset)
    await asyncio.wait_for(pipe.drain(), 5)
    task.cancel()


def test_every_click_answered_bad_ones_dead_lettered_all_acked():
    model = FakeModel()
    pipe, table, recs, dlq, acked, metrics = make(model)
    messages = [
        (b"u1", click("e0", "u1", "a")),
        (b"u1", b"\xff\x00garbage"),
        (b"u2", click("e1", "u2", "x")),
        (b"u1", click("e2", "u1", "b")),
        (b"u1", b'{"event_id": "e3"'),
        (b"u1", click("e4", "u1", "c")),
        (b"u1", click("e5", "u1", "d")),
    ]
    asyncio.run(feed(pipe, messages))

    answers = recs.decoded()
    assert sorted(a["event_id"] for a in answers) == ["e0", "e1", "e2", "e4", "e5"]
    validate = schemas.validator("recommendation")
    for a in answers:
        validate(a)
        assert a["model_version"] == "v1" and a["latency_ms"] >= 0
    by_id = {a["event_id"]: a for a in answers}
    assert by_id["e5"]["items"] == [{"item_id": "next-d", "score": 1.0}]
    # the model saw each user's history as of that click, last-3 kept
    assert ["b", "c", "d"] in [h for batch in model.batches for h in batch]
    assert UserHistory.from_bytes(table[b"u1"]).items == ("b", "c", "d")
    assert UserHistory.from_bytes(table[b"u2"]).items == ("x",)

    letters = dlq.decoded()
    for letter in letters:
        schemas.validator("dead_letter")(letter)
    assert [(x["reason"], x["source"]["offset"], x["payload_encoding"]) for x in letters] == [
        ("undecodable", 1, "base64"),
        ("invalid_json", 4, "utf-8"),
    ]
    assert letters[1]["payload"] == '{"event_id": "e3"'
    assert sorted(acked) == list(range(len(messages)))
    assert metrics.events_in._value.get() == 7
    assert metrics.recommendations_out._value.get() == 5
    assert metrics.dead_letters.labels("undecodable")._value.get() == 1
    line = stats_line(metrics, Health(model_loaded=True, recovered=True, broker_reachable=True, partitions=(0,)))
    assert "ready=1 events_in=7 recommendations_out=5 dead_letters=2 replayed=0" in line


def test_replayed_click_is_answered_again_but_not_reapplied():
    pipe, table, recs, dlq, acked, metrics = make(FakeModel())
    asyncio.run(feed(pipe, [(b"u", click("e0", "u", "a")), (b"u", click("e1", "u", "b"))]))
    # The worker that takes over after a crash gets offsets 0..1 again, then 2.
    after, table, recs, dlq, acked, metrics = make(FakeModel(), table)
    asyncio.run(feed(after, [(b"u", click(f"e{offset}", "u", item)) for offset, item in enumerate("abc")]))
    assert UserHistory.from_bytes(table[b"u"]).items == ("a", "b", "c")
    assert [a["event_id"] for a in recs.decoded()] == ["e0", "e1", "e2"]
    assert metrics.replayed._value.get() == 2


def test_a_click_delivered_again_to_the_worker_that_answered_it_is_only_acked():
    """A rebalance that leaves a partition with its worker may deliver a message again; that
    worker knows the broker has its answer and history, so it answers nothing twice."""
    pipe, table, recs, dlq, acked, metrics = make(FakeModel())

    async def main():
        task = asyncio.create_task(pipe.batcher.run())
        for handle, offset in enumerate([0, 1, 0, 1, 2]):  # 0..1 come again once delivered
            await pipe.accept(click(f"e{offset}", "u", "abc"[offset]), b"u", topic="clicks", partition=0,
                              offset=offset, timestamp_s=NOW_S, handle=handle)
            if handle == 1:
                await pipe.drain()
        await pipe.drain()
        task.cancel()

    asyncio.run(main())
    assert [a["event_id"] for a in recs.decoded()] == ["e0", "e1", "e2"]
    assert UserHistory.from_bytes(table[b"u"]).items == ("a", "b", "c")
    assert sorted(acked) == [0, 1, 2, 3, 4] and metrics.replayed._value.get() == 2


def test_a_message_delivered_twice_before_its_answer_is_confirmed_gets_one_answer():
    """Faust can hand a message over again while its first copy is still being answered (around
    the seek after a recovery): one answer, and the second copy is acked after the first."""
    pipe, table, recs, dlq, acked, metrics = make(FakeModel())

    async def main():
        task = asyncio.create_task(pipe.batcher.run())
        for handle, offset in enumerate([0, 1, 0, 1]):  # no drain in between
            await pipe.accept(click(f"e{offset}", "u", "ab"[offset]), b"u", topic="clicks", partition=0,
                              offset=offset, timestamp_s=NOW_S, handle=handle)
        await pipe.drain()
        task.cancel()

    asyncio.run(main())
    assert [a["event_id"] for a in recs.decoded()] == ["e0", "e1"]
    assert UserHistory.from_bytes(table[b"u"]).items == ("a", "b")
    assert acked == [0, 1, 2, 3]


def test_inference_failure_dead_letters_the_batch_and_keeps_going():
    pipe, table, recs, dlq, acked, metrics = make(FakeModel(fail=True))
    asyncio.run(feed(pipe, [(b"u", click("e0", "u", "a")), (b"u", click("e1", "u", "b"))]))
    assert recs.records == []
    assert [x["reason"] for x in dlq.decoded()] == ["inference_failed", "inference_failed"]
    assert sorted(acked) == [0, 1]


def test_swap_serves_the_next_batch_with_the_new_model():
    runner = Runner(FakeModel("v1"))
    old = runner.swap(FakeModel("v2"))
    assert old.version == "v1" and runner.version == "v2"
    version, answers = asyncio.run(runner.score([["a"]]))
    assert version == "v2" and answers == [[("next-a", 1.0)]]


def test_changelog_gets_each_users_newest_state_per_batch_in_its_partition():
    pipe, table, recs, dlq, acked, metrics = make(FakeModel(), max_size=8, max_wait_ms=50)

    async def main():
        task = asyncio.create_task(pipe.batcher.run())
        clicks = [("u1", "a", 3), ("u2", "x", 5), ("u1", "b", 3), ("u1", "c", 3)]
        for offset, (user, item, partition) in enumerate(clicks):
            await pipe.accept(click(f"e{offset}", user, item), user.encode(), topic="clicks",
                              partition=partition, offset=offset, timestamp_s=NOW_S, handle=offset)
        await pipe.drain()
        task.cancel()

    asyncio.run(main())
    changelog = pipe.changelog
    assert sorted(zip(changelog.partitions, (k for k, _ in changelog.records))) == [(3, b"u1"), (5, b"u2")]
    sent = {k: UserHistory.from_bytes(v) for k, v in changelog.records}
    assert sent[b"u1"].items == ("a", "b", "c") and sent[b"u2"].items == ("x",)
    assert {k: v for k, v in changelog.records} == table  # what recovery rebuilds = the store
    assert sorted(acked) == [0, 1, 2, 3]


def test_replayed_click_sends_its_users_state_again():
    pipe, table, recs, dlq, acked, metrics = make(FakeModel())
    asyncio.run(feed(pipe, [(b"u", click("e0", "u", "a"))]))
    # Offset 0 again, to the worker after a crash: the crash may have come before its record left.
    after, table, recs, dlq, acked, metrics = make(FakeModel(), table)
    asyncio.run(feed(after, [(b"u", click("e0", "u", "a"))]))
    assert pipe.changelog.records == after.changelog.records == [(b"u", table[b"u"])]
    assert UserHistory.from_bytes(table[b"u"]).items == ("a",)
    assert metrics.replayed._value.get() == 1


class BrokenTopic(MemoryTopic):
    async def send_many(self, records):
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(ConnectionError("broker gone"))
        return [failed]


@pytest.mark.parametrize("broken", ["recommendations", "changelog"])
def test_failed_delivery_leaves_clicks_unacked_and_stops_the_worker(broken):
    pipe, table, recs, dlq, acked, metrics = make(FakeModel())
    if broken == "changelog":
        pipe.changelog = BrokenTopic()
    else:
        pipe.sink.recommendations = BrokenTopic()

    async def main():
        task = asyncio.create_task(pipe.batcher.run())
        await pipe.accept(click("e0", "u", "a"), b"u", topic="clicks", partition=0, offset=0,
                          timestamp_s=NOW_S, handle=0)
        await asyncio.sleep(0.2)
        task.cancel()

    asyncio.run(main())
    assert acked == []
    with pytest.raises(ConnectionError):  # the agent calls check() per event and stops
        pipe.check()


class SlowModel(FakeModel):
    """A forward pass that takes `seconds` (it runs in the runner's thread)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def recommend(self, histories, k=10, exclude_seen=True):
        time.sleep(self.seconds)
        return super().recommend(histories, k, exclude_seen)


class SlowBroker(MemoryTopic):
    """The broker confirms each send `seconds` after it is handed over."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    async def send_many(self, records):
        await super().send_many(records)
        confirmed = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(self.seconds, confirmed.set_result, None)
        return [confirmed]


def test_stage_times_cover_a_batch_and_add_up_to_no_more_than_its_end_to_end_time():
    pipe, table, recs, dlq, acked, metrics = make(SlowModel(0.02), max_size=8, max_wait_ms=10)
    pipe.sink.recommendations = SlowBroker(0.01)
    users = ["u1", "u2", "u3"]

    async def main():
        task = asyncio.create_task(pipe.batcher.run())
        for offset, user in enumerate(users):
            await pipe.accept(click(f"e{offset}", user, "a"), user.encode(), topic="clicks", partition=0,
                              offset=offset, timestamp_s=time.time(), handle=offset)
        await asyncio.wait_for(pipe.drain(), 5)
        task.cancel()

    started = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - started

    assert sorted(acked) == [0, 1, 2]
    sample = metrics.registry.get_sample_value
    for stage in STAGES:
        assert sample("seqrec_stage_seconds_count", {"stage": stage}) >= 1, stage
    assert sample("seqrec_stage_seconds_count", {"stage": "batch_wait"}) == len(users)  # per click
    # a click's time in each stage, on average; every click went through all of them
    per_click = {s: sample("seqrec_stage_click_seconds_total", {"stage": s}) / len(users) for s in STAGES}
    assert per_click["inference"] >= 0.02 and per_click["produce"] >= 0.01
    assert sum(per_click.values()) <= elapsed


def test_ready_only_while_every_condition_holds():
    ok = dict(model_loaded=True, recovered=True, broker_reachable=True, partitions=(0, 3))
    assert Health(**ok).ready and Health(**ok).blocker is None
    for change, reason in [({"model_loaded": False}, "loading model"),
                           ({"broker_reachable": False}, "broker unreachable"),
                           ({"rebalancing": True}, "rebalancing"),
                           ({"recovered": False}, "recovering table"),
                           ({"partitions": ()}, "no partitions assigned")]:
        health = Health(**{**ok, **change})
        assert not health.ready and health.blocker == reason
        assert health.as_dict()["ready"] is False


def test_broker_reachable_asks_the_network():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert asyncio.run(broker_reachable(f"127.0.0.1:1,kafka://127.0.0.1:{port}", 1.0))
    assert not asyncio.run(broker_reachable(f"127.0.0.1:{port}", 1.0))  # closed now


def test_answered_offsets_hold_exactly_what_was_taken_up():
    delivered = AnsweredOffsets(max_runs=2)
    for offset in [5, 6, 7, 20, 21]:  # 8..19 never came to this worker
        delivered.add(0, offset)
    assert delivered.has(0, 6) and delivered.has(0, 21)
    assert not delivered.has(0, 12) and not delivered.has(0, 4) and not delivered.has(1, 6)
    delivered.add(0, 40)  # a third run: the oldest is forgotten
    assert not delivered.has(0, 6) and delivered.has(0, 20) and delivered.has(0, 40)
