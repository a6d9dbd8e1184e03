"""How fast can a Faust worker go on this machine at all? The per-event floor under our worker.

A backlog of clicks is produced to a fresh topic first; then one worker process drains it.
Variants, each a separate process on its own copy of the backlog:

  * consume   a Faust agent that iterates the events and acks each one, nothing else: the cost
              of Faust's stream and offset bookkeeping per event;
  * table     consume plus one RocksDB table write per click (and so one changelog record): the
              least a worker that keeps per-user state in a Faust table pays;
  * worker    the real `seqrec worker` (softmax model, untrained, one torch thread), which also
              scores every click and produces its recommendation before acking it;
  * baseline  the same worker run from another checkout (`--baseline DIR`, e.g. a `git worktree`
              of an older commit), so a change is measured side by side in one run.

The two floor apps are built by `pipeline.serving.app.build_app`, so they run with exactly the worker's
Faust settings (consumer tweaks, commit interval, RocksDB through rocksdict). Progress is read
the same way for all three: the consumer group's committed offsets (every variant commits only
what it acked; the worker acks a click once its answer is produced). Reported per variant:
events/s between the first and the last commit seen, and the processes' CPU time per event over
the same span (all threads: event loop, consumer thread, torch). With `--workers N` the worker
variants run N processes in one consumer group, splitting the partitions. Not a test.

    python benchmarks/faust_floor.py                        # 50,000 clicks, all variants
    python benchmarks/faust_floor.py --clicks 20000 --variants consume table
    git worktree add /tmp/before HEAD~1 && python benchmarks/faust_floor.py --baseline /tmp/before
    python benchmarks/faust_floor.py --variants worker --workers 2     # scale-out in one group
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmark module

from pipeline_throughput import add_worker_arguments, broker, make_checkpoint, start_worker, synthetic_stream  # noqa: E402

from seqrec.pipeline.devtools.harness import WorkerProcess, produce_clicks  # noqa: E402
from seqrec.pipeline.kafka_security import open_client  # noqa: E402
from seqrec.pipeline.settings import KafkaSettings, Settings, StoreSettings, WebSettings, load_settings  # noqa: E402

VARIANTS = ("consume", "table", "worker", "baseline")


# ---- the floor apps (run in the child process: `faust_floor.py serve ...`) --------------------

def serve(variant: str, bootstrap: str, app_id: str, partitions: int, datadir: Path) -> None:
    from faust.worker import Worker

    from seqrec.pipeline.serving.app import build_app

    settings = Settings(
        app_id=app_id, log_level="warning",
        kafka=KafkaSettings(bootstrap_servers=bootstrap, partitions=partitions,
                            session_timeout_s=6, heartbeat_interval_s=1, security=load_settings().kafka.security),
        store=StoreSettings(datadir=datadir, standby_replicas=0),
        web=WebSettings(enabled=False),
    )
    app = build_app(settings)
    clicks = app.topic(f"{app_id}-clicks", key_serializer="raw", value_serializer="raw")
    table = app.Table("state", default=None, key_type=bytes, value_type=bytes,
                      options={"block_cache_size": 8 * 2**20}) if variant == "table" else None

    @app.agent(clicks, concurrency=1)
    async def drain(stream: Any) -> None:
        events = stream.noack()  # ack explicitly, as the real worker does
        async for event in events.events():
            if table is not None:
                table[event.message.key] = event.message.value
            await events.ack(event)

    worker = Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # its handler would turn on debug logging everywhere
    worker.execute_from_commandline()


# ---- the driver ------------------------------------------------------------------------------

def process_cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process, all its threads, plus those of its live children
    (a worker with `--inference process` scores in one)."""
    proc = Path(f"/proc/{pid}")
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        children = [int(c) for task in proc.glob("task/*/children") for c in task.read_text().split()]
    except FileNotFoundError:  # it ended between two reads
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_cpu_s(child) for child in children)


def committed_count(admin: Any, group: str, topic: str) -> int:
    """Sum of the group's committed offsets on `topic`: events fully handled so far."""
    from kafka.errors import KafkaError

    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except KafkaError:  # the group (or its coordinator) does not exist yet
        return 0
    return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)


def start_variant(variant: str, bootstrap: str, app_id: str, args: argparse.Namespace,
                  work: Path) -> list[subprocess.Popen[bytes] | WorkerProcess]:
    """Start the variant's processes on `<app_id>-clicks` (--workers of them for the worker
    variants, one consumer group)."""
    if variant in ("worker", "baseline"):
        ckpt = make_checkpoint("softmax", args.items, args.history_len, work)
        code = args.baseline if variant == "baseline" else None
        return [start_worker(bootstrap, ckpt, app_id, args, work, code=code, name=f"{app_id}-{n}")
                for n in range(args.workers)]
    return [subprocess.Popen(
        [sys.executable, __file__, "serve", "--variant", variant, "--bootstrap", bootstrap,
         "--app-id", app_id, "--partitions", str(args.partitions), "--datadir", str(work / app_id)],
        stdout=open(work / f"{app_id}.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )]


def cpu_s(procs: list[subprocess.Popen[bytes] | WorkerProcess]) -> float:
    return sum(process_cpu_s(p.proc.pid if isinstance(p, WorkerProcess) else p.pid) for p in procs)


def measure(variant: str, bootstrap: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from kafka.admin import KafkaAdminClient, NewTopic

    app_id = f"floor{uuid.uuid4().hex[:6]}"
    admin = open_client(KafkaAdminClient, bootstrap, args.security)
    admin.create_topics([NewTopic(f"{app_id}-{t}", args.partitions, 1) for t in ("clicks", "recs", "dlq")])
    produce_clicks(bootstrap, f"{app_id}-clicks", synthetic_stream(args.clicks, args.users, args.items),
                   args.security)

    procs = start_variant(variant, bootstrap, app_id, args, work)
    try:
        deadline = time.monotonic() + args.timeout
        first_t = first_cpu = None
        done = 0
        while done < args.clicks and time.monotonic() < deadline:
            time.sleep(0.1)
            done = committed_count(admin, app_id, f"{app_id}-clicks")
            if done and first_t is None:
                first_t, first_cpu, first_n = time.monotonic(), cpu_s(procs), done
        last_t, last_cpu = time.monotonic(), cpu_s(procs)
    finally:
        admin.close()
        for proc in procs:
            if isinstance(proc, WorkerProcess):
                proc.stop()
            else:
                proc.terminate()
                proc.wait(30)
    if first_t is None or done <= first_n:
        raise RuntimeError(f"{variant}: {done} of {args.clicks} clicks committed; see {work / app_id}.log")
    n = done - first_n
    return {
        "committed": done,
        "events_per_s": n / (last_t - first_t),
        "cpu_ms_per_event": 1000 * (last_cpu - first_cpu) / n,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="(internal) run one floor app")
    s.add_argument("--variant", choices=("consume", "table"), required=True)
    s.add_argument("--bootstrap", required=True)
    s.add_argument("--app-id", required=True)
    s.add_argument("--partitions", type=int, required=True)
    s.add_argument("--datadir", type=Path, required=True)
    p.add_argument("--clicks", type=int, default=50_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--items", type=int, default=5_000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=256)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--history-len", type=int, default=50)
    p.add_argument("--torch-threads", type=int, default=1)
    add_worker_arguments(p)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=None,
                   help="default: all, baseline only with --baseline")
    p.add_argument("--baseline", type=Path, default=None, help="checkout to run the baseline worker from")
    p.add_argument("--workers", type=int, default=1, help="worker processes (one group) per worker variant")
    p.add_argument("--bootstrap", default=None,
                   help="use this Kafka instead of starting one (security from SEQREC_KAFKA__SECURITY__*)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait per variant")
    p.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    args = p.parse_args(argv)
    args.security = load_settings().kafka.security if args.bootstrap else None
    if args.command == "serve":
        serve(args.variant, args.bootstrap, args.app_id, args.partitions, args.datadir)
        return 0
    if args.variants is None:
        args.variants = [v for v in VARIANTS if v != "baseline" or args.baseline is not None]
    if "baseline" in args.variants and (args.baseline is None or not (args.baseline / "pipeline").is_dir()):
        p.error("the baseline variant needs --baseline DIR, a checkout of this project")

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "argv": sys.argv[1:] if argv is None else argv,
        "load_average_start": os.getloadavg(),
        "variants": {},
    }
    with tempfile.TemporaryDirectory() as tmp, broker(args.bootstrap, Path(tmp)) as address:
        for variant in args.variants:
            results["variants"][variant] = r = measure(variant, address, args, Path(tmp))
            print(f"{variant:12s} {r['events_per_s']:8,.0f} events/s  {r['cpu_ms_per_event']:.3f} ms CPU/event",
                  flush=True)
    results["load_average_end"] = os.getloadavg()
    print(f"{results['date']}  {results['machine']}  load average "
          f"{results['load_average_start'][0]:.1f} → {results['load_average_end'][0]:.1f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
