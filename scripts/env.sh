#!/usr/bin/env bash
# Creates .venv (if missing) and installs captum-fau with its test extra.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again: when
# nothing that affects the install has changed, it installs nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CAPTUM_FAU_VENV:-$ROOT/.venv}"
STAMP="$VENV/.captum-fau-install"

pick_python() {
    for py in "${PYTHON:-}" python3.12 python3.11 python3.10 python3; do
        [ -n "$py" ] || continue
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    echo "captum-fau needs Python >= 3.10; set PYTHON=/path/to/python3.x" >&2
    return 1
}

# What the install depends on: the project metadata (pyproject.toml, setup.py), this script, the checkout's place.
want="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/scripts/env.sh" | sha256sum | cut -d' ' -f1) $ROOT"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    [ "${CAPTUM_FAU_ENV_VERBOSE:-0}" = 1 ] && echo "env.sh: $VENV is up to date; nothing to install."
else
    if [ ! -x "$VENV/bin/python" ]; then
        echo "env.sh: creating $VENV"
        "$(pick_python)" -m venv "$VENV"
    fi
    PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
    echo "env.sh: installing torch, torchvision and captum-fau[test] into $VENV (first run takes a few minutes)"
    "${PIP[@]}" --upgrade pip "setuptools>=77"
    # torch/torchvision pairs whose wheels are known to import together.
    case "$(uname -m)" in
        x86_64) "${PIP[@]}" "torch==2.14.1" "torchvision==0.29.1" ;;
        aarch64 | arm64) "${PIP[@]}" "torch==2.9.1" "torchvision==0.24.1" ;;
        *) "${PIP[@]}" torch torchvision ;;
    esac
    "${PIP[@]}" -e "$ROOT[test]"
    echo "$want" >"$STAMP"
fi

export PATH="$VENV/bin:$PATH"
export CAPTUM_FAU_PYTHON="$VENV/bin/python"
