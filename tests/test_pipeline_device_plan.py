"""`benchmarks/pipeline_device.sh`, issue 30's prepared GPU call for the latency goal, run end to end on
the CPU with a tiny load (the real broker, real workers): a device session has 15 minutes in all, so a
script that breaks there wastes them. And the jar repacking its bundle does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from device_jars import keep, repack  # noqa: E402


def test_device_plan_runs_one_and_two_workers_saturated_and_paced_at_both_rates(tmp_path: Path) -> None:
    # One kind: each costs a worker group's start and stop per worker count, 10-13 s on 2 busy cores (the
    # device's three kinds took 58-78 s here). A generative one: the most code beyond softmax.
    env = {**os.environ, "BUNDLE": "local", "DEVICE": "cpu", "OUT": str(tmp_path / "out"), "KINDS": "dgenatt",
           "CLICKS": "120", "PACED_CLICKS": "60", "WARMUP": "0", "USERS": "30", "ITEMS": "50", "SIZES": "1",
           "FORWARD_SECONDS": "0.05"}
    result = subprocess.run(["bash", "benchmarks/pipeline_device.sh"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    for n in (1, 2):
        report = json.loads((tmp_path / "out" / f"pipeline_{n}w.json").read_text())
        assert report["workers"] == n and list(report["kinds"]) == ["dgenatt"]
        r = report["kinds"]["dgenatt"]
        runs = [r["saturate"], r["paced"], *r["more_paced"]]
        assert [run["offered_rate"] for run in runs] == [None, 1000.0, 5000.0]
        assert all(run["answered"] == run["clicks"] for run in runs)
        if n == 2:  # each worker's share of the saturated run; together, every click
            assert sum(w["clicks"] for w in r["saturate"]["per_worker"]) == r["saturate"]["clicks"]
        else:
            assert "per_worker" not in r["saturate"]
    assert "pipeline_device: done" in (tmp_path / "out" / "pipeline_device.log").read_text()


def test_device_plan_refuses_a_missing_bundle_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "BUNDLE": str(tmp_path / "nothing"), "OUT": str(tmp_path)}
    result = subprocess.run(["bash", "benchmarks/pipeline_device.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "pipeline_device_bundle.sh" in result.stderr


def test_jars_keep_classes_and_only_linux_x86_64_native_libraries(tmp_path: Path) -> None:
    entries = {
        "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
        "com/github/luben/zstd/Zstd.class": b"\xca\xfe\xba\xbe" * 50,
        "linux/amd64/libzstd-jni-1.5.6-10.so": b"elf",  # zstd-jni, lz4-java
        "darwin/aarch64/libzstd-jni-1.5.6-10.dylib": b"macho",
        "win/amd64/libzstd-jni-1.5.6-10.dll": b"pe",
        "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so": b"elf",  # snappy-java
        "org/xerial/snappy/native/Linux/aarch64/libsnappyjava.so": b"elf",
        "org/xerial/snappy/native/AIX/ppc64/libsnappyjava.a": b"xcoff",
    }
    src, dst = tmp_path / "codec.jar", tmp_path / "out.jar"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as jar:
        for name, data in entries.items():
            jar.writestr(name, data)

    assert repack(src, dst) == 4
    with zipfile.ZipFile(dst) as jar:
        kept = {info.filename: jar.read(info) for info in jar.infolist()}
        assert {info.compress_type for info in jar.infolist()} == {zipfile.ZIP_STORED}
    assert kept == {name: data for name, data in entries.items() if keep(name)}
    assert set(kept) == {"META-INF/MANIFEST.MF", "com/github/luben/zstd/Zstd.class",
                         "linux/amd64/libzstd-jni-1.5.6-10.so", "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so"}


@pytest.mark.parametrize("java, jars, says", [(False, True, "Java 17+ is needed"), (True, False, "no Kafka broker jars in")])
def test_broker_start_without_java_or_jars_says_so_in_one_line(tmp_path: Path, java: bool, jars: bool, says: str) -> None:
    """The device has no Java of its own: `kafka start` takes JAVA_HOME's (else PATH's) and the jars in --lib-dir."""
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"), **({} if java else {"PATH": ""})}
    lib = ROOT / "deploy" / "kafka" / "lib" if jars else tmp_path
    result = subprocess.run([sys.executable, "-m", "seqrec.pipeline.cli", "kafka", "start", "--data-dir",
                             str(tmp_path / "kafka"), "--lib-dir", str(lib)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
