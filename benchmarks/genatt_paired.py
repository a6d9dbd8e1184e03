"""User-by-user comparison of the runs of `genatt_seeds.py` (issue 4): for every seed, the best
checkpoint of each variant and of the baseline are evaluated on the same test users, and the
per-user differences give the mean difference with its 95 % confidence interval and p-value
(`model.metrics.paired_difference`) — is a gain larger than the user-sampling noise of one pair of
runs? The seed-to-seed noise that `genatt_seeds.py --table-only` shows comes on top.

    python benchmarks/genatt_paired.py --data ../shared/data/beauty/Beauty.txt --runs runs/genatt/beauty-seeds \\
        --seeds 1 2 --variant softmax --variant vgenatt:free_bits=0.5 --variant dgenatt \\
        --results docs/results/genatt --set beauty

With `--results`, every run (baseline included) is also written there as one small JSON object
(set, loss, kind, options, seed, epochs, valid, test and, for a non-baseline run, `paired` against the
baseline of the same seed); `benchmarks/genatt_table.py` makes docs/genatt.md's table from them.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import torch

from genatt_seeds import machine, variant_dir
from genatt_table import PLACEMENT_ARGS, result_name
from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.data import SequenceDataset, item_categories, leave_one_out, load_dataset
from seqrec.model.evaluate import user_metrics
from seqrec.model.metrics import paired_difference


def per_user(path: Path, dataset: SequenceDataset, which: str, k: int) -> tuple[list[str], dict[str, torch.Tensor]]:
    """(the evaluated users' raw target ids, their metrics at k) for the checkpoint at `path`."""
    ckpt = load_checkpoint(path, device="cpu")
    split = leave_one_out(dataset, ckpt.item_map)
    histories, targets = split.eval_inputs(which)
    values = user_metrics(ckpt.model, histories, targets, k=k,
                          categories=item_categories(dataset, ckpt.item_map))
    return [ckpt.item_map.raw(t) for t in targets], values


def paired_summary(paired: dict[str, dict], k: int) -> dict[str, object]:
    """The `paired` entry of a result file: NDCG and CC at k against the same seed's baseline."""
    ndcg, cc = paired[f"NDCG@{k}"], paired.get(f"CC@{k}")
    return {f"delta_ndcg{k}": ndcg["mean"], "ci95": [ndcg["ci_low"], ndcg["ci_high"]], "p": ndcg["p_value"],
            f"delta_cc{k}": cc["mean"] if cc else None}


def training_settings(run: Path) -> dict[str, object]:
    """The settings a tuning grid varies, and the sequence length, of one run (from its summary.json)."""
    args = json.loads((run / "summary.json").read_text())["args"]
    return {key: args[key] for key in ("dropout", "lr", "max_len")}


def write_result(folder: Path, set_name: str, run: Path, seed: int, paired: dict | None, tag: str = "") -> Path:
    """One run -> `<folder>/<set>_<loss>_<variant>[_<tag>]_seed<seed>.json`, from the run's metrics.json and
    summary.json (genatt_compare.py writes both)."""
    metrics = json.loads((run / "metrics.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    result = {"set": set_name, "loss": summary.get("loss", "ce"), "kind": summary["attention"],
              "options": summary["options"], "seed": seed, "epochs": metrics["epochs_run"],
              "best_epoch": metrics["best_epoch"], "seconds_per_epoch": round(metrics["seconds_per_epoch"], 1),
              "train_args": {k: v for k, v in summary["args"].items() if k not in ("data", "out", "option", *PLACEMENT_ARGS)},
              "valid": metrics["valid"], "test": metrics["test"],
              # the attention kinds' weighted aux loss (vgenatt's beta * KL) in the best epoch: the latent's use
              "aux_at_best": next((h["aux"] for h in history if h["epoch"] == metrics["best_epoch"]), None)}
    if tag:  # a batch of runs apart from others at the same settings (retrained elsewhere, or another plan)
        result["tag"] = tag
    if paired is not None:
        result["paired"] = paired
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result_name(set_name, result['loss'], run.parent.name, tag)}_seed{seed}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", required=True, type=Path, nargs="+",
                    help="the --out folder of genatt_seeds.py, or one per --variant (each kind at its own tuned settings)")
    ap.add_argument("--variant", action="append", required=True, help="as given to genatt_seeds.py; the first is the baseline")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--split", choices=("valid", "test"), default="test")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", type=Path, help="write one JSON summary per run into this folder (test split only)")
    ap.add_argument("--set", help="the data set's name in those summaries (beauty, toys, ml-1m, ml-100k)")
    ap.add_argument("--tag", default="", help="added to those summaries' file names, to keep runs at other settings apart")
    args = ap.parse_args()
    if args.results and (args.split != "test" or not args.set):
        ap.error("--results needs --set and the test split")
    if len(args.variant) < 2:
        ap.error("give the baseline and at least one other --variant")
    if len(args.runs) not in (1, len(args.variant)):
        ap.error(f"give one --runs folder, or one per --variant ({len(args.variant)}), not {len(args.runs)}")
    for folder in args.runs:
        if not folder.is_dir():
            ap.error(f"--runs {folder}: no such folder (the --out of genatt_seeds.py)")
    runs_of = dict(zip(args.variant, args.runs * len(args.variant) if len(args.runs) == 1 else args.runs))
    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.data)

    lines = ["| variant | seed | metric | Δ mean | 95 % CI | p | users better / worse |", "|---|---:|---|---:|---|---:|---|"]
    for seed in args.seeds:
        best = {v: runs_of[v] / variant_dir(v) / f"seed{seed}" / "best.pt" for v in args.variant}
        missing = [str(p) for p in best.values() if not p.exists()]
        if missing:
            print(f"seed {seed}: skipped, no checkpoint at {', '.join(missing)}")
            continue
        base_targets, base = per_user(best[args.variant[0]], dataset, args.split, args.k)
        if args.results:
            write_result(args.results, args.set, best[args.variant[0]].parent, seed, None, args.tag)
        for variant in args.variant[1:]:
            targets, cand = per_user(best[variant], dataset, args.split, args.k)
            if targets != base_targets:
                raise SystemExit(f"{best[variant]} was evaluated on other users than the baseline (other data?)")
            paired = {metric: paired_difference(cand[metric], base[metric]) for metric in cand}
            if args.results:
                baseline = {"baseline_args": training_settings(best[args.variant[0]].parent)}
                write_result(args.results, args.set, best[variant].parent, seed,
                             paired_summary(paired, args.k) | baseline, args.tag)
            for metric in cand:
                if metric.startswith("MRR"):
                    continue
                d = paired[metric]
                lines.append(f"| {variant} | {seed} | {args.split} {metric} | {d['mean']:+.5f} | "
                             f"[{d['ci_low']:+.5f}, {d['ci_high']:+.5f}] | {d['p_value']:.3f} | "
                             f"{d['better']} / {d['worse']} of {d['users']} |")
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}")
    print(f"data {args.data}, runs {' '.join(map(str, args.runs))}, baseline {args.variant[0]}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
