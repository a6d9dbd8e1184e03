"""Micro-timings of the click path's JSON work, this checkout against another, in one process.

Per click of the same synthetic stream (`pipeline_throughput.synthetic_stream`, the clicks
`faust_floor.py` feeds its workers): `decode_click` (parse + schema), `apply_click` +
`UserHistory.to_bytes` (the value written back), `UserHistory.from_bytes` (a table read) and an
answer of `--top-k` items (`recommendation_record` + `encode`). The baseline's modules are loaded
from its files (`--baseline DIR`, a checkout, e.g. a `git worktree` of an older commit); the rest
of the package is this checkout's. Best of `--repeats` rounds, the two codes alternating. Not a test.

    git worktree add --detach /tmp/before HEAD~1 && python benchmarks/click_codec.py --baseline /tmp/before
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmark module

from pipeline_throughput import synthetic_stream  # noqa: E402

from seqrec.pipeline.serving import sink, source, state  # noqa: E402
from seqrec.pipeline.serving.source import ClickEvent  # noqa: E402
from seqrec.pipeline.settings import StoreSettings  # noqa: E402

Code = tuple[ModuleType, ModuleType, ModuleType]  # source, state, sink
STORE = StoreSettings()  # the worker's defaults: history length, session gap
SESSION_GAP_MS = int(STORE.session_gap_s * 1000)


def load_checkout(code: Path) -> Code:
    """The checkout's serving source, state and sink modules, under names of their own."""
    modules = []
    for name in ("source", "state", "sink"):
        spec = importlib.util.spec_from_file_location(f"baseline_{name}", code / "pipeline" / "serving" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        modules.append(module)
    return modules[0], modules[1], modules[2]


def stages(code: Code, clicks: list[ClickEvent], raws: list[bytes], now_ms: int,
           args: argparse.Namespace) -> dict[str, Callable[[], object]]:
    """Stage name → a function that runs the stage once for every click."""
    src, st, snk = code
    keys = [c.user_id.encode() for c in clicks]
    before, values = [], []  # each click's user state before it, and the value written after it
    states: dict[str, object] = {}
    for offset, c in enumerate(clicks):
        before.append(states.get(c.user_id))
        states[c.user_id] = st.apply_click(before[-1], c, 0, offset, history_len=args.history_len,
                                           session_gap_ms=SESSION_GAP_MS)
        values.append(states[c.user_id].to_bytes())
    top = [(f"i{j}", 1.0 / (j + 1)) for j in range(args.top_k)]

    def decode() -> None:
        for raw, key in zip(raws, keys):
            src.decode_click(raw, key, now_ms=now_ms)

    def write() -> None:
        for offset, (s, c) in enumerate(zip(before, clicks)):
            st.apply_click(s, c, 0, offset, history_len=args.history_len, session_gap_ms=SESSION_GAP_MS).to_bytes()

    def read() -> None:
        for v in values:
            st.UserHistory.from_bytes(v)

    def answer() -> None:
        for c in clicks:
            snk.encode(snk.recommendation_record(c, top, model_version="v1", produced_at_ms=now_ms, latency_ms=1.5))

    return {"decode_click": decode, "apply_click + to_bytes": write, "from_bytes": read, "answer encode": answer}



def per_click_us(run: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) / n * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=Path, required=True, help="checkout to compare against")
    p.add_argument("--clicks", type=int, default=20_000)
    p.add_argument("--users", type=int, default=200, help="few users: full histories (50 items, 32 event ids)")
    p.add_argument("--items", type=int, default=5_000)
    p.add_argument("--history-len", type=int, default=STORE.history_len)
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    clicks = synthetic_stream(args.clicks, args.users, args.items)
    raws = [source.encode_click(c) for c in clicks]
    now_ms = int(time.time() * 1000)
    codes = {"baseline": load_checkout(args.baseline), "this checkout": (source, state, sink)}
    runs = {name: stages(code, clicks, raws, now_ms, args) for name, code in codes.items()}
    best: dict[str, dict[str, float]] = {name: {} for name in codes}
    for _ in range(args.repeats):
        for name, stage_runs in runs.items():
            for stage, run in stage_runs.items():
                us = per_click_us(run, len(clicks))
                best[name][stage] = min(best[name].get(stage, us), us)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}  load average {os.getloadavg()[0]:.1f}")
    print(f"{'µs per click, best of ' + str(args.repeats):28s} {'baseline':>10s} {'this':>10s} {'ratio':>7s}")
    for stage in best["baseline"]:
        old, new = best["baseline"][stage], best["this checkout"][stage]
        print(f"{stage:28s} {old:10.2f} {new:10.2f} {old / new:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
