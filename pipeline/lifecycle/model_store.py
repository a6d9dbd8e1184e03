"""The model store: versioned checkpoints, a `latest` pointer, promotion history and retention,
at a URL: a local path, file://, s3://, gs://, memory:// (any fsspec filesystem; credentials from
the backend's own environment, see pipeline.storage.location). One layout on every backend:

    <root>/versions/<version>.pt     checkpoints, named by the version inside them
    <root>/versions/<version>.json   its manifest: sha256 and size of the .pt, when it was published
    <root>/history.json              versions in the order they were promoted; the last one serves
    <root>/LATEST                    the serving version (a one-line copy of history's last entry,
                                     so a watcher can poll a few bytes)

Writes go in the order that keeps readers safe: the checkpoint, then its manifest, then history,
then the pointer, each atomic where the backend allows: on a local filesystem a temp file, fsync
and rename (model.checkpoint.write_atomically); on an object store one PUT replaces one whole
object. A reader loads a version only after its bytes hash to its manifest's sha256 (from a
remote store: downloaded to a local temp file first), so a checkpoint caught mid-upload, damaged
on the volume or without a manifest is refused (CheckpointError) and the serving model stays.
A backend that cannot be reached or refuses the credentials is one StorageError line naming the
store's URL, without a secret.

Promoting a version whose architecture differs from the serving one's is refused: running
workers would refuse it too and keep the old model, while the store would say the new one serves
and a worker started later would serve it (a mixed fleet). `force_incompatible` overrides.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from seqrec.model.checkpoint import read_payload
from seqrec.model.errors import CheckpointError
from seqrec.model.train import SELECT_METRIC
from seqrec.pipeline.storage.location import put_object, redact, resolve, storage_errors

log = logging.getLogger(__name__)

# The architecture a deployment serves. Its latency and batch sizes were measured and sized for
# it, so a change of these is a new deployment, not a hot-swap (ours). The catalogue may grow or
# be renumbered freely: histories are kept as raw item ids.
PINNED_FIELDS = ("attention", "d_model", "n_heads", "n_blocks", "max_len")
_CHUNK = 8 << 20  # bytes hashed (and downloaded) at a time
_DOWNLOADS_KEPT = 2  # a worker needs the version it loads and, briefly, the one it replaces


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
    url: str  # of its checkpoint in the store, redacted
    config: dict[str, Any]
    error: str | None = None  # why the file cannot be read; the other fields are then empty

    @property
    def quality(self) -> float | None:
        """The validation metric training selected the model on, when the checkpoint has it."""
        valid = self.metrics.get("valid")
        value = valid.get(SELECT_METRIC) if isinstance(valid, dict) else None
        return float(value) if isinstance(value, (int, float)) else None


class ModelStore:
    """The store at `url`. Nothing is created until the first publish."""

    def __init__(self, url: str | Path, keep: int = 5) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.url = str(url)
        self.keep = keep
        self.fs, self.root = resolve(self.url)
        self._local = isinstance(self.fs, LocalFileSystem)
        self._downloads: Path | None = None  # this process's copies of remote checkpoints

    def __repr__(self) -> str:
        return f"ModelStore({redact(self.url)!r})"

    # -- the backend -----------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def _get(self, name: str) -> bytes | None:
        """The object `name` (None when absent)."""
        with storage_errors(self.url, "read the model store"):
            try:
                return self.fs.cat_file(self._path(name))
            except FileNotFoundError:
                return None

    def _put(self, name: str, data: bytes) -> None:
        with storage_errors(self.url, "write to the model store"):
            put_object(self.fs, self._path(name), data)

    def _stored(self) -> set[str]:
        """Versions whose checkpoint is in the store (manifest or not)."""
        with storage_errors(self.url, "list the model store"):
            self.fs.invalidate_cache(self._path("versions"))  # listings are cached per process
            try:
                names = self.fs.ls(self._path("versions"), detail=False)
            except FileNotFoundError:
                return set()
        return {n.rsplit("/", 1)[-1][:-3] for n in names if n.endswith(".pt")}

    def _manifest(self, version: str) -> dict[str, Any] | None:
        raw = self._get(f"versions/{version}.json")
        return json.loads(raw) if raw is not None else None

    # -- reading ---------------------------------------------------------------------------
    def checkpoint_path(self, version: str) -> Path:
        """A local file of `version` whose bytes match its manifest: the store's own file on a
        local filesystem, else a download. CheckpointError when it is absent or does not match."""
        if not version or "/" in version:
            raise CheckpointError(f"no version {version!r} in the model store {redact(self.url)}")
        manifest = self._manifest(version)
        if manifest is None:
            if version in self._stored():
                raise CheckpointError(f"version {version} in {redact(self.url)} has no manifest (published "
                                      "before checksums, or still being published): publish its file again")
            raise CheckpointError(f"no version {version!r} in the model store {redact(self.url)}")
        name = f"versions/{version}.pt"
        with storage_errors(self.url, "read the model store"):
            try:
                path, digest = self._local_copy(name)
            except FileNotFoundError:
                raise CheckpointError(f"no version {version!r} in the model store {redact(self.url)}") from None
        if digest != manifest.get("sha256"):
            raise CheckpointError(f"version {version} in {redact(self.url)} does not match its checksum "
                                  "(damaged, or replaced after it was published): refused")
        return path

    def _local_copy(self, name: str) -> tuple[Path, str]:
        """(a local file of the object `name`, sha256 of the bytes in that file)."""
        digest = hashlib.sha256()
        if self._local:
            path = Path(self._path(name))
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
            return path, digest.hexdigest()
        downloads = self._download_dir()
        fd, tmp = tempfile.mkstemp(dir=downloads, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, self.fs.open(self._path(name), "rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            path = downloads / name.rsplit("/", 1)[-1]
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for old in sorted(downloads.glob("*.pt"), key=lambda p: p.stat().st_mtime_ns)[:-_DOWNLOADS_KEPT]:
            old.unlink(missing_ok=True)
        return path, digest.hexdigest()

    def _download_dir(self) -> Path:
        # Per process and removed at its exit: a caller may keep the path after this store is gone.
        if self._downloads is None:
            self._downloads = Path(tempfile.mkdtemp(prefix="seqrec-model-"))
            atexit.register(shutil.rmtree, self._downloads, True)
        return self._downloads

    def info(self, version: str) -> VersionInfo:
        payload = read_payload(self.checkpoint_path(version))
        config = payload.get("config") or {}
        return VersionInfo(
            version=version,
            created_at=str(payload.get("created_at", "")),
            attention=str(config.get("attention", "?")),
            n_items=int(config.get("n_items", 0)),
            metrics=dict(payload.get("metrics") or {}),
            url=self._version_url(version),
            config=dict(config),
        )

    def _version_url(self, version: str) -> str:
        return f"{redact(self.url).rstrip('/')}/versions/{version}.pt"

    def versions(self) -> list[VersionInfo]:
        """All stored versions, in the order they were published; an unreadable one is listed
        with its `error` instead of hiding the others."""
        return [self._info_or_error(v) for v in self._stored_by_age()]

    def _info_or_error(self, version: str) -> VersionInfo:
        try:
            return self.info(version)
        except CheckpointError as exc:
            return VersionInfo(version, "", "?", 0, {}, self._version_url(version), {}, error=str(exc))

    def _stored_by_age(self) -> list[str]:
        # Publish order, from the manifests: names order by save time, and two versions saved in
        # one second differ only by hash; object stores' modification times are to the second.
        # A version without a manifest (published before them) counts as oldest.
        def published(version: str) -> str:
            manifest = self._manifest(version)
            return str(manifest.get("published_at", "")) if manifest else ""

        return sorted(self._stored(), key=lambda v: (published(v), v))

    def history(self) -> list[str]:
        raw = self._get("history.json")
        return json.loads(raw) if raw is not None else []

    def latest(self) -> str | None:
        raw = self._get("LATEST")
        return (raw or b"").decode().strip() or None

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
        if self._manifest(version) is None:
            data = Path(checkpoint).read_bytes()
            self._put(f"versions/{version}.pt", data)  # the object first, then what vouches for it
            manifest = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                        "published_at": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
            self._put(f"versions/{version}.json", json.dumps(manifest).encode())
        log.info("published version %s to %s", version, redact(self.url))
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
        stored = self._stored()
        history = [v for v in self.history() if v in stored]
        if len(history) < 2:
            raise CheckpointError("nothing to roll back to: fewer than two promoted versions are stored")
        rolled_back = history.pop()
        self._set_history(history)
        log.info("rolled back from %s to %s", rolled_back, history[-1])
        return history[-1]

    def _set_history(self, history: list[str]) -> None:
        self._put("history.json", json.dumps(history).encode())
        self._put("LATEST", f"{history[-1]}\n".encode() if history else b"")

    def _prune(self) -> None:
        """Keep the newest `keep` checkpoints, and always every version the last `keep`
        promotions name, so rollback has something to go back to."""
        protected = set(self.history()[-self.keep:])
        stored = self._stored_by_age()
        for version in stored[: max(0, len(stored) - self.keep)]:
            if version in protected:
                continue
            # The checkpoint first: a manifest left alone by a crash is never listed.
            for name in (f"versions/{version}.pt", f"versions/{version}.json"):
                with storage_errors(self.url, "prune the model store"):
                    try:
                        self.fs.rm_file(self._path(name))
                    except FileNotFoundError:  # no manifest: published before them
                        pass
            log.info("retention: removed version %s", version)


__all__ = ["IncompatibleVersionError", "ModelStore", "PINNED_FIELDS", "VersionInfo", "incompatibility"]
