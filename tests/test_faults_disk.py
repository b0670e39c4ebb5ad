"""A full disk: every artefact write raises OutputError naming the folder, the bytes needed and the fix, leaves
nothing that looks complete, and a rerun with space resumes from the finished steps.

``ENOSPC`` is faked at the write layer: the writer puts down part of its bytes and then fails, as a real
full disk does (and safetensors' Rust writer wraps the OS error in its own exception).
"""

from __future__ import annotations

import errno
import json
import pathlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from captum_fau._utils import io
from captum_fau.cli import main
from captum_fau.errors import OutputError

CLI_ARGS = ["analyze", "--model", "zerobias-synthfacs-8class", "--data", "synthfacs:24", "--layer", "conv2", "--n", "2",
            "--permutations", "5", "--bootstrap", "0", "--featured", "2", "--no-sanity-check", "-q"]  # fmt: skip


def _no_space(*_: Any, **__: Any) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``Path.write_bytes`` of temporary files named in ``state["names"]`` writes half and fails with ENOSPC."""
    state: dict[str, Any] = {"names": set(), "failed": []}
    real = pathlib.Path.write_bytes

    def write_bytes(self: Path, data: bytes) -> int:
        if any(self.name.startswith(f".{name}.") for name in state["names"]):  # atomic_path's temporary name
            real(self, data[: len(data) // 2])
            state["failed"].append(self.name)
            raise _no_space()
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    return state


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or ".safetensors." in p.name)


def test_text_and_bytes_writes(tmp_path: Path, full_disk: dict[str, Any]) -> None:
    full_disk["names"] = {"results.json"}
    with pytest.raises(OutputError) as caught:
        io.atomic_write_text(tmp_path / "results.json", "x" * 1000)
    message = str(caught.value)
    assert str(tmp_path) in message and "needs 1000 bytes" in message and "free" in message
    assert "out=" in message and "run the same call again" in message
    assert not (tmp_path / "results.json").exists() and not list(tmp_path.iterdir())


def test_safetensors_write_wrapped_by_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """safetensors raises its own SafetensorError for ENOSPC: still an OutputError with the size."""
    import safetensors.torch

    class SafetensorError(Exception):
        pass

    def save_file(tensors: dict[str, torch.Tensor], filename: str, metadata: Any = None) -> None:
        Path(filename).write_bytes(b"\0" * 100)
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                              "message: \"No space left on device\" })")  # fmt: skip

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    tensors = {"a": torch.zeros(1000, dtype=torch.float32), "b": torch.zeros(10, dtype=torch.int64)}
    with pytest.raises(OutputError, match=r"needs 4080 bytes") as caught:
        io.atomic_safetensors(tmp_path / "topn.safetensors", tensors)
    assert str(tmp_path) in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_npz_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def savez(handle: Any, **arrays: Any) -> None:
        handle.write(b"PK" + b"\0" * 50)
        raise _no_space()

    monkeypatch.setattr(np, "savez", savez)
    with pytest.raises(OutputError, match=r"needs 8000 bytes"):
        io.atomic_npz(tmp_path / "maxima.npz", maxima=np.zeros(1000))
    assert not list(tmp_path.iterdir())


def test_no_room_for_the_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "mkstemp", lambda **kwargs: (_ for _ in ()).throw(_no_space()))
    with pytest.raises(OutputError, match="is full"):
        io.atomic_write_bytes(tmp_path / "a.bin", b"abc")


def test_other_errors_pass_through(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        with io.atomic_path(tmp_path / "x"):
            1 / 0  # noqa: B018 - an error of the caller's, not of the disk
    assert not list(tmp_path.iterdir())


def test_cli_full_disk_then_rerun_resumes(tmp_path: Path, full_disk: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """The report cannot be written: exit 2 with the message; the rerun with space reuses scan and statistics."""
    import importlib

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    full_disk["names"] = {"index.html"}
    assert main([*CLI_ARGS, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert full_disk["failed"], "the fake full disk was never hit"
    assert "Traceback" not in err and f"The disk holding {out} is full" in err and "--out" in err, err
    assert "writing index.html needs" in err and "run the same command again" in err
    assert not (out / "index.html").exists() and not _leftovers(out)
    steps = json.loads((out / "analysis.json").read_text())["steps"]
    assert "scan" in steps and "faukl" in steps and "report" not in steps

    full_disk["names"] = set()
    scan_module = importlib.import_module("captum_fau.stats.scan")
    calls = {"scan": 0}
    real_scan = scan_module.scan
    monkeypatch.setattr(scan_module, "scan", lambda *a, **k: (calls.__setitem__("scan", calls["scan"] + 1),
                                                               real_scan(*a, **k))[1])  # fmt: skip
    assert main([*CLI_ARGS, "--out", str(out)]) == 0
    assert calls["scan"] == 0, "the rerun scanned again instead of resuming"
    assert (out / "index.html").is_file() and (out / "results.json").is_file()


def test_cli_backstop_for_writes_outside_the_atomic_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A full disk met anywhere (a memory-mapped spill, a library's own writer) is a message, not a traceback."""
    import argparse

    from captum_fau.cli import _run
    from captum_fau.cli._say import speaking

    def handler(args: argparse.Namespace) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "spill.bin"))

    with speaking():
        assert _run(handler, argparse.Namespace(command="analyze", out=str(tmp_path))) == 2
    err = capsys.readouterr().err
    assert f"The disk holding {tmp_path} is full" in err and "--out" in err and "Traceback" not in err, err
