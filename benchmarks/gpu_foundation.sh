#!/usr/bin/env bash
# The foundation's GPU checks, in one command for the device machine (see benchmarks/RESULTS.md):
#   gsplat JIT build, the GPU-marked tests (torch rasterizer vs gsplat 1.4.0), the agreement and
#   speed table, and the codec's speed on the GPU. Expects wheels for packages the machine lacks
#   in .whl/ (gsplat 1.4.0, plyfile, pytorch_msssim, tyro + deps, diffusers) and writes logs to $OUT.
set -uo pipefail
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/device.txt"
date -u +%Y-%m-%dT%H:%MZ | tee -a "$OUT/device.txt"
t0=$(date +%s)
python3 -c "from gsplat.cuda._backend import _C; print('gsplat kernels ready')" 2>&1 | tail -2
echo "gsplat JIT build: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/device.txt"
python3 -m pytest tests/render -m gpu -v -p no:cacheprovider 2>&1 | tee "$OUT/pytest_gpu.log" | tail -15
python3 benchmarks/gsplat_agreement.py 2>&1 | tee "$OUT/agreement.md"
python3 benchmarks/raster_cpu.py --help >/dev/null 2>&1 || true
