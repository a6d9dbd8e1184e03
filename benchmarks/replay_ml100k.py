"""Prequential comparison of the attention kinds on ml-100k's real timeline, without and with
periodic retraining, in-process (the same scoring code as the Kafka path).

    python benchmarks/replay_ml100k.py --data ../shared/data/ml-100k/ml-100k.inter \
        --kinds softmax vgenatt dgenatt --cadences never 14d --report runs/replay-ml100k

Each kind's first model is trained on the older half of the log (by time) with the retraining
job's code; the newer half is then served click by click and scored against the list shown after
the user's previous click.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from dataclasses import replace
from pathlib import Path

from seqrec.model.config import ModelConfig
from seqrec.model.data import load_timed_clicks
from seqrec.model.train import TrainConfig
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows
from seqrec.pipeline.lifecycle.model_store import DirectoryModelStore
from seqrec.pipeline.evaluation.offline_eval import Cadence, EvalOptions, evaluate_in_process
from seqrec.pipeline.evaluation.report import write_report
from seqrec.pipeline.lifecycle.retrain import retrain_once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--kinds", nargs="+", default=["softmax", "vgenatt", "dgenatt"])
    parser.add_argument("--cadences", nargs="+", default=["never", "14d"])
    parser.add_argument("--epochs", type=int, default=30, help="first model's epoch cap")
    parser.add_argument("--retrain-epochs", type=int, default=3)
    parser.add_argument("--report", type=Path, default=Path("runs/replay-ml100k"))
    args = parser.parse_args()

    rows = load_timed_clicks(args.data)
    if rows is None:
        parser.error(f"{args.data} has no clock; this benchmark needs real timestamps (ml-100k)")
    clicks = list(clicks_from_rows(rows))
    cut = len(clicks) // 2
    options = EvalOptions(ks=(5, 10), window_ms=7 * 86_400_000, warmup_fraction=0.5,
                          retrain=replace(EvalOptions().retrain, epochs=args.retrain_epochs))
    print(f"machine: {platform.node()} {platform.machine()}; {len(clicks):,} clicks, first model on {cut:,}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            store = DirectoryModelStore(Path(tmp) / kind)
            first = retrain_once(clicks[:cut], store, train_config=TrainConfig(epochs=args.epochs, patience=5,
                                                                               progress=False),
                                 model_config=ModelConfig(n_items=1, max_len=50, attention=kind),
                                 work_dir=Path(tmp) / f"{kind}-train")
            print(first.line())
            checkpoint = store.checkpoint_path(store.latest())
            for text in args.cadences:
                cadence = Cadence.parse(text)
                run = evaluate_in_process(clicks, checkpoint, cadence, options, f"{kind}, retrain {cadence.label}",
                                          progress=False)
                runs.append(run)
                print(f"{run.name}: " + ", ".join(f"{k} {v:.4f}" for k, v in run.report.overall.items()
                                                  if k != "events") + f" ({run.seconds:.0f} s)")
    path = write_report(runs, args.report, "ml-100k prequential replay")
    print(f"report: {path}")
    print(json.dumps({r.name: r.report.overall for r in runs}, indent=1))


if __name__ == "__main__":
    main()
