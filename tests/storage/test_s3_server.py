"""The S3 server the storage tests stand on really stores and lists objects."""

from __future__ import annotations

import fsspec


def test_the_s3_server_stores_lists_and_returns_objects(s3_bucket: str) -> None:
    fs, root = fsspec.core.url_to_fs(s3_bucket)
    fs.pipe(f"{root}/a/one.txt", b"one")
    fs.pipe(f"{root}/a/two.txt", b"two")
    assert sorted(fs.ls(f"{root}/a", detail=False)) == [f"{root}/a/one.txt", f"{root}/a/two.txt"]
    assert fs.cat(f"{root}/a/two.txt") == b"two"
