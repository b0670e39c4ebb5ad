"""Helpers of the Hub tests: fresh-interpreter scenarios, an isolated HF environment, olah."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "hub_scenarios.py"


def hf_env(hf_home: Path, endpoint: str | None, **extra: str) -> dict[str, str]:
    """The environment of a user with their own cache, pointed at ``endpoint``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",  # the loopback servers speak HTTP and LFS, not the xet protocol
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        PYTHONPATH=str(ROOT),
    )
    if endpoint is not None:
        env["HF_ENDPOINT"] = endpoint
    env.update(extra)
    return env


def run_scenarios(tmp: Path, env: dict[str, str], steps: list[dict[str, Any]],
                  registry: dict[str, dict[str, Any]] | None = None, timeout: float = 240) -> list[dict[str, Any]]:  # fmt: skip
    """Run ``steps`` (see ``tests/helpers/hub_scenarios.py``) in a fresh interpreter; return their results."""
    spec = tmp / f"spec-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps({"registry": registry or {}, "steps": steps}))
    proc = subprocess.run(
        [sys.executable, str(SCENARIOS), str(spec)], env=env, capture_output=True, text=True, timeout=timeout, cwd=tmp
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("HUB-SCENARIO-RESULTS ")]
    assert proc.returncode == 0 and lines, f"scenarios failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(lines[-1].split(" ", 1)[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0"}
    out = subprocess.run(
        ["git", "-c", "user.name=captum-fau tests", "-c", "user.email=tests@localhost", "-c", "init.defaultBranch=main",
         "-c", "commit.gpgsign=false", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def add_lfs_file(repo: Path, name: str, data: bytes) -> str:
    """Store ``data`` as a git-LFS object of ``repo`` (pointer in the tree, object under .git/lfs), as
    the Hub stores weights; return its sha256."""
    import hashlib

    oid = hashlib.sha256(data).hexdigest()
    obj = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)
    (repo / name).write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n")
    return oid


class Olah:
    """``olah-cli`` on 127.0.0.1, offline (never contacts huggingface.co), serving local git mirrors."""

    def __init__(self, workdir: Path, mirrors: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        config = workdir / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{workdir / "repos"}"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\nmirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            f'mirrors-path = ["{mirrors}"]\n'
            "[accessibility]\noffline = true\n"
        )
        exe = shutil.which("olah-cli", path=str(Path(sys.executable).parent)) or shutil.which("olah-cli")
        assert exe, "olah-cli is not installed (pip install -e '.[test]')"
        self.log = open(workdir / "olah.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [exe, "-c", str(config), "--log-path", str(workdir / "logs")], cwd=workdir, stdout=self.log,
            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

    def wait(self, probe: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + probe, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"olah did not start: {(self.workdir / 'olah.log').read_text()[-3000:]}")

    def requests(self) -> list[str]:
        """The request lines olah has logged so far."""
        text = (self.workdir / "olah.log").read_text(errors="replace")
        return [line.split('"')[1] for line in text.splitlines() if '" 200' in line or '" 404' in line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
