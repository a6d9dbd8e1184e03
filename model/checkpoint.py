"""Self-describing checkpoints: the model rebuilds from the file alone.

A checkpoint is a dict of plain types and tensors, so `torch.load(..., weights_only=True)` reads it:

    format          "seqrec-checkpoint"
    format_version  1
    version         "<UTC timestamp>-<8 hex of the content hash>", unique per saved model
    created_at      ISO-8601 UTC
    config          ModelConfig.to_dict()
    state_dict      the model's weights (never a torch.compile wrapper's)
    item_ids        raw item id of index 1..n (ItemMap.to_list())
    item_popularity training counts per index (position 0 = padding), for the cold-start fallback
    data_fingerprint, metrics, extra   as given by the trainer (plain types only)

Writes are atomic: a temp file in the same directory, fsync, then os.replace.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch

from seqrec.model.attention import attention_kinds
from seqrec.model.config import ModelConfig
from seqrec.model.data import ItemMap
from seqrec.model.errors import CheckpointError
from seqrec.model.sasrec import SASRec

__all__ = ["FORMAT", "FORMAT_VERSION", "LoadedCheckpoint", "load_checkpoint", "read_payload", "save_checkpoint", "write_atomically"]

log = logging.getLogger(__name__)

FORMAT = "seqrec-checkpoint"
FORMAT_VERSION = 1
_PLAIN = (str, int, float, bool, type(None))
# How torch's weights-only unpickler names a class it will not rebuild.
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


@dataclass
class LoadedCheckpoint:
    model: SASRec  # in eval mode, on the requested device
    config: ModelConfig
    item_map: ItemMap
    metrics: dict[str, Any]
    data_fingerprint: str
    version: str
    created_at: str
    item_popularity: list[int]
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = ""


def _check_plain(value: Any, where: str) -> None:
    """Reject anything `weights_only` loading would refuse, at save time rather than at load time."""
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise ValueError(f"{where}: key {k!r} is not a str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise ValueError(f"{where} holds a {type(value).__name__}; checkpoints take plain types and tensors only")


def _unwrap(model: torch.nn.Module) -> SASRec:
    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper saves prefixed keys
    if not isinstance(model, SASRec):
        raise TypeError(f"expected a SASRec model, got {type(model).__name__}")
    return model


def _content_hash(state: dict[str, torch.Tensor], item_ids: list[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    h.update("\n".join(item_ids).encode())
    return h.hexdigest()[:8]


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    item_map: ItemMap,
    *,
    data_fingerprint: str,
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
    item_popularity: Sequence[int] | None = None,
) -> str:
    """Write the checkpoint atomically; returns its version string."""
    model = _unwrap(model)
    config = model.config
    if len(item_map) != config.n_items:
        raise ValueError(f"item map holds {len(item_map)} ids but the model has n_items={config.n_items}")
    popularity = list(item_popularity) if item_popularity is not None else [0] * (config.n_items + 1)
    if len(popularity) != config.n_items + 1:
        raise ValueError(f"item_popularity needs n_items + 1 = {config.n_items + 1} entries, got {len(popularity)}")
    extra = dict(extra or {})
    _check_plain(config.to_dict(), "config")
    _check_plain(metrics, "metrics")
    _check_plain(extra, "extra")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    item_ids = item_map.to_list()
    now = datetime.now(timezone.utc)
    version = f"{now:%Y%m%dT%H%M%SZ}-{_content_hash(state, item_ids)}"
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": version,
        "created_at": now.isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "state_dict": state,
        "item_ids": item_ids,
        "item_popularity": [int(c) for c in popularity],
        "data_fingerprint": str(data_fingerprint),
        "metrics": dict(metrics),
        "extra": extra,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomically(Path(path), buffer.getvalue())
    log.info("saved checkpoint %s (version %s)", path, version)
    return version


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a torn one:
    a temp file in the same directory, fsync, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _require(payload: dict, key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    if key not in payload:
        raise CheckpointError(f"{path}: checkpoint has no {key!r} entry")
    value = payload[key]
    if not isinstance(value, kind):
        raise CheckpointError(f"{path}: checkpoint entry {key!r} is a {type(value).__name__}, not the expected type")
    return value


def read_payload(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict (weights_only), with errors turned into CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, a pickle weights_only refuses, ...
        # torch's own message advises weights_only=False: wrong for garbage, unsafe for a pickle.
        refused = _REFUSED_GLOBAL.search(str(exc))
        if refused:
            raise CheckpointError(f"not a seqrec checkpoint: {path} holds a pickled {refused.group(1)} object, "
                                  "which is refused (checkpoints hold plain types and tensors only)") from None
        raise CheckpointError(f"not a seqrec checkpoint: {path}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"not a seqrec checkpoint: {path} (no format={FORMAT!r} marker)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {payload.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    return payload


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> LoadedCheckpoint:
    """Rebuild the model (eval mode, on `device`, default CPU) and its item map from a checkpoint."""
    path = Path(path)
    payload = read_payload(path)
    config_dict = _require(payload, "config", dict, path)
    try:
        config = ModelConfig.from_dict(config_dict)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad model config: {exc}") from None
    if config.attention not in attention_kinds():
        raise CheckpointError(
            f"{path}: unknown attention kind {config.attention!r}; this code knows {', '.join(attention_kinds())}"
        )
    item_ids = _require(payload, "item_ids", list, path)
    if len(item_ids) != config.n_items:
        raise CheckpointError(
            f"{path}: item id mapping holds {len(item_ids)} ids but the config says n_items={config.n_items}"
        )
    try:
        item_map = ItemMap.from_list([str(i) for i in item_ids])
    except ValueError as exc:
        raise CheckpointError(f"{path}: bad item id mapping: {exc}") from None
    state = _require(payload, "state_dict", dict, path)
    model = SASRec(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing/unexpected keys, size mismatch
        raise CheckpointError(f"{path}: weights do not fit the config: {exc}") from None
    popularity = payload.get("item_popularity") or [0] * (config.n_items + 1)
    if len(popularity) != config.n_items + 1:
        raise CheckpointError(f"{path}: item_popularity has {len(popularity)} entries, expected {config.n_items + 1}")
    model.to(torch.device(device) if device is not None else torch.device("cpu")).eval()
    return LoadedCheckpoint(
        model=model,
        config=config,
        item_map=item_map,
        metrics=dict(payload.get("metrics") or {}),
        data_fingerprint=str(payload.get("data_fingerprint", "")),
        version=_require(payload, "version", str, path),
        created_at=str(payload.get("created_at", "")),
        item_popularity=[int(c) for c in popularity],
        extra=dict(payload.get("extra") or {}),
        path=str(path),
    )
