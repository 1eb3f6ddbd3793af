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
# Writes $OUT/{ns_train.md,ns_train.json,core.md,*.log,gpu.txt} and $OUT/gsplat_ext.tgz (the JIT build: put it in
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
LIMIT=${LIMIT:-470}
timeout "$LIMIT" python3 benchmarks/ns_train_gpu.py --methods splatent --scenes dino:nerfstudio demo_scene:nerfstudio \
  --root .gpu_scenes --steps "$STEPS" --refiner none --output-dir /tmp/ns_out --output "$OUT/ns_train.md" \
  > "$OUT/ns_train.log" 2>&1 &
timeout "$LIMIT" python3 benchmarks/core_trainer.py --scenes .gpu_scenes/dino .gpu_scenes/demo_scene --steps "$STEPS" \
  --device cuda --output "$OUT/core.md" > "$OUT/core.log" 2>&1 &
wait
echo "total: $(( $(date +%s) - t0 )) s" >> "$OUT/gpu.txt"
cat "$OUT/gpu.txt" "$OUT/ns_train.md" "$OUT/core.md" 2>/dev/null
tail -5 "$OUT/ns_train.log" "$OUT/core.log"
