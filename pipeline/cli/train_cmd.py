"""`seqrec train` and `seqrec evaluate`: parse, call model.train / model.evaluate, print."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from seqrec.model.config import BLOCKS, FFNS
from seqrec.model.data import FORMATS, ItemMap, item_categories, leave_one_out, load_dataset
from seqrec.model.errors import DataError
from seqrec.model.sasrec import NEGATIVE_MIXES
from seqrec.model.train import SCHEDULES

log = logging.getLogger(__name__)

DEFAULT_NEGATIVES = 256  # --loss sampled without --negatives: about 2 % of beauty's 12,101 items

_METRIC_ORDER = ("HR", "NDCG", "MRR", "CC", "ILD", "Coverage")


def _data_options(fn):
    fn = click.option("--attributes", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="item2attributes JSON for CC/ILD (default: <stem>_item2attributes.json beside --data).")(fn)
    fn = click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                      help="Dataset format (default: detected from the path).")(fn)
    fn = click.option("--data", "data", type=click.Path(path_type=Path), required=True,
                      help="Dataset file (SASRec pairs, S3Rec lines, RecBole .inter, CSV or Parquet log).")(fn)
    return fn


def _load(data: Path, fmt: str | None, attributes: Path | None):
    if not data.exists():
        raise DataError(f"dataset file not found: {data}")
    return load_dataset(data, fmt, attributes)


def format_table(sections: dict[str, dict[str, float]]) -> str:
    """Rows = metric names (HR, NDCG, ... by K), one column per section."""
    names = sorted({k for m in sections.values() for k in m if "@" in k},
                   key=lambda k: (_METRIC_ORDER.index(k.split("@")[0]) if k.split("@")[0] in _METRIC_ORDER else 99,
                                  int(k.split("@")[1])))
    cols = list(sections)
    width = max([len(n) for n in names] + [6])
    lines = [f"{'metric':<{width}}  " + "  ".join(f"{c:>12}" for c in cols)]
    for n in names:
        cells = [f"{sections[c][n]:>12.4f}" if n in sections[c] else f"{'-':>12}" for c in cols]
        lines.append(f"{n:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


@click.command()
@_data_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder for best.pt, last.pt, history.jsonl, metrics.json.")
@click.option("--attention", default="softmax", show_default=True, help="Attention kind (model.attention registry).")
@click.option("--epochs", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Learning rate. With --resume, a rate other than the run's first one replaces the current one.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--max-len", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--d-model", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--heads", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--blocks", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--dropout", type=click.FloatRange(min=0, max=1, max_open=True), default=0.2, show_default=True)
@click.option("--attention-option", "attention_options", multiple=True, metavar="KEY=JSON",
              help="An option of the attention kind, e.g. --attention-option beta_cap=0.1 (repeatable; see docs/genatt.md).")
@click.option("--block", type=click.Choice(BLOCKS), default="sasrec", show_default=True,
              help="sasrec: pre-LN residual blocks; ligr: the same with a sigmoid gate on each residual update "
                   "(LiGR, as in eSASRec). Kept in the checkpoint.")
@click.option("--ffn", type=click.Choice(FFNS), default="relu", show_default=True,
              help="Feed-forward of each block: relu (SASRec's) or swiglu (gated SiLU, hidden size d-model). "
                   "Kept in the checkpoint.")
@click.option("--loss", type=click.Choice(["full", "sampled", "bce"]), default="full", show_default=True,
              help="full: softmax cross-entropy over the whole catalogue; sampled: softmax over the positive and "
                   "--negatives sampled items; bce: the original SASRec loss, binary cross-entropy against one "
                   "random negative per position.")
@click.option("--negatives", type=click.IntRange(min=1), default=None,
              help=f"With --loss sampled: negatives per batch, shared by its positions [default: {DEFAULT_NEGATIVES}].")
@click.option("--negative-mix", type=click.Choice(NEGATIVE_MIXES), default=None,
              help="With --loss sampled: draw negatives from the catalogue uniformly, from the batch's own targets "
                   "(in proportion to their frequency), or half and half (mixed) [default: uniform].")
@click.option("--logq", is_flag=True,
              help="With --loss sampled: subtract from each negative's logit the log of its expected count among "
                   "the draws (logQ correction of the sampling bias).")
@click.option("--label-smoothing", type=click.FloatRange(min=0, max=1, max_open=True), default=0.0,
              show_default=True, help="Label smoothing of the softmax cross-entropy (full or sampled).")
@click.option("--schedule", type=click.Choice(SCHEDULES), default="constant", show_default=True,
              help="Learning rate after warm-up: constant, or cosine decay to 0 at the last of --epochs.")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Optimiser steps of linear learning-rate warm-up (0 = none).")
@click.option("--patience", type=click.IntRange(min=1), default=10, show_default=True,
              help="Validations without a better NDCG@10 before stopping.")
@click.option("--lr-plateau-patience", type=click.IntRange(min=1), default=None,
              help="Validations without a better NDCG@10 before the learning rate is lowered (default: never).")
@click.option("--lr-plateau-factor", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
              default=0.3, show_default=True, help="What the learning rate is multiplied by on a plateau.")
@click.option("--eval-every", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--include-seen", is_flag=True, help="Rank the user's own items too (default: exclude them).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Wall-clock cap: stop before an epoch that would pass it, keeping the best model.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads (of each process with --nproc; default: the cores shared out).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Training processes on this machine (DistributedDataParallel: one GPU each on CUDA, gloo on "
                   "CPU). --batch-size stays the global batch, split evenly over them. Under torchrun leave it "
                   "at 1: the processes are torchrun's (docs/scaling.md).")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Continue from a last.pt (same data).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train(data, fmt, attributes, out_dir, attention, epochs, batch_size, lr, weight_decay, max_len, d_model, heads,
          blocks, dropout, attention_options, block, ffn, loss, negatives, negative_mix, logq, label_smoothing,
          schedule, warmup_steps, patience, lr_plateau_patience, lr_plateau_factor, eval_every, include_seen,
          max_minutes, seed, device, threads, nproc, resume, no_progress) -> None:
    """Train a SASRec model with leave-one-out validation and early stopping on NDCG@10.

    The model's shape (--block, --ffn, ...) is kept in the checkpoint's config and the loss and
    schedule options in its train config, so `seqrec retrain` trains the model on as it was trained.

    With --nproc N, or under torchrun, the training is data-parallel; rank 0 alone validates and
    writes the run folder."""
    import torch

    from seqrec.model import distributed
    from seqrec.model.attention import attention_kinds
    from seqrec.model.config import ModelConfig
    from seqrec.model.train import TrainConfig, train as run_training

    if attention not in attention_kinds():
        raise click.BadParameter(f"unknown kind {attention!r}; valid: {', '.join(attention_kinds())}",
                                 param_hint="--attention")
    options = {}
    for item in attention_options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--attention-option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if d_model % heads:
        raise click.BadParameter(f"--d-model {d_model} is not divisible by --heads {heads}", param_hint="--heads")
    if loss != "sampled" and (negatives is not None or negative_mix is not None or logq):
        raise click.UsageError("--negatives, --negative-mix and --logq are for --loss sampled")
    try:  # a combination the configs refuse is one line, before the data is read
        model_config = ModelConfig(n_items=1, max_len=max_len, d_model=d_model, n_heads=heads, n_blocks=blocks,
                                   dropout=dropout, attention=attention, attention_options=options, block=block,
                                   ffn=ffn)
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                          objective="bce" if loss == "bce" else "ce",
                          n_negatives=(negatives or DEFAULT_NEGATIVES) if loss == "sampled" else 0,
                          negative_mix=negative_mix or "uniform", logq=logq, label_smoothing=label_smoothing,
                          schedule=schedule, warmup_steps=warmup_steps,
                          patience=patience, lr_plateau_patience=lr_plateau_patience,
                          lr_plateau_factor=lr_plateau_factor, eval_every=eval_every, exclude_seen=not include_seen,
                          max_minutes=max_minutes, seed=seed, device=device, progress=not no_progress)
        distributed.World(size=distributed.launch_size(nproc, device)).per_rank_batch(batch_size)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if threads:
        torch.set_num_threads(threads)
    dataset = _load(data, fmt, attributes)
    result = distributed.run(run_training, dataset, model_config, cfg, out_dir, resume=resume, nproc=nproc,
                             device=device, threads=threads)
    if result is None:  # a rank of torchrun other than 0: rank 0 reports
        return
    seen = "included" if include_seen else "excluded"
    other = "excluded" if include_seen else "included"
    click.echo(f"best epoch {result.best_epoch} of {result.epochs_run} (stopped: {result.stopped}), "
               f"{result.seconds_per_epoch:.1f} s/epoch; checkpoint {result.best_path}")
    click.echo(format_table({"valid": result.valid, f"test (seen {seen})": result.test,
                             f"test (seen {other})": result.test_other_exclusion}))


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@_data_options
@click.option("--split", "which", type=click.Choice(["test", "valid"]), default="test", show_default=True)
@click.option("--include-seen", is_flag=True, help="Rank the user's own items too (default: exclude them).")
@click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--device", default=None, help="cpu, cuda ... (default: CUDA when available).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(checkpoint, data, fmt, attributes, which, include_seen, batch_size, device, as_json) -> None:
    """Full-ranking leave-one-out metrics of CHECKPOINT on a dataset."""
    from seqrec.model.checkpoint import load_checkpoint
    from seqrec.model.evaluate import evaluate_split
    from seqrec.model.inference import default_device

    dev = device or str(default_device())
    ckpt = load_checkpoint(checkpoint, device=dev)
    dataset = _load(data, fmt, attributes)
    if ckpt.data_fingerprint and dataset.fingerprint() != ckpt.data_fingerprint:
        log.warning("data fingerprint %s differs from the checkpoint's %s (trained on other data)",
                    dataset.fingerprint(), ckpt.data_fingerprint)
    unknown = len(dataset.item_ids() - set(ckpt.item_map.to_list()))
    if unknown:
        log.warning("%d items of the dataset are not in the checkpoint's catalogue; they are skipped", unknown)
    item_map: ItemMap = ckpt.item_map
    split = leave_one_out(dataset, item_map)
    metrics = evaluate_split(ckpt.model, split, which, exclude_seen=not include_seen,
                             categories=item_categories(dataset, item_map), batch_size=batch_size, device=dev)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(checkpoint), "version": ckpt.version, "split": which,
                               "exclude_seen": not include_seen, "metrics": metrics}, indent=2))
        return
    seen = "included" if include_seen else "excluded"
    click.echo(f"{checkpoint} (version {ckpt.version}), {which} split, {int(metrics['users'])} users, "
               f"seen items {seen} ({int(metrics['targets_in_history'])} targets were in their history)")
    click.echo(format_table({which: metrics}))
