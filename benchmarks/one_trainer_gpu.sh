#!/usr/bin/env bash
# One trainer, two loops, on one GPU: `ns-train splatent` (nerfstudio's Trainer, benchmarks/ns_train_gpu.py) and the
# core trainer (splatent-demo / make-dataset's loop, benchmarks/core_trainer.py) on the same scenes at the same steps,
# both scored on the same held-out views (nerfstudio's 90/10 split, which the core loader reproduces):
# decoded-latent and RGB-splat PSNR/SSIM. dino has no point cloud (both now start from the training frustums);
# the demo scene has one.
#
# Here, once (the scenes and wheels travel as carried, git-ignored folders):
#   benchmarks/gpu_wheels.sh
#   mkdir -p .gpu_scenes && cp -r ../shared/data/scenes/dino assets/demo_scene .gpu_scenes/
# Device call (carry [".whl", ".gpu_scenes"]; about 8 minutes on an H100 with the gsplat JIT build):
#   bash benchmarks/one_trainer_gpu.sh 7000
# Writes $OUT/{ns_train_SCENE.md,.json, core_SCENE.md, *.log, gpu.txt} and $OUT/gsplat_ext.tgz (the JIT build: put it in
# .gpu_cache/ for later calls, device_setup.sh reuses it).
set -u
STEPS=${1:-7000}
OUT=${OUT:-/tmp/one_trainer_out}
mkdir -p "$OUT"
source benchmarks/device_setup.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$OUT/gpu.txt"
date -u +%FT%TZ >> "$OUT/gpu.txt"
t0=$(date +%s)
python3 -c "import torch, gsplat; from gsplat.cuda._backend import _C; print('gsplat CUDA backend ready', _C is not None)" \
  > "$OUT/jit.log" 2>&1
echo "gsplat JIT: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
(cd "${TORCH_EXTENSIONS_DIR:-/tmp/torch_extensions}" && tar czf "$OUT/gsplat_ext.tgz" .) || true
LIMIT=${LIMIT:-420}
# Four runs at once (the scenes are small: one run leaves the GPU mostly idle); train seconds are therefore shared.
for scene in dino demo_scene; do
  timeout "$LIMIT" python3 benchmarks/ns_train_gpu.py --methods splatent --scenes "$scene:nerfstudio" --root .gpu_scenes \
    --steps "$STEPS" --refiner none --output-dir "/tmp/ns_out_$scene" --output "$OUT/ns_train_$scene.md" \
    > "$OUT/ns_train_$scene.log" 2>&1 &
  timeout "$LIMIT" python3 benchmarks/core_trainer.py --scenes ".gpu_scenes/$scene" --steps "$STEPS" --device cuda \
    --output "$OUT/core_$scene.md" > "$OUT/core_$scene.log" 2>&1 &
done
wait
echo "total: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
cat "$OUT/gpu.txt" "$OUT"/ns_train_*.md "$OUT"/core_*.md 2>/dev/null
tail -n 3 "$OUT"/*.log
