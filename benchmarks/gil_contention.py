"""The serving forward while a Python thread keeps the GIL busy, as the worker's event loop does
under load (issue 16): eager, `torch.compile`d and TorchScript-traced `SASRec.score_last`, side by
side in one process, quiet and with a busy thread beside it, at each GIL switch interval asked for.

An eager forward calls ~60 torch ops; each one releases the GIL for its kernel and must take it
back, and with another thread running Python each re-take waits up to the switch interval (5 ms by
default). A forward that crosses from Python to C++ fewer times waits less. This isolates that
effect from the pipeline's noise; it is not the pipeline's latency. The last two columns are what
the worker calls per batch, raw ids in and top-10 out: `Recommender.recommend` in this process
(`serving.inference=thread`) and the same in an `InferenceProcess` (`serving.inference=process`).

    python benchmarks/gil_contention.py --batch 32 --rounds 30
    python benchmarks/gil_contention.py --switch-intervals 0.005 0.0005
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone

import torch

from genatt_seeds import machine
from seqrec.model.checkpoint import save_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap
from seqrec.model.inference import Recommender
from seqrec.model.sasrec import SASRec
from seqrec.pipeline.serving.inference_process import InferenceProcess

Forward = Callable[[torch.Tensor], torch.Tensor]


class LastScores(torch.nn.Module):
    """`score_last` as a module's forward, for the tracer."""

    def __init__(self, model: SASRec) -> None:
        super().__init__()
        self.model = model

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.model.score_last(items)


def forwards(model: SASRec, items: torch.Tensor) -> dict[str, Forward]:
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # torch 2.15 marks torch.jit deprecated; measured all the same
        traced = torch.jit.freeze(torch.jit.trace(LastScores(model).eval(), items))
        compiled = torch.compile(model.score_last, dynamic=True)
        compiled(items)  # compiles here, not inside a timing
    assert torch.allclose(traced(items), model.score_last(items), atol=1e-4)
    return {"eager": model.score_last, "compiled": compiled, "traced": traced}


def recommend_calls(model: SASRec, items: torch.Tensor, workdir: str) -> tuple[dict[str, Forward], InferenceProcess]:
    """The worker's per-batch call, in this process and in a child process, on one checkpoint."""
    path = f"{workdir}/model.pt"
    save_checkpoint(path, model, ItemMap(str(i) for i in range(1, model.config.n_items + 1)),
                    data_fingerprint="gil_contention", metrics={})
    local = Recommender.from_checkpoint(path, device="cpu")
    child = InferenceProcess(path, device="cpu", torch_threads=1)
    histories = [[str(i) for i in row] for row in items.tolist()]
    assert local.recommend(histories) == child.recommend(histories)
    return {
        "recommend, thread": lambda _: local.recommend(histories),
        "recommend, process": lambda _: child.recommend(histories),
    }, child


def busy_python(stop: threading.Event) -> None:
    """Pure-Python work with no I/O: holds the GIL whenever the interpreter lets it."""
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i


@torch.inference_mode()
def median_ms(forward: Forward, items: torch.Tensor, rounds: int) -> float:
    forward(items)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        forward(items)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-items", type=int, default=12101, help="catalogue size (beauty: 12101)")
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=30, help="timed forwards per cell (median reported)")
    ap.add_argument("--kind", default="softmax", help="attention kind")
    ap.add_argument("--switch-intervals", type=float, nargs="+", default=[0.005, 0.0005],
                    help="sys.setswitchinterval values in seconds (Python's default: 0.005)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SASRec(ModelConfig(n_items=args.n_items, max_len=args.max_len, attention=args.kind)).eval()
    items = torch.randint(1, args.n_items + 1, (args.batch, args.max_len))
    variants = forwards(model, items)
    workdir = tempfile.TemporaryDirectory()
    calls, child = recommend_calls(model, items, workdir.name)
    variants.update(calls)

    print(f"{args.kind}, batch {args.batch}, max_len {args.max_len}, n_items {args.n_items}, 1 torch thread, "
          f"median of {args.rounds}; {machine()}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print("| switch interval | beside the forward | " + " | ".join(f"{v} ms" for v in variants) + " |")
    print("|---|---|" + "---:|" * len(variants))
    default_interval = sys.getswitchinterval()
    for interval in args.switch_intervals:
        sys.setswitchinterval(interval)
        for beside in ("nothing", "busy Python thread"):
            stop = threading.Event()
            thread = threading.Thread(target=busy_python, args=(stop,), daemon=True)
            if beside != "nothing":
                thread.start()
            try:
                cells = [median_ms(f, items, args.rounds) for f in variants.values()]
            finally:
                stop.set()
            print(f"| {interval * 1000:g} ms | {beside} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    sys.setswitchinterval(default_interval)
    child.close()
    workdir.cleanup()


if __name__ == "__main__":
    main()
