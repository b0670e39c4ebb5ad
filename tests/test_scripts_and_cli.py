"""The README's two commands and the CLI's contract (help, exit codes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captum_fau.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_readme_quick_start_is_the_two_scripts() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.splitlines() if line.startswith("scripts/")]
    assert commands == ["scripts/demo.sh", "scripts/test.sh"]
    for script in ("demo.sh", "test.sh", "env.sh"):
        assert os.access(ROOT / "scripts" / script, os.X_OK)
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_env_setup_is_idempotent() -> None:
    """A second run of the setup (the first ran before this test session) installs nothing."""
    venv = Path(sys.prefix)
    if not (venv / ".captum-fau-install").is_file():
        pytest.skip("tests are not running inside the venv made by scripts/env.sh")
    # The stamp names the checkout the venv was installed from; run from another checkout (a second worktree
    # sharing the venv), env.sh would reinstall the package from here into that shared venv.
    if (venv / ".captum-fau-install").read_text().split()[-1] != str(ROOT):
        pytest.skip("the venv was installed from another checkout; env.sh would reinstall it from this one")
    freeze = [sys.executable, "-m", "pip", "freeze", "--all"]
    before = subprocess.run(freeze, capture_output=True, text=True, check=True).stdout
    env = {**os.environ, "CAPTUM_FAU_ENV_VERBOSE": "1", "CAPTUM_FAU_VENV": str(venv)}
    start = time.perf_counter()
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "env.sh")], capture_output=True, text=True, env=env, check=True
    )
    elapsed = time.perf_counter() - start
    after = subprocess.run(freeze, capture_output=True, text=True, check=True).stdout
    assert "up to date; nothing to install" in out.stdout
    assert "installing" not in out.stdout
    assert before == after
    assert elapsed < 5


def test_help_lists_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "zoo", "data"):
        assert command in out


def test_zoo_commands(capsys) -> None:
    assert main(["zoo", "list"]) == 0
    assert "zerobias-ckplus-8class" in capsys.readouterr().out
    assert main(["zoo", "info", "zerobias-tfd-7class"]) == 0
    assert '"repo_id"' in capsys.readouterr().out


def test_bad_input_exit_code_2(capsys) -> None:
    assert main(["zoo", "info", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "Unknown zoo model" in err and "zerobias-ckplus-8class" in err


def test_no_command_prints_help(capsys) -> None:
    assert main([]) == 2
    assert "usage: captum-fau" in capsys.readouterr().out


def test_console_script_installed() -> None:
    exe = Path(sys.executable).parent / "captum-fau"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("captum-fau ")
