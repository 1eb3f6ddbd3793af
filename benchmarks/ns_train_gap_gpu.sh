#!/usr/bin/env bash
# Why `ns-train splatent` trails the core trainer on the GPU (issue 16; benchmarks/RESULTS.md): the same scenes and
# steps with the plugin's settings moved towards the core trainer's, four runs at once on one GPU:
#   full  = num_downscales=0 (RGB at full resolution from step 0, as the core trainer; splatfacto starts at 1/4)
#   black = full + background_color=black (the core trainer's background; splatfacto's default is random)
#   core  = black + the core trainer's densification (gsplat DefaultStrategy's defaults: grow_grad2d 0.0002, prune_opa
#           0.005, prune_scale3d 0.1, no screen-size pruning, no opacity reset; refine from 300 to steps/2)
#   (VARIANTS="full black core" picks which; default all)
# Device call (carry [".whl", ".gpu_scenes", ".gpu_cache"]): bash benchmarks/ns_train_gap_gpu.sh 3000
set -u
STEPS=${1:-3000}
OUT=${OUT:-/tmp/ns_gap_out}
mkdir -p "$OUT"
source benchmarks/device_setup.sh
t0=$(date +%s)
gpu_job_start "$OUT"
LIMIT=${LIMIT:-330}
VARIANTS=${VARIANTS:-full black core}
declare -A SETS=(
  [full]="num_downscales=0"
  [black]="num_downscales=0 background_color=black"
  [core]="num_downscales=0 background_color=black densify_grad_thresh=0.0002 cull_alpha_thresh=0.005 cull_scale_thresh=0.1 stop_screen_size_at=0 reset_alpha_every=100000 warmup_length=300 stop_split_at=$((STEPS / 2))"
)
for variant in $VARIANTS; do
  for scene in dino demo_scene; do
    timeout "$LIMIT" python3 benchmarks/ns_train_gpu.py --methods splatent --scenes "$scene:nerfstudio" --root .gpu_scenes \
      --steps "$STEPS" --refiner none --set ${SETS[$variant]} --output-dir "/tmp/ns_${variant}_$scene" \
      --output "$OUT/${variant}_$scene.md" > "$OUT/${variant}_$scene.log" 2>&1 &
  done
done
wait
echo "total: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
cat "$OUT/gpu.txt"; for f in "$OUT"/*_dino.md "$OUT"/*_demo_scene.md; do echo "$f"; tail -n 1 "$f"; done
tail -n 2 "$OUT"/*.log | cut -c1-300
