"""Serving cost of each attention kind, side by side in one run (issue 4).

For softmax, vgenatt (mean, sample) and dgenatt with 1, 2, 4 and T inference steps: parameters of
the whole SASRec and of its attention modules, and inference throughput (sequences/s) of
`SASRec.score_last` at a fixed batch of full-length random histories. Variants are timed in
interleaved rounds and the median round is reported, because the machine is shared and noisy.
dgenatt runs with start_fraction = 1.0 here so that "steps = T" really runs T denoiser steps; in
`mean` mode it serves through one fused attention (no L x L map), in `sample` mode it builds the map.

    python benchmarks/attention_cost.py --n-items 12101 --max-len 50 --batch 256 --rounds 5
    python benchmarks/attention_cost.py --batch 64 --paths last full --precisions fp32 bf16 --kinds softmax vgenatt "dgenatt mean steps=2"

`--paths full` times the forward serving used before `score_last` computed the last block for the
last query alone; `--precisions bf16` runs it under bfloat16 autocast.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime, timezone

import torch

from genatt_seeds import machine
from seqrec.model.config import ModelConfig
from seqrec.model.sasrec import SASRec


def variants(steps_T: int) -> list[tuple[str, str, dict]]:
    """(label, kind, attention_options) for every variant to compare."""
    rows = [("softmax", "softmax", {}), ("vgenatt mean", "vgenatt", {}), ("vgenatt sample", "vgenatt", {"inference": "sample"})]
    for steps in sorted({1, 2, 4, steps_T}):
        if steps <= steps_T:
            opts = {"steps_T": steps_T, "inference_steps": steps, "start_fraction": 1.0}
            rows.append((f"dgenatt mean steps={steps}", "dgenatt", opts))
    opts = {"steps_T": steps_T, "inference_steps": 2, "start_fraction": 1.0, "inference": "sample"}
    rows.append(("dgenatt sample steps=2", "dgenatt", opts))  # sample mode builds the L x L map
    return rows


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def full_forward_scores(model: SASRec, items: torch.Tensor) -> torch.Tensor:
    """Scores as serving computed them before the last-query path: every position of every block."""
    hidden, _ = model.encode(items)
    return model._logits(hidden[:, -1, :])


PATHS = {"last": SASRec.score_last, "full": full_forward_scores}
PRECISIONS = ("fp32", "bf16")


@torch.inference_mode()
def seconds_per_batch(model: SASRec, items: torch.Tensor, path: str = "last", precision: str = "fp32") -> float:
    start = time.perf_counter()
    with torch.autocast(items.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        PATHS[path](model, items)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-items", type=int, default=12101, help="catalogue size (beauty: 12101)")
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps-T", type=int, default=10, help="dgenatt diffusion length T")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    ap.add_argument("--paths", nargs="+", choices=sorted(PATHS), default=["last"],
                    help="last: score_last (the last block for the last query only); full: every position")
    ap.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=["fp32"],
                    help="bf16: the forward under torch.autocast(bfloat16)")
    ap.add_argument("--kinds", nargs="+", default=None, help="only the variants whose label starts with one of these")
    ap.add_argument("--json", default="", help="also write the rows to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    items = torch.randint(1, args.n_items + 1, (args.batch, args.max_len))  # (B, L), no padding: worst case
    models = {}
    for label, kind, opts in variants(args.steps_T):
        if args.kinds and not label.startswith(tuple(args.kinds)):
            continue
        cfg = ModelConfig(n_items=args.n_items, max_len=args.max_len, attention=kind, attention_options=opts)
        models[label] = SASRec(cfg).eval()
    cells = [(label, path, precision) for label in models for path in args.paths for precision in args.precisions]
    for label, path, precision in cells:
        seconds_per_batch(models[label], items, path, precision)  # warm-up
    times: dict[tuple[str, str, str], list[float]] = {cell: [] for cell in cells}
    for _ in range(args.rounds):
        for cell in cells:
            times[cell].append(seconds_per_batch(models[cell[0]], items, *cell[1:]))

    base_params = count(next(iter(models.values())))
    rows = []
    for label, path, precision in cells:
        model = models[label]
        med = statistics.median(times[(label, path, precision)])
        rows.append(
            {
                "variant": label,
                "path": path,
                "precision": precision,
                "params": count(model),
                "extra_params": count(model) - base_params,
                "attention_params": sum(count(block.attn) for block in model.blocks),
                "seq_per_s": args.batch / med,
                "ms_per_batch": 1000 * med,
            }
        )
    print(f"batch {args.batch}, max_len {args.max_len}, n_items {args.n_items}, threads {torch.get_num_threads()}, "
          f"median of {args.rounds} interleaved rounds; {machine()}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print("| variant | path | precision | params | extra vs first | attention params | seq/s | ms/batch | x first row's time |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    base_ms = rows[0]["ms_per_batch"]
    for r in rows:
        print(f"| {r['variant']} | {r['path']} | {r['precision']} | {r['params']:,} | {r['extra_params']:+,} | "
              f"{r['attention_params']:,} | {r['seq_per_s']:.0f} | {r['ms_per_batch']:.1f} | "
              f"{r['ms_per_batch'] / base_ms:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
