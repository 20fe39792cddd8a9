#!/usr/bin/env bash
# Camera-simulated training of the default X-Trans model on one GPU (issue "Real camera
# files"), prepared for a session that is lent one: two runs side by side on the card, batches
# (crops, flips, exposure, highlights AND the camera simulation: body matrix, light, WB error,
# noise by ISO, quantisation, clipping, as-shot WB) synthesised on the GPU
# (trainer.device_batches), schedules fitted to a wall-clock budget:
#
#   xtrans_default_camera_mix   v8.2_gpu_mix030   clean_prob 0.3
#   xtrans_default_camera_mix   v8.2_gpu_mix050   clean_prob 0.5
#
# both from INIT (default: the packaged model), batch 64 x 144 px, lr 1e-4.
#
# Usage, from the repository root, with the data under $DEMOSAIC_DATA (cbsd432, sun_hays80,
# cbsd68):
#
#   scripts/gpu/camera.sh OUT_DIR [MINUTES] [INIT] [extra Hydra overrides for both runs...]
#
# OUT_DIR receives <run>.pt (each run's best.pt, selected on the camera-simulated CBSD68) and
# logs.tar.gz. DEVICE=cpu runs the same commands on the CPU (a smoke test of this script).
# Pick between the runs afterwards by the rule in the experiment file
# (configs/candidates/experiment/xtrans_default_camera_mix.yaml).
set -uo pipefail
out=${1:?usage: scripts/gpu/camera.sh OUT_DIR [MINUTES] [INIT] [overrides...]}
minutes=${2:-8}
init=${3:-src/demosaic/assets/default.pt}
shift $(( $# >= 3 ? 3 : $# ))
device=${DEVICE:-cuda}
# shellcheck source=scripts/gpu/common.sh
source "$(dirname "$0")/common.sh"
gpu_preamble "$out" || exit 1


limit=$(python3 -c "print(int(float('$minutes') * 60 + 90))")
runs=(v8.2_gpu_mix030 v8.2_gpu_mix050)
probs=(0.3 0.5)
pids=()
for i in 0 1; do
    OMP_NUM_THREADS=4 timeout "$limit" python3 -m demosaic.cli.train \
        +experiment=xtrans_default_camera_mix "trainer.run_name=${runs[$i]}" \
        "dataset.train.camera.clean_prob=${probs[$i]}" "trainer.init_from=$init" \
        "trainer.device=$device" trainer.device_batches=true trainer.batch_size=64 \
        trainer.num_workers=0 "trainer.max_minutes=$minutes" trainer.fit_steps_to_time=true \
        trainer.val_every=2000 trainer.save_every=2000 "hydra.run.dir=logs/hydra/${runs[$i]}" "$@" \
        > "logs/stdout_${runs[$i]}.txt" 2>&1 &
    pids+=($!)
done
wait_runs pids runs
collect_runs "$out" "${runs[@]}"
tar czf "$out/logs.tar.gz" logs/train_v8.2_gpu_*.log logs/metrics_v8.2_gpu_*.jsonl logs/stdout_v8.2_gpu_*.txt \
    checkpoints/experiments/v8.2_gpu_*/config.yaml 2>/dev/null
exit $status
