#!/usr/bin/env bash
# Everything benchmarks/pipeline_device.sh needs on the `device` machine that it lacks (it has Python 3.12,
# torch and numpy, but no Java, no Kafka and no network): a Java runtime cut down with jlink to the modules the
# broker uses, the broker's jars from deploy/kafka/lib, and the wheels of this project's dependencies
# missing there (cp312, manylinux x86-64, the versions installed here). Run here, once; it needs jlink
# (a JDK 17+), the jars (the README's install command) and PyPI:
#
#   bash benchmarks/pipeline_device_bundle.sh            # -> runs/device-pipeline/ (git-ignored), about 47 MB
#
# The folder travels with the working tree, 64 MiB in all per device call; the script says whether both fit.
set -euo pipefail

BUNDLE=${BUNDLE:-runs/device-pipeline}
JARS=${JARS:-deploy/kafka/lib}
# jdeps over the jars, less what only compiles against (java.compiler, java.rmi, java.scripting): java.desktop
# for java.beans, which log4j-core's LoggerContext loads at start; jdk.management for the broker's JVM metrics.
MODULES=java.base,java.desktop,java.logging,java.management,java.naming,java.security.jgss,java.security.sasl,java.sql,java.xml,jdk.management,jdk.unsupported
# The project's dependencies and theirs that the device's image lacks (../.library/device/KINDS.md lists what
# it has); click and typing-extensions too, for the versions faust (click < 8.4) and pydantic ask for.
WHEELS=(faust-streaming mode-streaming aiokafka kafka-python rocksdict orjson pydantic pydantic-core pydantic-settings
        fastjsonschema cryptography cffi pycparser croniter colorlog aiohttp-cors intervaltree terminaltables venusian
        async-timeout annotated-types typing-inspection python-dotenv pytz click typing-extensions)
LIMIT_MIB=64

command -v jlink >/dev/null || { echo "pipeline_device_bundle: no jlink on PATH (install a JDK 17+, e.g. openjdk-17-jdk-headless)" >&2; exit 2; }
ls "$JARS"/kafka_2.13-*.jar >/dev/null 2>&1 || { echo "pipeline_device_bundle: no Kafka broker jars in $JARS (mvn -B -q -f deploy/kafka/pom.xml dependency:copy-dependencies)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/wheels"

# xz over the uncompressed image: 15.7 MiB; with jlink's own --compress=2 before it, 27.1 MiB.
jlink --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --output "$tmp/jre"
strip --strip-unneeded "$tmp"/jre/lib/server/libjvm.so "$tmp"/jre/lib/*.so  # the JDK's symbol tables: 3 MB unpacked
tar -C "$tmp" -cf - jre | xz -9 -T0 >"$BUNDLE/jre.tar.xz"

python3 benchmarks/device_jars.py "$JARS" "$tmp/jars"
tar -C "$tmp" -cf - jars | xz -9 -T0 >"$BUNDLE/kafka-jars.tar.xz"

pins=$(python3 - "${WHEELS[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    print(" ".join(f"{name}=={version(name)}" for name in sys.argv[1:]))
except PackageNotFoundError as exc:
    sys.exit(f"pipeline_device_bundle: {exc.name} is not installed here (pip install -e .)")
EOF
)
# shellcheck disable=SC2086  # one argument per pin
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d "$BUNDLE/wheels" $pins

mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 2**20:.1f}')" "$1"; }
jre=$(stat -c %s "$BUNDLE/jre.tar.xz")
jars=$(stat -c %s "$BUNDLE/kafka-jars.tar.xz")
wheels=$(du -cb "$BUNDLE"/wheels/*.whl | tail -1 | cut -f1)
tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | du -cb --files0-from=- | tail -1 | cut -f1)
sum=$((jre + jars + wheels + tree + untracked))
echo "bundle $BUNDLE: Java runtime $(mib "$jre") MiB, broker jars $(mib "$jars") MiB, $(ls "$BUNDLE"/wheels | wc -l) wheels $(mib "$wheels") MiB"
echo "with the working tree ($(mib "$tree") MiB tracked, $(mib "$untracked") MiB untracked): $(mib "$sum") of the device's $LIMIT_MIB MiB"
if ((sum > LIMIT_MIB * 2**20)); then
    echo "pipeline_device_bundle: $(mib "$sum") MiB does not fit the device's $LIMIT_MIB MiB" >&2
    exit 1
fi
