#!/usr/bin/env bash
# ns-train splatent with its defaults against the core trainer on dino, two seeds each, STEPS steps, four runs at once
# on one GPU (dino holds out a single view: the seeds show how much of a difference is noise).
# Device call (carry [".whl", ".gpu_scenes", ".gpu_cache"]): bash benchmarks/ns_train_seeds_gpu.sh 3000
set -u
STEPS=${1:-3000}
SCENE=${SCENE:-dino}
OUT=${OUT:-/tmp/ns_seeds_out}
mkdir -p "$OUT"
source benchmarks/device_setup.sh
gpu_job_start "$OUT"
LIMIT=${LIMIT:-200}
for seed in 1 2; do
  timeout "$LIMIT" python3 benchmarks/ns_train_gpu.py --methods splatent --scenes "$SCENE:nerfstudio" --root .gpu_scenes \
    --steps "$STEPS" --refiner none --seed "$seed" --output-dir "/tmp/ns_seed$seed" --output "$OUT/ns_seed$seed.md" \
    > "$OUT/ns_seed$seed.log" 2>&1 &
  timeout "$LIMIT" python3 benchmarks/core_trainer.py --scenes ".gpu_scenes/$SCENE" --steps "$STEPS" --device cuda \
    --trainer.seed "$seed" --output "$OUT/core_seed$seed.md" > "$OUT/core_seed$seed.log" 2>&1 &
done
wait
for f in "$OUT"/*.md; do echo "$f"; tail -n 1 "$f"; done
