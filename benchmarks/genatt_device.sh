#!/usr/bin/env bash
# Issue 14's GPU plan as one prepared command for the `device` machine (one GPU, 16 cores, no network):
# ml-1m at max_len 200 under full cross-entropy, softmax / V-GenAtt / D-GenAtt x seeds 1-3, each kind at
# the dropout, learning rate and options it selected on beauty's validation grid (docs/results/genatt/tuning),
# all nine trainings at once on the one GPU, then the paired per-user tests on its CPUs. The runs come
# back as one archive per kind in $OUT (the device returns at most 8 files, 16 MiB each).
#
#   here, once:    mkdir -p runs/device && cp ../shared/data/ml-1m/ml-1m.txt.gz runs/device/
#   device `run`:  command "bash benchmarks/genatt_device.sh", carry ["runs/device"], timeout_s 590
#   back here:     for f in FILES_AT/ml1m-*.tgz; do tar xzf "$f"; done   (into runs/genatt/ml1m-L200), then
#                  cp runs/genatt/ml1m-L200/softmax/results/*.json docs/results/genatt/, genatt_table.py --write docs/genatt.md README.md
#
# Without a GPU (a smoke test of the script itself; tests/test_genatt_device_plan.py does it with a tiny file):
#   DEVICE=cpu SEEDS=1 MINUTES=0.2 DATA=../shared/data/lastfm/LastFM.txt OUT=/tmp/genatt-device bash benchmarks/genatt_device.sh
set -euo pipefail

DATA=${DATA:-runs/device/ml-1m.txt.gz}
OUT=${OUT:?set OUT to the folder the archives go to (the device machine sets it)}
RUNS=${RUNS:-runs/genatt/ml1m-L200}
DEVICE=${DEVICE:-cuda}
SEEDS=${SEEDS:-1 2 3}
MINUTES=${MINUTES:-6}  # each training's wall-clock cap: nine at once, and the tests after them, inside one 10-minute call
KINDS=(softmax vgenatt dgenatt)

[[ -f $DATA ]] || { echo "genatt_device: no data file $DATA (copy ml-1m.txt.gz into runs/device/ and carry it)" >&2; exit 2; }

# The package is installed here by `pip install -e .`; the device machine has torch but not the project's
# other dependencies (Kafka, Faust), and the model code needs none of them.
if ! python3 -c "import seqrec.model" 2>/dev/null; then
    shim=$(mktemp -d)
    mkdir -p "$shim/seqrec" && ln -s "$PWD/model" "$shim/seqrec/model"
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
fi

selected_settings() {  # "--dropout D --lr LR [--option K=V ...]" that the kind selected on beauty's validation grid
    python3 - "$1" <<'EOF'
import json, pathlib, sys
kind = sys.argv[1]
for path in sorted(pathlib.Path("docs/results/genatt/tuning").glob(f"beauty_ce_{kind}_*.json")):
    run = json.loads(path.read_text())
    if run["kind"] == kind and run.get("selected"):
        options = "".join(f" --option {key}={value}" for key, value in sorted(run["options"].items()))
        print(f"--dropout {run['train_args']['dropout']} --lr {run['train_args']['lr']}{options}")
        break
else:
    sys.exit(f"genatt_device: {kind} has no selected setting in docs/results/genatt/tuning (run genatt_tune.py)")
EOF
}

echo "$(date -u '+%F %T') UTC, $(nproc) cores, $(python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")')"
declare -A settings_of pid_of
for kind in "${KINDS[@]}"; do  # all of them before any training starts: a missing one stops the script here
    settings_of[$kind]=$(selected_settings "$kind")
done
for kind in "${KINDS[@]}"; do
    settings=${settings_of[$kind]}
    for seed in $SEEDS; do
        out=$RUNS/$kind/seed$seed
        mkdir -p "$out"
        echo "start $kind seed $seed: $settings"
        python3 benchmarks/genatt_compare.py --data "$DATA" --attention "$kind" --seed "$seed" --out "$out" \
            --max-len 200 $settings --epochs 400 --patience 10 --max-minutes "$MINUTES" --threads 1 \
            --device "$DEVICE" >"$out/log.txt" 2>&1 &
        pid_of[$out]=$!
    done
done

failed=0
for out in "${!pid_of[@]}"; do
    if wait "${pid_of[$out]}"; then
        python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[2], 'stopped:', s['stopped'], 'epochs', s['epochs_run'], 'best', s['best_epoch'], 's/epoch', s['seconds_per_epoch'], 'valid NDCG@10 %.4f' % s['valid']['NDCG@10'])" "$out/summary.json" "$out"
    else
        failed=1; echo "FAILED $out:"; tail -5 "$out/log.txt"
    fi
done

# The result files (docs/results/genatt's format) travel inside the softmax archive.
python3 benchmarks/genatt_paired.py --data "$DATA" --runs "$RUNS" --seeds $SEEDS --threads 8 \
    --variant softmax --variant vgenatt --variant dgenatt --results "$RUNS/softmax/results" --set ml-1m --tag L200 \
    | tee "$RUNS/paired.md" || failed=1

mkdir -p "$OUT"
for kind in "${KINDS[@]}"; do  # best.pt, summary, history, metrics and log of each run; last.pt stays (size)
    tar czf "$OUT/ml1m-$kind.tgz" --exclude=last.pt "$RUNS/$kind"
done
cp "$RUNS/paired.md" "$OUT/" 2>/dev/null || true
ls -la "$OUT"
exit $failed
