#!/usr/bin/env bash
# One device call (<= 10 min on one H100/H200) for the measurements issues 16 and 18 still need:
#  1. the GPU tests of the shared-projection step (gsplat's lower-level kernels vs the torch path and
#     gsplat.rasterization) and the gsplat agreement tests;
#  2. issue 16: ns-train splatent vs the core trainer, on dino (no points) and the demo scene, STEPS steps each,
#     four processes at once (quality numbers; their seconds are shared);
#  3. issue 18: ms per stage of a core-trainer step, shared projection vs two passes, on a quiet GPU afterwards.
#
# Here, once: benchmarks/gpu_wheels.sh; mkdir -p .gpu_scenes && cp -r ../shared/data/scenes/dino assets/demo_scene .gpu_scenes/
# Device call (carry [".whl", ".gpu_scenes"] and ".gpu_cache" when it holds a gsplat JIT build):
#   bash benchmarks/gpu_session.sh 3000
# Writes under $OUT: gpu.txt, pytest_gpu.log, ns_train_SCENE.{md,json,log}, core_SCENE.{md,log},
# train_step_demo_scene.{md,json,log} and gsplat_ext.tgz (the JIT build: keep it in .gpu_cache/ for later calls).
set -u
STEPS=${1:-3000}
OUT=${OUT:-/tmp/gpu_session_out}
mkdir -p "$OUT"
source benchmarks/device_setup.sh
t0=$(date +%s)
gpu_job_start "$OUT"
LIMIT=${LIMIT:-300}
timeout 200 python3 -m pytest tests/render/test_render_shared_projection_gpu.py tests/render/test_render_gsplat_agreement.py \
  -m gpu -q -p no:cacheprovider -o addopts="-ra --import-mode=importlib" > "$OUT/pytest_gpu.log" 2>&1 &
for scene in dino demo_scene; do
  timeout "$LIMIT" python3 benchmarks/ns_train_gpu.py --methods splatent --scenes "$scene:nerfstudio" --root .gpu_scenes \
    --steps "$STEPS" --refiner none --output-dir "/tmp/ns_out_$scene" --output "$OUT/ns_train_$scene.md" \
    > "$OUT/ns_train_$scene.log" 2>&1 &
  timeout "$LIMIT" python3 benchmarks/core_trainer.py --scenes ".gpu_scenes/$scene" --steps "$STEPS" --device cuda \
    --output "$OUT/core_$scene.md" > "$OUT/core_$scene.log" 2>&1 &
done
wait
echo "tests + trainers: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
timeout 100 python3 benchmarks/train_step_gpu.py --scene .gpu_scenes/demo_scene --device cuda --steps 200 \
  --output "$OUT/train_step_demo_scene.md" --json-out "$OUT/train_step_demo_scene.json" > "$OUT/train_step_demo_scene.log" 2>&1
echo "total: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
cat "$OUT/gpu.txt" "$OUT"/ns_train_*.md "$OUT"/core_*.md "$OUT"/train_step_*.md 2>/dev/null
tail -n 3 "$OUT"/*.log
