#!/usr/bin/env bash
# Refiner training recipe for ONE machine with one GPU (or the CPU at toy sizes):
#
#   scripts/train_embedded_refiner.sh OUT_DIR
#
# 1. builds the refiner dataset with `make-dataset --workers $WORKERS` (units and procedural scenes in parallel
#    worker processes on the same device): the shared scenes $SCENES from $SCENES_DIR at fractions
#    $SHARED_FRACTIONS (1.0 = each scene's standard held-out split) and $PROCEDURAL procedural scenes of
#    $PROCEDURAL_VIEWS views at $PROCEDURAL_FRACTIONS, core trainer $UNIT_STEPS steps per unit;
# 2. trains CONCURRENTLY, as separate background processes on the same device, (a) the final embedded refiner on
#    every scene for $STEPS steps and (b) one leave-one-scene-out fold per scene of $LOSO_SCENES for $LOSO_STEPS
#    steps each (fp32: bf16 did not learn in an earlier check); waits for all and fails if any failed;
# 3. merges the folds into one table.
#
# Writes (small enough to copy back from a device machine):
#   OUT_DIR/refiner/     the final refiner (splatent-viewer / splatent-render --refiner OUT_DIR/refiner)
#   OUT_DIR/loso.md      device, date, command, timings; per held-out scene × training fraction × k: decoded /
#                        enhanced / RGB splats PSNR+SSIM (+ loso.json with the per-fold details)
#   OUT_DIR/logs/        make_dataset.log, train_final.log (+ its train_log.json), loso_<scene>.log, merge.log
# and the big intermediate data (dataset shards, checkpoints, fold refiners) under WORK_DIR (default OUT_DIR/work).
# Rerunning with the same WORK_DIR resumes the dataset (built units are skipped) and retrains the refiners.
#
# Environment (defaults = the GPU recipe):
#   SCENES_DIR=.gpu_small/scenes   SCENES="temple dino fern lego" (folder names in SCENES_DIR; "" = procedural only)
#   SHARED_FRACTIONS="1.0 0.5"     PROCEDURAL=24  PROCEDURAL_SEED=1  PROCEDURAL_VIEWS=36  PROCEDURAL_RESOLUTION=256
#   PROCEDURAL_FRACTIONS="0.5 0.25"  UNIT_STEPS=2000  WORKERS=16  STEPS=8000  LOSO_STEPS=4000  BATCH=16  KS="0 3"
#   LOSO_SCENES=$SCENES (or the procedural scenes when SCENES is empty)   DEVICE=auto (cpu | cuda)
#   REFINER_ARGS="NAME=VALUE ..." more `splatent-refiner train` options for the final refiner AND the folds, without
#     dashes, e.g. "embedded.block-out-channels=64,128,256 embedded.attention-from-level=1 lr-schedule=cosine"
#     (list values comma-separated; a bare NAME is a boolean flag: "guided" trains the RGB-guided refiner, "guided
#     init=embedded" starts it from the shipped one)
#   UNIT_ARGS="NAME=VALUE ..." core-trainer options of every dataset unit (`make-dataset --trainer.NAME VALUE`), e.g.
#     "loss.decoded-weight=1.0 loss.decoded-every=1" (a decoded-image loss; measured: the units' decoded renders rise, the refiner's
#     leave-one-scene-out Δ falls; benchmarks/RESULTS.md, "Decoded-image loss in every dataset unit");
#     each unit's settings are recorded in the dataset's index.json (units[].trainer)
#   THREADS= CPU threads per training process (default: cores / processes)   GPU_OFFSET=0 (first GPU of the round-robin,
#     for several recipes sharing one machine)
#   BUDGET_S=540: the refiner trainings get --max-seconds = BUDGET_S - (seconds spent so far) - RESERVE_S (at least
#     MIN_TRAIN_S=30), so the run ends near BUDGET_S seconds even if the dataset took longer than planned; 0 = no cap.
#   RESERVE_S=60 (fold evaluation + merge)   WORK_DIR=OUT_DIR/work   DATASET_DIR=WORK_DIR/dataset
#   DATASET_MAX_S= (make-dataset --max-seconds: start no unit after that many seconds; the units not built are
#     listed in make_dataset.log and a rerun with the same WORK_DIR builds them)
#   STAGE=all (dataset | train | final | all): train = final refiner + folds on an existing dataset; final = the final
#     refiner alone (no folds, no table: e.g. a longer run of the recipe the folds measured)
# GPUs: make-dataset spreads its workers over every visible GPU, and the trainings go round-robin onto them
# (final refiner on the first, fold i on GPU (i+1) mod count); CUDA_VISIBLE_DEVICES picks which. With several
# worker processes per GPU, start NVIDIA's MPS daemon first (nvidia-cuda-mps-control -d) so their kernels overlap.
#   PYTHON=.venv/bin/python when it exists, else python3
#
# CPU toy run (~1.5 min on 2 busy cores; tests/refiner_training/test_train_embedded_refiner_script.py):
#   SCENES= PROCEDURAL=2 PROCEDURAL_VIEWS=6 PROCEDURAL_RESOLUTION=32 UNIT_STEPS=30 STEPS=20 LOSO_STEPS=10 \
#     BATCH=2 WORKERS=2 DEVICE=cpu scripts/train_embedded_refiner.sh /tmp/toy
#
# MEASURED: the shipped refiner (assets/refiner/README.md) came from this script on 4 H200s + 64 CPU cores, 2026-11-21,
# in two runs on one machine under the MPS daemon:
#   WORK_DIR=W DEVICE=cuda PROCEDURAL=24 WORKERS=16 UNIT_STEPS=2000 DATASET_MAX_S=330 STAGE=dataset  → 56 units,
#     1273 samples in 330 s (4 workers per GPU, 86-89 % mean GPU utilisation; a unit 40-78 s shared, 68-87 s procedural)
#   DATASET_DIR=W/dataset DEVICE=cuda PROCEDURAL=24 STEPS=8000 LOSO_STEPS=4000 BATCH=16 BUDGET_S=538 RESERVE_S=80 THREADS=6
#     STAGE=train → 4 folds of 4000 steps (243-274 s each with their evaluation) and the final refiner at 7915 of 8000
#     steps (458 s cap), 479 s, round-robin on the 4 GPUs (alongside a second recipe run: 10 processes).
# On ONE GPU (benchmarks/guided_refiner_gpu.sh, one H100, 2026-12-07: MPS started, WORKERS=4 PROCEDURAL=6 DATASET_MAX_S=170
# STEPS=3000 LOSO_STEPS=1500, the shared scenes at half resolution): 20 units / 409 samples in 189 s (24-34 s a unit,
# four at once), then the final refiner (2262 steps in its cap) and 4 folds of 1500 steps concurrently in 267 s: 478 s
# in all. Without MPS, 12 workers on one H200 built none of 24 procedural units in 510 s.
# If steps get cut, lower PROCEDURAL (dataset time is ~linear in it) rather than STEPS.
# Not better on the leave-one-scene-out table (benchmarks/RESULTS.md, 2026-11-21/22): folds of 8000 steps, the shared
# scenes at SHARED_FRACTIONS="1.0 0.75 0.5 0.25", UNIT_ARGS="loss.decoded-weight=1.0 loss.decoded-every=1" (dataset 358 s; ±
# REFINER_ARGS="image-loss=mse ssim-weight=0"); before the core trainer's initialisation fix also PROCEDURAL=44 with
# ~2x the steps and REFINER_ARGS="lr-schedule=cosine" (± a wider refiner), and the real scenes alone (PROCEDURAL=0).
set -euo pipefail

[[ $# -eq 1 && -n "$1" ]] || { sed -n '2,30p' "$0" >&2; echo "usage: $0 OUT_DIR" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$1"
OUT_DIR="$(cd "$1" && pwd)"
cd "$ROOT"

SCENES_DIR=${SCENES_DIR:-.gpu_small/scenes}
SCENES=${SCENES-temple dino fern lego}
SHARED_FRACTIONS=${SHARED_FRACTIONS:-1.0 0.5}
PROCEDURAL=${PROCEDURAL:-24}
PROCEDURAL_SEED=${PROCEDURAL_SEED:-1}
PROCEDURAL_VIEWS=${PROCEDURAL_VIEWS:-36}
PROCEDURAL_RESOLUTION=${PROCEDURAL_RESOLUTION:-256}
PROCEDURAL_FRACTIONS=${PROCEDURAL_FRACTIONS:-0.5 0.25}
UNIT_STEPS=${UNIT_STEPS:-2000}
WORKERS=${WORKERS:-16}
STEPS=${STEPS:-8000}
LOSO_STEPS=${LOSO_STEPS:-4000}
BATCH=${BATCH:-16}
KS=${KS:-0 3}
DEVICE=${DEVICE:-auto}
BUDGET_S=${BUDGET_S:-540}
RESERVE_S=${RESERVE_S:-60}
MIN_TRAIN_S=${MIN_TRAIN_S:-30}
DATASET_MAX_S=${DATASET_MAX_S:-}
STAGE=${STAGE:-all}
REFINER_ARGS=${REFINER_ARGS:-}
UNIT_ARGS=${UNIT_ARGS:-}
THREADS=${THREADS:-}
GPU_OFFSET=${GPU_OFFSET:-0}
[[ $STAGE =~ ^(all|dataset|train|final)$ ]] || { echo "STAGE must be all, dataset, train or final" >&2; exit 2; }
WORK_DIR=${WORK_DIR:-$OUT_DIR/work}
DATASET_DIR=${DATASET_DIR:-$WORK_DIR/dataset}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} PYTHONUNBUFFERED=1 COLUMNS=${COLUMNS:-160}  # wide rich lines in the logs
LOSO_SCENES=${LOSO_SCENES-$SCENES}
if [[ -z "${LOSO_SCENES// /}" ]]; then
  LOSO_SCENES=$(for ((i = 0; i < PROCEDURAL; i++)); do printf 'procedural-%03d ' $((PROCEDURAL_SEED + i)); done)
fi
CMD="SCENES_DIR=$SCENES_DIR SCENES='$SCENES' SHARED_FRACTIONS='$SHARED_FRACTIONS' PROCEDURAL=$PROCEDURAL"
CMD+=" PROCEDURAL_VIEWS=$PROCEDURAL_VIEWS PROCEDURAL_RESOLUTION=$PROCEDURAL_RESOLUTION"
CMD+=" PROCEDURAL_FRACTIONS='$PROCEDURAL_FRACTIONS' UNIT_STEPS=$UNIT_STEPS WORKERS=$WORKERS STEPS=$STEPS"
CMD+=" LOSO_STEPS=$LOSO_STEPS BATCH=$BATCH DEVICE=$DEVICE BUDGET_S=$BUDGET_S${DATASET_MAX_S:+ DATASET_MAX_S=$DATASET_MAX_S}"
[[ -z $REFINER_ARGS ]] || CMD+=" REFINER_ARGS='$REFINER_ARGS'"
[[ -z $UNIT_ARGS ]] || CMD+=" UNIT_ARGS='$UNIT_ARGS'"
[[ $STAGE == all ]] || CMD+=" STAGE=$STAGE"
CMD+=" scripts/train_embedded_refiner.sh $1"

say() { echo "[recipe $(date +%H:%M:%S) +${SECONDS}s] $*"; }
die() { echo "[recipe] error: $*" >&2; exit 1; }
kv_flags() {  # ARRAY PREFIX VAR: appends VAR's "NAME=VALUE ..." items to ARRAY as --PREFIXNAME VALUE (lists: a,b → a b);
  # a bare NAME (a boolean flag such as guided or no-guided) becomes --PREFIXNAME
  local -n out=$1
  local kv vals
  for kv in ${!3}; do
    if [[ $kv != *=* ]]; then out+=("--$2$kv"); continue; fi
    IFS=, read -r -a vals <<<"${kv#*=}"
    out+=("--$2${kv%%=*}" "${vals[@]}")
  done
}

shared=()
for s in $SCENES; do
  [[ -e "$SCENES_DIR/$s" ]] || die "scene $SCENES_DIR/$s not found; set SCENES_DIR, or SCENES= for procedural scenes only"
  shared+=("$SCENES_DIR/$s")
done
((${#shared[@]} > 0 || PROCEDURAL > 0)) || die "no scenes: set SCENES or PROCEDURAL"
LOGS="$OUT_DIR/logs"
mkdir -p "$LOGS" "$WORK_DIR"

# ---------------------------------------------------------------------------------------------------- 1. dataset
say "building the dataset in $DATASET_DIR (${#shared[@]} shared scenes at $SHARED_FRACTIONS, $PROCEDURAL procedural" \
    "at $PROCEDURAL_FRACTIONS, $UNIT_STEPS steps per unit${UNIT_ARGS:+ with $UNIT_ARGS}, $WORKERS workers, device $DEVICE)"
args=(-m splatent_viewer.scripts.refiner_cli make-dataset --output "$DATASET_DIR" --workers "$WORKERS"
      --steps "$UNIT_STEPS" --device "$DEVICE")
[[ -z $DATASET_MAX_S ]] || args+=(--max-seconds "$DATASET_MAX_S")
if ((${#shared[@]} > 0)); then
  # shellcheck disable=SC2206  # the fraction lists are meant to split
  args+=(--scenes "${shared[@]}" --train-fractions $SHARED_FRACTIONS)
fi
if ((PROCEDURAL > 0)); then
  # shellcheck disable=SC2206
  args+=(--procedural "$PROCEDURAL" --procedural-seed "$PROCEDURAL_SEED" --procedural-views "$PROCEDURAL_VIEWS"
         --procedural-resolution "$PROCEDURAL_RESOLUTION" --procedural-fractions $PROCEDURAL_FRACTIONS)
fi
kv_flags args trainer. UNIT_ARGS
if [[ $STAGE == all || $STAGE == dataset ]]; then
  "$PYTHON" "${args[@]}" 2>&1 | tee -a "$LOGS/make_dataset.log"
  say "dataset done in ${SECONDS} s: $(tail -n 1 "$LOGS/make_dataset.log")"
fi
T_DATA=$SECONDS
[[ $STAGE != dataset ]] || exit 0

# ------------------------------------------------------------------------------ 2. final refiner + LOSO folds, concurrently
cap_final=() cap_fold=()
if ((BUDGET_S > 0)); then
  left=$((BUDGET_S - SECONDS - RESERVE_S))
  ((left >= MIN_TRAIN_S)) || left=$MIN_TRAIN_S
  cap_final=(--max-seconds "$left") cap_fold=(--train.max-seconds "$left")
  say "refiner trainings capped at $left s each (BUDGET_S=$BUDGET_S)"
fi
read -r -a folds <<<"$LOSO_SCENES"
[[ $STAGE != final ]] || folds=()
jobs_n=$((1 + ${#folds[@]}))
threads=${THREADS:-$(($(nproc) / jobs_n))}
((threads >= 1)) || threads=1
# REFINER_ARGS "name=value" → `train` flags (--name value) and the folds' nested ones (--train.name value)
train_extra=() fold_extra=()
kv_flags train_extra "" REFINER_ARGS
kv_flags fold_extra train. REFINER_ARGS
pids=() names=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
gpus=0
[[ $DEVICE == cpu ]] || gpus=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())')
run_bg() {  # NAME CMD...: CMD in the background, output to $LOGS/NAME.log (on GPU <job number> mod <GPUs>)
  local name=$1 env=(OMP_NUM_THREADS="$threads")
  shift
  if ((gpus > 1)); then
    local visible
    IFS=, read -r -a visible <<<"${CUDA_VISIBLE_DEVICES:-$(seq -s, 0 $((gpus - 1)))}"
    env+=(CUDA_VISIBLE_DEVICES="${visible[$(((${#pids[@]} + GPU_OFFSET) % gpus))]}")
  fi
  env "${env[@]}" "$@" >"$LOGS/$name.log" 2>&1 &
  pids+=($!) names+=("$name")
}
say "training the final refiner ($STEPS steps) and ${#folds[@]} LOSO folds (${folds[*]:-none}; $LOSO_STEPS steps each)" \
    "concurrently, batch $BATCH, $threads CPU threads each$( ((gpus > 1)) && echo ", round-robin on $gpus GPUs")"
run_bg train_final "$PYTHON" -m splatent_viewer.scripts.refiner_cli train --dataset "$DATASET_DIR" \
  --output "$WORK_DIR/final" --steps "$STEPS" --batch-size "$BATCH" --mixed-precision no --device "$DEVICE" \
  --checkpoint-every "$STEPS" "${cap_final[@]}" "${train_extra[@]}"
for s in "${folds[@]}"; do
  rm -f "$WORK_DIR/loso/$s/fold.json"  # never merge a stale fold from an earlier run
  # shellcheck disable=SC2086
  run_bg "loso_$s" "$PYTHON" benchmarks/refiner_loso.py --dataset "$DATASET_DIR" --output-dir "$WORK_DIR/loso" \
    --scenes "$s" --no-table --steps "$LOSO_STEPS" --batch-size "$BATCH" --ks $KS --device "$DEVICE" \
    --train.mixed-precision no --train.checkpoint-every "$LOSO_STEPS" "${cap_fold[@]}" "${fold_extra[@]}"
done
failed=()
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then say "${names[$i]} finished"; else failed+=("${names[$i]}"); fi
done
pids=()
if ((${#failed[@]} > 0)); then
  for n in "${failed[@]}"; do
    echo "[recipe] FAILED: $n; last lines of $LOGS/$n.log:" >&2
    tail -n 15 "$LOGS/$n.log" >&2
  done
  die "${#failed[@]} of $jobs_n training processes failed (${failed[*]})"
fi
T_TRAIN=$((SECONDS - T_DATA))

# ---------------------------------------------------------------------------------------------------- 3. outputs
final_done=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["steps_done"])' "$WORK_DIR/final/train_log.json")
rm -rf "$OUT_DIR/refiner.tmp"
cp -r "$WORK_DIR/final/refiner" "$OUT_DIR/refiner.tmp"
rm -rf "$OUT_DIR/refiner"
mv "$OUT_DIR/refiner.tmp" "$OUT_DIR/refiner"
cp "$WORK_DIR/final/train_log.json" "$LOGS/train_final_log.json"
if [[ $STAGE == final ]]; then
  say "wrote $OUT_DIR/refiner ($final_done of $STEPS steps) and $LOGS/ in ${SECONDS} s"
  exit 0
fi
note="Recipe timings: dataset ${T_DATA} s in this invocation (STAGE=$STAGE, $WORKERS workers); final refiner ($final_done of $STEPS steps) and the"
note+=" ${#folds[@]} folds trained concurrently, with the folds' evaluation: ${T_TRAIN} s; total ${SECONDS} s before"
note+=" this merge. Final refiner: OUT_DIR/refiner (every scene)."
# shellcheck disable=SC2086
"$PYTHON" benchmarks/refiner_loso.py --dataset "$DATASET_DIR" --output-dir "$WORK_DIR/loso" --merge \
  --scenes "${folds[@]}" --command "$CMD" --note "$note" >"$LOGS/merge.log" 2>&1 \
  || { tail -n 15 "$LOGS/merge.log" >&2; die "merging the folds failed"; }
for f in loso.md loso.json; do
  cp "$WORK_DIR/loso/$f" "$OUT_DIR/$f.tmp"
  mv "$OUT_DIR/$f.tmp" "$OUT_DIR/$f"
done
cat "$OUT_DIR/loso.md"
say "wrote $OUT_DIR/refiner, $OUT_DIR/loso.md and $LOGS/ in ${SECONDS} s"
