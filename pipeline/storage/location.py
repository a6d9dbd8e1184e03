"""A storage URL: a local path, file://, s3://, gs://, az://, memory:// (fsspec), resolved to a
filesystem and a root path. Credentials come from each backend's own environment and config files
(AWS_* variables and ~/.aws for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://...), never from an
option; messages show a URL only through `redact`, so a secret written into it never reaches a log."""

from __future__ import annotations

import re

import fsspec
from fsspec import AbstractFileSystem

from seqrec.pipeline.errors import SeqrecError

_USERINFO = re.compile(r"^([a-zA-Z][\w+.-]*://)[^/@]*@")


class StorageError(SeqrecError):
    """A storage URL that cannot be used: unknown scheme, unreachable, refused credentials."""


def redact(url: str) -> str:
    """`url` without the user:password@ part, fit for a message."""
    return _USERINFO.sub(r"\1***@", str(url))


def resolve(url: str) -> tuple[AbstractFileSystem, str]:
    """(filesystem, root path without a trailing slash) of `url`; one-line StorageError when no
    installed fsspec backend serves its scheme."""
    try:
        fs, root = fsspec.core.url_to_fs(str(url))
    except (ImportError, ValueError) as exc:  # e.g. gs:// without gcsfs installed
        raise StorageError(f"cannot open {redact(url)}: {exc}") from None
    return fs, root.rstrip("/")
