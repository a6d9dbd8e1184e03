"""User-by-user comparison of the runs of `genatt_seeds.py` (issue 4): for every seed, the best
checkpoint of each variant and of the baseline are evaluated on the same test users, and the
per-user differences give the mean difference with its 95 % confidence interval and p-value
(`model.metrics.paired_difference`) — is a gain larger than the user-sampling noise of one pair of
runs? The seed-to-seed noise that `genatt_seeds.py --table-only` shows comes on top.

    python benchmarks/genatt_paired.py --data ../shared/data/beauty/Beauty.txt --runs runs/genatt/beauty-seeds \\
        --seeds 1 2 --variant softmax --variant vgenatt:free_bits=0.5 --variant dgenatt
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

import torch

from genatt_seeds import machine, variant_dir
from model.checkpoint import load_checkpoint
from model.data import SequenceDataset, item_categories, leave_one_out, load_dataset
from model.evaluate import user_metrics
from model.metrics import paired_difference


def per_user(path: Path, dataset: SequenceDataset, which: str, k: int) -> tuple[list[str], dict[str, torch.Tensor]]:
    """(the evaluated users' raw target ids, their metrics at k) for the checkpoint at `path`."""
    ckpt = load_checkpoint(path, device="cpu")
    split = leave_one_out(dataset, ckpt.item_map)
    histories, targets = split.eval_inputs(which)
    values = user_metrics(ckpt.model, histories, targets, k=k,
                          categories=item_categories(dataset, ckpt.item_map))
    return [ckpt.item_map.raw(t) for t in targets], values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", required=True, type=Path, help="the --out folder of genatt_seeds.py")
    ap.add_argument("--variant", action="append", required=True, help="as given to genatt_seeds.py; the first is the baseline")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--split", choices=("valid", "test"), default="test")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if len(args.variant) < 2:
        ap.error("give the baseline and at least one other --variant")
    if not args.runs.is_dir():
        ap.error(f"--runs {args.runs}: no such folder (the --out of genatt_seeds.py)")
    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.data)

    lines = ["| variant | seed | metric | Δ mean | 95 % CI | p | users better / worse |", "|---|---:|---|---:|---|---:|---|"]
    for seed in args.seeds:
        best = {v: args.runs / variant_dir(v) / f"seed{seed}" / "best.pt" for v in args.variant}
        missing = [str(p) for p in best.values() if not p.exists()]
        if missing:
            print(f"seed {seed}: skipped, no checkpoint at {', '.join(missing)}")
            continue
        base_targets, base = per_user(best[args.variant[0]], dataset, args.split, args.k)
        for variant in args.variant[1:]:
            targets, cand = per_user(best[variant], dataset, args.split, args.k)
            if targets != base_targets:
                raise SystemExit(f"{best[variant]} was evaluated on other users than the baseline (other data?)")
            for metric in cand:
                if metric.startswith("MRR"):
                    continue
                d = paired_difference(cand[metric], base[metric])
                lines.append(f"| {variant} | {seed} | {args.split} {metric} | {d['mean']:+.5f} | "
                             f"[{d['ci_low']:+.5f}, {d['ci_high']:+.5f}] | {d['p_value']:.3f} | "
                             f"{d['better']} / {d['worse']} of {d['users']} |")
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}")
    print(f"data {args.data}, runs {args.runs}, baseline {args.variant[0]}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
