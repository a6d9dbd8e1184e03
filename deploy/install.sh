#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine: the Python package with its
# dependencies (torch included, once per machine) and the Apache Kafka broker jars from Maven Central.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in python3 java mvn; do
  command -v "$tool" >/dev/null || { echo "install.sh: '$tool' is missing (needs Python 3.10+, Java 17+ and Maven)" >&2; exit 1; }
done

python3 -m pip install --disable-pip-version-check -q -e '.[dev]'
mvn -B -q -f deploy/kafka/pom.xml dependency:copy-dependencies
echo "installed: seqrec $(python3 -c 'import importlib.metadata as m; print(m.version("seqrec"))'), Kafka jars in deploy/kafka/lib"
