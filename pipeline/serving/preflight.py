"""Checks a worker makes before it starts Faust, so a bad setting ends in one line naming it
instead of a page of library output after a long wait: the model store exists, no other worker
holds the data directory, the web port is free, the broker answers within `broker_wait_s`."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import IO

from fsspec.implementations.local import LocalFileSystem

from seqrec.pipeline.errors import ConfigError
from seqrec.pipeline.settings import Settings
from seqrec.pipeline.storage.location import redact, resolve

LOCK_NAME = "worker.lock"  # inside the data directory; holds the owner's pid


def check_model_store(settings: Settings) -> None:
    """A local store must exist (a typo would otherwise wait for a publish that never comes); a
    remote one answers for itself on the first look."""
    url = settings.serving.model_store
    if url is None:
        return
    fs, root = resolve(url)
    if isinstance(fs, LocalFileSystem) and not fs.isdir(root):
        raise ConfigError(f"the model store {redact(url)} does not exist: check --model-store "
                          f"(`seqrec models publish CHECKPOINT --store {redact(url)}` creates one)")


def lock_datadir(datadir: Path) -> IO[str]:
    """Take the data directory for this process; keep the returned file open while serving.
    RocksDB allows one process per database, and Faust would only find out after half a
    minute of retries."""
    try:
        datadir.mkdir(parents=True, exist_ok=True)
        handle = open(datadir / LOCK_NAME, "a+")
    except OSError as exc:
        raise ConfigError(f"cannot use the data directory {datadir}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise ConfigError(f"the data directory {datadir} is in use by another worker (pid {owner}): "
                            "give each worker its own --datadir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def check_web_port(settings: Settings) -> None:
    web = settings.web
    if not web.enabled or web.port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        try:
            probe.bind((web.host, web.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"web port {web.port} on {web.host} is in use: give each worker its own "
                                    "--web-port, or --without-web") from None
            raise ConfigError(f"cannot serve the web endpoints on {web.host}:{web.port}: {exc.strerror}") from None


def _reachable(hostport: str) -> bool:
    host, _, port = hostport.strip().removeprefix("kafka://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False


def wait_for_broker(settings: Settings) -> None:
    """Return once one bootstrap server accepts a connection; give up after `broker_wait_s`."""
    k = settings.kafka
    hosts = [h for h in k.bootstrap_servers.split(",") if h.strip()]
    deadline = time.monotonic() + k.broker_wait_s
    while not any(_reachable(h) for h in hosts):
        if time.monotonic() >= deadline:
            raise ConfigError(f"cannot reach Kafka at {k.bootstrap_servers} within {k.broker_wait_s:g} s: "
                                "check --brokers, or wait longer with --broker-wait")
        time.sleep(0.5)


def preflight(settings: Settings) -> IO[str]:
    """All the checks, cheapest first; returns the data directory's lock (keep it open)."""
    check_model_store(settings)
    lock = lock_datadir(settings.store.datadir)
    check_web_port(settings)
    wait_for_broker(settings)
    return lock


__all__ = ["LOCK_NAME", "check_model_store", "check_web_port", "lock_datadir", "preflight", "wait_for_broker"]
