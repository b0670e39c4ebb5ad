"""Faults a real run meets: a kill at any step, two runs into one folder, inputs changed between runs.

A run killed with SIGKILL (stopped at an exact place by ``captum_fau._utils.faults.pause_point``, not by
guessing with sleeps) and then rerun must end with the same ``results.json`` and saved arrays as an
uninterrupted run; a second run into a folder in use must stop at once; a rerun after the weights, the
AU labels or one image changed must recompute what depends on them, and only that.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from captum_fau import ZeroBiasCNN, zoo
from captum_fau.analyze import analyze
from captum_fau.cli import main
from captum_fau.data.synthfacs import load_synthfacs
from captum_fau.errors import OutputError

MODEL = "zerobias-synthfacs-8class"
DATA = "synthfacs:24"
CLI_ARGS = ["--model", MODEL, "--data", DATA, "--layer", "conv2", "--n", "3", "--permutations", "30",
            "--bootstrap", "5", "--featured", "4", "--batch-size", "8", "--checkpoint-every-s", "0", "--no-sanity-check", "-q"]  # fmt: skip
FAST = dict(
    layer="conv2", n=3, permutations=30, bootstrap=5, n_featured=4, batch_size=8, progress=False, sanity_check=False
)
ARRAY_FILES = ("maxima.npz", "topn.safetensors", "fau_kl.safetensors")


def _outputs(out: Path) -> dict[str, Any]:
    """What a run leaves that must not depend on how it got there: results.json without its notes, and arrays."""
    results = json.loads((out / "results.json").read_text())
    results.pop("notes")
    arrays: dict[str, Any] = {}
    with np.load(out / "maxima.npz") as z:
        arrays.update({f"maxima.npz/{k}": z[k] for k in z.files})
    for name in ARRAY_FILES[1:]:
        arrays.update({f"{name}/{k}": v.numpy() for k, v in load_file(str(out / name)).items()})
    return {"results": results, "arrays": arrays}


def _assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["results"] == want["results"]
    assert got["arrays"].keys() == want["arrays"].keys()
    for key, value in want["arrays"].items():
        np.testing.assert_array_equal(got["arrays"][key], value, err_msg=key)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict[str, Any]:
    """An uninterrupted CLI run."""
    out = tmp_path_factory.mktemp("baseline")
    assert main(["analyze", *CLI_ARGS, "--out", str(out)]) == 0
    return _outputs(out)


def _start_paused(out: Path, point: str, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A CLI run in a subprocess that stops at pause point ``point``; returns it once it is there."""
    flag = tmp_path / f"paused-{point}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CAPTUM_FAU_PAUSE_AT": point, "CAPTUM_FAU_PAUSE_FILE": str(flag)}
    proc = subprocess.Popen([sys.executable, "-m", "captum_fau.cli", "analyze", *CLI_ARGS, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 180
    while not flag.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before pausing at {point}: {proc.stdout.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, f"the run did not reach {point} in time"
        time.sleep(0.05)
    return proc, flag


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def test_kill_during_scan_then_rerun_equals_uninterrupted_and_a_second_run_stops_at_once(
    tmp_path: Path, baseline, capsys
) -> None:  # fmt: skip
    out = tmp_path / "out"
    proc, _ = _start_paused(out, "scan", tmp_path)
    try:
        assert (out / "scan-checkpoint").is_dir()
        # A second run into the folder in use stops at once and names the other process.
        started = time.perf_counter()
        assert main(["analyze", *CLI_ARGS, "--out", str(out)]) == 2
        elapsed = time.perf_counter() - started
        err = capsys.readouterr().err
        assert f"process {proc.pid}" in err and "Another analysis is writing into" in err and "Traceback" not in err
        assert elapsed < 5.0, elapsed
        assert not (out / "results.json").exists()
    finally:
        _kill(proc)
    result = analyze(MODEL, DATA, out=out, **FAST, checkpoint_every_s=0)
    assert any("resumed from a checkpoint after 1 batch" in note for note in result.notes), result.notes
    assert any(f"left by an earlier run (process {proc.pid}" in n and "no longer running" in n for n in result.notes)
    assert not (out / "scan-checkpoint").exists()
    _assert_same(_outputs(out), baseline)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["faukl", "report"])
def test_kill_during_statistics_or_report_then_rerun_equals_uninterrupted(tmp_path: Path, baseline, point) -> None:
    out = tmp_path / "out"
    proc, _ = _start_paused(out, point, tmp_path)
    _kill(proc)
    manifest = json.loads((out / "analysis.json").read_text())
    assert "scan" in manifest["steps"] and "report" not in manifest["steps"]
    assert main(["analyze", *CLI_ARGS, "--out", str(out)]) == 0
    _assert_same(_outputs(out), baseline)


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    from captum_fau._utils.outlock import OutputLock

    with OutputLock(tmp_path) as held:
        assert held.note is None
        with pytest.raises(OutputError, match=f"process {os.getpid()} on host"):
            OutputLock(tmp_path).acquire()
    with OutputLock(tmp_path) as again:  # released: free again, and no stale record left
        assert again.note is None
    (tmp_path / ".captum-fau.lock.json").write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename,
                                                                 "started": 0, "command": "killed"}))  # fmt: skip
    with OutputLock(tmp_path) as taken:
        assert "no longer running" in taken.note and "killed" in taken.note


# ----------------------------------------------------------------- stale results


@pytest.fixture(scope="module")
def trained() -> torch.nn.Module:
    return zoo.load(MODEL)


@pytest.fixture(scope="module")
def faces(synthfacs):
    return synthfacs(24, seed=3)


def _counting(monkeypatch) -> dict[str, int]:
    """Count the scans and the FAU-KL statistics computed from here on."""
    import importlib

    from captum_fau.concept import FAUKL

    scan_module = importlib.import_module("captum_fau.stats.scan")
    counts = {"scan": 0, "faukl": 0}
    real_scan, real_stats = scan_module.scan, FAUKL.interpret_activations

    def scan(*args: Any, **kwargs: Any) -> Any:
        counts["scan"] += 1
        return real_scan(*args, **kwargs)

    def stats(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["faukl"] += 1
        return real_stats(self, *args, **kwargs)

    monkeypatch.setattr(scan_module, "scan", scan)
    monkeypatch.setattr(FAUKL, "interpret_activations", stats)
    return counts


def test_changing_only_permutations_reuses_the_scan(tmp_path: Path, trained, faces, monkeypatch) -> None:
    first = analyze(trained, faces, out=tmp_path, **FAST)
    counts = _counting(monkeypatch)
    again = analyze(trained, faces, out=tmp_path, **{**FAST, "permutations": 60})
    assert counts == {"scan": 0, "faukl": 1}
    assert again.faukl.stats("conv2").config["n_permutations"] == 60
    np.testing.assert_array_equal(again.faukl.kl, first.faukl.kl)  # same maxima, same labels
    same = analyze(trained, faces, out=tmp_path, **{**FAST, "permutations": 60})
    assert counts == {"scan": 0, "faukl": 1}  # nothing changed: everything reused
    assert same.accuracy == again.accuracy


def test_new_weights_recompute_everything(tmp_path: Path, trained, faces) -> None:
    """The reported accuracy is that of the weights analysed, never that of an earlier run's."""
    trained_run = analyze(trained, faces, out=tmp_path, **FAST)
    torch.manual_seed(0)
    random = ZeroBiasCNN(num_classes=8, class_names=faces.class_names).eval()
    rerun = analyze(random, faces, out=tmp_path, **FAST)
    fresh = analyze(random, faces, out=tmp_path / "fresh", **FAST)
    assert trained_run.accuracy["accuracy"] > 0.5
    assert rerun.accuracy == fresh.accuracy and rerun.accuracy["accuracy"] < 0.5
    reported = json.loads((tmp_path / "results.json").read_text())["accuracy"]
    assert reported.pop("held_out") is False and reported == fresh.accuracy
    np.testing.assert_array_equal(rerun.faukl.kl, fresh.faukl.kl)


@pytest.mark.slow
def test_new_au_labels_rerun_the_statistics_not_the_scan(tmp_path: Path, trained, faces, monkeypatch) -> None:
    analyze(trained, faces, out=tmp_path, **FAST)
    shuffled = faces.subset(np.arange(len(faces)))
    shuffled.aus = shuffled.aus[np.random.default_rng(0).permutation(len(faces))]
    fresh = analyze(trained, shuffled, out=tmp_path / "fresh", **FAST)
    counts = _counting(monkeypatch)
    rerun = analyze(trained, shuffled, out=tmp_path, **FAST)
    assert counts == {"scan": 0, "faukl": 1}
    np.testing.assert_array_equal(rerun.faukl.kl, fresh.faukl.kl)
    np.testing.assert_array_equal(rerun.faukl.stats("conv2").p, fresh.faukl.stats("conv2").p)


@pytest.mark.slow
def test_one_changed_image_reruns_the_scan(tmp_path: Path, trained, faces, monkeypatch) -> None:
    analyze(trained, faces, out=tmp_path, **FAST)
    changed = faces.subset(np.arange(len(faces)))
    changed.images = changed.images.copy()
    changed.images[5] = 255 - changed.images[5]
    counts = _counting(monkeypatch)
    rerun = analyze(trained, changed, out=tmp_path, **FAST)
    assert counts == {"scan": 1, "faukl": 1}
    fresh = analyze(trained, changed, out=tmp_path / "fresh", **FAST)
    np.testing.assert_array_equal(rerun.faukl.kl, fresh.faukl.kl)
    assert rerun.topn.indices.tolist() == fresh.topn.indices.tolist()


def test_a_scan_checkpoint_of_other_data_is_discarded(tmp_path: Path, trained, faces, monkeypatch) -> None:
    """An interrupted scan's checkpoint is not mixed with other data of the same length."""
    from captum_fau._utils import faults

    def interrupt(name: str) -> None:
        if name == "scan":
            raise KeyboardInterrupt

    monkeypatch.setattr(faults, "pause_point", interrupt)
    with pytest.raises(KeyboardInterrupt):
        analyze(trained, faces, out=tmp_path, **FAST, checkpoint_every_s=0)
    assert list((tmp_path / "scan-checkpoint").glob("scan.rank0-of-1.safetensors"))
    monkeypatch.undo()
    other = load_synthfacs(24, seed=4)
    rerun = analyze(trained, other, out=tmp_path, **FAST)
    assert any("discarded and the scan started clean" in note and "fingerprint" in note for note in rerun.notes)
    assert not any("resumed" in note for note in rerun.notes)
    fresh = analyze(trained, other, out=tmp_path / "fresh", **FAST)
    np.testing.assert_array_equal(rerun.faukl.kl, fresh.faukl.kl)
    assert rerun.topn.indices.tolist() == fresh.topn.indices.tolist()


def test_a_damaged_scan_checkpoint_is_discarded_not_stuck(tmp_path: Path) -> None:
    from captum_fau.stats import scan

    torch.manual_seed(0)
    net = ZeroBiasCNN(num_classes=8).eval()
    data = torch.randn(6, 1, 96, 96)
    (tmp_path / "scan.rank0-of-1.safetensors").write_bytes(b"not a checkpoint")
    result = scan(net, "conv1", data, top_n=2, batch_size=2, progress=False, checkpoint=tmp_path)
    assert result.resumed_batches == 0 and any("cannot be read" in note for note in result.notes)
    fresh = scan(net, "conv1", data, top_n=2, batch_size=2, progress=False)
    assert torch.equal(result.layers["conv1"].maxima, fresh.layers["conv1"].maxima)


def test_generic_datasets_are_fingerprinted_from_sampled_items() -> None:
    from captum_fau._utils.fingerprint import dataset_fingerprint

    class Items(torch.utils.data.Dataset):
        def __init__(self, images: torch.Tensor) -> None:
            self.images = images

        def __len__(self) -> int:
            return len(self.images)

        def __getitem__(self, index: int) -> dict[str, Any]:
            return {"image": self.images[index], "emotion": index % 3}

    images = torch.randn(5, 1, 8, 8)
    before = dataset_fingerprint(Items(images))
    assert before["method"] == "sampled items (5 of 5, evenly spaced)"
    changed = images.clone()
    changed[2, 0, 3, 3] += 1e-3
    assert dataset_fingerprint(Items(changed))["hash"] != before["hash"]
    assert dataset_fingerprint(Items(images.clone())) == before
