"""Batched inference throughput of model.inference.Recommender, in sequences per second.

    python benchmarks/model_inference.py --checkpoint runs/ml1m-softmax/best.pt \
        --data ../shared/data/ml-1m/ml-1m.txt.gz --batch 256 --rounds 20

Feeds the dataset's test histories (raw ids, the newest max_len items each) in batches of --batch and
times two paths: `recommend` (raw ids in, raw ids out: mapping, padding, forward, top-k, mapping back)
and `recommend_indices` (pre-padded index tensors: the forward and top-k alone). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from seqrec.model.data import leave_one_out, load_dataset, pad_left
from seqrec.model.inference import Recommender


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--format", default=None)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=20, help="timed batches per path (after 2 warm-up batches)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rec = Recommender.from_checkpoint(args.checkpoint, device=args.device)
    dataset = load_dataset(args.data, args.format)
    split = leave_one_out(dataset, rec.item_map)
    histories, _ = split.eval_inputs("test")
    histories = [h[-rec.max_len:] for h in histories]
    raw = [[rec.item_map.raw(i) for i in h] for h in histories]
    n = len(histories)

    def batches(rows):
        for r in range(args.rounds + 2):
            start = (r * args.batch) % max(n - args.batch, 1)
            yield r >= 2, rows[start:start + args.batch]

    def timed(fn, rows) -> list[float]:
        times = []
        for counted, batch in batches(rows):
            t = time.perf_counter()
            fn(batch)
            if rec.device.type == "cuda":
                torch.cuda.synchronize()
            if counted:
                times.append(time.perf_counter() - t)
        return times

    raw_times = timed(lambda b: rec.recommend(b, k=args.k), raw)
    idx_times = timed(lambda b: rec.recommend_indices(pad_left(b, rec.max_len), k=args.k), histories)
    result = {
        "checkpoint": args.checkpoint,
        "version": rec.version,
        "device": str(rec.device),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "rounds": args.rounds,
        "max_len": rec.max_len,
        "n_items": rec.model.config.n_items,
        "recommend_seq_per_s": args.batch / statistics.median(raw_times),
        "recommend_indices_seq_per_s": args.batch / statistics.median(idx_times),
        "recommend_batch_ms_median": 1000 * statistics.median(raw_times),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
