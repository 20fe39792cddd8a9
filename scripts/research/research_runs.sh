#!/usr/bin/env bash
# Small CPU reproductions of the research log's open questions (docs/RESEARCH.md).
# Everything lands in logs/research/. Usage: bash scripts/research/research_runs.sh STAGE
#   data     proxy DNGs from sun_hays80 -> raw-teacher shards; CFA statistics plots
#   base     "v4" stand-in (small model on the proxy raw-teacher shards) and a 7x larger teacher
#            (width 24: 93 k parameters; the default xtrans_unet is too slow for this shared CPU)
#   forensics  v4_ft, v4_ft_noaug, v4_ft_lr1e-6 from the base (periodic score every 100 steps)
#   forget   torture fine-tune: plain, EWC, freeze, progressive; evaluations; forgetting report
#   texture  adversarial and curriculum runs vs their references; evaluations
#   infer    distillation vs the same student without teacher; INT8 and tiling quality/speed
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."  # the repository root: relative paths below start there
export DEMOSAIC_DATA=${DEMOSAIC_DATA:-../shared/data}  # the dataset configs' default data root
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # the CPU is shared: one thread per run is much faster than two contended
R=logs/research
CK=$R/ckpt
C0=(model=xtrans_unet_small trainer.device=cpu trainer.precision=fp32 trainer.num_workers=0
    trainer.batch_size=16 trainer.checkpoint_dir=$CK trainer.log_dir=$R/logs
    ++dataset.val.max_images=8 ++dataset.val.max_size=192 trainer.ema_decay=0 trainer.log_every=50
    trainer.snapshot_crop=144)
C=("${C0[@]}" dataset.train.patch_size=48)   # 48 px training patches (mixtures set it per component)
RT=dataset.train.root=$R/raw_teacher
EVAL=(evalset.max_images=16 worst_crops=0 hdr_gain=0 progress=false compare=[] runs_dir=$R/runs)
TORT=(evalset=torture evalset.count=52 evalset.patch_size=96 worst_crops=0 hdr_gain=0 progress=false
      compare=[] runs_dir=$R/runs)
tr() {  # tr RUN ARGS... : train unless RUN already has a last.pt (so a stage can be resumed)
  local run=$1; shift
  if [ -f $CK/$run/last.pt ] && [ -z "${RETRAIN:-}" ]; then echo "skip $run (done)"; return; fi
  demosaic-train "$@" trainer.run_name=$run
}
ev() {  # ev CKPT NAME : evaluate on CBSD68 (16 images) and on torture (4 per type)
  demosaic-eval ckpt=$1 evalset=cbsd68 "${EVAL[@]}" out_dir=$R/eval/$2_cbsd68
  demosaic-eval ckpt=$1 "${TORT[@]}" out_dir=$R/eval/$2_torture
}
case "$1" in
data)
  demosaic-research proxy-raws $DEMOSAIC_DATA/sun_hays80 $R/proxy_raws --count 24
  demosaic-prepare raw_teacher source=$R/proxy_raws out=$R/raw_teacher factor=2 workers=1 progress=false
  demosaic-research cfa-stats synthetic=cbsd432 raw_teacher=$R/raw_teacher --out $R/cfa_stats --items 64
  demosaic-research cfa-stats synthetic=cbsd432 raw_teacher=$R/raw_teacher --out $R/cfa_stats_noaug --items 64 --no-augment
  ;;
base)
  [ "${2:-}" = teacher ] || demosaic-train +experiment=v4 "${C[@]}" $RT trainer.run_name=v4.0_base trainer.max_steps=1500 \
    trainer.optim.lr=2e-3 trainer.optim.warmup_steps=50 trainer.val_every=500 trainer.save_every=500 \
    trainer.snapshot_every=500
  demosaic-train +experiment=v4 "${C[@]}" model.width=24 $RT trainer.run_name=v4.0_teacher \
    trainer.max_steps=1500 trainer.optim.lr=1e-3 trainer.optim.warmup_steps=50 trainer.val_every=500 \
    trainer.save_every=500 trainer.snapshot_every=500
  ;;
forensics)
  for e in v4_ft v4_ft_noaug v4_ft_lr1e-6; do
    demosaic-train +experiment=$e "${C[@]}" trainer.init_from=$CK/v4.0_base/best.pt trainer.max_steps=600 \
      trainer.optim.warmup_steps=20 trainer.val_every=100 trainer.save_every=600 trainer.snapshot_every=100
  done
  ;;
forget)
  B=$CK/v4.0_base/best.pt
  FT=(trainer.init_from=$B trainer.max_steps=400 trainer.optim.lr=1e-3 trainer.optim.warmup_steps=20
      trainer.val_every=400 trainer.save_every=400 trainer.snapshot_every=400)
  tr v4.2_torture +experiment=torture "${C[@]}" "${FT[@]}"
  tr v4.2_torture_ewc +experiment=torture "${C[@]}" "${FT[@]}" trainer.ewc_weight=100
  tr v4.2_torture_ewc1 +experiment=torture "${C[@]}" "${FT[@]}" trainer.ewc_weight=1
  tr v4.2_torture_freeze +experiment=torture "${C[@]}" "${FT[@]}" 'trainer.freeze=[stem,encoder]'
  tr v6.2_progressive_torture +experiment=progressive_torture "${C0[@]}" "${FT[@]}" \
    dataset.train.components.0.dataset.root=$R/raw_teacher dataset.train.components.0.dataset.patch_size=48 \
    dataset.train.components.1.dataset.patch_size=48 dataset.train.samples_per_epoch=640
  [ -f $R/eval/base_torture/results.json ] || ev $B base
  for r in v4.2_torture v4.2_torture_ewc v4.2_torture_ewc1 v4.2_torture_freeze v6.2_progressive_torture; do
    [ -f $R/eval/${r}_torture/results.json ] && [ -z "${RETRAIN:-}" ] || ev $CK/$r/last.pt $r
  done
  demosaic-research forgetting --before $R/eval/base_cbsd68 $R/eval/base_torture \
    --run plain $R/eval/v4.2_torture_cbsd68 $R/eval/v4.2_torture_torture \
    --run ewc100 $R/eval/v4.2_torture_ewc_cbsd68 $R/eval/v4.2_torture_ewc_torture \
    --run ewc1 $R/eval/v4.2_torture_ewc1_cbsd68 $R/eval/v4.2_torture_ewc1_torture \
    --run freeze_stem_encoder $R/eval/v4.2_torture_freeze_cbsd68 $R/eval/v4.2_torture_freeze_torture \
    --run progressive $R/eval/v6.2_progressive_torture_cbsd68 $R/eval/v6.2_progressive_torture_torture \
    --metrics psnr ssim texture_score --out $R/forgetting
  ;;
texture)
  B=$CK/v4.0_base/best.pt
  FT=("${C[@]}" $RT trainer.init_from=$B trainer.max_steps=400 trainer.optim.lr=2e-4 trainer.optim.warmup_steps=20
      trainer.val_every=400 trainer.save_every=400 trainer.snapshot_every=400)
  demosaic-train +experiment=v4_ssim "${FT[@]}" trainer.run_name=v5.0_ssim
  demosaic-train +experiment=adversarial "${FT[@]}" trainer.adversarial.start_step=100 trainer.adversarial.weight=0.01
  demosaic-train +experiment=v4 "${C[@]}" $RT trainer.run_name=v4.3_curriculum trainer.max_steps=1500 \
    trainer.optim.lr=2e-3 trainer.optim.warmup_steps=50 trainer.val_every=500 trainer.save_every=500 \
    trainer.snapshot_every=500 trainer.curriculum.start_fraction=0.5 trainer.curriculum.ramp_steps=750
  for r in v5.0_ssim v5.2_adversarial v4.3_curriculum; do
    demosaic-eval ckpt=$CK/$r/last.pt evalset=cbsd68 "${EVAL[@]}" out_dir=$R/eval/${r}_cbsd68
  done
  ;;
infer)
  T=$CK/v4.0_teacher/best.pt
  D=("${C[@]}" teacher=$T trainer.max_steps=1500 trainer.optim.lr=2e-3 trainer.optim.warmup_steps=50
     trainer.val_every=500 trainer.save_every=500 trainer.snapshot_every=500)
  demosaic-train +experiment=distill "${D[@]}"
  demosaic-train +experiment=distill "${D[@]}" trainer.distill.weight=0 trainer.run_name=distill_small_noteacher
  demosaic-eval ckpt=$T evalset=cbsd68 "${EVAL[@]}" out_dir=$R/eval/v4.0_teacher_cbsd68
  demosaic-eval ckpt=$CK/distill_small/last.pt evalset=cbsd68 "${EVAL[@]}" out_dir=$R/eval/distill_small_cbsd68
  demosaic-eval ckpt=$CK/distill_small_noteacher/last.pt evalset=cbsd68 "${EVAL[@]}" out_dir=$R/eval/distill_small_noteacher_cbsd68
  demosaic-research speed $T --int8 static --tiling $DEMOSAIC_DATA/cbsd68/$(ls $DEMOSAIC_DATA/cbsd68 | head -1) \
    --tile 96 --smooth-threshold 0.55 --out $R/speed_teacher
  demosaic-research speed $CK/distill_small/last.pt --int8 static --out $R/speed_student
  ;;
*) echo "unknown stage $1"; exit 2;;
esac
