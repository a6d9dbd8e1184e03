"""Issue 31's screen on the validation split: each run of `genatt_compare.py` (one training option
changed from today's default) against today's default of the same seed, user by user
(`model.metrics.paired_difference` on validation NDCG@10 and HR@10), written as one JSON file per run
under docs/results/quality/ and gathered into one table. The test split is not read here: the screen
selects, and only the final pick is tested (with `genatt_paired.py`).

    python benchmarks/quality_screen.py --data ../shared/data/beauty/Beauty.txt --set beauty --seeds 1 \\
        --baseline runs/quality/beauty/base --runs runs/quality/beauty/ligr runs/quality/beauty/swiglu \\
        --results docs/results/quality
    python benchmarks/quality_screen.py --table-only --write docs/model.md  # the table from the files

A run folder holds `seed<N>/` subfolders as genatt_compare.py left them (best.pt, summary.json); runs
not finished yet (no summary.json) are skipped with a line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from genatt_compare import KEEP
from genatt_paired import per_user
from genatt_seeds import machine
from genatt_table import PLACEMENT_ARGS, SIGNIFICANCE, mean_std, read_runs, write_tables
from seqrec.model.data import load_dataset
from seqrec.model.metrics import paired_difference

MARKERS = {"quality-screen": ("<!-- quality-screen:begin -->", "<!-- quality-screen:end -->")}
PAIRED_METRICS = ("NDCG@10", "HR@10")
# summary.json arguments that name a run rather than set its training
NOT_SETTINGS = ("data", "out", "seed", "resume", *PLACEMENT_ARGS)


def settings(summary: dict) -> dict[str, object]:
    return {k: v for k, v in summary["args"].items() if k not in NOT_SETTINGS}


def screen_result(set_name: str, run: Path, base: Path | None, paired: dict[str, dict] | None) -> dict:
    """One run's JSON: its settings, what differs from the baseline's, validation metrics, cost, and
    the paired differences against the baseline of the same seed (None for the baseline itself)."""
    summary = json.loads((run / "summary.json").read_text())
    ours = settings(summary)
    theirs = settings(json.loads((base / "summary.json").read_text())) if base else ours
    result = {"set": set_name, "split": "valid", "name": run.parent.name, "seed": summary["seed"],
              "loss": summary["loss"], "changed": {k: v for k, v in ours.items() if theirs.get(k) != v},
              "settings": ours, "valid": {k: summary["valid"][k] for k in KEEP if k in summary["valid"]},
              "best_epoch": summary["best_epoch"], "epochs": summary["epochs_run"], "stopped": summary["stopped"],
              "seconds_per_epoch": summary["seconds_per_epoch"], "wall_minutes": summary["wall_minutes"]}
    if paired is not None:
        result["baseline"] = base.parent.name
        result["paired"] = {m: {k: paired[m][k] for k in ("mean", "ci_low", "ci_high", "p_value", "better", "worse")}
                            for m in PAIRED_METRICS}
    return result


def table(results: list[dict]) -> str:
    """One row per set and run name: validation NDCG@10 and HR@10 (mean ± std over seeds), each seed's
    paired Δ NDCG@10 (p) against the baseline, and its cost in training time."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in results:
        groups[r["set"], r["name"]].append(r)
    lines = ["| set | run | changed from today's default | seeds | valid NDCG@10 | valid HR@10 | "
             "Δ NDCG@10 vs default per seed (p) | s/epoch | best epoch of |",
             "|---|---|---|---:|---:|---:|---|---:|---|"]
    for (set_name, name), group in sorted(groups.items(), key=lambda g: (g[0][0], "paired" in g[1][0], g[0][1])):
        group.sort(key=lambda r: r["seed"])
        changed = ", ".join(f"{k} {v}" for k, v in sorted(group[0]["changed"].items())) or "— (the default)"
        deltas = ", ".join(f"{r['paired']['NDCG@10']['mean']:+.4f} ({r['paired']['NDCG@10']['p_value']:.3f})"
                           + ("*" if r["paired"]["NDCG@10"]["p_value"] < SIGNIFICANCE else "")
                           for r in group if "paired" in r) or "baseline"
        lines.append(f"| {set_name} | {name} | {changed} | {','.join(str(r['seed']) for r in group)} | "
                     f"{mean_std([r['valid']['NDCG@10'] for r in group])} | {mean_std([r['valid']['HR@10'] for r in group])} | "
                     f"{deltas} | {'/'.join(str(round(r['seconds_per_epoch'])) for r in group)} | "
                     f"{'/'.join(str(r['best_epoch']) for r in group)} of {'/'.join(str(r['epochs']) for r in group)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="the data set the runs trained on")
    ap.add_argument("--set", help="its name in the result files (beauty, toys, ml-1m)")
    ap.add_argument("--baseline", type=Path, help="today's default: a genatt_compare.py run folder with seed<N>/")
    ap.add_argument("--runs", type=Path, nargs="+", default=[], help="run folders with seed<N>/, one option changed each")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", type=Path, default=Path("docs/results/quality"), help="where the JSON files go")
    ap.add_argument("--table-only", action="store_true", help="evaluate nothing; the table from --results")
    ap.add_argument("--write", type=Path, nargs="+", help="markdown files whose table between the markers is replaced")
    args = ap.parse_args()
    if not args.table_only:
        if not (args.data and args.set and args.baseline and args.runs):
            ap.error("give --data, --set, --baseline and --runs (or --table-only)")
        torch.set_num_threads(args.threads)
        dataset = load_dataset(args.data)
        args.results.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            base = args.baseline / f"seed{seed}"
            if not (base / "summary.json").exists():
                print(f"seed {seed}: the baseline {base} has not finished; nothing to pair against")
                continue
            base_targets, base_values = per_user(base / "best.pt", dataset, "valid", 10)
            results = [screen_result(args.set, base, None, None)]
            for folder in args.runs:
                run = folder / f"seed{seed}"
                if not (run / "summary.json").exists():
                    print(f"seed {seed}: {run} has not finished; skipped")
                    continue
                targets, values = per_user(run / "best.pt", dataset, "valid", 10)
                if targets != base_targets:
                    sys.exit(f"{run} was evaluated on other users than {base} (other data?)")
                paired = {m: paired_difference(values[m], base_values[m]) for m in PAIRED_METRICS}
                results.append(screen_result(args.set, run, base, paired))
            for r in results:
                path = args.results / f"{r['set']}_screen_{r['name']}_seed{seed}.json"
                path.write_text(json.dumps(r, indent=1) + "\n")
                print(f"wrote {path}")
    text = table(read_runs(args.results))
    if args.write:
        write_tables({"quality-screen": text}, args.write, MARKERS)
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}\n\n{text}")


if __name__ == "__main__":
    main()
