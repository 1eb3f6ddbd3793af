#!/usr/bin/env bash
# Installs the project into .venv (no-op when up to date) and runs the demo job on the embedded
# demo scene with the embedded TAEF2 codec. Extra arguments go to `splatent-demo`
# (see `splatent-demo --help`), e.g. `scripts/demo.sh --steps 300`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPLATENT_VENV:-$ROOT/.venv}"
"$ROOT/scripts/install.sh"
export HF_HUB_OFFLINE=1
cd "$ROOT"
exec "$VENV/bin/splatent-demo" "$@"
