"""Batched inference throughput of model.inference.Recommender, in sequences per second.

    python benchmarks/model_inference.py --checkpoint runs/ml1m-softmax/best.pt \
        --data ../shared/data/ml-1m/ml-1m.txt.gz --batch 256 --rounds 20

Feeds the dataset's test histories (raw ids, the newest max_len items each) in batches of --batch and
times two paths: `recommend` (raw ids in, raw ids out: mapping, padding, forward, top-k, mapping back)
and `recommend_indices` (pre-padded index tensors: the forward and top-k alone). Prints one JSON line.

Side by side (issue 31): each `--compare block=ligr,ffn=swiglu` adds a model of the checkpoint's config with
those fields changed, untrained (the cost does not depend on the weights), timed in the same rounds as
the checkpoint's model, one batch each in turn, so that load on a shared machine hits them alike. Then
one JSON line per model, with its median times over the checkpoint model's (`*_ratio`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace

import torch

from genatt_compare import parse_option
from seqrec.model.data import leave_one_out, load_dataset, pad_left
from seqrec.model.inference import Recommender
from seqrec.model.sasrec import SASRec


def changed_model(rec: Recommender, spec: str) -> Recommender:
    """An untrained model of `rec`'s config with the fields in `spec` ("key=value,key=value") changed."""
    changes = dict(parse_option(item) for item in spec.split(","))
    torch.manual_seed(0)
    model = SASRec(replace(rec.model.config, **changes))
    return Recommender(model, rec.item_map, version=f"untrained {spec}", device=rec.device)


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
    ap.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                    help="also time an untrained model of the checkpoint's config with these fields changed")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rec = Recommender.from_checkpoint(args.checkpoint, device=args.device)
    models = {"checkpoint": rec} | {spec: changed_model(rec, spec) for spec in args.compare}
    dataset = load_dataset(args.data, args.format)
    split = leave_one_out(dataset, rec.item_map)
    histories, _ = split.eval_inputs("test")
    histories = [h[-rec.max_len:] for h in histories]
    raw = [[rec.item_map.raw(i) for i in h] for h in histories]
    n = len(histories)

    def batches():
        for r in range(args.rounds + 2):
            start = (r * args.batch) % max(n - args.batch, 1)
            yield r >= 2, slice(start, start + args.batch)

    def timed(model: Recommender, fn, batch) -> float:
        t = time.perf_counter()
        fn(model, batch)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    paths = {"recommend": (lambda m, rows: m.recommend(raw[rows], k=args.k)),
             "recommend_indices": (lambda m, rows: m.recommend_indices(pad_left(histories[rows], m.max_len), k=args.k))}
    times: dict[tuple[str, str], list[float]] = {(name, path): [] for name in models for path in paths}
    for counted, rows in batches():  # every model and path on the same batch, in turn
        for name, model in models.items():
            for path, fn in paths.items():
                seconds = timed(model, fn, rows)
                if counted:
                    times[name, path].append(seconds)
    median = {key: statistics.median(values) for key, values in times.items()}
    for name, model in models.items():
        result = {
            "checkpoint": args.checkpoint,
            "model": name,
            "version": model.version,
            "device": str(model.device),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "batch": args.batch,
            "rounds": args.rounds,
            "max_len": model.max_len,
            "n_items": model.model.config.n_items,
            "recommend_seq_per_s": args.batch / median[name, "recommend"],
            "recommend_indices_seq_per_s": args.batch / median[name, "recommend_indices"],
            "recommend_batch_ms_median": 1000 * median[name, "recommend"],
            "recommend_indices_batch_ms_median": 1000 * median[name, "recommend_indices"],
        }
        if name != "checkpoint":
            result |= {f"{path}_ratio": median[name, path] / median["checkpoint", path] for path in paths}
        print(json.dumps(result))


if __name__ == "__main__":
    main()
