#!/usr/bin/env bash
# Stage 3 of the default X-Trans model on one GPU: three runs side by side on the same card,
# each with batches synthesised on the GPU (trainer.device_batches) and a cosine schedule
# fitted to a wall-clock budget (trainer.max_minutes + trainer.fit_steps_to_time):
#
#   xtrans_default_gpu         v7.2_gpu         the shipped architecture, from v7.1_ft
#   xtrans_default_gpu_deep    v7.3_gpu_deep    blocks [1,1,2,3], grown from v7.1_ft
#   xtrans_default_gpu_deep_s  v7.4_gpu_deep_s  blocks [1,1,2,2], grown from v7.1_ft
#
# Usage, from the repository root, with the data under $DEMOSAIC_DATA (cbsd432, sun_hays80,
# cbsd68) and checkpoints/experiments/v7.1_ft/best.pt present:
#
#   scripts/gpu/stage3.sh OUT_DIR [MINUTES] [extra Hydra overrides for every run...]
#
# OUT_DIR receives <run>.pt (each run's best.pt, selected on the validation set) and
# logs.tar.gz (text logs, metrics, configs). Small models leave most of a big GPU idle, which
# is why the three runs share one card; the step rate each one reaches is in its log.
set -uo pipefail
out=${1:?usage: scripts/gpu/stage3.sh OUT_DIR [MINUTES] [overrides...]}
minutes=${2:-8}
shift $(( $# >= 2 ? 2 : 1 ))
# shellcheck source=scripts/gpu/common.sh
source "$(dirname "$0")/common.sh"
gpu_preamble "$out" || exit 1

experiments=(xtrans_default_gpu xtrans_default_gpu_deep xtrans_default_gpu_deep_s)
runs=(v7.2_gpu v7.3_gpu_deep v7.4_gpu_deep_s)


# hard stop a minute after the budget (start-up, the last validation, saving)
limit=$(python3 -c "print(int(float('$minutes') * 60 + 60))")
pids=()
for e in "${experiments[@]}"; do
    OMP_NUM_THREADS=4 timeout "$limit" python3 -m demosaic.cli.train "+experiment=$e" \
        "trainer.max_minutes=$minutes" "hydra.run.dir=logs/hydra/$e" "$@" \
        > "logs/stdout_$e.txt" 2>&1 &
    pids+=($!)
done
wait_runs pids experiments
collect_runs "$out" "${runs[@]}"
tar czf "$out/logs.tar.gz" logs/train_v7.[234]_*.log logs/metrics_v7.[234]_*.jsonl \
    logs/stdout_xtrans_default_gpu*.txt checkpoints/experiments/v7.[234]_*/config.yaml 2>/dev/null
exit $status
