"""What the generative part of a trained checkpoint actually does (issue 4), on validation histories:
for vgenatt the KL per layer (nats per position) and how many latent dimensions are active
(posterior variance of mu over positions > 0.01); for each kind the mean total-variation distance
between its maps and the maps of plain softmax on the same q, k (how far generation moved them), and
between its `mean` and `sample` maps (how much the noise moves them: is `sample` a diversity knob?),
and the std of that move in logit units (log-weights centred per row): the scale to give softmax's
`logit_noise` control (issue 14).

    python benchmarks/genatt_diagnose.py --data ../shared/data/beauty/Beauty.txt \\
        --checkpoint runs/genatt/beauty-vgenatt/best.pt --users 512
"""

from __future__ import annotations

import argparse
import json

import torch

from seqrec.model.attention._genatt import masked_softmax, split_heads
from seqrec.model.attention.base import causal_mask
from seqrec.model.checkpoint import load_checkpoint
from seqrec.model.data import leave_one_out, load_dataset, pad_left


def logit_shift_std(a: torch.Tensor, b: torch.Tensor, allowed: torch.Tensor) -> float:
    """Std over the allowed entries of log a - log b, each row centred (softmax is shift-invariant):
    how far, in logit units, the noise moved the (B, H, L, L) maps."""
    d = (a.clamp_min(1e-12).log() - b.clamp_min(1e-12).log()) * allowed
    n = allowed.sum(-1, keepdim=True)
    centred = (d - d.sum(-1, keepdim=True) / n.clamp_min(1)) * allowed
    keep = n.squeeze(-1) > 1  # rows with one key have no relative logit to move
    return round((centred.pow(2).sum(-1)[keep].sum() / (n.squeeze(-1)[keep] - 1).sum()).sqrt().item(), 4)


def tv(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor) -> float:
    """Mean total-variation distance between the (B, H, L, L) maps a and b over the real query rows."""
    return round(0.5 * (a - b).abs().sum(-1)[rows].mean().item(), 4)


@torch.inference_mode()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--users", type=int, default=512)
    args = ap.parse_args()
    torch.manual_seed(0)
    ckpt = load_checkpoint(args.checkpoint, device="cpu")
    model = ckpt.model.eval()
    for module in model.modules():
        if hasattr(module, "set_inference_mode"):
            module.set_inference_mode("mean")
    histories, _ = leave_one_out(load_dataset(args.data), ckpt.item_map).eval_inputs("valid")
    items = pad_left(histories[: args.users], model.config.max_len)
    x, valid = model._embed(items)
    report = []
    for i, block in enumerate(model.blocks):
        h = block.ln_attn(x)
        attn = block.attn
        res = attn(h, valid, return_weights=True)
        q, k, _ = (split_heads(t, attn.n_heads) for t in attn.qkv(h).split(h.shape[-1], dim=2))
        plain = masked_softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, causal_mask(valid))
        rows = valid[:, None, :].expand_as(plain[..., 0])  # (B, H, L) real query rows

        attn.set_inference_mode("sample")
        sampled = attn(h, valid, return_weights=True).weights
        attn.set_inference_mode("mean")
        allowed = (causal_mask(valid) & valid[:, None, :, None]).expand_as(plain)
        row = {"block": i, "tv_vs_softmax_maps": tv(res.weights, plain, rows),
               "tv_sample_vs_mean_maps": tv(sampled, res.weights, rows),
               "logit_shift_std_sample_vs_mean": logit_shift_std(sampled, res.weights, allowed)}
        if hasattr(attn, "encoder"):
            mu, logvar = attn.encoder(attn.summary(h, valid)).chunk(2, dim=-1)
            kl = 0.5 * (mu.pow(2) + logvar.clamp(-8, 8).exp() - 1 - logvar.clamp(-8, 8)).sum(-1)
            if attn.options.posterior == "prefix":  # with posterior=target, `encoder` is a learned prior, not N(0, I)
                row["kl_nats_per_position"] = round(kl[valid].mean().item(), 4)
            row["active_latent_dims"] = int((mu[valid].var(0) > 0.01).sum())
            row["mean_sigma"] = round((0.5 * logvar[valid]).exp().mean().item(), 4)
        report.append(row)
        x, _ = block(x, valid)
    print(json.dumps({"checkpoint": args.checkpoint, "attention": model.config.attention, "blocks": report}))


if __name__ == "__main__":
    main()
