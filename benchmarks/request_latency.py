"""Request latency beside the click stream (issue 30, item 5): `seqrec worker`s in one group with
the request API on, a paced click stream flowing throughout, and an open-loop HTTP load of
`GET /users/{user}/recommendations?k=K` at each rate of --request-rates, one window per rate.

Requests are scheduled by time (request j of a window at start + j/rate), each sent without
waiting for the ones before, to the workers in turn: with two workers about half go to the
worker that does not own the user and are forwarded (counted by owner: the user's partition,
murmur2 of its id as the producer hashes it, against each worker's /ready partitions). Users
asked for are ones that clicked during the warm-up, plus --unknown-share of never-seen users
(answered with the popularity fallback). Per window:
  * requests: latency send → full response read (ms; p50/p90/p99/max over the 200s, also split
    into forwarded and direct, and from the scheduled time instead of the send), statuses (503 and others counted apart, client errors by name),
    the share forwarded, the fallback answers, and how late the client sent against its schedule
    (`fell_behind` when its p99 lag passes 10 ms: the load offered was then lower than asked);
  * clicks: click sent → its answer read from the recommendations topic (read_committed), p50/p99,
    for the clicks sent in the window, as pipeline_throughput.py measures it: what the requests
    cost the click path (a rate of 0 gives the baseline without requests);
  * mean_batch: the workers' mean micro-batch (clicks and requests) over the window.
The click producer and its answer consumer run in a child process, so that the HTTP client's
event loop shares no GIL with them. Windows run in rate order, reversed every other run, with
--settle seconds of clicks alone between them; --runs N repeats all and reports each window and
the median of the runs per rate.

--compare-guarantees measures instead at_least_once against exactly_once with
pipeline_throughput.py's `run_pipeline` (one fresh worker per run): saturated events/s over
--saturate-clicks, then paced p50/p99 of click rate × duration clicks at --click-rate; the two
guarantees alternate run by run (A B, B A, ...) so that drift weighs on both alike, and the
median of the runs is reported per guarantee.

The model is untrained (seeded random weights, `make_checkpoint`): the cost of a forward pass
does not depend on the weights. Prints the machine and UTC date; --out writes JSON. Not a test.

    python benchmarks/request_latency.py --request-rates 0 200 1000 --duration 25 --runs 3
    python benchmarks/request_latency.py --compare-guarantees --duration 20 --runs 3
    python benchmarks/request_latency.py --guarantee exactly_once --request-rates 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crash_replay import partition_of  # noqa: E402
from pipeline_throughput import (  # noqa: E402
    AnswerClock, add_worker_arguments, broker, make_checkpoint, produce, quantiles, run_pipeline, start_worker,
    synthetic_stream, worker_group,
)

from seqrec.pipeline.devtools.harness import WorkerProcess  # noqa: E402
from seqrec.pipeline.serving.source import ClickEvent  # noqa: E402
from seqrec.pipeline.settings import KafkaSecuritySettings, load_settings  # noqa: E402

FELL_BEHIND_MS = 10.0  # the client's p99 lag behind its schedule above which the load was not the one asked
REQUEST_TIMEOUT_S = 10.0  # above the API's own 5 s batcher timeout plus a forwarding hop
GUARANTEES = ("at_least_once", "exactly_once")


def tagged(stream: list[ClickEvent], tag: str) -> list[ClickEvent]:
    """The stream with event ids prefixed: warm-up and measured clicks share one answers topic."""
    return [replace(c, event_id=f"{tag}{c.event_id}") for c in stream]


def percentiles(sorted_ms: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max of sorted latencies (the index convention of pipeline_throughput's `quantiles`)."""
    def at(q: float) -> float | None:
        return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))] if sorted_ms else None
    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": sorted_ms[-1] if sorted_ms else None}


def median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric figure (nested dicts too) as the median of the runs' (None ones left out), a flag
    as whether any run raised it; other values from the first run."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r.get(key) for r in runs]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if isinstance(first, dict):
            out[key] = median_of_runs([v for v in values if isinstance(v, dict)])
        elif isinstance(first, bool):
            out[key] = any(values)
        elif numbers:
            out[key] = statistics.median(numbers)
        else:
            out[key] = first
    return out


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "load_average_start": os.getloadavg()}


# --- the click side: a child process --------------------------------------------------------------

def stream_clicks(bootstrap: str, app: str, clicks: list[ClickEvent], rate: float, answered_before: int,
                  security: KafkaSecuritySettings | None, timeout_s: float, queue: Any) -> None:
    """Child process: read the answers topic up to the `answered_before` answers already there, put
    the time the clicks start on `queue`, send them paced at `rate`, wait for their answers, then put
    (send time, first answer time) per event id."""
    clock = AnswerClock(bootstrap, f"{app}-recs", security)
    clock.start()
    deadline = time.time() + 60
    while clock.total < answered_before and time.time() < deadline:  # caught up: no backlog in the window
        time.sleep(0.05)
    start = time.time() + 0.5
    queue.put(start)
    time.sleep(max(0.0, start - time.time()))
    sent = produce(bootstrap, f"{app}-clicks", clicks, rate, security)
    deadline = time.time() + timeout_s
    while not all(e in clock.first for e in sent) and time.time() < deadline:
        time.sleep(0.2)
    clock.stopping.set()
    clock.join()
    queue.put((sent, {e: clock.first[e] for e in sent if e in clock.first}))


def click_summary(sent: dict[str, float], first: dict[str, float], start: float, end: float) -> dict[str, Any]:
    """The clicks sent in [start, end): how many, how many answered, send → answer p50/p99."""
    window = [e for e, t in sent.items() if start <= t < end]
    lat = sorted(1000 * (first[e] - sent[e]) for e in window if e in first)
    return {"sent": len(window), "answered": len(lat), **quantiles(lat)}


# --- the request side: an open-loop HTTP client ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Shot:
    """One request: to which worker, forwarded or not, how late against its schedule, its outcome."""

    worker: int
    forwarded: bool
    unknown_user: bool
    lag_ms: float
    ms: float
    status: int | str  # the HTTP status, or the client exception's name
    fallback: bool = False


async def shoot(session: aiohttp.ClientSession, url: str, scheduled: float, worker: int, forwarded: bool,
                unknown_user: bool) -> Shot:
    sent = time.time()
    started = time.perf_counter()
    try:
        async with session.get(url) as response:
            body = await response.read()
            status: int | str = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        status, body = type(exc).__name__, b""
    ms = 1000 * (time.perf_counter() - started)
    fallback = status == 200 and json.loads(body).get("fallback") is not None
    return Shot(worker, forwarded, unknown_user, 1000 * (sent - scheduled), ms, status, fallback)


@dataclass
class Target:
    """The workers' URLs and which clicks partitions each held before the load."""

    urls: list[str]
    held: list[set[int]]
    partitions: int

    def owner(self, user: str) -> int | None:
        p = partition_of(user.encode(), self.partitions)
        return next((w for w, held in enumerate(self.held) if p in held), None)


async def request_window(session: aiohttp.ClientSession, target: Target, users: list[str], rate: float,
                         duration: float, start: float, unknown_share: float, k: int, rng: random.Random) -> list[Shot]:
    """Open loop: request j at start + j/rate to worker j mod workers, none waiting for another."""
    n = int(rate * duration)
    plan = []
    for j in range(n):  # drawn before the window, so the loop only sends
        unknown = rng.random() < unknown_share
        user = f"nobody-{uuid.uuid4().hex[:8]}" if unknown else rng.choice(users)
        worker = j % len(target.urls)
        plan.append((f"{target.urls[worker]}/users/{user}/recommendations?k={k}", worker,
                     target.owner(user) != worker, unknown))
    tasks = []
    for j, (url, worker, forwarded, unknown) in enumerate(plan):
        scheduled = start + j / rate
        ahead = scheduled - time.time()
        if ahead > 0:
            await asyncio.sleep(ahead)
        tasks.append(asyncio.create_task(shoot(session, url, scheduled, worker, forwarded, unknown)))
    return list(await asyncio.gather(*tasks))


def request_summary(shots: list[Shot], rate: float, duration: float) -> dict[str, Any]:
    statuses = Counter(str(s.status) for s in shots)
    ok = [s for s in shots if s.status == 200]
    lag = sorted(s.lag_ms for s in shots)
    lag_p = percentiles(lag)
    return {
        "offered_per_s": rate,
        "sent": len(shots),
        "ok": len(ok),
        **percentiles(sorted(s.ms for s in ok)),
        "forwarded": percentiles(sorted(s.ms for s in ok if s.forwarded)),
        "direct": percentiles(sorted(s.ms for s in ok if not s.forwarded)),
        # scheduled time → response: what a user would see if the client's lateness were the server's
        "from_schedule": percentiles(sorted(s.lag_ms + s.ms for s in ok)),
        "statuses": dict(statuses),
        "errors_503": statuses["503"],
        "errors_other": len(shots) - len(ok) - statuses["503"],
        "forwarded_share": sum(s.forwarded for s in shots) / len(shots) if shots else None,
        "unknown_users": sum(s.unknown_user for s in shots),
        "fallback_unknown": sum(s.fallback for s in ok if s.unknown_user),
        "fallback_known": sum(s.fallback for s in ok if not s.unknown_user),  # should be 0: they clicked
        "schedule_lag_ms": {"p50": lag_p["p50_ms"], "p99": lag_p["p99_ms"], "max": lag_p["max_ms"]},
        "fell_behind": bool(lag) and (lag_p["p99_ms"] or 0.0) > FELL_BEHIND_MS,
        "completed_per_s": len(ok) / duration if duration else None,
    }


def batch_totals(workers: list[WorkerProcess]) -> tuple[float, float]:
    """(batches, clicks and requests scored) over all workers."""
    return (sum(w.metric("seqrec_batch_size_count") for w in workers),
            sum(w.metric("seqrec_batch_size_sum") for w in workers))


async def request_load(target: Target, workers: list[WorkerProcess], users: list[str],
                       windows: list[tuple[int, float, float]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each (run, rate, start) window in turn; the figures of its requests and of the workers' batches."""
    rng = random.Random(7)
    out = []
    connector = aiohttp.TCPConnector(limit=0)  # no pool limit: a full pool would queue in the client
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        for run, rate, start in windows:
            before = await asyncio.to_thread(batch_totals, workers)
            shots = []
            if rate:
                shots = await request_window(session, target, users, rate, args.duration, start,
                                             args.unknown_share, args.k, rng)
            else:  # the baseline: clicks alone for the window
                await asyncio.sleep(max(0.0, start + args.duration - time.time()))
            after = await asyncio.to_thread(batch_totals, workers)
            out.append({"run": run + 1, "rate": rate, "start": start,
                        "requests": request_summary(shots, rate, args.duration),
                        "mean_batch": (after[1] - before[1]) / max(after[0] - before[0], 1)})
    return out


async def warm_requests(target: Target, users: list[str], n: int) -> Counter[str]:
    """`n` requests per worker, concurrently: connections open and the API answers before the windows."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        shots = await asyncio.gather(*(
            shoot(session, f"{url}/users/{users[j % len(users)]}/recommendations", time.time(), w, False, False)
            for w, url in enumerate(target.urls) for j in range(n)))
    return Counter(str(s.status) for s in shots)


# --- the deployment -----------------------------------------------------------------------------

@contextlib.contextmanager
def request_api_on() -> Iterator[None]:
    """`start_worker` hands this process's environment to the workers: the API is switched on there."""
    before = os.environ.get("SEQREC_WEB__RECOMMEND_API")
    os.environ["SEQREC_WEB__RECOMMEND_API"] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ["SEQREC_WEB__RECOMMEND_API"]
        else:
            os.environ["SEQREC_WEB__RECOMMEND_API"] = before


def held_partitions(workers: list[WorkerProcess], partitions: int, timeout_s: float = 60.0) -> list[set[int]]:
    """Each worker's clicks partitions once the group is settled: every partition held by exactly
    one worker and every worker holding some."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = [set(json.loads(w.get("/ready")[1]).get("partitions", [])) for w in workers]
        if (all(held) and sum(map(len, held)) == partitions and set().union(*held) == set(range(partitions))) \
                or time.monotonic() > deadline:
            return held
        time.sleep(0.3)


def measure_requests(address: str, ckpt: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One group of workers; warm-up; then every window of every run on one continuous click stream."""
    app = f"req{uuid.uuid4().hex[:6]}"
    with request_api_on():
        workers = [start_worker(address, ckpt, app, args, work, name=f"{app}-{i}") for i in range(args.workers)]
    try:
        for w in workers:
            w.wait_ready(timeout_s=120)
        held = held_partitions(workers, args.partitions)
        target = Target([f"http://127.0.0.1:{w.web_port}" for w in workers], held, args.partitions)

        # Warm-up: histories for the users requested, the broker and workers past their first batches.
        warm = tagged(synthetic_stream(args.warmup_clicks, args.users, args.items, seed=1), "w")
        clock = AnswerClock(address, f"{app}-recs", args.security)
        clock.start()
        produce(address, f"{app}-clicks", warm, None, args.security)
        deadline = time.time() + args.timeout
        while len(clock.first) < len(warm) and time.time() < deadline:
            time.sleep(0.1)
        clock.stopping.set()
        clock.join()
        users = sorted({c.user_id for c in warm})
        warm_statuses = asyncio.run(warm_requests(target, users, 20))

        order = [(run, rate) for run in range(args.runs)
                 for rate in (args.request_rates if run % 2 == 0 else args.request_rates[::-1])]
        span = args.settle + len(order) * (args.duration + args.settle)
        clicks = tagged(synthetic_stream(int(args.click_rate * span), args.users, args.items, seed=2), "m")
        ctx = multiprocessing.get_context("spawn")  # the parent holds threads: no fork
        queue = ctx.Queue()
        child = ctx.Process(target=stream_clicks, args=(address, app, clicks, args.click_rate, clock.total,
                                                        args.security, args.timeout, queue), daemon=True)
        child.start()
        try:
            start = queue.get(timeout=180)
            windows = [(run, rate, start + args.settle + i * (args.duration + args.settle))
                       for i, (run, rate) in enumerate(order)]
            results = asyncio.run(request_load(target, workers, users, windows, args))
            sent, first = queue.get(timeout=args.timeout + span + 60)
        finally:
            child.join(10)
            if child.is_alive():
                child.kill()
        held_after = held_partitions(workers, args.partitions, timeout_s=0)
    finally:
        for w in workers:
            w.stop()
    for r in results:
        r["clicks"] = click_summary(sent, first, r["start"], r["start"] + args.duration)
    by_rate = {str(rate): median_of_runs([r for r in results if r["rate"] == rate]) for rate in args.request_rates}
    return {
        "guarantee": args.guarantee,
        "workers": args.workers,
        "click_rate": args.click_rate,
        "warmup": {"clicks": len(warm), "answered": len(clock.first), "request_statuses": dict(warm_statuses)},
        "partitions_held": [sorted(h) for h in held],
        "assignment_stable": held == held_after,
        "clicks_sent": len(sent),
        "clicks_answered": len(first),
        "windows": results,
        "median_by_rate": by_rate,
    }


def compare_guarantees(address: str, ckpt: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """at_least_once against exactly_once, alternating run by run, through pipeline_throughput's runs."""
    saturate = synthetic_stream(args.saturate_clicks, args.users, args.items)
    paced = synthetic_stream(int(args.click_rate * args.duration), args.users, args.items, seed=2)
    # run_pipeline's own options: no LogAppendTime topic, no second consumer
    base = argparse.Namespace(**vars(args), log_append_time=False, cross_check=False)
    with worker_group(address, ckpt, 1, base, work) as group:  # the fresh broker is slow at first
        run_pipeline(group, saturate[:args.warmup_clicks], None, base)
    runs = []
    for run in range(args.runs):
        for guarantee in (GUARANTEES if run % 2 == 0 else GUARANTEES[::-1]):
            g = argparse.Namespace(**{**vars(base), "guarantee": guarantee})
            with worker_group(address, ckpt, 1, g, work) as group:
                s = run_pipeline(group, saturate, None, g)
                q = run_pipeline(group, paced, args.click_rate, g)
            runs.append({"run": run + 1, "guarantee": guarantee, "commit_interval_s": args.commit_interval,
                         "saturated_events_per_s": s["events_per_s"], "saturated_answered": s["answered"],
                         "saturated_mean_batch": s["mean_batch"], "paced_rate": args.click_rate,
                         "paced_answered": q["answered"], "paced_p50_ms": q["p50_ms"], "paced_p99_ms": q["p99_ms"],
                         "paced_mean_ms": q["mean_ms"], "paced_worker_latency_ms": q["worker_latency_ms"]})
            print(json.dumps(runs[-1]), flush=True)
    return {"saturate_clicks": len(saturate), "paced_clicks": len(paced), "runs": runs,
            "median": {g: median_of_runs([r for r in runs if r["guarantee"] == g]) for g in GUARANTEES}}


# --- report ----------------------------------------------------------------------------------------

def ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def print_requests(r: dict[str, Any]) -> None:
    print(f"\nrequests beside {r['click_rate']:,.0f} clicks/s, {r['workers']} workers, {r['guarantee']}; "
          f"partitions {r['partitions_held']}{'' if r['assignment_stable'] else ' (the assignment changed!)'}; "
          f"{r['clicks_answered']:,} of {r['clicks_sent']:,} clicks answered")
    print(f"{'run':>4s} {'req/s':>6s} {'ok':>6s} {'503':>4s} {'other':>5s} {'fwd':>5s} {'p50':>7s} {'p90':>7s} "
          f"{'p99':>7s} {'max':>7s} {'lag p99':>8s} {'batch':>6s} {'click p50':>10s} {'click p99':>10s}")
    rows = [(str(w["run"]), w) for w in r["windows"]] + [("med", m) for m in r["median_by_rate"].values()]
    for label, w in rows:
        q, c = w["requests"], w["clicks"]
        share = "-" if q["forwarded_share"] is None else f"{q['forwarded_share']:.0%}"
        behind = "!" if q["fell_behind"] is True else ""
        print(f"{label:>4s} {w['rate']:6,.0f} {q['ok']:6,.0f} {q['errors_503']:4,.0f} {q['errors_other']:5,.0f} "
              f"{share:>5s} {ms(q['p50_ms']):>7s} {ms(q['p90_ms']):>7s} {ms(q['p99_ms']):>7s} {ms(q['max_ms']):>7s} "
              f"{ms(q['schedule_lag_ms']['p99']):>7s}{behind:1s} {w['mean_batch']:6.1f} "
              f"{ms(c['p50_ms']):>10s} {ms(c['p99_ms']):>10s}")
    print("(ms; lag: the client's send behind its schedule, ! = fell behind; med: median of the runs)")


def print_guarantees(r: dict[str, Any]) -> None:
    print(f"\nguarantees: {r['saturate_clicks']:,} clicks saturated, {r['paced_clicks']:,} paced")
    print(f"{'run':>4s} {'guarantee':14s} {'events/s':>9s} {'paced p50':>10s} {'paced p99':>10s}")
    rows = [(str(x["run"]), x) for x in r["runs"]] + [("med", m) for m in r["median"].values()]
    for label, x in rows:
        print(f"{label:>4s} {x['guarantee']:14s} {x['saturated_events_per_s']:9,.0f} "
              f"{ms(x['paced_p50_ms']):>10s} {ms(x['paced_p99_ms']):>10s}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--click-rate", type=float, default=500.0, help="clicks/s flowing throughout (default 500)")
    p.add_argument("--request-rates", type=float, nargs="+", default=[200.0, 1000.0],
                   help="requests/s of each window (default 200 1000; 0: a window of clicks alone)")
    p.add_argument("--duration", type=float, default=25.0, help="seconds of each window, and of the paced run "
                                                                "of --compare-guarantees (default 25)")
    p.add_argument("--settle", type=float, default=3.0, help="seconds of clicks alone before each window (default 3)")
    p.add_argument("--runs", type=int, default=3, help="repeats of every setting (default 3)")
    p.add_argument("--workers", type=int, default=2, help="workers in the group (default 2)")
    p.add_argument("--k", type=int, default=10, help="list length asked for (default 10)")
    p.add_argument("--unknown-share", type=float, default=0.05,
                   help="share of requests for users who never clicked (default 0.05)")
    p.add_argument("--users", type=int, default=2000, help="distinct users clicking (default 2000)")
    p.add_argument("--items", type=int, default=500, help="items of the untrained model (default 500)")
    p.add_argument("--warmup-clicks", type=int, default=5000,
                   help="clicks sent as fast as possible and answered before the first window (default 5000)")
    p.add_argument("--partitions", type=int, default=8, help="of the clicks topic and the table (default 8)")
    p.add_argument("--max-batch", type=int, default=64, help="the workers' micro-batch limit (default 64)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="the workers' batch wait (default 5)")
    p.add_argument("--history-len", type=int, default=50, help="items kept per user, the model's length (default 50)")
    p.add_argument("--torch-threads", type=int, default=1, help="per worker (default 1)")
    add_worker_arguments(p)
    p.add_argument("--compare-guarantees", action="store_true",
                   help="instead of requests: at_least_once against exactly_once, saturated and paced at --click-rate")
    p.add_argument("--saturate-clicks", type=int, default=10_000,
                   help="clicks of each saturated run of --compare-guarantees (default 10000)")
    p.add_argument("--bootstrap", default=None,
                   help="use this Kafka instead of starting one (security from SEQREC_KAFKA__SECURITY__*)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the last answers")
    p.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    args = p.parse_args(argv)
    args.security = load_settings().kafka.security if args.bootstrap else None  # a broker started here is PLAINTEXT

    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
                               "argv": sys.argv[1:] if argv is None else argv}
    m = results["machine"]
    print(f"{results['date']}  {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
          f"load average {m['load_average_start'][0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="request-latency-") as tmp, broker(args.bootstrap, Path(tmp)) as address:
        work = Path(tmp)
        ckpt = make_checkpoint("softmax", args.items, args.history_len, work)
        if args.compare_guarantees:
            results["guarantees"] = compare_guarantees(address, ckpt, args, work)
        else:
            results["requests"] = measure_requests(address, ckpt, args, work)
    m["load_average_end"] = os.getloadavg()
    if "requests" in results:
        print_requests(results["requests"])
    else:
        print_guarantees(results["guarantees"])
    print(f"load average {m['load_average_start'][0]:.1f} → {m['load_average_end'][0]:.1f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
