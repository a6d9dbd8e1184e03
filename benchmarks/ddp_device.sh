#!/usr/bin/env bash
# Issue 29's GPU check as one prepared command for the `device` machine (GPUs, 16 cores, no network):
# DistributedDataParallel against one process on the same data, seed and global batch
# (benchmarks/ddp_quality.py), one GPU per process with NCCL when the machine has two or more GPUs;
# on a one-GPU machine the data-parallel run cannot have a GPU per process, so the comparison runs
# on the CPU cores with gloo and the one-process run's GPU speed is timed beside it.
#
#   here, once:    mkdir -p runs/device && cp ../shared/data/ml-1m/ml-1m.txt.gz runs/device/
#   device `run`:  command "bash benchmarks/ddp_device.sh", carry ["runs/device"], timeout_s 590
#
# Without a GPU (tests/test_ddp_device_plan.py runs it so with a tiny file):
#   DEVICE=cpu MINUTES=0.1 DATA=tiny.txt.gz OUT=/tmp/ddp bash benchmarks/ddp_device.sh
set -euo pipefail

DATA=${DATA:-runs/device/ml-1m.txt.gz}
OUT=${OUT:?set OUT to the folder the results go to (the device machine sets it)}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-4}  # each training's cap: two trainings (three on one GPU) inside one 10-minute call
RUNS=${RUNS:-runs/ddp}

[[ -f $DATA ]] || { echo "ddp_device: no data file $DATA (copy ml-1m.txt.gz into runs/device/ and carry it)" >&2; exit 2; }

# The model code needs torch alone; the device machine lacks the pipeline's Kafka clients.
if ! python3 -c "import seqrec.model" 2>/dev/null; then
    shim=$(mktemp -d)
    mkdir -p "$shim/seqrec" && ln -s "$PWD/model" "$shim/seqrec/model"
    export PYTHONPATH="$shim${PYTHONPATH:+:$PYTHONPATH}"
fi

gpus=$(python3 -c 'import torch; print(torch.cuda.device_count())')
common=(--data "$DATA" --minutes "$MINUTES" --max-len 200 --batch-size 128)
if [[ $DEVICE == cuda && $gpus -ge 2 ]]; then
    python3 benchmarks/ddp_quality.py "${common[@]}" --device cuda --nproc "$gpus" --runs "$RUNS/cuda" \
        --out "$OUT/ddp_cuda_${gpus}gpus.json"
else
    python3 benchmarks/ddp_quality.py "${common[@]}" --device cpu --nproc 2 --runs "$RUNS/cpu" --out "$OUT/ddp_cpu_gloo.json"
    if [[ $DEVICE == cuda ]]; then  # one GPU: its one-process speed, for the same data and settings
        python3 benchmarks/ddp_quality.py "${common[@]}" --device cuda --nproc 1 --runs "$RUNS/cuda" \
            --out "$OUT/ddp_cuda_1gpu.json"
    fi
fi
