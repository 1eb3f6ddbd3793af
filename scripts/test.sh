#!/usr/bin/env bash
# Installs the project into .venv (no-op when up to date) and runs the test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/codecs -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPLATENT_VENV:-$ROOT/.venv}"
"$ROOT/scripts/install.sh"
# The viewer's end-to-end test drives a real headless Chromium (Debian's package); it skips without one.
if ! command -v chromium >/dev/null && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "[test] installing Debian chromium for the viewer's browser test"
  (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "[test] warning: could not install chromium; the browser test will skip" >&2
fi
export HF_HUB_OFFLINE=1
cd "$ROOT"
# The whole suite (no arguments) starts with the linter, the formatter's check and the type checker; any one's errors
# fail the command (`ruff format .` fixes the formatting).
if [[ $# -eq 0 ]]; then
  echo "[test] ruff check + ruff format --check"
  "$VENV/bin/ruff" check .
  "$VENV/bin/ruff" format --check .
  echo "[test] pyright"
  "$VENV/bin/pyright" --pythonpath "$VENV/bin/python"
fi
exec "$VENV/bin/python" -m pytest "$@"
