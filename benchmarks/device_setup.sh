# Sourced at the start of a device-tool command (GPU machine: Python 3.12 with torch, but no nerfstudio, gsplat,
# viser or diffusers, and nothing can be downloaded there): installs the carried wheels (benchmarks/gpu_wheels.sh puts
# them in .whl/; name ".whl" in the call's carry) into /tmp/site, writes stand-ins for the modules nerfstudio imports
# whose wheels are not carried, and puts /tmp/site and the repo on PYTHONPATH.
#
# Stand-ins (written only where the real module is missing; each raises NotImplementedError, naming itself, if
# anything beyond what is listed here is used):
#   fpsample  no cp312 wheel; only nerfstudio's non-default "fps" camera sampling calls it.
#   open3d    ~400 MB; nerfstudio's nerfstudio-data and blender-data parsers read a scene's ply_file_path point cloud
#             with o3d.io.read_point_cloud(path) and np.asarray(pcd.points / pcd.colors): implemented (PLY only, via
#             splatent_viewer.data.ply.read_ply_points; values as open3d returns them, colours divided by 255).
#   tensorly  7 MB; nerfstudio's lib_bilagrid calls tl.set_backend("pytorch") at import; only splatfacto's bilateral
#             grid (off by default) uses more.
#   rawpy     3 MB; only ns-process-data's RAW-image conversion uses it.
#   cv2       only if the image lost opencv-python-headless (KINDS.md lists it; its wheel is 50 MB): nerfstudio
#             imports it at module level and calls it only to undistort distorted cameras, for masks/depth images
#             and viewer thumbnails.
set -e
SPLATENT_SITE=${SPLATENT_SITE:-/tmp/site}  # overridable for a dry run elsewhere
mkdir -p $SPLATENT_SITE
for d in ${SPLATENT_WHEELS:-.whl .whl_ns .whl_viewer}; do  # SPLATENT_WHEELS: other wheel folders (a smaller set when scenes need the room)
  if ls $d/*.whl >/dev/null 2>&1; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SPLATENT_SITE $d/*.whl; fi
done
python3 - $SPLATENT_SITE <<'PYEOF'
import importlib.util, os, shutil, sys

site = sys.argv[1]
MARK = "SPLATENT_STAND_IN"  # file in a stand-in's folder; pip --upgrade --target replaces the folder with a real wheel
HEAD = '''"""Stand-in for {name} on the GPU machine of the device tool, written by benchmarks/device_setup.sh: {why}"""

__version__ = "0.0.0"
__splatent_stand_in__ = True


def _missing(qualname):
    def call(*args, **kwargs):
        raise NotImplementedError(
            f"{{qualname}} was called, but {name} is only a stand-in on this machine (benchmarks/device_setup.sh): "
            "carry a wheel of {dist} in .whl/ for this code path"
        )

    call.__name__ = qualname.rsplit(".", 1)[-1]
    return call


def __getattr__(attr):
    if attr.startswith("__"):
        raise AttributeError(attr)
    return _missing(f"{name}.{{attr}}")
'''

STAND_INS = {
    "fpsample": ("only nerfstudio's non-default 'fps' camera sampling calls it.", ""),
    "rawpy": ("only ns-process-data's RAW-image conversion uses it.", ""),
    "tensorly": (
        "nerfstudio's lib_bilagrid calls tl.set_backend('pytorch') at import; the bilateral grid (off by default) "
        "needs more.",
        '''
_backend = "numpy"


def set_backend(backend, local_threadsafe=False):
    global _backend
    _backend = backend


def get_backend():
    return _backend
''',
    ),
    "cv2": (
        "nerfstudio imports it at module level; it calls it only for distorted cameras, masks, depth images and "
        "viewer thumbnails. Module constants (cv2.INTER_NEAREST, ...) are placeholders.",
        '''
_getattr_function = __getattr__


def __getattr__(attr):  # noqa: F811 - constants are read at import time (default arguments)
    if attr.isupper() or attr.startswith("CV_"):
        return -1
    return _getattr_function(attr)
''',
    ),
    "open3d": (
        "nerfstudio's nerfstudio-data and blender-data parsers read ply_file_path with o3d.io.read_point_cloud(path) "
        "and take np.asarray(pcd.points) and np.asarray(pcd.colors): that is implemented (PLY files, through "
        "splatent_viewer.data.ply.read_ply_points), as open3d returns them: float64 points, colours divided by 255 "
        "(open3d does that for any colour type), (0, 3) colours when the file has none.",
        '''
import sys as _sys
import types as _types

import numpy as _np

_FLOAT_TYPES = {"float", "float32", "double", "float64"}


class PointCloud:
    """The two attributes nerfstudio reads: ``points`` (N, 3) and ``colors`` (N, 3) or (0, 3), float64."""

    def __init__(self, points=None, colors=None):
        self.points = _np.zeros((0, 3)) if points is None else points
        self.colors = _np.zeros((0, 3)) if colors is None else colors

    def has_points(self):
        return len(self.points) > 0

    def has_colors(self):
        return len(self.colors) > 0

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _missing(f"open3d.geometry.PointCloud.{attr}")


def _colour_type(path):
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    for line in head.split(b"end_header")[0].decode("ascii", "replace").splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "property" and words[2] == "red":
            return words[1]
    return None


def read_point_cloud(filename, format="auto", remove_nan_points=False, remove_infinite_points=False,
                     print_progress=False):
    """open3d.io.read_point_cloud for PLY files: vertex positions and colours, nothing else."""
    import os

    from splatent_viewer.data.ply import read_ply_points

    path = os.fspath(filename)
    if format not in ("auto", "ply") or not path.lower().endswith(".ply"):
        raise NotImplementedError(f"open3d stand-in (benchmarks/device_setup.sh) reads .ply files only, not {path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"open3d stand-in: point cloud {path} does not exist (real open3d would warn and "
                                "return an empty cloud)")
    xyz, rgb = read_ply_points(path)
    points = xyz.numpy().astype(_np.float64)
    if rgb is None:
        colors = _np.zeros((0, 3))
    elif _colour_type(path) in _FLOAT_TYPES:  # read_ply_points keeps float colours; open3d divides them by 255
        colors = rgb.numpy().astype(_np.float64) / 255.0
    else:  # integer colours: read_ply_points gives value / 255 in float32; open3d gives value / 255.0 in float64
        colors = _np.round(rgb.numpy().astype(_np.float64) * 255.0) / 255.0
    return PointCloud(points, colors)


def _submodule(name, **attrs):
    module = _types.ModuleType(f"{__name__}.{name}")
    module.__dict__.update(attrs)

    def missing_attribute(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _missing(f"open3d.{name}.{attr}")

    module.__getattr__ = missing_attribute
    _sys.modules[module.__name__] = module
    return module


io = _submodule("io", read_point_cloud=read_point_cloud)
geometry = _submodule("geometry", PointCloud=PointCloud)
''',
    ),
}


DISTS = {"cv2": "opencv-python-headless"}


def find(name, path):
    saved = sys.path[:]
    sys.path[:] = path
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    finally:
        sys.path[:] = saved
        importlib.invalidate_caches()


for name, (why, body) in STAND_INS.items():
    folder = os.path.join(site, name)
    ours = os.path.exists(os.path.join(folder, MARK))
    # the real module: a carried wheel in the site folder, or the machine's own
    if find(name, ([] if ours else [site]) + [p for p in sys.path if p not in ("", site)]) is not None:
        if ours:
            shutil.rmtree(folder)  # a stale stand-in must not shadow the machine's module
        continue
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "__init__.py"), "w") as f:
        f.write(HEAD.format(name=name, why=why, dist=DISTS.get(name, name)) + body)
    open(os.path.join(folder, MARK), "w").close()
    if not ours:
        print(f"[device_setup] {name} is not installed: stand-in written (see benchmarks/device_setup.sh)")
PYEOF
export PYTHONPATH=$SPLATENT_SITE:$PWD PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=9.0 HF_HUB_OFFLINE=1 SPLATENT_LATENT_CACHE=/tmp/latent_cache
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-/tmp/torch_extensions}
# The prebuilt JIT objects are only reused if ninja sees them as newer than their inputs: pip just wrote gsplat's
# sources (mtime now), so date the sources back; the objects keep the mtimes ninja recorded (touching them instead
# invalidates ninja's deps log and rebuilds everything, ~3.5 min).
# .gpu_cache_xz/gsplat_ext.txz: the same build as an xz tar (1.75 MB instead of 5.2: carried where the 64 MiB are tight,
# e.g. beside lego and the full wheel set); python's tarfile unpacks it (keeps the mtimes, needs no xz binary).
# A machine kept warm since an earlier call still holds that call's build in $TORCH_EXTENSIONS_DIR: reused the same way.
warm_build=$(ls -A "$TORCH_EXTENSIONS_DIR" 2>/dev/null || true)  # || true: no such folder on a fresh machine (set -e)
if [ -f .gpu_cache/gsplat_ext.tgz ] || [ -f .gpu_cache_xz/gsplat_ext.txz ] || [ -n "$warm_build" ]; then
  mkdir -p $TORCH_EXTENSIONS_DIR
  if [ -n "$warm_build" ]; then
    echo "[device_setup] reusing the gsplat build this machine made in an earlier call ($TORCH_EXTENSIONS_DIR)"
  elif [ -f .gpu_cache/gsplat_ext.tgz ]; then
    tar xzf .gpu_cache/gsplat_ext.tgz -C $TORCH_EXTENSIONS_DIR
  else
    python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='tar')" .gpu_cache_xz/gsplat_ext.txz $TORCH_EXTENSIONS_DIR
  fi
  find $SPLATENT_SITE/gsplat -type f -exec touch -d '2001-01-01' {} +
fi

# gpu_job_start OUT: what every GPU job script does first: the card into OUT/gpu.txt, gsplat's CUDA extension loaded
# (JIT-built on the first call of a machine: ~3 min; seconds with .gpu_cache/gsplat_ext.tgz) with its log in OUT/jit.log
# and its time in gpu.txt, and the build saved as OUT/gsplat_ext.tgz when no cached one was carried (keep it in
# .gpu_cache/ for later calls).
gpu_job_start() {
  local out=$1 t0
  t0=$(date +%s)
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/gpu.txt"
  python3 -c "import torch, gsplat; from gsplat.cuda._backend import _C; print('gsplat CUDA backend ready', _C is not None)" \
    > "$out/jit.log" 2>&1
  echo "gsplat CUDA extension: $(( $(date +%s) - t0 )) s" >> "$out/gpu.txt"
  [ -f .gpu_cache/gsplat_ext.tgz ] || [ -f .gpu_cache_xz/gsplat_ext.txz ] \
    || (cd "$TORCH_EXTENSIONS_DIR" && tar czf "$out/gsplat_ext.tgz" .) || true
}
# gpu_job_pack OUT: what every GPU job script does last: at most 8 files come back from a device call, so everything in
# OUT but gpu.txt goes into OUT/results.tgz (unpack with tar xzf).
gpu_job_pack() {
  local out=$1
  (cd "$out" && tar czf /tmp/gpu_results.tgz --exclude=results.tgz . && find . -type f ! -name gpu.txt -delete \
    && find . -mindepth 1 -type d -empty -delete && mv /tmp/gpu_results.tgz results.tgz)
}
set +e
