"""The benchmark scripts' shared timing helpers and their device plumbing (on the CPU)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import _bench  # noqa: E402


def test_pick_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert _bench.pick_clock("auto", "cpu") == "cpu"
    assert _bench.pick_clock("auto", "cuda") == "wall"  # CPU time would not show the GPU's work
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert _bench.pick_clock("auto", "cpu") == "wall"  # CPU time would add up the threads
    assert _bench.pick_clock("cpu", "cpu") == "cpu" and _bench.pick_clock("wall", "cpu") == "wall"
    with pytest.raises(ValueError, match="auto, cpu or wall"):
        _bench.pick_clock("gpu")


def test_repeat_alternates_the_order_and_reads_the_clock_asked_for() -> None:
    order: list[str] = []

    def sleeper() -> None:  # waits without working: wall time, next to no CPU time
        order.append("sleep")
        time.sleep(0.05)

    phases = {"sleep": sleeper, "other": lambda: order.append("other")}
    wall: dict[str, list[float]] = {}
    times, last = _bench.repeat(phases, repeats=3, warmup=1, clock="cpu", also_wall=wall)
    assert order == ["sleep", "other"] + ["sleep", "other", "other", "sleep", "sleep", "other"]
    assert len(times["sleep"]) == 3 and len(wall["other"]) == 3 and set(last) == {"sleep", "other"}
    assert min(wall["sleep"]) >= 0.05 and max(times["sleep"]) < 0.02
    assert _bench.ratios([4.0, 9.0], [2.0, 3.0]) == [2.0, 3.0]


def _main(module: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    script = __import__(module)
    monkeypatch.setattr(sys, "argv", [f"{module}.py", *argv])
    script.main()


def test_bench_topn_runs_on_the_device_it_is_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A tiny run end to end: the device passes through, the JSON has its keys, a missing peer is said."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    _main("bench_topn", ["--images", "8", "--filters", "2", "--n", "2", "--repeats", "1", "--device", "cpu",
                         "--peer", "crp", "--json"], monkeypatch)  # fmt: skip
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["device"] == "cpu" and out["clock"] == "cpu" and out["torch_threads"] == 1
    assert out["captum_pairs_timed"] == out["pairs_total"] == 4 and out["repeats"] == 1
    assert out["max_rel_err"] <= 1e-4 and out["peak_memory_kind"] == "rss_increase"
    for key in (
        "recon_speedup_median",
        "recon_speedup_min",
        "end_to_end_speedup_median",
        "scan_overhead",
        "recon_speedup_wall_median",
        "cpu_model",
        "ours_peak_mb",
        "captum_peak_mb",
    ):
        assert key in out, key
    if importlib.util.find_spec("crp") is not None and importlib.util.find_spec("zennit") is not None:
        assert out["peer"]["name"] == "zennit-crp" and out["peer"]["max_rel_diff_to_ours"] <= 1e-4
    else:
        assert out["peer"] is None and "zennit-crp is not importable" in out["peer_reason"]


def test_bench_scale_child_runs_on_the_device_it_is_given(capsys: pytest.CaptureFixture) -> None:
    import bench_scale

    threads = torch.get_num_threads()
    try:
        bench_scale.child(12, 4.0, 8, repeats=1, device="cpu")
    finally:
        torch.set_num_threads(threads)
    out = json.loads([line for line in capsys.readouterr().out.splitlines() if line.startswith("{")][-1])
    assert out["device"] == "cpu" and out["peak_cuda_mb"] is None and out["images"] == 12


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("script", ["bench_topn", "bench_scale"])
def test_cuda_without_a_gpu_is_refused_up_front(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from captum_fau.errors import DeviceError

    with pytest.raises(DeviceError, match="cuda"):
        _main(script, ["--device", "cuda", "--json"], monkeypatch)
