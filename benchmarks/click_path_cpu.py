"""CPU per click of the worker's own click path, without Kafka (issue 16).

`ClickPipeline.accept` and `handle_batch` — decode and validate, history update, RocksDB write,
batching, answer records and their JSON, changelog records, metrics, acks — run on a rocksdict
store and in-memory topics, with the serving settings' defaults. The model is either the
untrained softmax checkpoint that `faust_floor.py` serves (`softmax`, scored in a worker thread as
in the worker) or none (`none`: every click gets the same ten items, so only our Python is left).
CPU is the process's (all threads), so a machine's other load does not count.

Set beside `faust_floor.py`'s figures, this splits the worker's CPU per click into what Faust,
aiokafka and the broker round trips cost and what our code costs; `--profile N` lists the N
functions with most own time. Not a test.

    python benchmarks/click_path_cpu.py                      # 30,000 clicks, both models
    python benchmarks/click_path_cpu.py --models none --profile 20
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import torch
from rocksdict import Rdict

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmark modules

from genatt_seeds import machine  # noqa: E402
from pipeline_throughput import make_checkpoint, synthetic_stream  # noqa: E402

from seqrec.model.inference import Recommender  # noqa: E402
from seqrec.pipeline.serving.agents import ClickPipeline  # noqa: E402
from seqrec.pipeline.serving.runner import Runner  # noqa: E402
from seqrec.pipeline.serving.sink import MemoryTopic, Sink  # noqa: E402
from seqrec.pipeline.serving.source import encode_click  # noqa: E402
from seqrec.pipeline.serving.telemetry import Metrics  # noqa: E402
from seqrec.pipeline.settings import Settings  # noqa: E402

MODELS = ("softmax", "none")
PARTITIONS = 8


class NoModel:
    """Answers every history with the same ten items: the click path without a forward pass."""

    version = "none"
    TOP = [(f"i{j}", float(10 - j)) for j in range(10)]

    def recommend(self, histories: Sequence[Sequence[str]], k: int = 10,
                  exclude_seen: bool = True) -> list[list[tuple[str, float]]]:
        return [self.TOP[:k] for _ in histories]


async def drive(pipe: ClickPipeline, messages: list[tuple[bytes, bytes]], timestamp_s: float) -> None:
    batcher = asyncio.create_task(pipe.batcher.run())
    for n, (key, value) in enumerate(messages):  # round robin over the partitions, offsets in order
        await pipe.accept(value, key, topic="clicks", partition=n % PARTITIONS, offset=n // PARTITIONS,
                          timestamp_s=timestamp_s, handle=n)
    await pipe.drain()
    batcher.cancel()


def run(model: Recommender | NoModel, messages: list[tuple[bytes, bytes]], datadir: Path, profile: int) -> dict[str, float]:
    """CPU and wall seconds per click of the whole stream through one fresh pipeline."""
    settings = Settings()
    table = Rdict(str(datadir))

    async def ack(handle: int) -> None:
        pass

    pipe = ClickPipeline(settings, Runner(model, top_k=10), Sink(MemoryTopic(), MemoryTopic()), table,
                         MemoryTopic(), ack, Metrics())
    profiler = cProfile.Profile() if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    asyncio.run(drive(pipe, messages, time.time()))
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    table.close()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
    return {"cpu_ms": cpu / len(messages) * 1000, "wall_ms": wall / len(messages) * 1000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clicks", type=int, default=30_000)
    p.add_argument("--users", type=int, default=10_000, help="as faust_floor.py")
    p.add_argument("--items", type=int, default=5_000, help="as faust_floor.py")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also print the N functions with most own time (profiling slows the run)")
    args = p.parse_args()
    if args.clicks < 1:
        p.error("--clicks must be at least 1")
    torch.set_num_threads(1)  # as the worker serves (serving.torch_threads)
    stream = synthetic_stream(args.clicks, args.users, args.items)
    messages = [(c.user_id.encode(), encode_click(c)) for c in stream]
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC  {machine()}")
    with tempfile.TemporaryDirectory(prefix="click-path-") as tmp:
        work = Path(tmp)
        for name in args.models:
            if name == "softmax":
                model = Recommender.from_checkpoint(make_checkpoint("softmax", args.items, 50, work), device="cpu")
            else:
                model = NoModel()
            result = run(model, messages, work / f"table-{name}", args.profile)
            print(f"model {name:8s} {result['cpu_ms']:.4f} ms CPU per click   {result['wall_ms']:.4f} ms wall "
                  f"per click   ({args.clicks:,} clicks)")


if __name__ == "__main__":
    main()
