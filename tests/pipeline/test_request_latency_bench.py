"""benchmarks/request_latency.py end to end with a tiny load on the session's broker: two workers
with the request API, 50 clicks/s, one 2-second window of 20 requests/s. The script runs as a
subprocess, as it is used (it switches the API on in its environment for its workers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "request_latency.py"


def test_requests_and_clicks_are_answered_and_reported(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--bootstrap", kafka_bootstrap, "--request-rates", "20", "--click-rate", "50",
         "--duration", "2", "--settle", "1", "--runs", "1", "--users", "50", "--items", "100",
         "--warmup-clicks", "200", "--partitions", "4", "--history-len", "20", "--unknown-share", "0.1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"date", "machine", "argv", "requests"} <= set(result) and result["machine"]["cores"] >= 1
    r = result["requests"]
    assert r["warmup"]["answered"] == r["warmup"]["clicks"] == 200
    assert r["workers"] == 2 and all(r["partitions_held"]) and r["assignment_stable"]
    [window] = r["windows"]
    q, clicks = window["requests"], window["clicks"]
    assert q["sent"] == 40 and q["statuses"] == {"200": 40}, q["statuses"]
    assert q["errors_503"] == q["errors_other"] == 0
    assert 0 < q["forwarded_share"] < 1  # every other request to the worker that does not own the user
    assert q["p50_ms"] <= q["p90_ms"] <= q["p99_ms"] <= q["max_ms"]
    assert q["fallback_known"] == 0 and q["fallback_unknown"] == q["unknown_users"]
    assert set(q["schedule_lag_ms"]) == {"p50", "p99", "max"} and isinstance(q["fell_behind"], bool)
    assert clicks["sent"] > 50 and clicks["answered"] == clicks["sent"] and clicks["p50_ms"] <= clicks["p99_ms"]
    assert r["clicks_answered"] == r["clicks_sent"] and window["mean_batch"] >= 1
    assert r["median_by_rate"]["20.0"]["requests"]["p50_ms"] == q["p50_ms"]  # one run: its own median
    assert "req/s" in done.stdout and "med" in done.stdout
