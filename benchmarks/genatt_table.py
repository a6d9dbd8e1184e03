"""docs/genatt.md's results tables, made from the per-run JSON files: `genatt_paired.py --results`
writes docs/results/genatt/ (one row per set, loss, variant and training settings: mean ± std over
seeds, and each seed's paired test against softmax of the same set, loss and seed), and
`replay_ml100k.py --results` writes docs/results/prequential/ (one row per kind and retraining
cadence, the same columns for the prequential replay), and `genatt_tune.py --results` writes
docs/results/genatt/tuning/ (one row per set, loss and variant: validation NDCG@10 of each setting of
the grid, the selected one in bold). The verdict table counts, per compared variant, the seeds on
which it beat softmax, tied or lost in the paired test: the README's answer to "which attention to
serve" is that table.

    python benchmarks/genatt_table.py                                 # print the tables
    python benchmarks/genatt_table.py --write docs/genatt.md README.md  # replace each table between its markers
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
           "tuning": ("<!-- genatt-tuning:begin -->", "<!-- genatt-tuning:end -->"),
           "verdict": ("<!-- genatt-verdict:begin -->", "<!-- genatt-verdict:end -->")}
# a paired difference counts as a win or a loss below this p-value, as a tie otherwise
SIGNIFICANCE = 0.05
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
    """The training settings a row stands for, and its batch (`genatt_paired.py --tag`) when it has one:
    runs of another batch are not pooled with these even at the same settings."""
    a = run.get("train_args", {})
    batch = f"; batch {run['tag']}" if run.get("tag") else ""
    return f"dropout {a.get('dropout')}, lr {a.get('lr')}, L {a.get('max_len')}{batch}"


def row_key(run: dict) -> tuple[str, str, str, str]:
    """What one row of the results and verdict tables stands for: set, loss, variant and settings."""
    return run["set"], run["loss"], variant_name(run), settings(run)


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def per_seed(group: list[dict]) -> tuple[str, str]:
    """Each seed's paired Δ NDCG@10 (p) and Δ CC@10 against the baseline, or 'baseline'; the baseline's
    settings are named where they are not the row's own (each kind at its own tuned settings)."""
    paired = [r["paired"] for r in group if "paired" in r]
    deltas = ", ".join(f"{p['delta_ndcg10']:+.4f} ({p['p']:.3f})" for p in paired) or "baseline"
    # the baseline is of the row's own batch: genatt_paired.py pairs within one --tag
    baselines = {settings({"train_args": p["baseline_args"], "tag": group[0].get("tag")})
                 for p in paired if "baseline_args" in p}
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
        groups[row_key(run)].append(run)
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


def verdict_table(runs: list[dict]) -> str:
    """Per set, loss, variant and settings: on how many seeds the variant beat softmax of the same seed
    (paired p < SIGNIFICANCE), tied or lost on test NDCG@10, and on how many its CC@10 was not lower."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        if "paired" in run:
            groups[row_key(run)].append(run["paired"])
    lines = ["| set | loss | variant | settings | seeds | wins / ties / losses | mean Δ NDCG@10 | CC@10 not lower |",
             "|---|---|---|---|---:|---|---:|---|"]
    for (set_name, loss, variant, setting), paired in sorted(groups.items()):
        significant = [p["delta_ndcg10"] for p in paired if p["p"] < SIGNIFICANCE]
        wins, losses = sum(d > 0 for d in significant), sum(d < 0 for d in significant)
        cc = [p["delta_cc10"] for p in paired if p.get("delta_cc10") is not None]
        cc_cell = f"{sum(d >= 0 for d in cc)} of {len(cc)}" if cc else "—"
        lines.append(f"| {set_name} | {loss} | {variant} | {setting} | {len(paired)} | "
                     f"{wins} / {len(paired) - wins - losses} / {losses} | "
                     f"{statistics.mean(p['delta_ndcg10'] for p in paired):+.4f} | {cc_cell} |")
    return "\n".join(lines)


def write_tables(tables: dict[str, str], files: list[Path], markers: dict[str, tuple[str, str]] = MARKERS) -> None:
    """Replace each table between its markers in every file that has them; every file must hold at least
    one table and every table must land in at least one file (checked before anything is written), so
    that a lost marker is an error rather than a stale table. `markers`: each table's (begin, end)."""
    updated: dict[Path, tuple[str, list[str]]] = {}
    for path in files:
        if not path.is_file():
            sys.exit(f"genatt_table: --write {path}: no such file")
        doc = path.read_text()
        present = [name for name, (begin, end) in markers.items() if begin in doc and end in doc]
        if not present:
            sys.exit(f"genatt_table: {path} has none of the tables' markers")
        for name in present:
            begin, end = markers[name]
            head, rest = doc.split(begin, 1)
            doc = f"{head}{begin}\n{tables[name]}\n{end}{rest.split(end, 1)[1]}"
        updated[path] = doc, present
    if missing := set(tables) - {name for _, present in updated.values() for name in present}:
        sys.exit(f"genatt_table: no file has the markers of {', '.join(sorted(missing))}")
    for path, (doc, present) in updated.items():
        path.write_text(doc)
        print(f"wrote {', '.join(present)} into {path}")


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
    ap.add_argument("--write", type=Path, nargs="+",
                    help="markdown files whose text between each table's markers is replaced")
    args = ap.parse_args()
    results = read_runs(args.results)
    tables = {"genatt": table(results), "prequential": prequential_table(read_runs(args.prequential)),
              "tuning": tuning_table(read_runs(args.tuning)), "verdict": verdict_table(results)}
    if args.write:
        write_tables(tables, args.write)
    else:
        print("\n\n".join(tables.values()))

if __name__ == "__main__":
    main()
