"""The download path over real HTTP: olah (a self-hosted Hub mirror) serves a local git mirror
of a zoo repository on 127.0.0.1, offline; zoo.load resolves pinned commits and tags, reuses
its cache, works offline after caching, and rejects a download whose checksum is wrong.

The repository is a git checkout in olah's mirror layout (``mirrors/models/ORG/NAME``), with the
weights stored as a git-LFS object as the Hub stores them. Each scenario runs in a fresh
interpreter whose HF_* variables were set before huggingface_hub was imported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from captum_fau import zoo
from helpers.hub_env import ROOT, Olah, add_lfs_file, git, hf_env, run_scenarios

pytest.importorskip("olah", reason="olah is in the test extra: pip install -e '.[test]'")
if shutil.which("git") is None:  # pragma: no cover - git is everywhere the tests run
    pytest.skip("git is needed to build the mirror repository", allow_module_level=True)

NAME = "zerobias-synthfacs-8class"
REPO_ID = "captum-fau/zerobias-synthfacs-8class"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A git mirror of the zoo repository: main (tag v1) = the packaged model; a side commit
    (tag tampered) = different weights under the same name."""
    root = tmp_path_factory.mktemp("olah")
    repo = root / "mirrors" / "models" / REPO_ID
    repo.mkdir(parents=True)
    packaged = zoo.info(NAME).packaged_dir
    git(repo, "init", "-q")
    shutil.copy(packaged / "config.json", repo / "config.json")
    shutil.copy(ROOT / "model_cards" / f"{NAME}.md", repo / "README.md")
    (repo / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    sha = add_lfs_file(repo, "model.safetensors", (packaged / "model.safetensors").read_bytes())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Upload zerobias-synthfacs-8class")
    good = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    state = load_file(str(packaged / "model.safetensors"))
    state["fc_out.bias"] = state["fc_out.bias"] + 1.0
    tampered_file = root / "tampered.safetensors"
    save_file(state, str(tampered_file), metadata={"format": "pt"})
    git(repo, "checkout", "-q", "-b", "replaced")
    add_lfs_file(repo, "model.safetensors", tampered_file.read_bytes())
    git(repo, "commit", "-q", "-am", "Replace the weights")
    tampered = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "tampered")
    git(repo, "checkout", "-q", "main")
    server = Olah(root, root / "mirrors")
    try:
        server.wait(f"/api/models/{REPO_ID}/revision/main")
        yield {"server": server, "good": good, "tampered": tampered, "sha256": sha, "root": root}
    finally:
        server.stop()


def _registry(m: dict) -> dict:
    base = {"repo_id": REPO_ID, "sha256": m["sha256"], "packaged": False}
    return {
        "test-pinned": {**base, "revision": m["good"]},
        "test-tampered": {**base, "revision": m["tampered"]},  # the server changed the pinned weights
        "test-unpublished": {**base, "revision": "f" * 40},
    }


def test_download_by_commit_and_tag_reuse_cache_then_offline(mirror, tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    online = hf_env(hf_home, mirror["server"].url)
    first, by_tag, again, tampered, card = run_scenarios(
        tmp_path,
        online,
        [
            {"op": "load", "name": "test-pinned"},
            {"op": "load", "name": "test-pinned", "revision": "v1"},
            {"op": "load", "name": "test-pinned"},
            {"op": "load", "name": "test-tampered"},
            {"op": "exec_card", "card": str(ROOT / "model_cards" / f"{NAME}.md")},
        ],
        registry=_registry(mirror),
    )
    # By pinned commit and by tag: the packaged model's exact tensors, from the user's cache.
    for r in (first, by_tag, again):
        assert r["ok"], r
        assert r["source"] == "hub" and r["commit"] == mirror["good"] and r["equal_packaged"]
        assert r["weights_file"].startswith(str(hf_home))
    # Cache reuse: one weights download for three loads, the same blob untouched.
    requests = mirror["server"].requests()
    downloads = [r for r in requests if r.startswith("GET") and "model.safetensors" in r and mirror["good"] in r]
    assert len(downloads) == 1 and not any("/resolve/v1/" in r and r.startswith("GET") for r in requests), requests
    assert first["blob"] == by_tag["blob"] == again["blob"] and first["blob_mtime_ns"] == again["blob_mtime_ns"]
    # A download whose sha256 is not the pinned one is rejected and its cache entry removed.
    assert not tampered["ok"] and tampered["error"] == "ChecksumMismatch"
    assert "cache entry was removed and was not used" in tampered["message"]
    tampered_snapshot = hf_home / "hub" / f"models--{REPO_ID.replace('/', '--')}" / "snapshots" / mirror["tampered"]
    assert not (tampered_snapshot / "model.safetensors").exists()
    # The card's snippets run as written: zoo.load, timm "hf-hub:" (through the mirror), TopNDeconv, FAUKL.
    assert card["ok"] and card["blocks"] == 3 and card["model_equal_packaged"] and card["timm_model_equal_packaged"]
    assert card["topn_shape"] == [4, 3]

    # Offline after caching (no server needed): the commit and the tag resolve from the cache alone.
    offline = hf_env(hf_home, "http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    pinned, tag, retry_tampered, unpublished = run_scenarios(
        tmp_path,
        offline,
        [
            {"op": "load", "name": "test-pinned"},
            {"op": "load", "name": "test-pinned", "revision": "v1"},
            {"op": "load", "name": "test-tampered"},
            {"op": "load", "name": "test-unpublished"},
        ],
        registry=_registry(mirror),
    )
    assert pinned["ok"] and pinned["equal_packaged"] and tag["ok"] and tag["commit"] == mirror["good"]
    # The rejected download was not kept: offline, it is simply not there.
    assert not retry_tampered["ok"] and retry_tampered["error"] == "ZooWeightsUnavailable"
    # Uncached entries say how to get or train the weights, not huggingface_hub's pytorch_model.bin fallback.
    message = unpublished["message"]
    assert unpublished["error"] == "ZooWeightsUnavailable" and "HF_HUB_OFFLINE" in message
    assert "Produce them with: python scripts/train_synthfacs_zoo.py" in message
    assert "pytorch_model.bin" not in message
