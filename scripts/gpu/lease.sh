#!/usr/bin/env bash
# Everything one lease of a GPU machine is for, in one call of the device tool (15 minutes of
# device time per issue, one command of at most 10): install, the GPU inference benchmark of
# issue 15, then the quality network of issue 16 trained for what time is left, its weights
# packed to come back. Run from the repository root on the device machine:
#
#   scripts/gpu/lease.sh OUT [BUDGET_S] [training overrides...]
#
# BUDGET_S (default 540) is the wall-clock the whole script may use; training gets what the
# benchmark leaves, less a margin for packing. Expects, carried beside the working tree:
#   .whl/      wheels of what the machine's image lacks (hydra-core, omegaconf, antlr4, rawpy,
#              OpenEXR; python 3.12), installed to /tmp/site;
#   .gpudata/  cbsd432, sun_hays80 (training) and cbsd68 (validation; a subset when the
#              64 MiB transfer limit forbids the whole set) as $DEMOSAIC_DATA.
# OUT receives gpu_infer.json and bench.log (scripts/benchmarks/bench_gpu_infer.py), lease.log (with the
# weights' sha256), the training logs (train_logs.tar) and the best checkpoint slimmed to its inference weights
# (EMA, float32: demosaic-export --format checkpoint), split into RUN.pt.part-* of 15 MiB (the tool returns files of <= 16 MiB):
# `cat RUN.pt.part-* > RUN.pt` restores a checkpoint every command loads.
# DEVICE=cpu BENCH_S=0 smoke-tests the script on a machine without a GPU.
# Size: the tree that travels counts tracked files too. With src/demosaic/assets/quality_xtrans.pt
# (21 MB) in it, CBSD432 + Sun & Hays 80 (42 MB) no longer fit beside it: move that file out of
# the tree for the call (nothing on the device needs it: the benchmark runs the fast default),
# or carry a subset of the training sets.
set -uo pipefail
out=${1:?usage: scripts/gpu/lease.sh OUT [BUDGET_S]}
budget=${2:-540}
shift $(( $# >= 2 ? 2 : $# ))  # the rest: Hydra overrides for the training run
device=${DEVICE:-cuda}
mkdir -p "$out"
exec > >(tee -a "$out/lease.log") 2>&1
export PYTHONUNBUFFERED=1
elapsed() { echo $(( SECONDS )); }

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! python3 -c "import demosaic.configs" 2>/dev/null; then
    python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . \
        || { echo "editable install failed"; exit 1; }
fi
[ -d .gpudata ] && export DEMOSAIC_DATA=${DEMOSAIC_DATA:-$PWD/.gpudata}
echo "data: ${DEMOSAIC_DATA:-../shared/data}; setup done at $(elapsed) s"

# 1. Issue 15: the GPU inference benchmark (network and whole command, 24 and 100 MP).
if [ "${BENCH_S:-200}" -gt 0 ]; then
    timeout "${BENCH_S:-200}" python3 scripts/benchmarks/bench_gpu_infer.py --out /tmp/bench --device "$device" \
        --repeat "${BENCH_REPEAT:-2}" --sizes ${BENCH_SIZES:-24 100} > "$out/bench.log" 2>&1
    echo "bench exit $? at $(elapsed) s"; tail -n 8 "$out/bench.log"
    cp /tmp/bench/gpu_infer.json "$out/" 2>/dev/null
fi

# 2. Issue 16: the quality network for the time left (less 40 s for packing; the trainer's
#    budget counts its own start-up, the last validation and saving).
train() {  # RUN, then extra overrides
    local run=$1; shift
    local left=$(( budget - SECONDS - 40 ))
    [ "$left" -lt 90 ] && { echo "no time left to train $run ($left s)"; return 1; }
    local minutes
    minutes=$(python3 -c "print(round(($left - 15) / 60, 2))")
    echo "training $run for $minutes min from $(elapsed) s"
    RUN=$run EVAL=0 DEVICE=$device scripts/gpu/quality.sh /tmp/quality "$minutes" "$@"
}
run=v10.0_quality_gpu
train "$run" "$@"
if [ ! -f "/tmp/quality/$run.pt" ]; then
    # The batches made on the GPU are the untried part: fall back to CPU workers.
    tail -n 30 "logs/stdout_$run.txt"
    run=v10.1_quality_gpu_workers
    train "$run" trainer.device_batches=false trainer.num_workers=8 "$@"
fi
(cd /tmp/quality && tar cf "$out/train_logs.tar" logs_*.tar.gz) 2>/dev/null

# 3. The best checkpoint, inference weights only, in parts the tool can return.
if [ -f "/tmp/quality/$run.pt" ]; then
    python3 -m demosaic.cli.export "/tmp/quality/$run.pt" --format checkpoint \
        --out "/tmp/$run.slim.pt" || exit 1
    split -b 15M -d "/tmp/$run.slim.pt" "$out/$run.pt.part-"
    sha256sum "/tmp/$run.slim.pt"
fi
echo "done at $(elapsed) s"
