#!/usr/bin/env bash
# The test suite: sets up .venv from nothing if needed, then runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k zoo, or -m slow).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
exec "$CAPTUM_FAU_PYTHON" -m pytest "$@"
