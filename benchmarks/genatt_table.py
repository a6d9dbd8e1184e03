"""docs/genatt.md's results table, made from the per-run JSON files that `genatt_paired.py --results`
writes (docs/results/genatt/): one row per (set, loss, variant, training settings), mean ± std over
seeds, and each seed's paired test against softmax of the same set, loss and seed.

    python benchmarks/genatt_table.py                       # print the table
    python benchmarks/genatt_table.py --write docs/genatt.md  # replace the table between its markers
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

BEGIN, END = "<!-- genatt-results:begin -->", "<!-- genatt-results:end -->"
HEADER = ("| set | loss | variant | settings | seeds | valid NDCG@10 | test NDCG@10 | test CC@10 | "
          "Δ NDCG@10 vs softmax per seed (p) | Δ CC@10 per seed | epochs |")


def variant_name(run: dict) -> str:
    options = ",".join(f"{k}={v}" for k, v in sorted(run["options"].items()))
    return f"{run['kind']}:{options}" if options else run["kind"]


def settings(run: dict) -> str:
    a = run.get("train_args", {})
    return f"dropout {a.get('dropout')}, lr {a.get('lr')}, L {a.get('max_len')}"


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(runs: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["set"], run["loss"], variant_name(run), settings(run))].append(run)
    lines = [HEADER, "|---|---|---|---|---:|---:|---:|---:|---|---|---|"]
    for (set_name, loss, variant, setting), group in sorted(groups.items()):
        group.sort(key=lambda r: r["seed"])
        paired = [r["paired"] for r in group if "paired" in r]
        deltas = ", ".join(f"{p['delta_ndcg10']:+.4f} ({p['p']:.3f})" for p in paired) or "baseline"
        cc = ", ".join(f"{p['delta_cc10']:+.5f}" for p in paired if p.get("delta_cc10") is not None) or "—"
        lines.append(
            f"| {set_name} | {loss} | {variant} | {setting} | {','.join(str(r['seed']) for r in group)} | "
            f"{mean_std([r['valid']['NDCG@10'] for r in group])} | {mean_std([r['test']['NDCG@10'] for r in group])} | "
            f"{mean_std([r['test'].get('CC@10', float('nan')) for r in group])} | {deltas} | {cc} | "
            f"{'/'.join(str(r['best_epoch']) for r in group)} of {'/'.join(str(r['epochs']) for r in group)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("docs/results/genatt"))
    ap.add_argument("--write", type=Path, help=f"a markdown file whose text between {BEGIN} and {END} is replaced")
    args = ap.parse_args()
    files = sorted(args.results.glob("*.json"))
    if not files:
        sys.exit(f"genatt_table: no result files in {args.results}")
    text = table([json.loads(f.read_text()) for f in files])
    if not args.write:
        print(text)
        return
    doc = args.write.read_text()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"genatt_table: {args.write} has no {BEGIN} ... {END} markers")
    head, rest = doc.split(BEGIN, 1)
    args.write.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")
    print(f"wrote the table of {len(files)} runs into {args.write}")


if __name__ == "__main__":
    main()
