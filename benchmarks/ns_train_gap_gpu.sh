#!/usr/bin/env bash
# Why `ns-train splatent` trails the core trainer on the GPU (issue 16; benchmarks/RESULTS.md): the same scenes and
# steps with the plugin's settings moved towards the core trainer's, four runs at once on one GPU:
#   full  = num_downscales=0 (RGB at full resolution from step 0, as the core trainer; splatfacto starts at 1/4)
#   black = full + background_color=black (the core trainer's background; splatfacto's default is random)
# Device call (carry [".whl", ".gpu_scenes", ".gpu_cache"]): bash benchmarks/ns_train_gap_gpu.sh 3000
set -u
STEPS=${1:-3000}
OUT=${OUT:-/tmp/ns_gap_out}
mkdir -p "$OUT"
source benchmarks/device_setup.sh
set +e
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$OUT/gpu.txt"
t0=$(date +%s)
python3 -c "import torch, gsplat; from gsplat.cuda._backend import _C" > "$OUT/jit.log" 2>&1
echo "setup + gsplat: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
LIMIT=${LIMIT:-330}
for scene in dino demo_scene; do
  timeout "$LIMIT" python3 benchmarks/ns_train_gpu.py --methods splatent --scenes "$scene:nerfstudio" --root .gpu_scenes \
    --steps "$STEPS" --refiner none --set num_downscales=0 --output-dir "/tmp/ns_full_$scene" \
    --output "$OUT/full_$scene.md" > "$OUT/full_$scene.log" 2>&1 &
  timeout "$LIMIT" python3 benchmarks/ns_train_gpu.py --methods splatent --scenes "$scene:nerfstudio" --root .gpu_scenes \
    --steps "$STEPS" --refiner none --set num_downscales=0 background_color=black --output-dir "/tmp/ns_black_$scene" \
    --output "$OUT/black_$scene.md" > "$OUT/black_$scene.log" 2>&1 &
done
wait
echo "total: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
cat "$OUT/gpu.txt"; for f in "$OUT"/full_*.md "$OUT"/black_*.md; do echo "$f"; tail -n 1 "$f"; done
tail -n 2 "$OUT"/*.log | cut -c1-300
