"""Does data-parallel training reach the quality of one process? Same data, seed and global batch,
trained by 1 process and by N (DistributedDataParallel), side by side: validation NDCG@10 of the
best epoch, epochs, seconds per epoch.

    python benchmarks/ddp_quality.py --data ../shared/data/beauty/Beauty.txt --nproc 2 --minutes 20
    python benchmarks/ddp_quality.py --data runs/device/ml-1m.txt.gz --device cuda --nproc 8   # 8 GPUs

Only the model package is needed (the device machine has torch and no Kafka client). On one GPU,
`--nproc` larger than the GPU count is refused: compare on the CPU's cores instead (gloo).
Writes one JSON with both runs (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from seqrec.model import distributed
from seqrec.model.config import ModelConfig
from seqrec.model.data import load_dataset
from seqrec.model.train import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--nproc", type=int, default=2, help="processes of the data-parallel run")
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock cap of each training")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch, the same for both runs")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=Path, default=Path("runs/ddp"), help="run folders go here")
    parser.add_argument("--out", type=Path, default=None, help="write both runs' figures here as JSON")
    args = parser.parse_args()
    if not args.data.exists():
        parser.error(f"no data file {args.data}")
    try:
        distributed.launch_size(args.nproc, args.device)
    except ValueError as exc:
        parser.error(str(exc))

    dataset = load_dataset(args.data)
    model_config = ModelConfig(n_items=1, max_len=args.max_len, dropout=args.dropout)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device=args.device,
                      max_minutes=args.minutes, patience=10, progress=False)
    print(f"{platform.node()}, {os.cpu_count()} cores, {args.device}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"{dataset.name}, global batch {args.batch_size}, seed {args.seed}", flush=True)
    rows = []
    for nproc in (1, args.nproc):
        result = distributed.run(train, dataset, model_config, cfg, args.runs / f"nproc{nproc}", nproc=nproc,
                                 device=args.device)
        row = {"nproc": nproc, "valid_ndcg@10": round(result.valid["NDCG@10"], 4), "best_epoch": result.best_epoch,
               "epochs_run": result.epochs_run, "stopped": result.stopped,
               "seconds_per_epoch": round(result.seconds_per_epoch, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"date": f"{datetime.now(timezone.utc):%Y-%m-%d}", "data": str(args.data),
                                        "device": args.device, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
