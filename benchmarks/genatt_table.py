"""docs/genatt.md's results tables, made from the per-run JSON files: `genatt_paired.py --results`
writes docs/results/genatt/ (one row per set, loss, variant and training settings: mean ± std over
seeds, and each seed's paired test against softmax of the same set, loss and seed), and
`replay_ml100k.py --results` writes docs/results/prequential/ (one row per kind and retraining
cadence, the same columns for the prequential replay), and `genatt_tune.py --results` writes
docs/results/genatt/tuning/ (one row per set, loss and variant: validation NDCG@10 of each setting of
the grid, the selected one in bold).

    python benchmarks/genatt_table.py                       # print the tables
    python benchmarks/genatt_table.py --write docs/genatt.md  # replace each table between its markers
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

MARKERS = {"genatt": ("<!-- genatt-results:begin -->", "<!-- genatt-results:end -->"),
           "prequential": ("<!-- prequential-results:begin -->", "<!-- prequential-results:end -->"),
           "tuning": ("<!-- genatt-tuning:begin -->", "<!-- genatt-tuning:end -->")}
# genatt_compare.py arguments that say where a run ran, not what it trained: left out of its recorded settings
PLACEMENT_ARGS = ("threads", "device")
HEADER = ("| set | loss | variant | settings | seeds | valid NDCG@10 | test NDCG@10 | test CC@10 | "
          "Δ NDCG@10 vs softmax per seed (p) | Δ CC@10 per seed | epochs |")


def result_name(set_name: str, loss: str, variant_folder: str, *extra: str) -> str:
    """A result file's name (without the seed and suffix): `<set>_<loss>_<variant>[_<extra>...]`."""
    return "_".join(filter(None, (set_name, loss.replace(":", ""), variant_folder.replace("=", "-"), *extra)))


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


def per_seed(group: list[dict]) -> tuple[str, str]:
    """Each seed's paired Δ NDCG@10 (p) and Δ CC@10 against the baseline, or 'baseline'; the baseline's
    settings are named where they are not the row's own (each kind at its own tuned settings)."""
    paired = [r["paired"] for r in group if "paired" in r]
    deltas = ", ".join(f"{p['delta_ndcg10']:+.4f} ({p['p']:.3f})" for p in paired) or "baseline"
    baselines = {settings({"train_args": p["baseline_args"]}) for p in paired if "baseline_args" in p}
    if baselines - {settings(group[0])}:
        deltas += f" vs softmax at {'; '.join(sorted(baselines))}"
    cc = ", ".join(f"{p['delta_cc10']:+.5f}" for p in paired if p.get("delta_cc10") is not None) or "—"
    return deltas, cc


def prequential_table(runs: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["set"], run["kind"], run["cadence"])].append(run)
    lines = ["| set | kind | retraining | seeds | NDCG@10 | HR@10 | coverage@10 | Δ NDCG@10 vs softmax per seed (p) | "
             "users better / worse (mean) |", "|---|---|---|---:|---:|---:|---:|---|---|"]
    for (set_name, kind, cadence), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] != "softmax", g[0])):
        group.sort(key=lambda r: r["seed"])
        paired = [r["paired"] for r in group if "paired" in r]
        better = (f"{statistics.mean(p['better'] for p in paired):.0f} / {statistics.mean(p['worse'] for p in paired):.0f}"
                  if paired else "—")
        lines.append(
            f"| {set_name} | {kind} | {cadence} | {','.join(str(r['seed']) for r in group)} | "
            f"{mean_std([r['overall']['NDCG@10'] for r in group])} | {mean_std([r['overall']['HR@10'] for r in group])} | "
            f"{mean_std([r['overall']['coverage@10'] for r in group])} | {per_seed(group)[0]} | {better} |")
    return "\n".join(lines)


def tuning_table(runs: list[dict]) -> str:
    """One row per set, loss and variant; one column per setting of the grid (validation NDCG@10)."""
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        groups[(run["set"], run["loss"], run["variant"])][run["setting"]].append(run)
    columns = sorted({run["setting"] for run in runs})
    lines = ["| set | loss | variant | seeds | " + " | ".join(columns) + " |", "|---|---|---|---:|" + "---:|" * len(columns)]
    for (set_name, loss, variant), by_setting in sorted(groups.items()):
        cells = []
        for setting in columns:
            group = by_setting.get(setting, [])
            cell = mean_std([r["valid"]["NDCG@10"] for r in group]) if group else "not run"
            cells.append(f"**{cell}**" if group and group[0]["selected"] else cell)
        seeds = sorted({r["seed"] for group in by_setting.values() for r in group})
        lines.append(f"| {set_name} | {loss} | {variant} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(runs: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["set"], run["loss"], variant_name(run), settings(run))].append(run)
    lines = [HEADER, "|---|---|---|---|---:|---:|---:|---:|---|---|---|"]
    for (set_name, loss, variant, setting), group in sorted(groups.items()):
        group.sort(key=lambda r: r["seed"])
        deltas, cc = per_seed(group)
        lines.append(
            f"| {set_name} | {loss} | {variant} | {setting} | {','.join(str(r['seed']) for r in group)} | "
            f"{mean_std([r['valid']['NDCG@10'] for r in group])} | {mean_std([r['test']['NDCG@10'] for r in group])} | "
            f"{mean_std([r['test'].get('CC@10', float('nan')) for r in group])} | {deltas} | {cc} | "
            f"{'/'.join(str(r['best_epoch']) for r in group)} of {'/'.join(str(r['epochs']) for r in group)} |")
    return "\n".join(lines)


def read_runs(folder: Path) -> list[dict]:
    files = sorted(folder.glob("*.json"))
    if not files:
        sys.exit(f"genatt_table: no result files in {folder}")
    return [json.loads(f.read_text()) for f in files]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("docs/results/genatt"))
    ap.add_argument("--prequential", type=Path, default=Path("docs/results/prequential"))
    ap.add_argument("--tuning", type=Path, default=Path("docs/results/genatt/tuning"))
    ap.add_argument("--write", type=Path, help="a markdown file whose text between each table's markers is replaced")
    args = ap.parse_args()
    tables = {"genatt": table(read_runs(args.results)), "prequential": prequential_table(read_runs(args.prequential)),
              "tuning": tuning_table(read_runs(args.tuning))}
    if not args.write:
        print("\n\n".join(tables.values()))
        return
    doc = args.write.read_text()
    for name, text in tables.items():
        begin, end = MARKERS[name]
        if begin not in doc or end not in doc:
            sys.exit(f"genatt_table: {args.write} has no {begin} ... {end} markers")
        head, rest = doc.split(begin, 1)
        doc = f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}"
    args.write.write_text(doc)
    print(f"wrote {len(tables)} tables into {args.write}")


if __name__ == "__main__":
    main()
