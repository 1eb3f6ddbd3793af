#!/usr/bin/env bash
# Issue 18's per-stage breakdown of a core-trainer step on one GPU: shared projection (what render_step does now)
# against the two-pass step (a projection per pass, SH in torch), plus the GPU tests of the shared-projection path.
#
# Here, once (wheels and scenes travel as carried, git-ignored folders):
#   benchmarks/gpu_wheels.sh
#   mkdir -p .gpu_scenes && cp -r ../shared/data/scenes/dino assets/demo_scene .gpu_scenes/
# Device call (carry [".whl", ".gpu_scenes"]; .gpu_cache too when it holds a gsplat JIT build):
#   bash benchmarks/train_step_gpu.sh
# Writes $OUT/{train_step_SCENE.md,.json,.log, pytest_gpu.log, gpu.txt} and $OUT/gsplat_ext.tgz (the JIT build).
set -u
OUT=${OUT:-/tmp/train_step_out}
STEPS=${STEPS:-300}
mkdir -p "$OUT"
source benchmarks/device_setup.sh
t0=$(date +%s)
gpu_job_start "$OUT"
for scene in .gpu_scenes/demo_scene .gpu_scenes/dino; do
  [ -d "$scene" ] || scene=assets/demo_scene
  name=$(basename "$scene")
  timeout 240 python3 benchmarks/train_step_gpu.py --scene "$scene" --device cuda --steps "$STEPS" \
    --output "$OUT/train_step_$name.md" --json-out "$OUT/train_step_$name.json" > "$OUT/train_step_$name.log" 2>&1
done
timeout 240 python3 -m pytest tests/render/test_render_shared_projection_gpu.py tests/render/test_render_gsplat_agreement.py \
  -m gpu -v -p no:cacheprovider -o addopts="-ra --import-mode=importlib" > "$OUT/pytest_gpu.log" 2>&1
echo "total: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
cat "$OUT/gpu.txt" "$OUT"/train_step_*.md 2>/dev/null
tail -n 5 "$OUT"/train_step_*.log "$OUT/pytest_gpu.log"
