"""scripts/publish_to_hub.py against a Hub on loopback: the upload path and the round trip.

The server (tests/helpers/hub_server.py) implements the endpoints huggingface_hub's upload uses
(create repo, validate-yaml, preupload, LFS batch + basic transfer, commit, tag) and the
download endpoints (revision info, resolve). The publish script runs as users run it, in its
own interpreter, with HF_ENDPOINT set before huggingface_hub is imported.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from captum_fau import zoo
from helpers.hub_env import ROOT, hf_env, run_scenarios
from helpers.hub_server import HubServer

NAME = "zerobias-synthfacs-8class"
SCRIPT = ROOT / "scripts" / "publish_to_hub.py"


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        yield server


def test_publish_then_load_by_printed_commit_gives_identical_tensors(hub, tmp_path: Path) -> None:
    registry = tmp_path / "zoo_registry.json"
    shutil.copy(zoo.REGISTRY_FILE, registry)
    repo_id = "my-lab/zerobias-synthfacs-8class"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), NAME, "--repo-id", repo_id, "--tag", "v1", "--pin", "--registry", str(registry)],
        env=hf_env(tmp_path / "publisher-hf", hub.url), capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    commit = re.search(r"^commit: ([0-9a-f]{40})$", proc.stdout, flags=re.M).group(1)
    sha = zoo.sha256_file(zoo.info(NAME).packaged_dir / "model.safetensors")
    pin_line = json.loads(proc.stdout.split("Pin it in zoo/registry.json:\n", 1)[1].splitlines()[0])
    assert pin_line == {NAME: {"repo_id": repo_id, "revision": commit, "sha256": sha}}
    assert "HF_TOKEN" not in proc.stdout and "hf_" not in proc.stdout.replace("hf-hub", "")

    # What the server holds: exactly the Hub folder, weights through LFS, the tag on the commit.
    stored = hub.repos[repo_id]
    assert set(stored.commits[commit]) == {".gitattributes", "config.json", "model.safetensors", "README.md"}
    assert stored.tags["v1"] == commit and stored.branches["main"] == commit
    assert ("PUT", f"/lfs-upload/{repo_id}/{sha}") in hub.requests
    assert stored.commits[commit]["README.md"].decode() == (ROOT / "model_cards" / f"{NAME}.md").read_text()

    # --pin rewrote only the three fields of this entry, in the registry's own layout.
    before, after = zoo.REGISTRY_FILE.read_text().splitlines(), registry.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 2  # repo_id and revision (sha256 already pinned)
    assert json.loads(registry.read_text())[NAME]["revision"] == commit

    # A user with an empty cache loads the printed commit, and the tag, through zoo.load.
    pinned = {"test-published": {"repo_id": repo_id, "revision": commit, "sha256": sha, "packaged": False}}
    results = run_scenarios(
        tmp_path,
        hf_env(tmp_path / "user-hf", hub.url),
        [
            {"op": "load", "name": "test-published", "revision": commit},
            {"op": "load", "name": "test-published", "revision": "v1"},
            {"op": "load", "name": "test-published"},
        ],
        registry=pinned,
    )
    for r in results:
        assert r["ok"], r
        assert r["source"] == "hub" and r["commit"] == commit and r["equal_packaged"]
        assert str(tmp_path / "user-hf") in r["weights_file"]


def test_dry_run_and_failed_uploads_change_nothing(hub, tmp_path: Path) -> None:
    registry = tmp_path / "zoo_registry.json"
    shutil.copy(zoo.REGISTRY_FILE, registry)
    original = registry.read_bytes()
    hub.fail["commit:my-lab/interrupted-commit"] = "error"
    hub.fail["commit:my-lab/dropped-commit"] = "drop"
    hub.fail["tag:my-lab/tag-fails"] = "error"

    def publish(repo_id: str, *extra: str) -> dict:
        argv = [NAME, "--repo-id", repo_id, "--pin", "--registry", str(registry), *extra]
        return {"op": "publish", "argv": argv}

    n_requests = len(hub.requests)
    dry, interrupted, dropped, tag_fails = run_scenarios(
        tmp_path,
        hf_env(tmp_path / "hf", hub.url),
        [
            publish("my-lab/dry-run", "--dry-run", "--tag", "v1"),
            publish("my-lab/interrupted-commit"),
            publish("my-lab/dropped-commit"),
            publish("my-lab/tag-fails", "--tag", "v1"),
        ],
    )
    # The dry run shows the three files and sends nothing to that repository.
    assert dry["rc"] == 0 and "Dry run" in dry["stdout"] and "nothing was sent" in dry["stdout"]
    for f in ("config.json", "model.safetensors", "README.md"):
        assert f in dry["stdout"]
    assert "my-lab/dry-run" not in hub.repos
    assert not any("dry-run" in path for _, path in hub.requests[n_requests:])

    # The commit call fails: clear error naming the step, no commit on the server.
    assert interrupted["rc"] == 2 and "failed while uploading the files" in interrupted["stderr"]
    assert "registry was not changed" in interrupted["stderr"]
    assert len(hub.repos["my-lab/interrupted-commit"].commits) == 1  # only the repository's initial commit

    # The connection drops during the commit call (weights already uploaded): same.
    assert dropped["rc"] == 2 and "failed while uploading the files" in dropped["stderr"]
    assert len(hub.repos["my-lab/dropped-commit"].commits) == 1

    # The files are committed but the tag fails: the error says which commit holds them.
    assert tag_fails["rc"] == 2 and "failed while tagging" in tag_fails["stderr"]
    assert "The files were committed as" in tag_fails["stderr"]

    assert registry.read_bytes() == original
