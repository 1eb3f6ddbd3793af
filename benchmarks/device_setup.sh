# Sourced at the start of a device-tool command (GPU machine without nerfstudio/gsplat/viser/diffusers):
# installs the carried wheels into /tmp/site and puts the repo on PYTHONPATH.
# fpsample (nerfstudio imports it; only its non-default "fps" camera sampling calls it) has no
# cp312 wheel in our index: a module that raises if called stands in for it on that machine only.
set -e
mkdir -p /tmp/site
for d in .whl .whl_ns .whl_viewer; do
  if [ -d "$d" ]; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $d/*.whl; fi
done
if ! python3 -c "import fpsample" 2>/dev/null; then
  mkdir -p /tmp/site/fpsample
  printf 'def bucket_fps_kdline_sampling(*args, **kwargs):\n    raise NotImplementedError("fpsample is not installed on this machine")\n' > /tmp/site/fpsample/__init__.py
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=9.0 HF_HUB_OFFLINE=1 SPLATENT_LATENT_CACHE=/tmp/latent_cache
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/torch_extensions}
# The prebuilt JIT objects are only reused if ninja sees them as newer than their inputs: pip just wrote gsplat's
# sources (mtime now), so date the sources back; the objects keep the mtimes ninja recorded (touching them instead
# invalidates ninja's deps log and rebuilds everything, ~3.5 min).
if [ -f .gpu_cache/gsplat_ext.tgz ]; then
  mkdir -p $TORCH_EXTENSIONS_DIR && tar xzf .gpu_cache/gsplat_ext.tgz -C $TORCH_EXTENSIONS_DIR
  find /tmp/site/gsplat -type f -exec touch -d '2001-01-01' {} +
fi
set +e
