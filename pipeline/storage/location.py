"""A storage URL: a local path, file://, s3://, gs://, az://, memory:// (fsspec), resolved to a
filesystem and a root path. Credentials come from each backend's own environment and config files
(AWS_* variables and ~/.aws for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://...), never from an
option; messages show a URL only through `redact`, so a secret written into it never reaches a log."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from seqrec.model.checkpoint import write_atomically
from seqrec.pipeline.errors import SeqrecError

# Not anchored: it also cleans URLs inside a backend's error message.
_USERINFO = re.compile(r"([a-zA-Z][\w+.-]*://)[^/\s]*@")  # up to the last @: a password may hold one


class StorageError(SeqrecError):
    """A storage URL that cannot be used: unknown scheme, unreachable, refused credentials."""


def redact(url: str) -> str:
    """`url` (or a text holding URLs) without the user:password@ part, fit for a message."""
    return _USERINFO.sub(r"\1***@", str(url))


def resolve(url: str) -> tuple[AbstractFileSystem, str]:
    """(filesystem, root path without a trailing slash) of `url`; one-line StorageError when no
    installed fsspec backend serves its scheme."""
    try:
        fs, root = fsspec.core.url_to_fs(str(url))
    except (ImportError, ValueError) as exc:  # e.g. gs:// without gcsfs installed
        raise StorageError(f"cannot open {redact(url)}: {redact(str(exc))}") from None
    return fs, root.rstrip("/")


@contextlib.contextmanager
def storage_errors(url: str, doing: str) -> Iterator[None]:
    """Turn a backend's failure inside the block into one StorageError line, "cannot `doing`
    `url`: reason", the URL redacted. Backends raise a zoo (OSError, botocore's, aiohttp's,
    google-auth's...), so anything but our own errors is caught here, at the storage boundary."""
    try:
        yield
    except SeqrecError:
        raise
    except Exception as exc:
        reason = redact(" ".join(str(exc).split()))  # one line, whatever the backend wrote
        userinfo = _USERINFO.search(str(url))
        if userinfo:  # a backend may quote it outside a URL (s3fs: 'Invalid bucket name "user:pw@bucket"')
            secret = userinfo.group(0)[len(userinfo.group(1)):-1]
            for part in filter(None, (secret, secret.partition(":")[2])):
                reason = reason.replace(part, "***")
        reason = reason if len(reason) <= 300 else reason[:297] + "..."
        raise StorageError(f"cannot {doing} {redact(url)}: {type(exc).__name__}"
                           + (f": {reason}" if reason else "")) from exc


def put_object(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` at `path` whole or not at all: temp file, fsync and rename on a local disk; an
    object store's single PUT is atomic by itself."""
    if isinstance(fs, LocalFileSystem):
        write_atomically(Path(path), data)
    else:
        fs.pipe_file(path, data)
