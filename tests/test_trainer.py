"""The training recipe: determinism, checkpoints, resume and bad input."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import captum_fau.train.trainer as trainer_module
from captum_fau.data.base import FaceSet
from captum_fau.errors import ConfigError, DatasetError, DeviceError, LabelError, ResumeError, TrainingError
from captum_fau.train.trainer import LAST_STATE, LAST_WEIGHTS, LOG_FILE, TrainConfig, resolve_device, train


def faces(n: int = 32, classes: int = 4, size: int = 32, seed: int = 0) -> FaceSet:
    """Learnable toy faces: class c has a bright square in quadrant c."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, size, size), dtype=np.uint8)
    emotions = np.arange(n) % classes
    h = size // 2
    for i, c in enumerate(emotions):
        r, q = divmod(int(c) % 4, 2)
        images[i, r * h : r * h + h // 2, q * h : q * h + h // 2] = 220
    names = tuple(f"c{i}" for i in range(classes))
    return FaceSet(images=images, class_names=names, emotions=emotions, subjects=np.arange(n) // 4, name="toy")


def cfg(**over) -> TrainConfig:
    base = dict(iterations=6, batch_size=8, checkpoint_every=2, selection="last", eval_batch_size=64)
    base.update(over)
    return TrainConfig(**base)


def test_deterministic_from_seed() -> None:
    fs = faces()
    a = train(fs, cfg(), progress=False).model.state_dict()
    b = train(fs, cfg(), progress=False).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = train(fs, cfg(seed=1), progress=False).model.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_checkpoints_and_log(tmp_path: Path) -> None:
    fs = faces()
    res = train(fs, cfg(selection="valid"), valid_set=faces(seed=1), out_dir=tmp_path, progress=False)
    log = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert [r["iteration"] for r in log] == [2, 4, 6]
    assert all("valid_accuracy" in r and "train_loss" in r for r in log)
    best = max(log, key=lambda r: r["valid_accuracy"])
    assert res.selected_iteration == best["iteration"]
    tensors = load_file(str(tmp_path / LAST_WEIGHTS))
    assert any(k.startswith("momentum.") for k in tensors) and "rng.sampler" in tensors
    assert json.loads((tmp_path / LAST_STATE).read_text())["iteration"] == 6


def test_learns_toy_task() -> None:
    fs = faces(n=64)
    res = train(fs, cfg(iterations=80, batch_size=16, checkpoint_every=40, augment=False, seed=1), progress=False)
    assert trainer_module.accuracy(res.model, fs) >= 0.9


def test_interrupted_run_resumes_identically(tmp_path: Path) -> None:
    fs = faces()
    full = train(fs, cfg(), out_dir=tmp_path / "full", progress=False).model.state_dict()

    class Interrupt(Exception):
        pass

    def stop_at_four(iteration: int, record: dict) -> None:
        if iteration == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(fs, cfg(), out_dir=tmp_path / "cut", progress=False, on_checkpoint=stop_at_four)
    assert json.loads((tmp_path / "cut" / LAST_STATE).read_text())["iteration"] == 4
    resumed = train(fs, cfg(), out_dir=tmp_path / "cut", progress=False)
    state = resumed.model.state_dict()
    assert all(torch.equal(full[k], state[k]) for k in full)
    log = (tmp_path / "cut" / LOG_FILE).read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in log] == [2, 4, 6]


def test_resume_refuses_a_different_run(tmp_path: Path) -> None:
    train(faces(), cfg(), out_dir=tmp_path, progress=False)
    with pytest.raises(ResumeError, match="different run"):
        train(faces(), cfg(lr=0.5), out_dir=tmp_path, progress=False)
    with pytest.raises(ResumeError, match="different run"):
        train(faces(seed=5), cfg(), out_dir=tmp_path, progress=False)  # same labels, other images
    # an explicit fresh start is allowed
    train(faces(), cfg(lr=0.5), out_dir=tmp_path, progress=False, resume=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = F.cross_entropy(logits, target)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setattr(trainer_module, "F", types.SimpleNamespace(cross_entropy=cross_entropy))
    with pytest.raises(TrainingError, match=r"iteration 3.*last good checkpoint \(iteration 2\)"):
        train(faces(), cfg(), out_dir=tmp_path, progress=False)
    assert json.loads((tmp_path / LAST_STATE).read_text())["iteration"] == 2
    weights = load_file(str(tmp_path / LAST_WEIGHTS))
    assert all(torch.isfinite(v).all() for k, v in weights.items() if k.startswith("model."))


def test_class_missing_from_training_set() -> None:
    fs = faces(classes=4)
    no_c3 = fs.subset(np.flatnonzero(fs.emotions != 3))
    with pytest.raises(LabelError, match=r"no image of class\(es\) \['c3'\]"):
        train(no_c3, cfg(), progress=False)


def test_fewer_images_than_a_batch() -> None:
    with pytest.raises(DatasetError, match="fewer than one batch of 64"):
        train(faces(n=20), cfg(batch_size=64), progress=False)


def test_unknown_device() -> None:
    with pytest.raises(DeviceError, match="Unknown device"):
        resolve_device("gpu0")
    with pytest.raises(DeviceError):
        train(faces(), cfg(device="tpu"), progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")


def test_config_and_selection_errors() -> None:
    with pytest.raises(ConfigError, match="iterations"):
        TrainConfig(iterations=0)
    with pytest.raises(ConfigError, match="selection"):
        TrainConfig(selection="best")
    with pytest.raises(ConfigError, match="validation set"):
        train(faces(), cfg(selection="valid"), progress=False)
    with pytest.raises(LabelError, match="no emotion labels"):
        train(FaceSet(images=np.zeros((16, 32, 32), np.uint8)), cfg(), progress=False)


def test_variants_and_bf16() -> None:
    assert cfg(augment=False, dropout=0.0).variant == "plain"
    assert cfg(augment=True, dropout=0.5).variant == "+AD"
    res = train(faces(), cfg(iterations=2, bf16=True), progress=False)
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
