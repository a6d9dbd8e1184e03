"""Inference-time ablation of a trained generative-attention checkpoint (issue 4): the same weights
evaluated under other inference options, no retraining. For dgenatt: inference steps, start
fraction and mean/sample; for vgenatt: mean/sample. Reports validation and test metrics, so a
setting can be chosen on validation and read on test.

    python benchmarks/genatt_infer_ablation.py --data ../shared/data/beauty/Beauty.txt \\
        --checkpoint runs/genatt/beauty-dgenatt/best.pt --set inference_steps=1 --set inference_steps=4,start_fraction=1.0

Each --set is one variant: comma-separated key=value options laid over the checkpoint's own.
"""

from __future__ import annotations

import argparse
import ast
import json
from dataclasses import replace

import torch

from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.data import item_categories, leave_one_out, load_dataset
from seqrec.model.evaluate import evaluate_split
from seqrec.model.sasrec import SASRec

KEEP = ("HR@10", "NDCG@10", "MRR@10", "CC@10", "ILD@10", "Coverage@10")


def parse_set(text: str) -> dict[str, object]:
    """`a=1,b=mean` -> {"a": 1, "b": "mean"} (values read as Python literals when they are)."""
    out: dict[str, object] = {}
    for part in filter(None, text.split(",")):
        key, _, raw = part.partition("=")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--set", type=parse_set, action="append", default=[], help="one variant: key=value[,key=value]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="torch seed before each evaluation (sample mode)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ckpt = load_checkpoint(args.checkpoint, device="cpu")
    dataset = load_dataset(args.data)
    split = leave_one_out(dataset, ckpt.item_map)
    categories = item_categories(dataset, ckpt.item_map)
    rows = []
    for overrides in [{}] + args.set:
        options = {**ckpt.config.attention_options, **overrides}
        model = SASRec(replace(ckpt.config, attention_options=options))
        model.load_state_dict(ckpt.model.state_dict())
        model.eval()
        row = {"overrides": overrides}
        for which in ("valid", "test"):
            torch.manual_seed(args.seed)
            m = evaluate_split(model, split, which, ks=(10,), categories=categories)
            row[which] = {k: m[k] for k in KEEP if k in m}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| overrides | valid NDCG@10 | test HR@10 | test NDCG@10 | test MRR@10 | test CC@10 | test ILD@10 | test Cov@10 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        t = r["test"]
        label = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "(as trained)"
        print(f"| {label} | {r['valid']['NDCG@10']:.4f} | {t['HR@10']:.4f} | {t['NDCG@10']:.4f} | {t['MRR@10']:.4f} | "
              f"{t.get('CC@10', float('nan')):.4f} | {t.get('ILD@10', float('nan')):.4f} | {t['Coverage@10']:.4f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": {k: v for k, v in vars(args).items()}, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
