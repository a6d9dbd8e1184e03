"""Agents: the path of a click, wired — source → state → batcher → runner → sink → ack.

`ClickPipeline` holds the stages' logic with no Kafka in it (tests drive it with a dict table
and in-memory topics); `wire()` attaches it to a Faust app: the clicks topic, the history
table, one agent, the web pages and a timer for lag and readiness.

Delivery (at-least-once): the agent iterates `stream.noack()`, so Faust does not ack an event
when the loop moves on. Each click is acked only after the broker has confirmed its
recommendation (or its dead letter) and its history's changelog record, in
`ClickPipeline._confirm`; Faust commits an offset only once every event up to it is acked. A crash
between the two replays the click (same event_id), and the history's offset guard keeps the
replayed click from entering the history twice. A message delivered again to the pipeline that
already took it up for an answer gets no second answer: it is only acked, after the first copy's
(Faust delivers a message twice around its post-recovery seek). The pipeline can count on that
first answer: if it cannot be delivered (or, under exactly_once, committed) the worker stops.

The table's changelog: a Faust table assignment sends its changelog record through Faust's
per-message send path, measured at 0.37-0.55 ms of CPU per click (`benchmarks/faust_floor.py`),
more than everything else the worker does per click. So the
pipeline writes the table's RocksDB store directly (inside the stream iteration, which picks the
partition's database) and sends the changelog records itself, one record batch per partition
per micro-batch, with the answers. The records are the ones Faust would send (same topic, key,
value, partition), so recovery and standby replicas read them as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, MutableMapping

from seqrec.pipeline.serving.batcher import BatchPolicy, MicroBatcher
from seqrec.pipeline.serving.commit_gate import CommitGate
from seqrec.pipeline.serving.internals import started_producer, table_store, transaction_producer
from seqrec.pipeline.evaluation.clicklog import TrafficRecorder
from seqrec.pipeline.serving.telemetry import Health, Metrics
from seqrec.pipeline.serving.runner import Runner
from seqrec.pipeline.settings import Settings
from seqrec.pipeline.serving.sink import FaustTopic, KafkaBatchTopic, Record, Sink, Topic, dead_letter_record, recommendation_record
from seqrec.pipeline.serving.source import INFERENCE_FAILED, ClickEvent, Rejection, SourceLimits, decode_click
from seqrec.pipeline.serving.state import Seen, StateCache, update_history

log = logging.getLogger(__name__)

MAX_UNCONFIRMED = 4  # batches sent and waiting for the broker's acknowledgement at once
BROKER_PROBE_INTERVAL_S = 1.0  # how often readiness checks that the broker answers


@dataclass(slots=True)
class Request:
    """One message taken from the clicks topic, waiting in the batcher for its answer."""

    click: ClickEvent | None  # None: it goes to the dead-letter topic instead
    history: tuple[str, ...]  # the user's items after this click, oldest first
    received: float  # time.perf_counter() when it was taken from the stream
    produced_ms: int | None  # the message's Kafka timestamp (ms), for end-to-end latency
    handle: Any  # what `ack` takes (the Faust event)
    value: bytes | None
    key: bytes | None
    source: tuple[str, int, int]  # topic, partition, offset
    dead_letter: dict[str, Any] | None = None
    history_change: Record | None = None  # the user's new table value, as a changelog record
    consumed_s: float | None = None  # its Kafka timestamp until it was taken (stage "consume")
    queued: float = 0.0  # time.perf_counter() when it was put into the batcher


@dataclass(slots=True)
class Ask:
    """A request for a user's list (the request API): scored in the clicks' batches, answered on
    `reply` with (model version, items); nothing produced, nothing acked."""

    history: tuple[str, ...]
    k: int
    reply: asyncio.Future[tuple[str, list[tuple[str, float]]]]
    received: float = 0.0  # time.perf_counter() when the request was read
    queued: float = 0.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ClickPipeline:
    """The stages for one worker: `accept()` per message, `handle_batch()` per batch.

    `table` is the Faust table's store (bytes → bytes; writes send no changelog) or a dict;
    `changelog` receives the table's changelog records, one call per batch; `on_persisted(result)`
    is called with each of its confirmed sends (the store notes the changelog offset it holds).
    `ack(handle)` acks one message.
    """

    def __init__(
        self,
        settings: Settings,
        runner: Runner,
        sink: Sink,
        table: MutableMapping[bytes, bytes],
        changelog: Topic,
        ack: Callable[[Any], Awaitable[Any]],
        metrics: Metrics | None = None,
        recorder: TrafficRecorder | None = None,
        on_persisted: Callable[[Any], None] | None = None,
        gate: CommitGate | None = None,
    ) -> None:
        self.runner = runner
        self.recorder = recorder
        self.sink = sink
        self.table = table
        self.changelog = changelog
        self.on_persisted = on_persisted
        self.ack = ack
        self.metrics = metrics if metrics is not None else Metrics()
        self.history_len = settings.store.history_len
        self.session_gap_ms = int(settings.store.session_gap_s * 1000)
        self.id_window = settings.store.recent_event_ids
        serving = settings.serving
        self.limits = SourceLimits(
            max_payload_bytes=serving.max_payload_bytes,
            min_timestamp_ms=serving.min_timestamp_ms,
            max_future_skew_ms=int(serving.max_future_skew_s * 1000),
        )
        b = settings.batching
        self.batcher: MicroBatcher[Request] = MicroBatcher(
            self.handle_batch, BatchPolicy(b.max_size, b.max_wait_ms / 1000, b.max_pending)
        )
        self.positions: dict[int, int] = {}  # clicks partition → last offset taken
        # offsets this pipeline took up for an answer, so a message delivered to it again needs no
        # second answer (it stops if one of them cannot be answered)
        self.answered = AnsweredOffsets()
        self.cache = StateCache(settings.store.cache_users)
        self._confirming: deque[asyncio.Future[None]] = deque()  # batches awaiting the broker
        self.max_unconfirmed = MAX_UNCONFIRMED
        self.failure: BaseException | None = None
        self.gate = gate  # exactly_once: a transaction commits only between batches

    async def accept(
        self,
        value: bytes | None,
        key: bytes | None,
        *,
        topic: str,
        partition: int,
        offset: int,
        timestamp_s: float | None,
        handle: Any,
        generation: int = 0,
    ) -> None:
        """One message from the clicks topic: validate, update the history, queue for scoring.

        Must run inside Faust's stream iteration (the table write needs the current event).
        """
        received = time.perf_counter()
        arrived_s = time.time()
        self.metrics.events_in.inc()
        self.cache.reset(generation)  # a rebalance may have moved partitions: forget them
        self.positions[partition] = offset
        produced_ms = int(timestamp_s * 1000) if timestamp_s else None
        # clipped: the producer's clock may run ahead of ours
        consumed_s = max(arrived_s - timestamp_s, 0.0) if timestamp_s else None
        result = decode_click(value, key, now_ms=int(arrived_s * 1000), limits=self.limits)
        if isinstance(result, Rejection):
            letter = dead_letter_record(
                value, key, result, topic=topic, partition=partition, offset=offset,
                failed_at_ms=_now_ms(),
            )
            log.info("dead letter: reason=%s partition=%d offset=%d error=%s",
                     result.reason, partition, offset, result.error)
            source = (topic, partition, offset)
            await self._queue(
                Request(None, (), received, produced_ms, handle, value, key, source, letter,
                        consumed_s=consumed_s)
            )
            return
        state, written = update_history(
            self.table, result, partition, offset, history_len=self.history_len,
            session_gap_ms=self.session_gap_ms, id_window=self.id_window, cache=self.cache,
        )
        source = (topic, partition, offset)
        if written is Seen.REPLAY and self.answered.has(partition, offset):
            # Its answer and history record are on their way or on the broker: only ack it.
            self.metrics.replayed.inc()
            await self._queue(Request(None, (), received, produced_ms, handle, value, key, source,
                                      consumed_s=consumed_s))
            return
        if isinstance(written, Seen):  # answered again from the unchanged history
            (self.metrics.replayed if written is Seen.REPLAY else self.metrics.duplicates).inc()
            # Sent again: the crash that replays this click may have come before its record left.
            written = state.to_bytes()
        self.answered.add(partition, offset)
        # The user's partition in the clicks topic is the table's partition too.
        record = (partition, result.user_id.encode("utf-8"), written)
        await self._queue(Request(
            result, state.items, received, produced_ms, handle, value, key, source, history_change=record,
            consumed_s=consumed_s,
        ))

    async def _queue(self, request: Request | Ask) -> None:
        request.queued = time.perf_counter()
        await self.batcher.put(request)

    async def ask(self, history: tuple[str, ...], k: int) -> tuple[str, list[tuple[str, float]]]:
        """(model version, top-k) for `history`, scored in the next batch with the clicks."""
        reply: asyncio.Future[tuple[str, list[tuple[str, float]]]] = asyncio.get_running_loop().create_future()
        await self._queue(Ask(history, k, reply, received=time.perf_counter()))
        return await reply

    async def handle_batch(self, batch: list[Request | Ask]) -> None:
        """Send the batch's history changes, score its clicks (and requests) in one forward pass,
        answer the requests, produce every click's answer, then ack."""
        started = time.perf_counter()
        asks = [r for r in batch if isinstance(r, Ask)]
        if asks:
            batch = [r for r in batch if not isinstance(r, Ask)]
        self._observe_arrival(batch, started)
        gated = self.gate is not None and bool(batch)
        if gated:
            await self.gate.enter()
        try:
            # The newest value per user is enough: a compacted changelog keeps only that.
            changes = {r.history_change[:2]: r.history_change for r in batch if r.history_change is not None}
            persisting = await self.changelog.send_many(list(changes.values())) if changes else []
            clicks = [r for r in batch if r.click is not None]
            handed = time.perf_counter()
            self.metrics.observe_batch_stage("changelog", handed - started, len(batch))
            answers = await self._answers(clicks, asks, handed) if clicks or asks else []
            if not batch:  # requests only: nothing to produce or ack
                return
            handed = time.perf_counter()  # the answers go to the producer from here
            pending = await self.sink.send_recommendations(answers) if answers else []
            letters = [r for r in batch if r.dead_letter is not None]
            if letters:
                pending += await self.sink.send_dead_letters([(r.dead_letter, r.key) for r in letters])
        except BaseException as exc:
            if gated:
                self.gate.leave(failure=exc)
            raise
        # The broker's acknowledgement is awaited in a task of its own, so the next batch is
        # scored meanwhile; acks may land out of batch order (Faust commits only up to the
        # lowest unacked offset of each partition).
        previous = self._confirming[-1] if self._confirming else None
        task = asyncio.ensure_future(
            self._gated(gated, self._confirm(batch, persisting, pending, len(answers), letters, previous, handed))
        )
        task.add_done_callback(self._on_confirmed)
        self._confirming.append(task)
        while self._confirming and (
            self._confirming[0].done() or len(self._confirming) > self.max_unconfirmed
        ):
            await self._confirming.popleft()  # re-raises a failed delivery

    async def _gated(self, gated: bool, confirm: Awaitable[None]) -> None:
        """`confirm`, then out of the gate: acked, or failed (no commit may follow)."""
        try:
            await confirm
        except BaseException as exc:
            if gated:
                self.gate.leave(failure=exc)
            raise
        if gated:
            self.gate.leave(failure=self.failure)

    def _observe_arrival(self, batch: list[Request], started: float) -> None:
        """The per-click stages of a batch that starts at `started` (perf_counter)."""
        m = self.metrics
        m.observe_click_stage("consume", [r.consumed_s for r in batch if r.consumed_s is not None])
        m.observe_click_stage("accept", [r.queued - r.received for r in batch])
        m.observe_click_stage("batch_wait", [started - r.queued for r in batch])

    async def _answers(self, clicks: list[Request], asks: list[Ask], started: float) -> list[Record]:
        """Score the clicks and requests in one forward pass, answer the requests and encode the
        clicks' answers; on a model failure, turn the clicks into dead letters, fail the requests
        and return no answers."""
        m = self.metrics
        histories = [r.history for r in clicks] + [a.history for a in asks]
        m.batch_size.observe(len(histories))
        top_k = self.runner.top_k
        try:  # one k for the batch: the largest asked; each answer is cut to its own
            version, top = await self.runner.score(histories, max([top_k, *(a.k for a in asks)]))
        except Exception as exc:  # a model failure must not stop the worker: dead-letter them
            log.exception("inference failed for a batch of %d clicks and %d requests", len(clicks), len(asks))
            for a in asks:
                if not a.reply.done():  # its caller may have given up
                    a.reply.set_exception(exc)
            for r in clicks:
                r.dead_letter = _inference_failure(r, exc)
                r.click = None
            return []
        done = time.perf_counter()
        m.inference_seconds.observe(done - started)
        m.observe_batch_stage("inference", done - started, len(histories))
        for a, items in zip(asks, top[len(clicks):]):
            if not a.reply.done():
                a.reply.set_result((version, items[:a.k]))
        now_ms = _now_ms()
        answers = []
        for r, items in zip(clicks, top):
            items = items[:top_k]
            latency_s = done - r.received
            record = recommendation_record(
                r.click, items, model_version=version, produced_at_ms=now_ms,
                latency_ms=latency_s * 1000,
            )
            answers.append((record, r.source[1]))
            m.worker_seconds.observe(latency_s)
            if r.produced_ms is not None:
                m.end_to_end_seconds.observe(max(now_ms - r.produced_ms, 0) / 1000)
        encoded = self.sink.encode_recommendations(answers)
        m.observe_batch_stage("encode", time.perf_counter() - done, len(clicks))
        if self.recorder is not None:
            self.recorder.record([r.value for r in clicks], [record for record, _ in answers])
        return encoded

    async def _confirm(
        self, batch: list[Request], persisting: list[Awaitable[Any]], pending: list[Awaitable[Any]],
        answered: int, letters: list[Request], previous: asyncio.Future[None] | None, handed: float,
    ) -> None:
        """`handed`: perf_counter when the batch's answers went to the producer."""
        # The broker has every answer and every history change: now the clicks may be acked.
        results = await asyncio.gather(*persisting, *pending)
        confirmed = time.perf_counter()
        m = self.metrics
        m.observe_batch_stage("produce", confirmed - handed, len(batch))
        if previous is not None:  # in batch order: a click taken up twice is acked after its answer
            await asyncio.wait([previous])
            if self.failure is not None:
                return
        if self.on_persisted is not None:
            for result in results[:len(persisting)]:
                self.on_persisted(result)
        m.recommendations_out.inc(answered)
        for r in letters:
            m.dead_letters.labels(r.dead_letter["reason"]).inc()
        for r in batch:
            await self.ack(r.handle)
        m.observe_batch_stage("ack", time.perf_counter() - confirmed, len(batch))
        m.pending.set(self.batcher.pending)

    def _on_confirmed(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()

    def check(self) -> None:
        """Raise if answers could not be delivered: the worker must stop so that the clicks
        are redelivered (to it after a restart, or to another worker)."""
        if self.failure is not None:
            raise self.failure

    async def drain(self) -> None:
        """Wait until every click put so far is answered and acked."""
        await self.batcher.wait_idle()
        while self._confirming:
            await self._confirming.popleft()


class AnsweredOffsets:
    """Source offsets taken up for an answer, per partition, as a few runs of
    consecutive offsets (they come mostly in order; an offset out of order starts a new run).
    Bounded: past `max_runs` runs per partition the oldest is forgotten, which only costs a
    second answer if that offset ever comes again."""

    def __init__(self, max_runs: int = 16) -> None:
        self.max_runs = max_runs
        self._runs: dict[int, list[list[int]]] = {}  # partition → [first, last] runs, newest last

    def add(self, partition: int, offset: int) -> None:
        runs = self._runs.setdefault(partition, [])
        if runs and runs[-1][0] <= offset <= runs[-1][1] + 1:
            runs[-1][1] = max(runs[-1][1], offset)
        elif not self.has(partition, offset):
            runs.append([offset, offset])
            del runs[:-self.max_runs]

    def has(self, partition: int, offset: int) -> bool:
        return any(first <= offset <= last for first, last in self._runs.get(partition, ()))


def _inference_failure(request: Request, exc: Exception) -> dict[str, Any]:
    topic, partition, offset = request.source
    return dead_letter_record(
        request.value, request.key, Rejection(INFERENCE_FAILED, f"{type(exc).__name__}: {exc}"),
        topic=topic, partition=partition, offset=offset, failed_at_ms=_now_ms(),
    )


def wire(
    app: Any,
    settings: Settings,
    runner: Runner,
    metrics: Metrics,
    health: Health,
    *,
    same_partitioning: bool = False,
) -> Any:
    """Attach the clicks agent, the history table, web pages and timers to a Faust app.

    `same_partitioning`: the recommendations topic has as many partitions as the clicks topic,
    so an answer can go to its click's partition number without hashing the key again. Under
    exactly_once the dead-letter topic must have as many too (`run_worker` checks): every record
    goes to its click's partition number, in that partition's transaction.
    """
    k = settings.kafka
    clicks = app.topic(
        k.clicks_topic, partitions=k.partitions, key_serializer="raw", value_serializer="raw"
    )
    dead_letters = app.topic(
        k.dead_letter_topic, partitions=k.partitions, key_serializer="raw", value_serializer="raw"
    )
    table = app.Table(
        settings.table_name,
        default=None,
        partitions=k.partitions,
        key_type=bytes,  # stored as given: user id UTF-8 → UserHistory.to_bytes()
        value_type=bytes,
        options={"block_cache_size": settings.store.block_cache_mib * 2**20},
    )
    exactly_once = settings.serving.guarantee == "exactly_once"
    if exactly_once:
        gate: CommitGate | None = CommitGate()
        app.seqrec_commit_gate = gate  # read by internals.Consumer.force_commit

        async def producer(partition: int | None) -> Any:
            if partition is None:
                raise ValueError("exactly_once: every record goes to its click's partition number")
            return await transaction_producer(app, k.clicks_topic, partition)

        sink = Sink(KafkaBatchTopic(producer, k.recommendations_topic), KafkaBatchTopic(producer, k.dead_letter_topic),
                    keep_partition=True, letters_keep_partition=True)
    else:
        gate = None
        async def producer(partition: int | None) -> Any:
            return started_producer(app)  # started with the app
        sink = Sink(KafkaBatchTopic(producer, k.recommendations_topic), FaustTopic(dead_letters),
                    keep_partition=same_partitioning)
    changelog = KafkaBatchTopic(producer, settings.changelog_topic)
    metrics.set_model_version(runner.version)
    record = settings.record
    recorder = TrafficRecorder(record.dir, record.max_file_mib * 2**20) if record.dir is not None else None

    @app.agent(clicks, concurrency=1, name="serve_clicks")
    async def serve_clicks(stream: Any) -> None:
        events = stream.noack()
        store = table_store(table)  # RocksDB, written without Faust's per-write changelog send
        pipeline = ClickPipeline(
            settings, runner, sink, store, changelog, events.ack, metrics, recorder,
            on_persisted=persisted_offset_writer(store, gate), gate=gate,
        )
        app.seqrec_pipeline = pipeline  # for the lag timer
        flusher = asyncio.ensure_future(pipeline.batcher.run())
        try:
            async for event in events.events():
                if flusher.done():  # the batch task died: stop, so the clicks are redelivered
                    flusher.result()
                pipeline.check()
                msg = event.message
                await pipeline.accept(
                    msg.value, msg.key, topic=msg.topic, partition=msg.partition,
                    offset=msg.offset, timestamp_s=msg.timestamp, handle=event,
                    generation=msg.generation_id,
                )
        finally:  # worker stopping: answer what was accepted, fewer replays for the next owner
            if not flusher.done():
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(pipeline.drain()), 5.0)
            flusher.cancel()

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        refresh_health(app, k.clicks_topic, health, metrics)
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def healthz_page(web: Any, request: Any) -> Any:
        return web.json({"alive": True})

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        refresh_health(app, k.clicks_topic, health, metrics)
        return web.json(health.as_dict(), status=200 if health.ready else 503)

    @app.timer(BROKER_PROBE_INTERVAL_S)
    async def observe() -> None:
        health.broker_reachable = await broker_reachable(k.bootstrap_servers, BROKER_PROBE_INTERVAL_S / 2)
        refresh_health(app, k.clicks_topic, health, metrics)
        update_lag(app, k.clicks_topic, metrics)

    @app.timer(30.0)
    async def log_stats() -> None:
        log.info("stats %s", stats_line(metrics, health))

    return serve_clicks


def persisted_offset_writer(store: Any, gate: CommitGate | None) -> Callable[[Any], None]:
    """What records the changelog offset a sent history record reached: at once, or under
    exactly_once after its transaction commits (an aborted one's offset must never be recorded)."""
    def persisted(sent: Any) -> None:
        record = functools.partial(store.set_persisted_offset, sent.topic_partition, sent.offset)
        if gate is None:
            record()
        else:
            gate.after_commit(sent.topic_partition, record)
    return persisted


def refresh_health(app: Any, clicks_topic: str, health: Health, metrics: Metrics) -> None:
    """Read readiness from the app; `health.broker_reachable` comes from the `observe` timer."""
    recovery = app.tables.recovery
    health.recovered = recovery.completed.is_set() and not recovery.in_recovery
    health.rebalancing = bool(app.rebalancing)
    health.partitions = assigned_partitions(app, clicks_topic)
    health.detail = health.blocker or "ready"
    metrics.ready.set(1 if health.ready else 0)


def assigned_partitions(app: Any, topic: str) -> tuple[int, ...]:
    try:
        assignment = app.consumer.assignment()
    except Exception:  # consumer not started yet
        return ()
    return tuple(sorted(tp.partition for tp in assignment if tp.topic == topic))


async def broker_reachable(bootstrap_servers: str, timeout_s: float) -> bool:
    """True when one of the bootstrap servers accepts a TCP connection within `timeout_s`.

    The consumer and producer retry a lost broker for ever without telling the app, so
    readiness asks the network itself."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        host = host.split("://")[-1]
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout_s)
        except (OSError, asyncio.TimeoutError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


def stats_line(metrics: Metrics, health: Health) -> str:
    """One key=value line of the worker's counters, for logs."""
    def total(name: str) -> float:
        return sum(s.value for m in metrics.registry.collect() if m.name == name for s in m.samples
                   if s.name == name + "_total" or s.name == name)

    batches = metrics.batch_size.collect()[0].samples
    count = next((s.value for s in batches if s.name.endswith("_count")), 0.0)
    size_sum = next((s.value for s in batches if s.name.endswith("_sum")), 0.0)
    return (
        f"ready={int(health.ready)} events_in={total('seqrec_events_in'):.0f} "
        f"recommendations_out={total('seqrec_recommendations_out'):.0f} "
        f"dead_letters={total('seqrec_dead_letters'):.0f} replayed={total('seqrec_replayed_clicks'):.0f} "
        f"duplicates={total('seqrec_duplicate_clicks'):.0f} "
        f"pending={total('seqrec_pending_clicks'):.0f} lag={total('seqrec_consumer_lag'):.0f} "
        f"mean_batch={size_sum / count if count else 0.0:.1f}"
    )


def update_lag(app: Any, clicks_topic: str, metrics: Metrics) -> None:
    pipeline = getattr(app, "seqrec_pipeline", None)
    positions = pipeline.positions if pipeline is not None else {}
    try:
        assignment = app.consumer.assignment()
    except Exception:  # consumer not started yet
        return
    for tp in assignment:
        if tp.topic != clicks_topic:
            continue
        highwater = app.consumer.highwater(tp)
        if highwater is None or highwater < 0:
            continue
        taken = positions.get(tp.partition)
        lag = highwater - (taken + 1) if taken is not None else highwater
        metrics.consumer_lag.labels(str(tp.partition)).set(max(lag, 0))


__all__ = [
    "Ask",
    "ClickPipeline",
    "AnsweredOffsets",
    "Request",
    "assigned_partitions",
    "broker_reachable",
    "refresh_health",
    "stats_line",
    "update_lag",
    "wire",
]
