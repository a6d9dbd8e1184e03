"""One accuracy run of an attention kind under the shared protocol (issue 4): `model.train.train`
(SASRec+ full cross-entropy, AdamW, early stopping on validation NDCG@10, test once on the best
validation model), plus — for the generative kinds — the test metrics of the same best model in
`sample` inference mode. Every row of docs/genatt.md comes from one call of this script.

    python benchmarks/genatt_compare.py --data ../shared/data/beauty/Beauty.txt --attention dgenatt \\
        --option denoise_weight=0.1 --max-len 50 --max-minutes 20 --out runs/genatt/beauty-dgenatt

Writes the trainer's files (best.pt, history.jsonl, metrics.json) and summary.json into --out.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import time
from pathlib import Path

import torch

from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.config import BLOCKS, FFNS, ModelConfig
from seqrec.model.data import ItemMap, item_categories, leave_one_out, load_dataset
from seqrec.model.evaluate import evaluate_split
from seqrec.model.sasrec import NEGATIVE_MIXES
from seqrec.model.train import SCHEDULES, TrainConfig, train

KEEP = ("HR@10", "NDCG@10", "MRR@10", "CC@10", "ILD@10", "Coverage@10")


def parse_option(text: str) -> tuple[str, object]:
    """`key=value` -> (key, value), the value read as a Python literal when it is one (1, 0.5, True)."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--option wants key=value, got {text!r}")
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a data file seqrec can read (see docs/model.md), e.g. ../shared/data/beauty/Beauty.txt")
    ap.add_argument("--attention", default="softmax", help="softmax, vgenatt or dgenatt")
    ap.add_argument("--option", type=parse_option, action="append", default=[], help="attention option key=value")
    ap.add_argument("--max-len", type=int, default=50, help="positions of history the model reads")
    ap.add_argument("--d-model", type=int, default=64, help="embedding width")
    ap.add_argument("--n-blocks", type=int, default=2, help="Transformer blocks")
    ap.add_argument("--dropout", type=float, default=0.2, help="dropout rate")
    ap.add_argument("--epochs", type=int, default=200, help="the cap; early stopping usually ends the run first")
    ap.add_argument("--max-minutes", type=float, default=None, help="wall-clock cap; no epoch starts that would pass it")
    ap.add_argument("--patience", type=int, default=5, help="evaluations without a better validation NDCG@10 before stopping")
    ap.add_argument("--eval-every", type=int, default=1, help="epochs between validations")
    ap.add_argument("--batch-size", type=int, default=128, help="training sequences per step")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    ap.add_argument("--loss", choices=("ce", "bce"), default="ce", help="ce: softmax cross-entropy; bce: SASRec's original loss")
    ap.add_argument("--negatives", type=int, default=0, help="with --loss ce: 0 = full cross-entropy, N = sampled softmax")
    ap.add_argument("--negative-mix", choices=NEGATIVE_MIXES, default="uniform", help="with --negatives: where negatives come from")
    ap.add_argument("--logq", action="store_true", help="with --negatives: logQ correction of the negatives' logits")
    ap.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing of the softmax cross-entropy")
    ap.add_argument("--block", choices=BLOCKS, default="sasrec", help="sasrec (pre-LN residual) or ligr (gated residual)")
    ap.add_argument("--ffn", choices=FFNS, default="relu", help="feed-forward: relu or swiglu")
    ap.add_argument("--schedule", choices=SCHEDULES, default="constant", help="learning rate after warm-up")
    ap.add_argument("--warmup-steps", type=int, default=0, help="optimiser steps of linear learning-rate warm-up")
    ap.add_argument("--seed", type=int, default=42, help="seeds initialisation, batch order and sampling")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (two runs at a time on two cores: 1 each)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="where to train and evaluate; cpu by default so that runs on different machines compare")
    ap.add_argument("--out", required=True, help="the run's folder: checkpoints, history.jsonl, metrics.json, summary.json")
    ap.add_argument("--resume", action="store_true",
                    help="continue the run in --out from its last.pt (e.g. with more --epochs or a longer --patience); "
                         "the model's settings come from that file")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: this machine's torch sees no CUDA device")
    if args.resume and not (Path(args.out) / "last.pt").is_file():
        ap.error(f"--resume: no {Path(args.out) / 'last.pt'} to continue from")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)

    dataset = load_dataset(args.data)
    item_map = ItemMap.from_items(dataset.item_ids())
    config = ModelConfig(n_items=len(item_map), max_len=args.max_len, d_model=args.d_model, n_blocks=args.n_blocks,
                         dropout=args.dropout, attention=args.attention, attention_options=dict(args.option),
                         block=args.block, ffn=args.ffn)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                      objective=args.loss, n_negatives=args.negatives, negative_mix=args.negative_mix, logq=args.logq,
                      label_smoothing=args.label_smoothing, schedule=args.schedule, warmup_steps=args.warmup_steps,
                      eval_every=args.eval_every, max_minutes=args.max_minutes, seed=args.seed, device=args.device,
                      progress=False)
    started = time.monotonic()
    result = train(dataset, config, cfg, args.out, resume=Path(args.out) / "last.pt" if args.resume else None)
    summary = {
        "attention": args.attention, "options": dict(args.option), "args": vars(args) | {"option": dict(args.option)},
        "loss": cfg.loss_label, "seed": args.seed,
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped": result.stopped,
        "seconds_per_epoch": round(result.seconds_per_epoch, 1), "wall_minutes": round((time.monotonic() - started) / 60, 1),
        "valid": {k: result.valid[k] for k in KEEP if k in result.valid},
        "test": {k: result.test[k] for k in KEEP if k in result.test},
    }
    if args.attention != "softmax":  # the same best model, eval in `sample` mode
        best = load_checkpoint(Path(args.out) / "best.pt", device=args.device)
        for module in best.model.modules():
            if hasattr(module, "set_inference_mode"):
                module.set_inference_mode("sample")
        split = leave_one_out(dataset, item_map)
        torch.manual_seed(args.seed)
        test = evaluate_split(best.model, split, "test", categories=item_categories(dataset, item_map))
        summary["test_sample"] = {k: test[k] for k in KEEP if k in test}
    with open(Path(args.out) / "summary.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
