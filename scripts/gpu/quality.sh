#!/usr/bin/env bash
# The quality network of issue 16 on one GPU (configs/lineage/experiment/xtrans_quality_gpu.yaml),
# prepared for a session that is lent one: one run, batches and the camera simulation made on
# the GPU, the schedule fitted to MINUTES, then the 8-view ensemble of its best.pt measured on
# CBSD68 (validation) under the camera protocol at ISO 800 and the clean protocol, for the
# rule written in the experiment file.
#
# Usage, from the repository root, with the data under $DEMOSAIC_DATA (cbsd432, sun_hays80,
# cbsd68):
#
#   scripts/gpu/quality.sh OUT_DIR [MINUTES] [extra Hydra overrides...]
#
# OUT_DIR receives RUN.pt (best.pt), the two CBSD68 results folders and logs_RUN.tar.gz.
# DEVICE=cpu runs the same commands on the CPU (a smoke test of this script, e.g.
# EVALSET=bundled with MINUTES=0.3 trainer.batch_size=4). RUN names the run (default
# v10.0_quality_gpu); EVAL=0 skips the CBSD68 measurement (scripts/gpu/lease.sh measures on
# the full set afterwards, off the device).
set -uo pipefail
out=${1:?usage: scripts/gpu/quality.sh OUT_DIR [MINUTES] [overrides...]}
minutes=${2:-10}
shift $(( $# >= 2 ? 2 : $# ))
device=${DEVICE:-cuda}
# shellcheck source=scripts/gpu/common.sh
source "$(dirname "$0")/common.sh"
gpu_preamble "$out" || exit 1


run=${RUN:-v10.0_quality_gpu}
status=0
limit=$(python3 -c "print(int(float('$minutes') * 60 + 90))")
OMP_NUM_THREADS=4 timeout "$limit" python3 -m demosaic.cli.train +experiment=xtrans_quality_gpu \
    "trainer.device=$device" "trainer.max_minutes=$minutes" "trainer.run_name=$run" "hydra.run.dir=logs/hydra/$run" "$@" \
    > "logs/stdout_$run.txt" 2>&1 &
pids=($!)
runs=("$run")
wait_runs pids runs
collect_runs "$out" "$run"
if [ -f "$out/$run.pt" ] && [ "${EVAL:-1}" != 0 ]; then
    for proto in clean camera; do
        extra=(); [ "$proto" = camera ] && extra=(protocol=camera iso=800)
        python3 -m demosaic.cli.evaluate model=quality "model.checkpoint=$out/$run.pt" \
            "evalset=${EVALSET:-cbsd68}" "device=$device" worst_crops=0 hdr_gain=0 progress=false \
            "out_dir=$out/quality_${EVALSET:-cbsd68}_$proto" "${extra[@]}" > "$out/quality_$proto.log" 2>&1 \
            || status=1
        grep -h "PSNR" "$out/quality_$proto.log" | tail -n 1
    done
fi
tar czf "$out/logs_$run.tar.gz" "logs/train_$run.log" "logs/metrics_$run.jsonl" "logs/stdout_$run.txt" \
    "checkpoints/experiments/$run/config.yaml" 2>/dev/null
exit $status
