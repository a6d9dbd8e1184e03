#!/usr/bin/env bash
# Issue 30, item 7: the latency goal (paced 1,000 clicks/s: p50 <= 20 ms, p99 <= 50 ms; saturated >= 4,000
# clicks/s per worker) judged where the broker, producer, workers and consumer do not share two cores: one
# prepared command for the `device` machine (16 cores, one GPU, no Java, no network). It unpacks the Java
# runtime and the broker's jars, installs the wheels and this working tree, starts the local broker, then runs
# benchmarks/pipeline_throughput.py with CUDA workers for 1 and 2 workers: softmax and the generative kinds,
# each saturated and paced at 1,000 and 5,000 clicks/s. One JSON per worker count, and the log, in $OUT.
#
#   here, once:    bash benchmarks/pipeline_device_bundle.sh          (-> runs/device-pipeline)
#   device `run`:  command "bash benchmarks/pipeline_device.sh", carry ["runs/device-pipeline"], timeout_s 590
#
# Without a GPU and without the bundle (tests/test_pipeline_device_plan.py runs it so, with a tiny load): BUNDLE=local
# takes this machine's Java (JAVA_HOME or PATH), the jars in deploy/kafka/lib and the installed packages:
#   BUNDLE=local DEVICE=cpu CLICKS=300 PACED_CLICKS=200 WARMUP=0 OUT=/tmp/pipeline-device bash benchmarks/pipeline_device.sh
set -euo pipefail

BUNDLE=${BUNDLE:-runs/device-pipeline}
OUT=${OUT:?set OUT to the folder the results go to (the device machine sets it)}
DEVICE=${DEVICE:-cuda}
KINDS=${KINDS:-softmax vgenatt dgenatt}
WORKERS=${WORKERS:-1 2}
RATES=${RATES:-1000 5000}
# The load, sized so both worker counts fit one 10-minute call: per kind and worker count a saturated run, then
# PACED_CLICKS at each rate (20 s at 1,000/s, 4 s at 5,000/s); WARMUP clicks before the first run only.
CLICKS=${CLICKS:-30000}
PACED_CLICKS=${PACED_CLICKS:-20000}
WARMUP=${WARMUP:-20000}
USERS=${USERS:-10000}
ITEMS=${ITEMS:-5000}
SIZES=${SIZES:-1 256}
FORWARD_SECONDS=${FORWARD_SECONDS:-1}
ANSWER_TIMEOUT=${ANSWER_TIMEOUT:-60}  # seconds a run waits for its last answers
LIMIT_S=${LIMIT_S:-260}               # each worker count's whole benchmark

if [[ $BUNDLE != local ]]; then
    for part in jre.tar.xz kafka-jars.tar.xz wheels; do
        [[ -e $BUNDLE/$part ]] || { echo "pipeline_device: no $BUNDLE/$part (run benchmarks/pipeline_device_bundle.sh here and carry $BUNDLE)" >&2; exit 2; }
    done
fi
mkdir -p "$OUT"
exec > >(tee -a "$OUT/pipeline_device.log") 2>&1
work=$(mktemp -d)
started=$SECONDS
say() { echo "$(date -u +%T) +$((SECONDS - started))s pipeline_device: $*"; }

if [[ $BUNDLE == local ]]; then
    jars=deploy/kafka/lib
else
    # Python's tarfile, not tar -J: the image need not have xz.
    python3 -c 'import sys, tarfile; [tarfile.open(a).extractall(sys.argv[-1], filter="tar") for a in sys.argv[1:-1]]' \
        "$BUNDLE/jre.tar.xz" "$BUNDLE/kafka-jars.tar.xz" "$work"
    export JAVA_HOME=$work/jre
    jars=$work/jars
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$work/site" \
        "$BUNDLE"/wheels/*.whl .
    export PYTHONPATH=$work/site${PYTHONPATH:+:$PYTHONPATH}
    say "unpacked and installed"
fi
export SEQREC_SERVING__DEVICE=$DEVICE  # the workers' model (the benchmark's own forward takes --device)
say "$(nproc) cores, $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")')"

trap 'python3 -m seqrec.pipeline.cli kafka stop --data-dir "$work/kafka" || true; rm -rf "$work"' EXIT
bootstrap=$(python3 -m seqrec.pipeline.cli kafka start --data-dir "$work/kafka" --lib-dir "$jars" --heap 1g | head -1)
say "broker at $bootstrap ($("${JAVA_HOME:+$JAVA_HOME/bin/}java" -version 2>&1 | head -1))"

failed=()
warmup=$WARMUP  # the broker's JVM warms up once
for n in $WORKERS; do
    say "$n worker(s): kinds $KINDS, saturated $CLICKS clicks, paced $PACED_CLICKS at each of $RATES clicks/s"
    # shellcheck disable=SC2086  # KINDS, RATES and SIZES are lists
    timeout --signal=INT --kill-after=30 "$LIMIT_S" \
        python3 benchmarks/pipeline_throughput.py --bootstrap "$bootstrap" --workers "$n" --kinds $KINDS \
        --rate $RATES --clicks "$CLICKS" --paced-clicks "$PACED_CLICKS" --warmup "$warmup" --users "$USERS" \
        --items "$ITEMS" --sizes $SIZES --forward-seconds "$FORWARD_SECONDS" --device "$DEVICE" \
        --timeout "$ANSWER_TIMEOUT" --out "$OUT/pipeline_${n}w.json" || failed+=("$n worker(s): exit $?")
    warmup=0
done

python3 - "$OUT" <<'EOF'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("pipeline_*w.json")):
    result = json.loads(path.read_text())
    n = result["workers"]
    for kind, r in result["kinds"].items():
        if "saturate" not in r:
            continue
        paced = [r["paced"], *r.get("more_paced", [])]
        print(f"{n} worker(s) {kind:8s} saturated {r['saturate']['events_per_s'] / n:,.0f}/s per worker; " + "; ".join(
            f"paced {p['offered_rate']:,.0f}/s: p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms, "
            f"{p['answered']}/{p['clicks']} answered" for p in paced))
EOF
if ((${#failed[@]})); then
    say "failed: ${failed[*]}"
    exit 1
fi
say "done"
