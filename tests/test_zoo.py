"""The zoo: registry, resolution order (explicit -> packaged -> HF cache/Hub -> clear error), checksums."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from captum_fau import ZeroBiasCNN, zoo
from captum_fau.zoo import registry
from captum_fau.errors import ChecksumMismatch, DeviceError, UnknownModelError, WeightsError, ZooWeightsUnavailable

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_list_and_info() -> None:
    names = zoo.list()
    assert names == sorted(names)
    assert {
        "zerobias-ckplus-8class",
        "zerobias-ckplus-6class",
        "zerobias-tfd-7class",
        "zerobias-synthfacs-8class",
    } <= set(names)
    for name in names:
        entry = zoo.info(name)
        assert entry.name == name
        assert len(entry.class_names) == entry.architecture["num_classes"]
        assert entry.repo_id.endswith(name)
        assert entry.train_command and entry.training_data and entry.preprocessing["size"] == 96
    assert zoo.info("zerobias-ckplus-6class").class_names == (
        "anger",
        "disgust",
        "fear",
        "happy",
        "sadness",
        "surprise",
    )
    assert zoo.info("zerobias-ckplus-8class").class_names[0] == "neutral"


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(UnknownModelError) as err:
        zoo.load("zerobias-ckplus-8clas")
    message = str(err.value)
    assert "Did you mean 'zerobias-ckplus-8class'" in message
    for name in zoo.list():
        assert name in message


def _fake_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **changes) -> tuple[zoo.ZooEntry, ZeroBiasCNN, Path]:
    """Point the registry at one test entry with freshly saved weights; return (entry, model, weights file)."""
    torch.manual_seed(1)
    model = ZeroBiasCNN(num_classes=8).eval()
    weights_dir = tmp_path / "packaged"
    monkeypatch.setattr(registry, "ZOO_DIR", weights_dir)
    monkeypatch.setenv("CAPTUM_FAU_ZOO", str(tmp_path / "user-zoo"))
    entry = replace(zoo.info("zerobias-synthfacs-8class"), name="test-model", repo_id="org/test-model")
    source = tmp_path / "source"
    model.save_pretrained(source)
    weights = source / "model.safetensors"
    entry = replace(entry, sha256=zoo.sha256_file(weights), metrics={}, **changes)
    monkeypatch.setattr(registry, "_registry", lambda: {"test-model": entry})
    return entry, model, weights


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(2, 1, 96, 96, generator=torch.Generator().manual_seed(0))
    return torch.equal(a(x), b(x))


def test_packaged_weights_load_offline(tmp_path, monkeypatch) -> None:
    entry, model, weights = _fake_entry(tmp_path, monkeypatch, packaged=True)
    entry.packaged_dir.mkdir(parents=True)
    shutil.copy(weights, entry.packaged_dir / "model.safetensors")
    loaded = zoo.load("test-model")
    assert not loaded.training and _same(loaded, model)
    assert loaded.config["zoo"]["source"] == "packaged"
    assert loaded.config["zoo"]["class_names"][5] == "happy"


def test_explicit_weights_take_precedence(tmp_path, monkeypatch) -> None:
    entry, model, weights = _fake_entry(tmp_path, monkeypatch, packaged=True)
    entry.packaged_dir.mkdir(parents=True)
    ZeroBiasCNN().save_pretrained(entry.packaged_dir)  # different weights in the package
    for given in (weights, weights.parent):  # a file or a Hub-format folder
        loaded = zoo.load("test-model", weights=given)
        assert _same(loaded, model) and loaded.config["zoo"]["source"] == "explicit"
    with pytest.raises(WeightsError, match="neither a .safetensors file nor a folder"):
        zoo.load("test-model", weights=tmp_path / "nowhere")


def test_packaged_checksum_mismatch_is_an_error(tmp_path, monkeypatch) -> None:
    entry, _, weights = _fake_entry(tmp_path, monkeypatch, packaged=True)
    entry.packaged_dir.mkdir(parents=True)
    corrupt = entry.packaged_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch, match=str(corrupt)):
        zoo.load("test-model")


def _seed_hf_cache(hf_home: Path, repo_id: str, weights: Path, commit: str = COMMIT) -> Path:
    repo_dir = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    shutil.copy(weights, snapshot / "model.safetensors")
    return snapshot / "model.safetensors"


def test_hf_cache_offline_at_pinned_revision(tmp_path, monkeypatch) -> None:
    _, model, weights = _fake_entry(tmp_path, monkeypatch, packaged=False, revision=COMMIT)
    cached = _seed_hf_cache(tmp_path / "hf", "org/test-model", weights)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = zoo.load("test-model")
    assert _same(loaded, model)
    assert loaded.config["zoo"]["source"] == "hub"
    assert Path(loaded.config["zoo"]["weights_file"]).resolve() == cached.resolve()


def test_hf_cache_corrupted_file_is_rejected(tmp_path, monkeypatch) -> None:
    _, _, weights = _fake_entry(tmp_path, monkeypatch, packaged=False, revision=COMMIT)
    cached = _seed_hf_cache(tmp_path / "hf", "org/test-model", weights)
    cached.write_bytes(cached.read_bytes()[:-8] + b"corrupt!")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ChecksumMismatch, match="model.safetensors"):
        zoo.load("test-model")


def test_uncached_offline_says_how_to_get_weights(tmp_path, monkeypatch) -> None:
    entry, _, _ = _fake_entry(tmp_path, monkeypatch, packaged=False, revision=COMMIT)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ZooWeightsUnavailable) as err:
        zoo.load("test-model")
    message = str(err.value)
    assert "HF_HUB_OFFLINE" in message and f"Produce them with: {entry.train_command}" in message
    assert "pytorch_model.bin" not in message


def test_unpublished_entries_explain_dataset_and_command() -> None:
    with pytest.raises(ZooWeightsUnavailable) as err:
        zoo.load("zerobias-ckplus-8class")
    message = str(err.value)
    assert "CK+" in message and "captum-fau reproduce --ckplus" in message
    with pytest.raises(ZooWeightsUnavailable, match="TFD"):
        zoo.load("zerobias-tfd-7class")


def test_bad_device(tmp_path, monkeypatch) -> None:
    _fake_entry(tmp_path, monkeypatch, packaged=True)
    with pytest.raises(DeviceError, match="Unknown device"):
        zoo.load("test-model", device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            zoo.load("test-model", device="cuda")


def test_packaged_synthfacs_model_loads_offline_with_pinned_checksum(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = zoo.info("zerobias-synthfacs-8class")
    weights = entry.packaged_dir / "model.safetensors"
    assert entry.sha256 == zoo.sha256_file(weights)
    model = zoo.load("zerobias-synthfacs-8class")
    assert model.config["zoo"]["source"] == "packaged" and not model.training
    assert model.config["class_names"] == list(entry.class_names)
    assert {"accuracy", "note", "iterations"} <= set(entry.metrics)
    assert (entry.packaged_dir / "config.json").is_file() and (entry.packaged_dir / "training_log.jsonl").is_file()


def test_user_zoo_is_searched_after_packaged_and_before_the_hub(tmp_path, monkeypatch) -> None:
    entry, model, weights = _fake_entry(tmp_path, monkeypatch, packaged=False, revision=None)
    with pytest.raises(ZooWeightsUnavailable, match="CAPTUM_FAU_ZOO"):  # the message says where to put them
        zoo.load("test-model")
    user = tmp_path / "user-zoo" / "test-model"  # CAPTUM_FAU_ZOO as _fake_entry sets it
    model.save_pretrained(user)
    loaded = zoo.load("test-model")
    assert _same(loaded, model) and loaded.config["zoo"]["source"] == "user"
    assert Path(loaded.config["zoo"]["weights_file"]) == user / "model.safetensors"
    # Packaged weights win over the user zoo; the user zoo's file is checked like any other.
    monkeypatch.setattr(registry, "_registry", lambda: {"test-model": replace(entry, packaged=True)})
    entry.packaged_dir.mkdir(parents=True)
    ZeroBiasCNN().save_pretrained(entry.packaged_dir)
    with pytest.raises(ChecksumMismatch, match=str(entry.packaged_dir)):
        zoo.load("test-model")  # the fake entry pins the user zoo file's sha256
    shutil.rmtree(entry.packaged_dir)
    (user / "model.safetensors").write_bytes(b"not the pinned file")
    with pytest.raises(ChecksumMismatch, match=str(user)):
        zoo.load("test-model")


def test_user_zoo_dir_follows_xdg(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("CAPTUM_FAU_ZOO", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert zoo.user_zoo_dir() == tmp_path / "data" / "captum-fau" / "zoo"
    monkeypatch.setenv("CAPTUM_FAU_ZOO", str(tmp_path / "mine"))
    assert zoo.user_zoo_dir() == tmp_path / "mine"


def test_pickled_explicit_weights_are_refused(tmp_path, monkeypatch) -> None:
    _fake_entry(tmp_path, monkeypatch, packaged=False)
    pickled = tmp_path / "model.pt"
    pickled.write_bytes(b"\x80\x04not unpickled")
    with pytest.raises(WeightsError, match="never unpickles"):
        zoo.load("test-model", weights=pickled)
