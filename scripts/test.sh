#!/usr/bin/env bash
# Installs the project into .venv (no-op when up to date) and runs the test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/codecs -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPLATENT_VENV:-$ROOT/.venv}"
"$ROOT/scripts/install.sh"
export HF_HUB_OFFLINE=1
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
