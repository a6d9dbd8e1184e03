"""Training: SASRec+ (full cross-entropy at every position) with AdamW and early stopping on
validation NDCG@10; reads top to bottom like nanoGPT's train.py, but as functions.

    result = train(dataset, ModelConfig(n_items=...), TrainConfig(epochs=200), out_dir="runs/ml1m")

Writes into `out_dir`:
    best.pt        the best model on validation NDCG@10, with valid and test metrics (model.checkpoint)
    last.pt        the latest epoch plus optimiser state, for `resume`
    history.jsonl  one line per epoch: loss, validation metrics, seconds
    metrics.json   the final validation and test metrics of best.pt
Test metrics are computed once, on the best-validation model, after training: nothing is selected on
the test split.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from seqrec.model.checkpoint import load_checkpoint, save_checkpoint
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap, SequenceDataset, Split, item_categories, leave_one_out, pad_left
from seqrec.model.distributed import current as distributed_world
from seqrec.model.errors import CheckpointError, DataError
from seqrec.model.evaluate import evaluate_split
from seqrec.model.sasrec import NEGATIVE_MIXES, OBJECTIVES, SASRec

__all__ = ["SCHEDULES", "TRAINING_OPTIONS", "TrainConfig", "TrainResult", "lr_factor", "train", "training_tensors",
           "with_training_options"]

log = logging.getLogger(__name__)

SELECT_METRIC = "NDCG@10"
SCHEDULES = ("constant", "cosine")  # the learning rate after warm-up: constant, or cosine decay to 0 at the last epoch


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    n_negatives: int = 0  # with objective "ce": 0 = full cross-entropy over the catalogue; N > 0 = sampled softmax
    objective: str = "ce"  # "ce" (softmax cross-entropy) or "bce" (SASRec's original loss, one negative)
    patience: int = 10  # validations without a new best NDCG@10 before stopping
    # Validations without a new best before the learning rate is multiplied by lr_plateau_factor
    # (torch's ReduceLROnPlateau); None keeps it constant. Keep it below `patience`.
    lr_plateau_patience: int | None = None
    lr_plateau_factor: float = 0.3
    eval_every: int = 1  # epochs between validations
    exclude_seen: bool = True  # validation/test ranking leaves out the user's own items
    max_minutes: float | None = None  # wall-clock cap; stops before an epoch that would overrun it
    seed: int = 42
    device: str | None = None  # None = CUDA when available, else CPU
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    eval_batch_size: int = 512
    grad_clip: float | None = None
    progress: bool = True  # tqdm bar
    # Sampled softmax only (n_negatives > 0): where negatives come from (model.sasrec.NEGATIVE_MIXES),
    # and whether each negative's logit is corrected by the log of its expected count (logQ).
    negative_mix: str = "uniform"
    logq: bool = False
    label_smoothing: float = 0.0  # softmax cross-entropy only
    schedule: str = "constant"  # one of SCHEDULES
    warmup_steps: int = 0  # optimiser steps of linear warm-up from lr / warmup_steps to lr

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.objective == "bce" and self.n_negatives:
            raise ValueError("the bce objective draws one negative per position; n_negatives is for sampled softmax")
        if self.negative_mix not in NEGATIVE_MIXES:
            raise ValueError(f"negative_mix must be one of {', '.join(NEGATIVE_MIXES)}, got {self.negative_mix!r}")
        sampled = self.objective == "ce" and self.n_negatives > 0
        if not sampled and (self.negative_mix != "uniform" or self.logq):
            raise ValueError("negative_mix and logq are for sampled softmax (objective ce with n_negatives > 0)")
        if self.negative_mix == "mixed" and self.n_negatives < 2:
            raise ValueError("the mixed negative sampling draws half in-batch, half uniform: n_negatives >= 2")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.label_smoothing and self.objective != "ce":
            raise ValueError("label_smoothing is for softmax cross-entropy, not the bce objective")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.lr_plateau_patience is not None and (self.schedule != "constant" or self.warmup_steps):
            raise ValueError("lr_plateau_patience lowers the rate on a plateau; it cannot be combined with a "
                             "schedule or warm-up, which set the rate every step")

    @property
    def loss_label(self) -> str:
        """The loss as results name it: "ce", "bce", "sampled:N" (uniform negatives), or
        "sampled:N:<mix>[+logq]"; label smoothing adds ":ls<X>"."""
        if self.objective == "bce":
            return "bce"
        label = f"sampled:{self.n_negatives}" if self.n_negatives > 0 else "ce"
        if self.negative_mix != "uniform" or self.logq:
            label += f":{self.negative_mix}" + ("+logq" if self.logq else "")
        return label + (f":ls{self.label_smoothing:g}" if self.label_smoothing else "")

    def loss_options(self) -> dict[str, Any]:
        """The keyword arguments of SASRec.loss that this config sets."""
        return {"n_negatives": self.n_negatives, "objective": self.objective, "negative_mix": self.negative_mix,
                "logq": self.logq, "label_smoothing": self.label_smoothing}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# What a model was trained with, beside its shape (ModelConfig travels in the checkpoint itself): the
# fields a later training of the same model (`seqrec retrain`) keeps, read from the checkpoint's
# extra["train_config"].
TRAINING_OPTIONS = ("objective", "n_negatives", "negative_mix", "logq", "label_smoothing", "schedule", "warmup_steps")


def with_training_options(cfg: TrainConfig, saved: dict[str, Any] | None) -> TrainConfig:
    """`cfg` with the TRAINING_OPTIONS of a saved train config (a checkpoint's extra["train_config"]);
    a field the saved config lacks (a checkpoint older than that field) keeps `cfg`'s value."""
    return replace(cfg, **{k: saved[k] for k in TRAINING_OPTIONS if k in (saved or {})})


def lr_factor(step: int, schedule: str, warmup_steps: int, total_steps: int) -> float:
    """The learning rate of optimiser step `step` (0-based) as a multiple of the configured rate:
    linear warm-up over the first `warmup_steps` steps ((step + 1) / warmup_steps, so the first step
    does move), then 1 ("constant") or a cosine from 1 down to 0 at `total_steps` ("cosine")."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class TrainResult:
    out_dir: Path
    best_path: Path
    best_epoch: int
    epochs_run: int
    stopped: str  # "patience", "epochs" or "time"
    seconds_per_epoch: float  # mean training time per epoch (validation excluded)
    valid: dict[str, float]
    test: dict[str, float]
    test_other_exclusion: dict[str, float]  # test under the other exclude_seen setting
    history: list[dict[str, Any]] = field(default_factory=list)


def training_tensors(split: Split, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One window per user: the newest max_len + 1 training items, as (inputs, targets) (U, max_len),
    left-padded; targets[t] is the item after inputs[t]. Users with < 2 training items are dropped."""
    windows = [s[-(max_len + 1):] for s in split.train if len(s) >= 2]
    inputs = pad_left([w[:-1] for w in windows], max_len)
    targets = pad_left([w[1:] for w in windows], max_len)
    return inputs, targets


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def _require_trainable(dataset: SequenceDataset, split: Split, n_windows: int) -> None:
    """Leave-one-out needs a user with 3 items (train, validate, test) and one with 2 training items."""
    if not any(split.valid_target):
        raise DataError(f"{dataset.where}: every user has fewer than 3 items; leave-one-out training needs users "
                        "with 3 or more (train, validation and test items)")
    if n_windows == 0:
        raise DataError(f"{dataset.where}: no user has 2 training items (4 or more in all); nothing to learn from")


def _validate(model: SASRec, split: Split, cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    return evaluate_split(model, split, "valid", ks=(10,), exclude_seen=cfg.exclude_seen,
                          batch_size=cfg.eval_batch_size, device=device)


def train(
    dataset: SequenceDataset,
    model_config: ModelConfig | None,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: str | Path | None = None,
    init: tuple[SASRec, ItemMap] | None = None,
    **model_overrides: Any,
) -> TrainResult:
    """Train on `dataset`'s leave-one-out training part. `model_config` may be None: then it is
    ModelConfig(n_items=<catalogue size>, **model_overrides). With `resume` (a last.pt), the model,
    item map, optimiser and counters continue from that file. With `init` (model, item map), training
    starts from those weights (a warm start, see model.warmstart); the map must hold every item of
    `dataset`.

    In a torch.distributed process group (model.distributed.run) every rank calls this on the same
    data: each trains on its share of every global batch of cfg.batch_size rows under
    DistributedDataParallel, and rank 0 alone validates, logs and writes the files; the other ranks
    return the same epochs and stop reason with empty metrics."""
    world = distributed_world()
    per_rank_batch = world.per_rank_batch(cfg.batch_size)
    out_dir = Path(out_dir)
    if world.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    _seed_everything(cfg.seed)
    device = world.device(cfg.device)

    # ---- data and model ------------------------------------------------------------------------
    state: dict[str, Any] = {}
    if resume is not None:
        ckpt = load_checkpoint(resume, device=device)
        state = ckpt.extra.get("resume") or {}
        if not state:
            raise CheckpointError(f"{resume}: no training state to resume from (use a last.pt)")
        if ckpt.data_fingerprint != dataset.fingerprint():
            log.warning("resuming on different data: fingerprint %s, checkpoint has %s",
                        dataset.fingerprint(), ckpt.data_fingerprint)
        item_map, model, model_config = ckpt.item_map, ckpt.model, ckpt.config
    elif init is not None:
        model, item_map = init
        missing = dataset.item_ids() - set(item_map.to_list())
        if missing:
            raise ValueError(f"warm-start item map lacks {len(missing)} items of the data, e.g. {sorted(missing)[:3]}")
        model, model_config = model.to(device), model.config
    else:
        item_map = ItemMap.from_items(dataset.item_ids())
        if model_config is None:
            model_config = ModelConfig(n_items=len(item_map), **model_overrides)
        if model_config.n_items != len(item_map):
            model_config = replace(model_config, n_items=len(item_map))
        model = SASRec(model_config).to(device)
    split = leave_one_out(dataset, item_map)
    inputs, targets = training_tensors(split, model_config.max_len)
    _require_trainable(dataset, split, inputs.shape[0])
    popularity = split.item_counts()
    fingerprint = dataset.fingerprint()
    categories = item_categories(dataset, item_map)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("%s: %d users (%d training windows), %d items, %d parameters, device %s",
             dataset.name, len(dataset.users), inputs.shape[0], len(item_map), n_params, device)
    if world.size > 1 and world.main:
        log.info("%d processes, %d rows each of every batch of %d", world.size, per_rank_batch, cfg.batch_size)

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    plateau = None
    if cfg.lr_plateau_patience is not None:
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.lr_plateau_factor, patience=cfg.lr_plateau_patience - 1,
            threshold=0.0)  # any gain counts as a new best, as for early stopping
    if state:
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if plateau is not None and state.get("lr_plateau"):
            plateau.load_state_dict(state["lr_plateau"])
        started_lr = state.get("train_config", {}).get("lr")
        if started_lr is not None and started_lr != cfg.lr:  # asked for another rate: use it
            log.info("resuming with learning rate %g (the run started with %g)", cfg.lr, started_lr)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr
    world.reseed(cfg.seed)
    step_loss = world.wrap(model)  # model.loss, under DDP in a process group
    start_epoch = int(state.get("epoch", 0))
    best_score = float(state.get("best_score", -1.0))
    best_epoch = int(state.get("best_epoch", 0))
    bad_evals = int(state.get("bad_evals", 0))
    history: list[dict[str, Any]] = list(state.get("history", []))
    train_seconds = float(state.get("train_seconds", 0.0))

    steps_per_epoch = math.ceil(inputs.shape[0] / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    scheduled = cfg.schedule != "constant" or cfg.warmup_steps > 0  # else the rate is the optimiser's own
    best_path, last_path = out_dir / "best.pt", out_dir / "last.pt"
    common = dict(data_fingerprint=fingerprint, item_popularity=popularity)
    started = time.monotonic()
    stopped = "epochs"

    # ---- loop ----------------------------------------------------------------------------------
    epoch = start_epoch
    progress = cfg.progress and world.main
    epochs_bar = tqdm(range(start_epoch + 1, cfg.epochs + 1), desc="epochs", disable=not progress,
                      initial=start_epoch, total=cfg.epochs, dynamic_ncols=True)
    for epoch in epochs_bar:
        epoch_started = time.monotonic()
        model.train()
        order = world.pad(torch.randperm(inputs.shape[0], generator=torch.Generator().manual_seed(cfg.seed + epoch)))
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", disable=not progress,
                   leave=False, mininterval=5.0, dynamic_ncols=True)
        loss_sum = aux_sum = 0.0
        for step in bar:
            rows = world.shard(order[step * cfg.batch_size:(step + 1) * cfg.batch_size])
            x, y = inputs[rows].to(device), targets[rows].to(device)
            # Trim the all-padding left columns of this batch (positions count from the right).
            width = int((x != 0).sum(dim=1).max())
            x, y = x[:, -width:], y[:, -width:]
            model.set_training_progress(((epoch - 1) * steps_per_epoch + step) / total_steps)
            if scheduled:
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr * lr_factor((epoch - 1) * steps_per_epoch + step, cfg.schedule,
                                                     cfg.warmup_steps, total_steps)
            with _autocast(device, cfg.amp):
                out = step_loss(x, y, **cfg.loss_options())
            optimizer.zero_grad(set_to_none=True)
            (out.total * world.share(y)).backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            loss_sum += out.ce.item()
            aux_sum += out.aux.item()
            bar.set_postfix(loss=f"{loss_sum / (step + 1):.4f}")
        bar.close()
        loss_sum, aux_sum = world.mean([loss_sum, aux_sum])
        epoch_seconds = time.monotonic() - epoch_started
        train_seconds += epoch_seconds
        record: dict[str, Any] = {"epoch": epoch, "loss": loss_sum / steps_per_epoch,
                                  "aux": aux_sum / steps_per_epoch, "train_seconds": round(epoch_seconds, 2),
                                  "lr": optimizer.param_groups[0]["lr"]}

        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            valid = _validate(model, split, cfg, device) if world.main else {}
            record.update({f"valid_{k}": v for k, v in valid.items() if "@" in k})
            # Every rank keeps the books (patience, plateau) on rank 0's score, so all stop together.
            score = world.from_main(valid.get(SELECT_METRIC, 0.0))
            if score > best_score:
                best_score, best_epoch, bad_evals = score, epoch, 0
                if world.main:
                    save_checkpoint(best_path, model, item_map, metrics={"valid": valid},
                                    extra={"epoch": epoch, "train_config": cfg.to_dict(), "dataset": dataset.name},
                                    **common)
            else:
                bad_evals += 1
            if plateau is not None:
                plateau.step(score)
        history.append(record)
        epochs_bar.set_postfix({"loss": f"{record['loss']:.4f}",
                                f"valid {SELECT_METRIC}": f"{record.get(f'valid_{SELECT_METRIC}', float('nan')):.4f}",
                                "best": f"{best_score:.4f}@{best_epoch}"})
        if world.main:
            log.info("epoch %d: loss %.4f, valid %s %.4f (best %.4f @ %d), %.1fs", epoch, record["loss"],
                     SELECT_METRIC, record.get(f"valid_{SELECT_METRIC}", float("nan")), best_score, best_epoch,
                     epoch_seconds)
            with open(out_dir / "history.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            resume_state = {"epoch": epoch, "best_score": best_score, "best_epoch": best_epoch,
                            "bad_evals": bad_evals, "history": history, "train_seconds": train_seconds,
                            "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                            "lr_plateau": plateau.state_dict() if plateau is not None else None,
                            "train_config": cfg.to_dict()}
            save_checkpoint(last_path, model, item_map, metrics={}, extra={"resume": resume_state}, **common)

        if bad_evals >= cfg.patience:
            stopped = "patience"
            break
        elapsed_min = (time.monotonic() - started) / 60
        per_epoch_min = (time.monotonic() - started) / 60 / (epoch - start_epoch)
        over_time = cfg.max_minutes is not None and elapsed_min + per_epoch_min > cfg.max_minutes
        if cfg.max_minutes is not None and world.from_main(float(over_time)):  # rank 0's clock decides
            stopped = "time"
            log.info("stopping: another epoch would pass --max-minutes %.1f", cfg.max_minutes)
            break

    epochs_bar.close()
    epochs_run = epoch
    seconds_per_epoch = train_seconds / max(epochs_run, 1)
    if not world.main:  # rank 0 alone evaluates and writes
        return TrainResult(out_dir=out_dir, best_path=best_path, best_epoch=best_epoch, epochs_run=epochs_run,
                           stopped=stopped, seconds_per_epoch=seconds_per_epoch, valid={}, test={},
                           test_other_exclusion={}, history=history)

    # ---- final evaluation of the best model ----------------------------------------------------
    if not best_path.exists():
        raise RuntimeError("training ended before any validation; raise epochs or lower eval_every")
    # The best weights and the extras saved with them come from the file: the model in memory is the
    # last epoch's, and after a resume the best may come from the earlier run.
    best = load_checkpoint(best_path, device=device)
    kw = dict(categories=categories, batch_size=cfg.eval_batch_size, device=device)
    valid = evaluate_split(best.model, split, "valid", exclude_seen=cfg.exclude_seen, **kw)
    test = evaluate_split(best.model, split, "test", exclude_seen=cfg.exclude_seen, **kw)
    test_other = evaluate_split(best.model, split, "test", exclude_seen=not cfg.exclude_seen, **kw)
    metrics = {"valid": valid, "test": test, "test_other_exclusion": test_other,
               "best_epoch": best_epoch, "epochs_run": epochs_run, "stopped": stopped,
               "seconds_per_epoch": seconds_per_epoch}
    save_checkpoint(best_path, best.model, item_map, metrics=metrics, extra=best.extra, **common)
    with open(out_dir / "metrics.json", "w", encoding="utf-8") as f:
        json.dump({"dataset": dataset.name, "data_fingerprint": fingerprint, "model_config": model_config.to_dict(),
                   "train_config": cfg.to_dict(), **metrics}, f, indent=2)
    log.info("done (%s): best epoch %d of %d, test %s %.4f", stopped, best_epoch, epochs_run,
             SELECT_METRIC, test[SELECT_METRIC])
    return TrainResult(out_dir=out_dir, best_path=best_path, best_epoch=best_epoch, epochs_run=epochs_run,
                       stopped=stopped, seconds_per_epoch=seconds_per_epoch, valid=valid, test=test,
                       test_other_exclusion=test_other, history=history)
