"""Prequential comparison of the attention kinds on ml-100k's real timeline, without and with
periodic retraining, in-process (the same scoring code as the Kafka path).

    python benchmarks/replay_ml100k.py --data ../shared/data/ml-100k/ml-100k.inter \
        --kinds softmax vgenatt dgenatt --cadences never 14d --report runs/replay-ml100k
    python benchmarks/replay_ml100k.py --data ../shared/data/ml-100k/ml-100k.inter \
        --kinds softmax vgenatt --cadences never --seeds 1 2 3 4 5 --results docs/results/prequential

Each kind's first model is trained on the older half of the log (by time) with the retraining
job's code; the newer half is then served click by click and scored against the list shown after
the user's previous click. With several kinds, each is compared with the first kind of the same
seed and cadence, paired per user (each user's mean NDCG@10 over their scored clicks).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from seqrec.model.config import ModelConfig
from seqrec.model.data import load_timed_clicks
from seqrec.model.metrics import paired_difference
from seqrec.model.train import TrainConfig
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows
from seqrec.pipeline.lifecycle.model_store import ModelStore
from seqrec.pipeline.evaluation.offline_eval import Cadence, EvalOptions, RunResult, evaluate_in_process
from seqrec.pipeline.evaluation.report import write_report
from seqrec.pipeline.lifecycle.retrain import retrain_once


def paired(candidate: RunResult, baseline: RunResult) -> dict[str, object]:
    """Per-user NDCG@10 of two runs on the same log: the mean difference, its CI and p."""
    users = sorted(baseline.report.user_ndcg)
    if sorted(candidate.report.user_ndcg) != users:
        raise SystemExit(f"{candidate.name} scored other users than {baseline.name}")
    d = paired_difference(torch.tensor([candidate.report.user_ndcg[u] for u in users]),
                          torch.tensor([baseline.report.user_ndcg[u] for u in users]))
    return {"delta_ndcg10": d["mean"], "ci95": [d["ci_low"], d["ci_high"]], "p": d["p_value"],
            "better": d["better"], "worse": d["worse"], "users": d["users"]}


def write_result(folder: Path, kind: str, cadence: Cadence, seed: int, run: RunResult, epochs: int,
                 versus: dict[str, object] | None) -> None:
    result = {"set": "ml-100k", "protocol": "prequential", "kind": kind, "cadence": cadence.label, "seed": seed,
              "first_model_epochs": epochs, "overall": run.report.overall, "scored": run.report.scored,
              "seconds": round(run.seconds, 1)}
    if versus is not None:
        result["paired"] = versus
    folder.mkdir(parents=True, exist_ok=True)
    name = f"ml-100k_prequential_{kind}_{cadence.label.replace(' ', '')}_seed{seed}.json"
    (folder / name).write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--kinds", nargs="+", default=["softmax", "vgenatt", "dgenatt"],
                        help="attention kinds; the first is the baseline of the paired tests")
    parser.add_argument("--cadences", nargs="+", default=["never", "14d"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="training seeds (every model of a run)")
    parser.add_argument("--epochs", type=int, default=30, help="first model's epoch cap")
    parser.add_argument("--retrain-epochs", type=int, default=3)
    parser.add_argument("--report", type=Path, default=Path("runs/replay-ml100k"))
    parser.add_argument("--results", type=Path, help="write one small JSON file per run into this folder")
    args = parser.parse_args()

    rows = load_timed_clicks(args.data)
    if rows is None:
        parser.error(f"{args.data} has no clock; this benchmark needs real timestamps (ml-100k)")
    clicks = list(clicks_from_rows(rows))
    cut = len(clicks) // 2
    print(f"machine: {platform.node()} {platform.machine()}; {len(clicks):,} clicks, first model on {cut:,}; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    runs: list[RunResult] = []
    table = ["| seed | kind | cadence | NDCG@10 | Δ NDCG@10 vs " + args.kinds[0] + " | 95 % CI | p |",
             "|---:|---|---|---:|---:|---|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            options = EvalOptions(ks=(5, 10), window_ms=7 * 86_400_000, warmup_fraction=0.5,
                                  retrain=replace(EvalOptions().retrain, epochs=args.retrain_epochs, seed=seed))
            baselines: dict[str, RunResult] = {}
            for kind in args.kinds:
                store = ModelStore(Path(tmp) / f"{kind}-{seed}")
                first = retrain_once(clicks[:cut], store, train_config=TrainConfig(epochs=args.epochs, patience=5,
                                                                                   progress=False, seed=seed),
                                     model_config=ModelConfig(n_items=1, max_len=50, attention=kind),
                                     work_dir=Path(tmp) / f"{kind}-{seed}-train")
                print(f"seed {seed}, {kind}: {first.line()}", flush=True)
                if not first.published:  # a failed training: the gate keeps it from serving, so no replay
                    table.append(f"| {seed} | {kind} | – | first model refused: {first.reason} | – | – | – |")
                    continue
                checkpoint = store.checkpoint_path(store.latest())
                for text in args.cadences:
                    cadence = Cadence.parse(text)
                    run = evaluate_in_process(clicks, checkpoint, cadence, options,
                                              f"{kind}, retrain {cadence.label}, seed {seed}", progress=False)
                    runs.append(run)
                    if kind == args.kinds[0]:
                        baselines[cadence.label] = run
                    base = baselines.get(cadence.label)  # none when the baseline's first model was refused
                    versus = paired(run, base) if base is not None and run is not base else None
                    if args.results:
                        write_result(args.results, kind, cadence, seed, run, args.epochs, versus)
                    ndcg = run.report.overall["NDCG@10"]
                    cells = (f"{versus['delta_ndcg10']:+.4f} | [{versus['ci95'][0]:+.4f}, {versus['ci95'][1]:+.4f}] | "
                             f"{versus['p']:.3f}") if versus else "– | – | –"
                    table.append(f"| {seed} | {kind} | {cadence.label} | {ndcg:.4f} | {cells} |")
                    print(f"{run.name}: " + ", ".join(f"{k} {v:.4f}" for k, v in run.report.overall.items()
                                                      if k != "events") + f" ({run.seconds:.0f} s)", flush=True)
    path = write_report(runs, args.report, "ml-100k prequential replay")
    print(f"report: {path}")
    print("\n".join(table))


if __name__ == "__main__":
    main()
