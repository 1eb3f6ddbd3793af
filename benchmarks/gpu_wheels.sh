#!/usr/bin/env bash
# Downloads into .whl/ (git-ignored) the wheels the device tool's GPU machine lacks for, after
# `source benchmarks/device_setup.sh` there (which installs them into /tmp/site and writes stand-ins):
#   python3 benchmarks/ns_train_gpu.py --methods splatent splatfacto --scenes ... --device cuda   (nerfstudio Trainer,
#       dataparsers, FullImageDatamanager, splatfacto, nerfstudio_plugin, gsplat's CUDA rasterizer: JIT-built by nvcc)
#   python3 benchmarks/core_trainer.py --scenes assets/demo_scene --device cuda   (scenes via nerfstudio's dataparsers)
#   python3 -m splatent_viewer.scripts.demo ...   (refiner: diffusers; orbit.mp4: imageio + imageio-ffmpeg)
# and nerfstudio.utils.eval_utils (eval_setup: loading an ns-train run; pathos ... below).
#
# The machine (device tool's KINDS.md): x86-64, Python 3.12.3 (/opt/torch/.venv) with torch 2.11.0+cu130, torchvision,
# torchmetrics, jaxtyping, numpy 2.x, safetensors, transformers, accelerate, huggingface_hub, triton, nvcc, ninja, and
# (KINDS.md's package list of the image) matplotlib, opencv-python-headless, scipy, tensorboard, protobuf, absl-py,
# imageio, rich, requests, pillow, pyyaml, psutil, ...: those are not carried ("carry one only for another version").
# Nothing can be downloaded there. Not carried either, stand-ins instead (device_setup.sh): open3d, tensorly, rawpy,
# fpsample (and cv2 should the image lose it). Versions are pinned to the project's .venv (`pip freeze` there); with a
# .venv present the script warns on any drift.
#
# imageio-ffmpeg's PyPI wheel is 68 MB (a full static ffmpeg), over the tool's 64 MiB carry limit, so the script builds
# imageio-ffmpeg 0.8.1 from PyPI's sdist (pure Python) with a minimal static ffmpeg in its binaries/ folder (FFmpeg
# from Debian's source package + Debian's libx264: raw RGB in, H.264 MP4 out, ~4.6 MB; wheel version
# 0.8.1+splatent.ffmpeg<version>). Needs a Debian machine with gcc and make (a few minutes on 2 cores, once: cached in
# ${SPLATENT_WHEEL_CACHE:-~/.cache/splatent-gpu-wheels}). --no-ffmpeg skips it: the demo's MP4 step then fails there.
#
# Usage: benchmarks/gpu_wheels.sh [--no-ffmpeg]      then name ".whl" in the device call's carry.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT="$ROOT/benchmarks/gpu_wheels.sh"
cd "$ROOT"
DEST=.whl
WITH_FFMPEG=1
for arg in "$@"; do
  case "$arg" in
    --no-ffmpeg) WITH_FFMPEG=0 ;;
    -h|--help) sed -n '2,26p' "$SCRIPT"; exit 0 ;;
    *) echo "gpu_wheels.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

# NAME==VERSION, pinned to .venv. Each line says who imports it (at module import unless noted).
WHEELS=(
  nerfstudio==1.1.5
  appdirs==1.4.4            # nerfstudio.process_data.colmap_utils <- colmap_dataparser <- dataparser_configs
  pyquaternion==0.9.9       # nerfstudio nuscenes_dataparser <- dataparser_configs <- base_datamanager
  splines==0.3.0            # nerfstudio.viewer.render_panel <- viewer <- engine.trainer
  nerfacc==0.5.2            # nerfstudio.model_components.renderers <- viewer.render_state_machine <- engine.trainer
  pytorch-msssim==1.0.0     # nerfstudio.models.splatfacto (SSIM)
  tyro==1.0.17              # nerfstudio configs, the benchmark scripts, splatent CLIs
  docstring_parser==0.18.0  # tyro
  typeguard==4.6.1          # tyro
  typing_extensions==4.16.0 # typeguard needs >= 4.14; the image's version is not known (torch only needs >= 4.10)
  viser==0.2.7              # nerfstudio.data.scene_box (viser.transforms), nerfstudio.viewer
  msgspec==0.23.0           # viser (cp312 wheel)
  websockets==17.4          # viser (cp312 wheel)
  gsplat==1.4.0             # splatfacto, the splatent model, the core trainer (CUDA sources, JIT-built there)
  diffusers==0.42.1         # the embedded refiner's UNet (splatent model, demo); needs requests, on the machine
  pathos==0.3.5             # nerfstudio parallel_datamanager <- configs.method_configs <- utils.eval_utils
  multiprocess==0.70.19     # pathos (py312 wheel)
  dill==0.4.1               # pathos, multiprocess
  ppft==1.7.8               # pathos
  pox==0.3.7                # pathos
)
IMAGEIO_FFMPEG=0.8.1        # imageio.v2 get_writer(format="FFMPEG") in splatent_viewer/export/video.py
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)
export PIP_DISABLE_PIP_VERSION_CHECK=1

quiet() { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; }

grep -qxF /.whl/ .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude  # .gitignore has /.whl/ too

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/whl"
echo "[gpu_wheels] downloading ${#WHEELS[@]} wheels (cp312, manylinux x86-64) ..."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]/#/--platform=}" -d "$WORK/whl" "${WHEELS[@]}" 2> >(quiet)

build_imageio_ffmpeg() {  # writes imageio_ffmpeg-<v>+splatent.ffmpeg<ffv>-py3-none-manylinux_2_17_x86_64.whl into $1
  local out="$1" cache="${SPLATENT_WHEEL_CACHE:-$HOME/.cache/splatent-gpu-wheels}" b="$WORK/ffmpeg" codename ffdir
  local recipe_hash
  recipe_hash="$(sed -n '/^build_imageio_ffmpeg()/,/^}/p' "$SCRIPT" | sha256sum | cut -c1-12)"
  if ls "$cache/$recipe_hash"/imageio_ffmpeg-*.whl >/dev/null 2>&1; then
    cp "$cache/$recipe_hash"/imageio_ffmpeg-*.whl "$out/"
    echo "[gpu_wheels] imageio-ffmpeg with minimal ffmpeg: cached ($cache/$recipe_hash)"
    return
  fi
  for tool in apt-get dpkg gcc make pkg-config tar; do
    command -v "$tool" >/dev/null || { echo "[gpu_wheels] building ffmpeg needs $tool (or use --no-ffmpeg)" >&2; return 1; }
  done
  # shellcheck disable=SC1091
  codename="$(. /etc/os-release && [ "${ID:-}" = debian ] && echo "${VERSION_CODENAME:-}")" || true
  [ -n "$codename" ] || { echo "[gpu_wheels] building ffmpeg needs Debian's apt sources (or use --no-ffmpeg)" >&2; return 1; }
  echo "[gpu_wheels] building a minimal static ffmpeg (FFmpeg from Debian $codename's source, libx264) ..."
  mkdir -p "$b/apt/lists/partial" "$b/apt/parts" "$b/x264" "$b/pc"
  # a private source list and package lists: the machine's apt configuration is left alone
  cat > "$b/apt/parts/debian.sources" <<EOF
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local apt=(apt-get -qq -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$b/apt/parts"
             -o "Dir::State::Lists=$b/apt/lists" -o APT::Sandbox::User=root)
  "${apt[@]}" update >/dev/null
  (cd "$b" && "${apt[@]}" source --download-only ffmpeg >/dev/null && "${apt[@]}" download libx264-dev >/dev/null)
  dpkg -x "$b"/libx264-dev_*.deb "$b/x264"
  cat > "$b/pc/x264.pc" <<EOF
prefix=$b/x264/usr
libdir=\${prefix}/lib/x86_64-linux-gnu
includedir=\${prefix}/include
Name: x264
Description: H.264 encoder (Debian's libx264-dev, static)
Version: 0.164
Libs: -L\${libdir} -lx264
Libs.private: -lpthread -lm -ldl
Cflags: -I\${includedir}
EOF
  tar xJf "$b"/ffmpeg_*.orig.tar.xz -C "$b"
  ffdir="$(ls -d "$b"/ffmpeg-*/)"
  # raw RGB frames from a pipe -> libx264 -> MP4 file; the filters are those ffmpeg inserts for the pixel-format
  # conversion (imageio-ffmpeg's writer adds -vf scale only for sizes that are not macro-block multiples)
  (cd "$ffdir" && PKG_CONFIG_PATH="$b/pc" PKG_CONFIG_LIBDIR="$b/pc" ./configure --disable-everything \
     --disable-autodetect --disable-doc --disable-network --disable-debug --disable-ffplay --disable-ffprobe \
     --enable-ffmpeg --enable-gpl --enable-libx264 --enable-static --disable-shared --disable-x86asm \
     --enable-encoder=libx264 --enable-decoder=rawvideo --enable-demuxer=rawvideo --enable-muxer=mp4 \
     --enable-protocol=file,pipe --enable-filter=scale,format,null,pad,buffer,buffersink --enable-swscale \
     --pkg-config-flags=--static --extra-ldflags=-static --extra-libs="-lpthread -lm -ldl" > "$b/configure.log" 2>&1 \
   && make -j"$(nproc)" ffmpeg > "$b/make.log" 2>&1) \
   || { tail -20 "$b/configure.log" "$b/make.log" >&2 2>/dev/null; echo "[gpu_wheels] ffmpeg build failed" >&2; return 1; }
  strip "$ffdir/ffmpeg"
  # smoke test: 4 frames of 64x48 RGB -> H.264 MP4
  head -c $((64 * 48 * 3 * 4)) /dev/urandom | "$ffdir/ffmpeg" -hide_banner -v error -y -f rawvideo -vcodec rawvideo \
    -s 64x48 -pix_fmt rgb24 -r 16 -i - -an -vcodec libx264 -pix_fmt yuv420p -crf 17 "$b/smoke.mp4"
  python3 -m pip wheel -q --no-deps --no-binary imageio-ffmpeg -w "$b/sdist_wheel" "imageio-ffmpeg==$IMAGEIO_FFMPEG" 2> >(quiet)
  mkdir -p "$cache/$recipe_hash"
  python3 - "$b"/sdist_wheel/imageio_ffmpeg-*.whl "$ffdir/ffmpeg" "$cache/$recipe_hash" \
    "$("$ffdir/ffmpeg" -version | head -1 | cut -d' ' -f3)" "$(grep -o 'configuration:.*' < <("$ffdir/ffmpeg" -version))" <<'PYEOF'
import base64, hashlib, re, sys, zipfile

src, exe, outdir, ffversion, configuration = sys.argv[1:6]
zin = zipfile.ZipFile(src)
old_info = next(n.split("/")[0] for n in zin.namelist() if n.split("/")[0].endswith(".dist-info"))
name, version = old_info[: -len(".dist-info")].split("-")
new_version = f"{version}+splatent.ffmpeg{ffversion}"
new_info = f"{name}-{new_version}.dist-info"
tag = "py3-none-manylinux_2_17_x86_64"  # the ffmpeg is statically linked: any x86-64 Linux
record = []
readme = (f"ffmpeg-linux-x86_64-v9.0.2 here is NOT imageio-ffmpeg's build: FFmpeg {ffversion} (GPL, with libx264) built "
          "statically by splatent-viewer's benchmarks/gpu_wheels.sh (imageio-ffmpeg looks for this file name), "
          f"raw video in, H.264 MP4 out only.\n{configuration}\n")


def add(zout, arcname, data, mode=0o644, in_record=True):
    info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100000 | mode) << 16  # pip keeps the executable bit
    info.compress_type = zipfile.ZIP_DEFLATED
    zout.writestr(info, data, compresslevel=9)
    if in_record:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={digest},{len(data)}")


out = f"{outdir}/{name}-{new_version}-{tag}.whl"
with zipfile.ZipFile(out, "w") as zout:
    for item in zin.namelist():
        data = zin.read(item)
        if item.startswith(old_info + "/"):
            rel = item[len(old_info) + 1 :]
            if rel == "RECORD":
                continue
            if rel == "METADATA":
                data = re.sub(rb"(?m)^Version: .*$", f"Version: {new_version}".encode(), data)
            if rel == "WHEEL":
                data = re.sub(rb"(?m)^Tag: .*$", f"Tag: {tag}".encode(), data)
                data = re.sub(rb"(?m)^Root-Is-Purelib: .*$", b"Root-Is-Purelib: false", data)
            add(zout, f"{new_info}/{rel}", data)
        elif item == "imageio_ffmpeg/binaries/README.md":
            add(zout, item, readme.encode())
        else:
            add(zout, item, data)
    with open(exe, "rb") as f:
        add(zout, "imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v9.0.2", f.read(), mode=0o755)
    record.append(f"{new_info}/RECORD,,")
    add(zout, f"{new_info}/RECORD", ("\n".join(record) + "\n").encode(), in_record=False)
print(f"[gpu_wheels] built {out}")
PYEOF
  cp "$cache/$recipe_hash"/imageio_ffmpeg-*.whl "$out/"
}

if [ "$WITH_FFMPEG" = 1 ]; then
  build_imageio_ffmpeg "$WORK/whl"
fi

# one wheel per pin (two versions of one package stop the whole install there), all installable on cp312 x86-64
python3 - "$WORK/whl" "${WHEELS[@]}" "imageio-ffmpeg==$IMAGEIO_FFMPEG" "$WITH_FFMPEG" <<'PYEOF'
import os, re, sys

folder, *pins, with_ffmpeg = sys.argv[1:]
norm = lambda s: re.sub(r"[-_.]+", "_", s).lower()
wheels = sorted(os.listdir(folder))
by_name = {}
for w in wheels:
    by_name.setdefault(norm(w.split("-")[0]), []).append(w)
problems = [f"{n}: {ws}" for n, ws in by_name.items() if len(ws) > 1]
for pin in pins:
    name, version = pin.split("==")
    if name == "imageio-ffmpeg" and with_ffmpeg != "1":
        continue
    found = by_name.get(norm(name), [])
    if not found or not found[0].split("-")[1].split("+")[0] == version:
        problems.append(f"missing {pin} (have {found})")
for w in wheels:
    python, abi, platform = w[:-4].split("-")[-3:]
    if not (set(python.split(".")) & {"py3", "py312", "cp312"} and set(abi.split(".")) & {"none", "abi3", "cp312"}
            and (platform == "any" or "x86_64" in platform)):
        problems.append(f"{w}: not for cp312 x86-64")
if problems:
    sys.exit("[gpu_wheels] " + "; ".join(problems))
PYEOF

# drift against the project's .venv, the reference for every pin
VENV="${SPLATENT_VENV:-$ROOT/.venv}"
if [ -x "$VENV/bin/python" ]; then
  "$VENV/bin/python" -m pip freeze --all > "$WORK/freeze.txt" 2>/dev/null || true
  python3 - "$WORK/freeze.txt" "${WHEELS[@]}" "imageio-ffmpeg==$IMAGEIO_FFMPEG" <<'PYEOF'
import re, sys

norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
venv = {}
for line in open(sys.argv[1]):
    if "==" in line:
        name, version = line.strip().split("==", 1)
        venv[norm(name)] = version
drift = [f"{pin} (.venv: {venv.get(norm(pin.split('==')[0]), 'not installed')})" for pin in sys.argv[2:]
         if venv.get(norm(pin.split("==")[0])) != pin.split("==")[1]]
if drift:
    print("[gpu_wheels] warning: pins differ from the .venv: " + ", ".join(drift), file=sys.stderr)
PYEOF
fi

rm -rf "$DEST"
mkdir -p "$DEST"
mv "$WORK"/whl/*.whl "$DEST/"
python3 - "$DEST" <<'PYEOF'
import os, subprocess, sys

folder = sys.argv[1]
rows = sorted(((os.path.getsize(os.path.join(folder, w)), w) for w in os.listdir(folder)), reverse=True)
total = sum(s for s, _ in rows)
for size, w in rows:
    print(f"{size / 2**20:8.2f} MiB  {w}")
print(f"{total / 2**20:8.2f} MiB  total, {len(rows)} wheels in {folder}/")
tree = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], capture_output=True).stdout
tree_bytes = sum(os.path.getsize(p) for p in tree.decode().split("\0") if p and os.path.isfile(p))
print(f"working tree that the device tool copies: {tree_bytes / 2**20:.1f} MiB + {folder}/ {total / 2**20:.1f} MiB = "
      f"{(tree_bytes + total) / 2**20:.1f} MiB of 64 MiB")
PYEOF
