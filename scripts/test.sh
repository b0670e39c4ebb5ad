#!/usr/bin/env bash
# The test suite: sets up .venv from nothing if needed, then runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k zoo, or -m slow).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
# The format check (ruff format --check, line length 120 from pyproject.toml; ruff is pinned in the "test"
# extra so every machine formats alike). CAPTUM_FAU_FORMAT_CHECK=0 skips it.
if [ "${CAPTUM_FAU_FORMAT_CHECK:-1}" = "1" ]; then
    "$CAPTUM_FAU_PYTHON" -m ruff format --check captum_fau tests scripts
fi
exec "$CAPTUM_FAU_PYTHON" -m pytest "$@"
