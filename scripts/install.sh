#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment and installs splatent-viewer into it.
#   - keeps the torch that is there: the user's own (CUDA) torch when the base Python has one,
#     otherwise torch==2.13.0; every pip call runs with a constraint pinning that torch, so no
#     dependency can swap it for another (multi-GB) build;
#   - on a CPU-only torch build, installs the torchvision operator-schema fix (see
#     splatent_viewer/_torchvision_cpu_fix.py) as a .pth hook;
#   - is a no-op when nothing changed since the last successful run (stamp keyed on pyproject).
# Usage: scripts/install.sh            (venv in .venv; override with SPLATENT_VENV=/path)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPLATENT_VENV:-$ROOT/.venv}"
PY_BASE="${SPLATENT_PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMP="$VENV/.splatent-install-stamp"
want_stamp="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/install.sh" "$ROOT/splatent_viewer/_torchvision_cpu_fix.py" | sha256sum | cut -c1-16)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" && -x "$VENV/bin/python" ]]; then
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  if "$PY_BASE" -c "import torch" 2>/dev/null; then
    echo "[install] base Python has torch $("$PY_BASE" -c 'import torch; print(torch.__version__)'): reusing it"
    "$PY_BASE" -m venv --system-site-packages "$VENV"
  else
    "$PY_BASE" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "[install] installing torch==2.13.0 (a large download: a few minutes, quiet until it ends)"
  "$PY" -m pip install -q "torch==2.13.0" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
fi
TORCH_VERSION="$("$PY" -W ignore -c 'import torch; print(torch.__version__)')"
CONSTRAINTS="$VENV/splatent-constraints.txt"
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"
echo "[install] torch $TORCH_VERSION pinned through $CONSTRAINTS"

# nerfstudio reads a scene's point cloud (ply_file_path) through open3d, whose wheel links
# libusb-1.0; slim Debian images lack it.
if ! ldconfig -p 2>/dev/null | grep -q "libusb-1.0.so.0"; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "[install] installing libusb-1.0-0 (needed by open3d, which nerfstudio uses for point clouds)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
  else
    echo "[install] warning: libusb-1.0 is missing; install it (e.g. apt-get install libusb-1.0-0) so open3d imports" >&2
  fi
fi

# The torchvision fix must be active before pip imports anything that imports torchvision.
if [[ "$("$PY" -W ignore -c 'import torch; print(torch.version.cuda is None)')" == "True" ]]; then
  SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  cp "$ROOT/splatent_viewer/_torchvision_cpu_fix.py" "$SITE/_splatent_torchvision_cpu_fix.py"
  echo "import _splatent_torchvision_cpu_fix; _splatent_torchvision_cpu_fix.install()" > "$SITE/splatent_torchvision_cpu_fix.pth"
  echo "[install] CPU torch: torchvision operator-schema fix installed"
fi

echo "[install] installing splatent-viewer (editable) with nerfstudio==1.1.5 and its dependencies:"
echo "[install] this pip call takes ~3 minutes on a fresh venv (2-core machine) and prints nothing until it ends"
# (grep drops the pip-config noise about missing local index folders on these machines)
"$PY" -m pip install -q -c "$CONSTRAINTS" -e "$ROOT[dev]" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$PY" - <<'PYEOF'
import importlib.metadata as md
import torch, torchvision, nerfstudio, gsplat, viser, diffusers, open3d  # noqa: F401  (import check)
names = ["torch", "torchvision", "nerfstudio", "gsplat", "viser", "diffusers"]
print("[install] ok:", ", ".join(f"{n} {md.version(n)}" for n in names))
PYEOF
echo "$want_stamp" > "$STAMP"
