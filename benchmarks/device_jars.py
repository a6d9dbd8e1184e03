"""The Kafka broker's jars repacked for the device machine's bundle (benchmarks/pipeline_device_bundle.sh).

Two changes, neither to a class: the compression codecs' native libraries for other platforms
are dropped (zstd-jni alone carries 18 of them, 17 MB), and every entry is stored uncompressed,
so that one xz over the whole folder finds what the classes of all jars share; deflated jars
leave xz almost nothing to find.

    python benchmarks/device_jars.py deploy/kafka/lib OUT_DIR
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

NATIVE = re.compile(r"\.(so|dll|dylib|jnilib|a)$")
# How the codec jars name the device's platform: zstd-jni and lz4-java `linux/amd64/`,
# snappy-java `native/Linux/x86_64/`.
LINUX_X86_64 = re.compile(r"(^|/)(linux/amd64|Linux/x86_64)/")


def keep(name: str) -> bool:
    """Whether a jar entry is needed on Linux x86-64: everything but other platforms' native libraries."""
    return not NATIVE.search(name) or bool(LINUX_X86_64.search(name))


def repack(src: Path, dst: Path) -> int:
    """Copy jar `src` to `dst` with the entries `keep` allows, stored; return how many were dropped."""
    dropped = 0
    with zipfile.ZipFile(src) as jar, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
        for entry in jar.infolist():
            if keep(entry.filename):
                out.writestr(entry, jar.read(entry), compress_type=zipfile.ZIP_STORED)
            else:
                dropped += 1
    return dropped


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: device_jars.py JAR_DIR OUT_DIR", file=sys.stderr)
        return 2
    src, dst = Path(argv[0]), Path(argv[1])
    jars = sorted(src.glob("*.jar"))
    if not any(j.name.startswith("kafka_2.13-") for j in jars):
        print(f"device_jars: no Kafka broker jars in {src} (mvn -B -q -f deploy/kafka/pom.xml dependency:copy-dependencies)",
              file=sys.stderr)
        return 2
    dst.mkdir(parents=True, exist_ok=True)
    dropped = sum(repack(jar, dst / jar.name) for jar in jars)
    print(f"{len(jars)} jars stored uncompressed in {dst}, {dropped} native libraries of other platforms dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
