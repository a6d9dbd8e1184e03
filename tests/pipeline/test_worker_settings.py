"""Bad worker settings end in one line and exit code 2, through the real `seqrec worker` command
and the real broker: an unreachable broker, a web port in use, a data directory another worker
holds, a model store that does not exist. And a worker's log carries no colour codes when its
stderr is a file."""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from seqrec.pipeline.devtools.kafka_local import free_port


def run_worker_cli(d, datadir: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seqrec.pipeline.cli", "worker", *d.worker_args(datadir, port, *extra)],
                          capture_output=True, text=True, timeout=240)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{result.stderr[-3000:]}"
    assert lines[0].startswith("seqrec: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_unreachable_broker_is_one_line_after_the_wait(deployment, tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    started = time.monotonic()
    result = run_worker_cli(deployment, tmp_path / "data", free_port(),
                            "--brokers", f"127.0.0.1:{closed}", "--broker-wait", "2")
    print(f"unreachable broker: gave up after {time.monotonic() - started:.1f} s")
    assert_one_line_error(result, f"cannot reach Kafka at 127.0.0.1:{closed} within 2 s", "--broker-wait")


def test_web_port_in_use_is_one_line(deployment, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_worker_cli(deployment, tmp_path / "data", port)
    assert_one_line_error(result, f"web port {port} on 127.0.0.1 is in use", "--web-port")


def test_data_directory_of_a_running_worker_is_refused_naming_it(deployment) -> None:
    first = deployment.worker()
    first.wait_ready()
    assert first.datadir is not None and first.proc is not None
    result = run_worker_cli(deployment, first.datadir, free_port())
    assert_one_line_error(result, f"data directory {first.datadir} is in use by another worker "
                                  f"(pid {first.proc.pid})")
    assert first.proc.poll() is None and first.get("/ready")[0] == 200, "the first worker must be unharmed"


def test_missing_model_store_is_refused_not_created(deployment, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-store"
    result = run_worker_cli(deployment, tmp_path / "data", free_port(), "--model-store", str(missing))
    assert_one_line_error(result, f"the model store {missing} does not exist")
    assert not missing.exists()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_worker_log_has_no_colour_codes_when_stderr_is_a_file(deployment, tmp_path: Path) -> None:
    # Faust's formatter looked at stdout: a terminal there coloured the log file.
    port = free_port()
    log_path = tmp_path / "worker.log"
    terminal, terminal_peer = pty.openpty()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seqrec.pipeline.cli", "worker", *deployment.worker_args(tmp_path / "data", port)],
            stdout=terminal_peer, stderr=log, start_new_session=True)
    os.close(terminal_peer)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not answers(f"http://127.0.0.1:{port}/ready"):
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(60)
        os.close(terminal)
    text = log_path.read_bytes()
    assert b"INFO" in text, text[-2000:]
    assert b"\x1b[" not in text, "ANSI colour codes in a log file"
