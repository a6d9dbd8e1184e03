"""The request API: `GET /users/{user_id}/recommendations?k=10` on a worker's web port
(`web.recommend_api`, off by default).

The worker that owns the user's partition answers from the user's history in its table, scored
in the same micro-batches as clicks (`ClickPipeline.ask`). Any other worker forwards the request
to the owner with Faust's table routing (`app.table_route`), its headers (the token too) included,
so a load balancer may send a request to any worker. The table's partition of a user is the clicks
topic's partition: both are keyed by the user id's UTF-8 bytes and hashed by the same murmur2, over
the same partition count (Faust checks it).

Responses, each one JSON object (an error is `{"error": "<one line>"}`):
- 200: the answer contract of the recommendations topic (schemas/recommendation.v1.json; the
  `event_id` is the request's own id) plus `"source": "request"` and `"fallback"`: `"popularity"`
  when the user has no history here (the model then ranks by popularity), else null. Only the list;
  never the history.
- 400: a bad k (not an integer in 1..MAX_K) or user id (1-128 characters, as in a click).
- 401: `serving.api_token` (or its file) is set and the request lacks `Authorization: Bearer <it>`.
- 503 with `Retry-After`: starting, rebalancing, recovering the table, the broker unreachable, the
  owner unknown or unreachable, or the batcher too busy; never a list from a stale or missing history.
- 500: the model raised on the request's batch.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from typing import Any

import aiohttp
from aiokafka.errors import KafkaError
from faust.exceptions import NotReady
from faust.types import TP
from faust.web import View
from faust.web.exceptions import ServiceUnavailable
from multidict import CIMultiDict

from seqrec.pipeline.serving.agents import refresh_health
from seqrec.pipeline.serving.internals import partition_for, read_partition, started_producer
from seqrec.pipeline.serving.sink import answer_record
from seqrec.pipeline.serving.state import UserHistory
from seqrec.pipeline.serving.telemetry import Health, Metrics
from seqrec.pipeline.settings import Settings

log = logging.getLogger(__name__)

PATH = "/users/{user_id}/recommendations"
MAX_K = 100  # the largest list a request may ask for
MAX_USER_ID = 128  # characters, as in schemas/click.v1.json
RETRY_AFTER_S = 1  # a rebalance or a recovery here takes seconds
ASK_TIMEOUT_S = 5.0  # longest a request waits for its batch (backpressure) before a 503
METADATA_WAIT_S = 2.0  # longest a request waits for the changelog's partition count
# Set on the hop to the owner: the owner answers or says 503, it never forwards again (its view of
# the assignment may differ from the sender's in the middle of a rebalance).
FORWARDED = "X-Seqrec-Forwarded"


class BadRequest(ValueError):
    """A request the API refuses (its message is the one line the client gets)."""


def parse_k(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        k = int(text)
    except ValueError:
        raise BadRequest(f"k must be an integer in 1..{MAX_K}, got {text[:20]!r}") from None
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be an integer in 1..{MAX_K}, got {k}")
    return k


def check_user_id(user_id: str) -> str:
    if not 1 <= len(user_id) <= MAX_USER_ID:
        raise BadRequest(f"user_id must have 1..{MAX_USER_ID} characters, got {len(user_id)}")
    return user_id


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an `Authorization` header carries `token` (always, when no token is set)."""
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def request_answer(user_id: str, items: list[tuple[str, float]], *, model_version: str, latency_ms: float,
                   fallback: bool) -> dict[str, Any]:
    """The 200 body: the recommendation contract, marked as a request's answer."""
    record = answer_record(f"req-{uuid.uuid4().hex[:16]}", user_id, items, model_version=model_version,
                           produced_at_ms=time.time_ns() // 1_000_000, latency_ms=latency_ms)
    return {**record, "source": "request", "fallback": "popularity" if fallback else None}


def wire_request_api(app: Any, settings: Settings, table: Any, metrics: Metrics, health: Health) -> None:
    """Add the request API's page to a wired app (`agents.wire` made `table` and the pipeline)."""
    token = settings.serving.bearer_token()  # read once: a bad token file stops the start
    changelog = settings.changelog_topic
    clicks_topic = settings.kafka.clicks_topic
    default_k = settings.serving.top_k

    async def table_partition(key: bytes) -> int | None:
        """The user's partition, once the producer knows the changelog's partitions (Faust's router
        hashes with them); None while the worker starts or the broker does not answer."""
        try:
            return await asyncio.wait_for(partition_for(started_producer(app), changelog, key), METADATA_WAIT_S)
        except (NotReady, asyncio.TimeoutError, KafkaError):
            return None

    def error(web: Any, status: int, line: str) -> Any:
        metrics.api_requests.labels(str(status)).inc()
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return web.json({"error": line}, status=status, headers=headers)

    async def answer_here(view: View, request: Any) -> Any:
        """The owner's answer, or 503 when this worker cannot give it now."""
        web = view.web
        received = time.perf_counter()
        user_id = request.match_info["user_id"]
        key = user_id.encode("utf-8")
        k = parse_k(request.query.get("k"), default_k)
        partition = await table_partition(key)
        if partition is None:
            return error(web, 503, "starting, or the broker does not answer")
        refresh_health(app, clicks_topic, health, metrics)  # no await from here to the read
        if health.blocker is not None:
            return error(web, 503, health.blocker)
        if TP(changelog, partition) not in app.assignor.assigned_actives():
            return error(web, 503, f"partition {partition} is not this worker's (rebalancing)")
        pipeline = getattr(app, "seqrec_pipeline", None)
        if pipeline is None:
            return error(web, 503, "starting")
        raw = read_partition(table, partition, key)
        history = UserHistory.from_bytes(raw).items if raw is not None else ()
        try:
            version, items = await asyncio.wait_for(pipeline.ask(history, k), ASK_TIMEOUT_S)
        except asyncio.TimeoutError:
            return error(web, 503, "busy: the batcher did not take the request in time")
        except Exception as exc:  # the model failed on this batch; the worker goes on
            return error(web, 500, f"inference failed: {type(exc).__name__}")
        metrics.api_requests.labels("200").inc()
        return web.json(request_answer(user_id, items, model_version=version, fallback=not history,
                                       latency_ms=(time.perf_counter() - received) * 1000))

    routed = app.table_route(table=table, match_info="user_id")(answer_here)

    @app.page(PATH, name="recommendations")
    class Recommendations(View):
        async def get(self, request: Any, user_id: str) -> Any:
            if not authorized(request.headers.get("Authorization"), token):
                return error(self.web, 401, "missing or wrong bearer token")
            try:
                check_user_id(user_id)
                parse_k(request.query.get("k"), default_k)
            except BadRequest as exc:
                return error(self.web, 400, str(exc))
            if request.headers.get(FORWARDED):
                return await answer_here(self, request)
            if app.rebalancing:  # the map of owners is being redrawn
                return error(self.web, 503, "rebalancing")
            if await table_partition(user_id.encode("utf-8")) is None:
                return error(self.web, 503, "starting, or the broker does not answer")
            try:
                response = await routed(self, request.clone(headers=CIMultiDict(request.headers, **{FORWARDED: "1"})))
            except (ServiceUnavailable, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.info("request for a user of another worker not forwarded: %s", type(exc).__name__)
                return error(self.web, 503, "the user's worker is unknown or unreachable")
            if response.status == 503:  # Faust's forwarding copies the body, not the headers
                response.headers.setdefault("Retry-After", str(RETRY_AFTER_S))
            return response


__all__ = ["ASK_TIMEOUT_S", "FORWARDED", "MAX_K", "PATH", "BadRequest", "authorized", "check_user_id", "parse_k",
           "request_answer", "wire_request_api"]
