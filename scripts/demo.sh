#!/usr/bin/env bash
# The main job on the embedded default: the SynthFACS zoo model analysed on
# a seeded SynthFACS set. Sets up .venv from nothing if needed.
# Extra arguments go to `captum-fau demo` (see `captum-fau demo --help`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/env.sh"
cd "$ROOT"
exec "$VENV/bin/captum-fau" demo "$@"
