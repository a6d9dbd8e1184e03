"""The model store: versioned checkpoints, a `latest` pointer, promotion history and retention.

`ModelStore` is the small interface the retrain job, the workers and the CLI use; an object
store could implement it later. `DirectoryModelStore` keeps it in one directory (a shared volume
between the retrain job and the workers):

    <root>/versions/<version>.pt   checkpoints, named by the version inside them
    <root>/history.json            versions in the order they were promoted; the last one serves
    <root>/LATEST                  the serving version (a one-line copy of history's last entry,
                                   so a watcher can poll a few bytes)

Every write goes to a temp file, is fsynced and renamed into place, so a reader never sees a
half-written checkpoint or pointer.

Promoting a version whose architecture differs from the serving one's is refused: running
workers would refuse it too and keep the old model, while the store would say the new one serves
and a worker started later would serve it (a mixed fleet). `force_incompatible` overrides.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from seqrec.model.checkpoint import read_payload, write_atomically
from seqrec.model.errors import CheckpointError
from seqrec.model.train import SELECT_METRIC

log = logging.getLogger(__name__)

# The architecture a deployment serves. Its latency and batch sizes were measured and sized for
# it, so a change of these is a new deployment, not a hot-swap (ours). The catalogue may grow or
# be renumbered freely: histories are kept as raw item ids.
PINNED_FIELDS = ("attention", "d_model", "n_heads", "n_blocks", "max_len")


class IncompatibleVersionError(CheckpointError):
    """A version whose architecture the running workers would refuse."""


def incompatibility(serving: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why a model of config `new` cannot replace one of config `serving` in a running worker."""
    for name in PINNED_FIELDS:
        if serving.get(name) != new.get(name):
            return f"{name} is {new.get(name)!r}, the serving model has {serving.get(name)!r}"
    return None


@dataclass(frozen=True)
class VersionInfo:
    version: str
    created_at: str
    attention: str
    n_items: int
    metrics: dict[str, Any]
    path: Path
    config: dict[str, Any]
    error: str | None = None  # why the file cannot be read; the other fields are then empty

    @property
    def quality(self) -> float | None:
        """The validation metric training selected the model on, when the checkpoint has it."""
        valid = self.metrics.get("valid")
        value = valid.get(SELECT_METRIC) if isinstance(valid, dict) else None
        return float(value) if isinstance(value, (int, float)) else None


class ModelStore(Protocol):
    def publish(self, checkpoint: Path, promote: bool = True, force_incompatible: bool = False) -> str: ...
    def versions(self) -> list[VersionInfo]: ...
    def info(self, version: str) -> VersionInfo: ...
    def latest(self) -> str | None: ...
    def checkpoint_path(self, version: str) -> Path: ...
    def promote(self, version: str, force_incompatible: bool = False) -> None: ...
    def rollback(self) -> str: ...


class DirectoryModelStore:
    def __init__(self, root: str | Path, keep: int = 5) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.root = Path(root)
        self.keep = keep
        self.versions_dir = self.root / "versions"
        self.versions_dir.mkdir(parents=True, exist_ok=True)

    # -- reading ---------------------------------------------------------------------------
    def checkpoint_path(self, version: str) -> Path:
        path = self.versions_dir / f"{version}.pt"
        if "/" in version or not path.is_file():
            raise CheckpointError(f"no version {version!r} in the model store {self.root}")
        return path

    def info(self, version: str) -> VersionInfo:
        path = self.checkpoint_path(version)
        payload = read_payload(path)
        config = payload.get("config") or {}
        return VersionInfo(
            version=version,
            created_at=str(payload.get("created_at", "")),
            attention=str(config.get("attention", "?")),
            n_items=int(config.get("n_items", 0)),
            metrics=dict(payload.get("metrics") or {}),
            path=path,
            config=dict(config),
        )

    def versions(self) -> list[VersionInfo]:
        """All stored versions, in the order they were published; an unreadable file is listed
        with its `error` instead of hiding the others."""
        return [self._info_or_error(p) for p in self._stored_by_age()]

    def _info_or_error(self, path: Path) -> VersionInfo:
        try:
            return self.info(path.stem)
        except (CheckpointError, OSError) as exc:
            return VersionInfo(path.stem, "", "?", 0, {}, path, {}, error=str(exc))

    def _stored_by_age(self) -> list[Path]:
        # Publish order, not name order: two versions saved in one second differ only by hash.
        return sorted(self.versions_dir.glob("*.pt"), key=lambda p: p.stat().st_mtime_ns)

    def history(self) -> list[str]:
        path = self.root / "history.json"
        return json.loads(path.read_text()) if path.exists() else []

    def latest(self) -> str | None:
        path = self.root / "LATEST"
        if not path.exists():
            return None
        return path.read_text().strip() or None

    # -- writing ---------------------------------------------------------------------------
    def publish(self, checkpoint: str | Path, promote: bool = True, force_incompatible: bool = False) -> str:
        """Copy a checkpoint into the store (after checking it reads) and, by default, promote it.
        A checkpoint that cannot replace the serving version is refused before it is copied."""
        payload = read_payload(checkpoint)  # refuses corrupt or foreign files before they enter
        version = payload.get("version")
        if not isinstance(version, str) or not version:
            raise CheckpointError(f"{checkpoint}: checkpoint has no version")
        if promote:
            self._check_replaces_serving(version, dict(payload.get("config") or {}), force_incompatible)
        target = self.versions_dir / f"{version}.pt"
        if not target.exists():
            with open(checkpoint, "rb") as src:
                write_atomically(target, src.read())
        log.info("published version %s to %s", version, self.root)
        if promote:
            self._serve(version)
        return version

    def promote(self, version: str, force_incompatible: bool = False) -> None:
        self._check_replaces_serving(version, self.info(version).config, force_incompatible)
        self._serve(version)

    def _serve(self, version: str) -> None:
        history = [v for v in self.history() if v != version] + [version]
        self._set_history(history)
        self._prune()

    def _check_replaces_serving(self, version: str, config: dict[str, Any], force: bool) -> None:
        serving = self.latest()
        if serving is None or serving == version:
            return
        try:
            serving_config = self.info(serving).config
        except CheckpointError as exc:  # a broken serving version: replacing it is the cure
            log.warning("serving version %s is unreadable (%s); not comparing architectures", serving, exc)
            return
        reason = incompatibility(serving_config, config)
        if reason is None:
            return
        if not force:
            raise IncompatibleVersionError(
                f"version {version} cannot replace the serving version {serving}: {reason}; running workers "
                "would refuse it and keep the old model (--force-incompatible overrides)")
        log.warning("promoting incompatible version %s (%s): running workers keep serving %s until restarted; "
                    "workers started from now on serve %s", version, reason, serving, version)

    def rollback(self) -> str:
        """Serve the previously promoted version again; returns it."""
        history = [v for v in self.history() if (self.versions_dir / f"{v}.pt").is_file()]
        if len(history) < 2:
            raise CheckpointError("nothing to roll back to: fewer than two promoted versions are stored")
        rolled_back = history.pop()
        self._set_history(history)
        log.info("rolled back from %s to %s", rolled_back, history[-1])
        return history[-1]

    def _set_history(self, history: list[str]) -> None:
        write_atomically(self.root / "history.json", json.dumps(history).encode())
        write_atomically(self.root / "LATEST", f"{history[-1]}\n".encode() if history else b"")

    def _prune(self) -> None:
        """Keep the newest `keep` checkpoints, and always every version the last `keep`
        promotions name, so rollback has something to go back to."""
        protected = set(self.history()[-self.keep:])
        stored = self._stored_by_age()
        for path in stored[: max(0, len(stored) - self.keep)]:
            if path.stem not in protected:
                path.unlink(missing_ok=True)
                log.info("retention: removed version %s", path.stem)
