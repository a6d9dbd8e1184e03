"""Several seeds of several attention variants under one protocol (issue 4), run one after another,
then one markdown table: mean ± std over seeds of each metric, and the per-seed paired differences
of every variant against the first one.

    python benchmarks/genatt_seeds.py --data ../shared/data/lastfm/LastFM.txt --seeds 1 2 3 \\
        --variant softmax --variant vgenatt:decoder=gate,free_bits=0.5 --variant dgenatt \\
        --out runs/genatt/lastfm -- --max-len 50 --dropout 0.5 --lr 2e-3 --patience 10

A variant is `kind[:key=value,...]` (attention options). Each run is one call of
`benchmarks/genatt_compare.py` (the arguments after `--` go to it) into
`<out>/<variant>/seed<seed>`; a run whose summary.json exists is not repeated, so the command can be
resumed, and `--table-only` prints the table from what is there.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

COMPARE = Path(__file__).with_name("genatt_compare.py")
COLUMNS = ("valid NDCG@10", "test HR@10", "test NDCG@10", "test MRR@10", "test CC@10", "test ILD@10",
           "test Coverage@10", "s/epoch", "best epoch")
PAIRED = ("valid NDCG@10", "test NDCG@10", "test CC@10")


def variant_dir(variant: str) -> str:
    return variant.replace(":", "_").replace(",", "_")


def variant_args(variant: str) -> list[str]:
    kind, _, options = variant.partition(":")
    args = ["--attention", kind]
    for option in filter(None, options.split(",")):
        args += ["--option", option]
    return args


def row_of(summary: dict) -> dict[str, float]:
    """The table's columns from one genatt_compare summary.json."""
    row = {f"valid {k}": v for k, v in summary["valid"].items()} | {f"test {k}": v for k, v in summary["test"].items()}
    return row | {"s/epoch": summary["seconds_per_epoch"], "best epoch": summary["best_epoch"]}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()}: {os.cpu_count()} x {cpu}, torch {torch.__version__}, python {platform.python_version()}"


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    digits = 1 if max(abs(v) for v in values) >= 1 else 4
    if len(values) == 1:  # one seed: no spread to report
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def table(rows: dict[str, dict[int, dict[str, float]]]) -> str:
    lines = ["| variant | seeds | " + " | ".join(COLUMNS) + " |", "|---|---:|" + "---:|" * len(COLUMNS)]
    for variant, by_seed in rows.items():
        cells = [mean_std([r[c] for r in by_seed.values() if c in r]) for c in COLUMNS]
        lines.append(f"| {variant} | {len(by_seed)} | " + " | ".join(cells) + " |")
    base_name, base = next(iter(rows.items()))
    lines += ["", f"Paired differences against `{base_name}` (same seed), per seed and mean ± std:", "",
              "| variant | " + " | ".join(f"Δ {c}" for c in PAIRED) + " |", "|---|" + "---|" * len(PAIRED)]
    for variant, by_seed in list(rows.items())[1:]:
        seeds = sorted(set(by_seed) & set(base))
        cells = []
        for c in PAIRED:
            diffs = [by_seed[s][c] - base[s][c] for s in seeds if c in by_seed[s]]
            cells.append(" ".join(f"{d:+.4f}" for d in diffs) + f" ({mean_std(diffs)})" if diffs else "-")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    argv = sys.argv[1:]
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Arguments after `--` go to genatt_compare.py for every run.")
    ap.add_argument("--data", required=True)
    ap.add_argument("--variant", action="append", required=True, help="kind[:key=value,...]; the first is the baseline")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--out", required=True)
    ap.add_argument("--table-only", action="store_true", help="run nothing; print the table of the finished runs")
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if not args.table_only and not Path(args.data).is_file():
        ap.error(f"--data {args.data!r}: no such file")

    rows: dict[str, dict[int, dict[str, float]]] = {}
    for variant in args.variant:
        rows[variant] = {}
        for seed in args.seeds:
            out = Path(args.out) / variant_dir(variant) / f"seed{seed}"
            if not (out / "summary.json").exists() and not args.table_only:
                cmd = [sys.executable, str(COMPARE), "--data", args.data, *variant_args(variant), "--seed", str(seed),
                       "--out", str(out), *passthrough]
                out.mkdir(parents=True, exist_ok=True)
                with open(out / ".lock", "w") as lock:
                    try:  # two runs writing one folder each overwrite the other's best.pt and history
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        print(f"skipped {out}: another process is training it", flush=True)
                        continue
                    print("+", " ".join(cmd), flush=True)
                    with open(out / "log.txt", "w", encoding="utf-8") as log:
                        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
                    if done.returncode:  # the training's own message is in its log, not on this console
                        sys.exit(f"genatt_seeds: the run in {out} failed (exit {done.returncode}); see {out / 'log.txt'}")
            if (out / "summary.json").exists():
                rows[variant][seed] = row_of(json.loads((out / "summary.json").read_text(encoding="utf-8")))
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}")
    print(f"data {args.data}, seeds {args.seeds}, genatt_compare.py {' '.join(passthrough)}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
