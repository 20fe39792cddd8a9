# Shared steps of the GPU training scripts (sourced by scripts/gpu/stage3.sh, quality.sh and
# scripts/gpu/camera.sh): wait for the runs started in the background, then copy each run's
# best.pt to OUT and print the lines of its log that tell how it went.
#
#   gpu_preamble OUT                             -> OUT and logs/ made, the card and torch printed;
#                                                   fails when torch cannot be imported
#   wait_runs PIDS_ARRAY_NAME NAMES_ARRAY_NAME   -> sets $status (0, or 1 if a run failed)
#   collect_runs OUT RUN...                      -> OUT/<run>.pt and a summary per run

gpu_preamble() {
    mkdir -p "$1" logs
    export PYTHONUNBUFFERED=1
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, demosaic; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
}

wait_runs() {
    local -n _pids=$1 _names=$2
    status=0
    for i in "${!_pids[@]}"; do
        wait "${_pids[$i]}" || { echo "${_names[$i]} exited with $?"; status=1; }
    done
}

collect_runs() {
    local out=$1; shift
    for run in "$@"; do
        best=checkpoints/experiments/$run/best.pt
        [ -f "$best" ] && cp "$best" "$out/$run.pt"
        echo "== $run"
        grep -h "fit_steps_to_time\|spent\|validation\|done:" "logs/train_$run.log" | tail -n 6
    done
}
