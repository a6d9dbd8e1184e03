"""`seqrec train` and `seqrec evaluate`: parse, call model.train / model.evaluate, print."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from seqrec.model.data import FORMATS, ItemMap, item_categories, leave_one_out, load_dataset
from seqrec.model.errors import DataError

log = logging.getLogger(__name__)

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
@click.option("--loss", "objective", type=click.Choice(["ce", "bce"]), default="ce", show_default=True,
              help="ce: softmax cross-entropy (full, or sampled with --negatives); bce: the original SASRec "
                   "loss, binary cross-entropy against one random negative per position.")
@click.option("--negatives", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --loss ce: 0 = full cross-entropy over all items; N = sampled softmax with N negatives.")
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
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Continue from a last.pt (same data).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def train(data, fmt, attributes, out_dir, attention, epochs, batch_size, lr, weight_decay, max_len, d_model, heads,
          blocks, dropout, attention_options, objective, negatives, patience, lr_plateau_patience, lr_plateau_factor,
          eval_every, include_seen, max_minutes, seed, device, threads, resume, no_progress) -> None:
    """Train a SASRec model with leave-one-out validation and early stopping on NDCG@10."""
    import torch

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
    if threads:
        torch.set_num_threads(threads)
    dataset = _load(data, fmt, attributes)
    model_config = ModelConfig(n_items=1, max_len=max_len, d_model=d_model, n_heads=heads, n_blocks=blocks,
                               dropout=dropout, attention=attention, attention_options=options)
    if objective == "bce" and negatives:
        raise click.BadParameter("--loss bce draws one negative per position; --negatives is for --loss ce",
                                 param_hint="--negatives")
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, n_negatives=negatives,
                      objective=objective,
                      patience=patience, lr_plateau_patience=lr_plateau_patience,
                      lr_plateau_factor=lr_plateau_factor, eval_every=eval_every, exclude_seen=not include_seen,
                      max_minutes=max_minutes, seed=seed, device=device, progress=not no_progress)
    result = run_training(dataset, model_config, cfg, out_dir, resume=resume)
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
