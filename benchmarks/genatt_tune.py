"""Per-kind tuning on validation only (issue 14): a grid of training settings, one `genatt_seeds.py --out`
folder per setting, is read back; for every variant the setting with the best mean validation NDCG@10
is selected, and every run is written as one small JSON with its validation metrics only — the test
score that genatt_compare.py also records is not carried over, so only the selected settings' test is
ever reported (by `genatt_paired.py`).

    for d in 0.2 0.5; do for lr in 1e-3 2e-3; do
      python benchmarks/genatt_seeds.py --data ../shared/data/beauty/Beauty.txt --seeds 1 --variant softmax \\
          --variant vgenatt --out runs/genatt/beauty-tune/d$d-lr$lr -- --dropout $d --lr $lr --max-len 50
    done; done
    python benchmarks/genatt_tune.py --runs runs/genatt/beauty-tune --set beauty --results docs/results/genatt/tuning

A kind's own options are screened in the same folder as variants with options, normally at the
setting its plain variant selected (`--variant dgenatt:denoise_weight=0 --out runs/genatt/beauty-tune/d0.5-lr1e-3`);
each kind then selects, on validation, the best of its plain variant's grid and its option variants.
Only plain variants must cover the whole grid: softmax has no options, and that grid is the budget
every kind shares.

The selected settings are then trained on more seeds and compared on test with `genatt_paired.py`
(one `--runs` folder per variant where the kinds selected different settings);
`genatt_table.py --write docs/genatt.md README.md` makes the grid's table from the JSON files.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from genatt_table import PLACEMENT_ARGS, result_name, settings

GRID_KEYS = ("dropout", "lr")  # the settings a grid varies; everything else must match across its runs


def read_grid(root: Path) -> list[dict]:
    """Every finished run under `<root>/<setting>/<variant>/seed<N>/summary.json`, as the JSON it is written as."""
    runs = []
    for summary_path in sorted(root.glob("*/*/seed*/summary.json")):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        run = {"loss": summary.get("loss", "ce"), "kind": summary["attention"], "options": summary["options"],
               "variant": summary_path.parent.parent.name, "seed": summary["seed"],
               "folder": str(summary_path.parent.parent.parent),
               "train_args": {k: v for k, v in summary["args"].items()
                              if k not in ("data", "out", "attention", "option", "seed", "resume", *PLACEMENT_ARGS)},
               "epochs": summary["epochs_run"], "best_epoch": summary["best_epoch"], "valid": summary["valid"]}
        runs.append(run | {"setting": settings(run)})
    return runs


def select(runs: list[dict]) -> dict[tuple[str, str], tuple[tuple[str, str], dict[tuple[str, str], float]]]:
    """(loss, kind) -> (the (variant, setting) with the best mean validation NDCG@10, every candidate's mean)."""
    scores: dict[tuple[str, str], dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        scores[(run["loss"], run["kind"])][(run["variant"], run["setting"])].append(run["valid"]["NDCG@10"])
    chosen = {}
    for key, by_candidate in scores.items():
        means = {candidate: statistics.mean(values) for candidate, values in by_candidate.items()}
        chosen[key] = (max(means, key=means.get), means)
    return chosen


def without_partial_grids(runs: list[dict]) -> tuple[list[dict], list[str]]:
    """(the runs of kinds whose plain variant finished every setting of the grid, one line per kind that
    did not): selecting over part of the grid would give that kind a smaller budget than the others.
    Variants with options are a screen at chosen settings and need not cover the grid."""
    grid = {run["setting"] for run in runs if not run["options"]}
    done: dict[tuple[str, str], set[str]] = {(run["loss"], run["kind"]): set() for run in runs}
    for run in runs:
        if not run["options"]:
            done[(run["loss"], run["kind"])].add(run["setting"])
    partial = {key for key, settings_done in done.items() if settings_done != grid}
    lines = [f"{loss} {kind}: {len(done[(loss, kind)])} of {len(grid)} settings finished; not selected"
             for loss, kind in sorted(partial)]
    return [run for run in runs if (run["loss"], run["kind"]) not in partial], lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, type=Path, help="the grid's folder: one genatt_seeds.py --out per setting")
    ap.add_argument("--set", required=True, help="the data set's name in the result files (beauty, toys, ml-1m)")
    ap.add_argument("--results", type=Path, help="write one validation-only JSON per run into this folder")
    args = ap.parse_args()
    if not args.runs.is_dir():
        ap.error(f"--runs {args.runs}: no such folder")
    runs = read_grid(args.runs)
    if not runs:
        ap.error(f"--runs {args.runs}: no finished run (<setting>/<variant>/seed<N>/summary.json)")
    keys = {key for run in runs for key in run["train_args"]}
    varied = {key for key in keys if len({json.dumps(run["train_args"].get(key)) for run in runs}) > 1}
    if varied - set(GRID_KEYS):
        ap.error(f"the grid's runs also differ in {', '.join(sorted(varied - set(GRID_KEYS)))}: not one protocol")

    runs, partial = without_partial_grids(runs)
    for line in partial:
        print(line)
    chosen = select(runs)
    for (loss, kind), (best, means) in sorted(chosen.items()):
        cells = ", ".join(f"{variant} at {setting}: {mean:.4f}" for (variant, setting), mean in sorted(means.items()))
        print(f"{loss} {kind}: selected {best[0]} at {best[1]} (mean validation NDCG@10: {cells})")
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        for run in runs:
            run |= {"set": args.set, "selected": chosen[(run["loss"], run["kind"])][0] == (run["variant"], run["setting"])}
            name = result_name(args.set, run["loss"], run["variant"],
                               f"dropout{run['train_args']['dropout']}", f"lr{run['train_args']['lr']}")
            (args.results / f"{name}_seed{run['seed']}.json").write_text(json.dumps(run, indent=1) + "\n")
        print(f"wrote {len(runs)} files into {args.results}")


if __name__ == "__main__":
    main()
