"""Shared timing and reporting for the ``scripts/bench_*.py`` benchmarks.

One home for what every benchmark needs so that they measure the same way:

* :func:`environment` -- torch threads, CPU model, core count, torch version, GPU model;
* :func:`repeat` -- warm-up, then each timed phase ``>= repeats`` times or until a time budget,
  the phase order reversed every other round (ABBA), on the wall clock or on this process's
  CPU time (:func:`pick_clock`);
* :func:`spread` / :func:`ratios` -- median, min and max of times and of per-repeat ratios
  (each repeat's baseline over the same repeat's candidate, so slow spells on a shared
  machine hit both sides of one ratio);
* :class:`PeakRSS`, :func:`max_rss_mb`, :func:`traced_peak_mb`, :func:`cuda_peak_mb` -- memory;
* :func:`emit` -- the closing JSON line.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import threading
import time
import tracemalloc
from typing import Any, Callable, Sequence

import torch


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """What the numbers were measured on (goes into every JSON line)."""
    env: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count() or 0,
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "device": str(device),
    }
    try:
        env["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    if torch.device(device).type == "cuda":
        env["gpu_model"] = torch.cuda.get_device_name(torch.device(device))
    return env


def describe(env: dict[str, Any]) -> str:
    """One line naming the machine, for the human-readable output."""
    gpu = f", GPU {env['gpu_model']}" if "gpu_model" in env else ""
    return (
        f"{env['cpu_model']} ({env['affinity_cores']} cores usable), torch {env['torch_version']} with "
        f"{env['torch_threads']} threads, device {env['device']}{gpu}, load {env.get('load_average_1min', '?')}"
    )


def synchronize(device: str | torch.device) -> None:
    """Wait for queued GPU work, so that a timer around it measures it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(torch.device(device))


#: The clocks :func:`timed` reads: wall time, or the CPU time of this process (all its threads).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def pick_clock(requested: str, device: str | torch.device = "cpu") -> str:
    """``"cpu"`` or ``"wall"`` for ``requested`` in ``("auto", "cpu", "wall")``.

    ``"auto"`` takes the process's CPU time on a CPU run with one torch thread: the work
    done, which other users of a shared machine do not stretch (they only delay it, and
    the wall clock counts that delay); and the wall clock on a GPU or with several threads
    (CPU time would not show the GPU's work, and would add up the threads).
    """
    if requested not in ("auto", "cpu", "wall"):
        raise ValueError(f"clock must be auto, cpu or wall, got {requested!r}")
    if requested != "auto":
        return requested
    return "cpu" if torch.device(device).type == "cpu" and torch.get_num_threads() == 1 else "wall"


def timed(fn: Callable[[], Any], device: str | torch.device = "cpu", clock: str = "wall") -> tuple[Any, float]:
    """``(fn(), seconds)`` on ``clock`` (see :data:`CLOCKS`), the GPU synchronised before the clock stops."""
    now = CLOCKS[clock]
    synchronize(device)
    start = now()
    out = fn()
    synchronize(device)
    return out, now() - start


def repeat(
    phases: dict[str, Callable[[], Any]],
    repeats: int = 5,
    budget_s: float = 0.0,
    warmup: int = 1,
    device: str | torch.device = "cpu",
    max_repeats: int = 50,
    clock: str = "wall",
    also_wall: dict[str, list[float]] | None = None,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Run every phase ``warmup`` times untimed, then all phases in turn, round after round.

    Rounds continue until ``repeats`` rounds are done and, when ``budget_s`` > 0, until the
    timed rounds have taken ``budget_s`` seconds (at most ``max_repeats`` rounds). The
    phases of one round run back to back, in reverse order every other round (A B, B A,
    ...), so a ratio of two phases of the same round compares them under the same machine
    load and a slow drift of the load favours neither side.

    Args:
        clock (str, optional): ``"wall"`` or ``"cpu"`` (see :func:`pick_clock`). Default: wall
        also_wall (dict, optional): Filled with each phase's wall seconds as well, per round.

    Returns:
        ``(seconds per phase, one per round; the last round's result per phase)``.
    """
    for _ in range(warmup):
        for fn in phases.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in phases}
    if also_wall is not None:
        also_wall.update({name: [] for name in phases})
    last: dict[str, Any] = {}
    started = time.perf_counter()
    rounds = 0
    while rounds < max_repeats and (rounds < repeats or time.perf_counter() - started < budget_s):
        order = list(phases.items()) if rounds % 2 == 0 else list(phases.items())[::-1]
        for name, fn in order:
            wall_start = time.perf_counter()
            last[name], seconds = timed(fn, device, clock)
            times[name].append(seconds)
            if also_wall is not None:
                also_wall[name].append(time.perf_counter() - wall_start)
        rounds += 1
    return times, last


def spread(values: Sequence[float], digits: int = 4) -> dict[str, float]:
    """``{"median", "min", "max"}`` of ``values``."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}  # fmt: skip


def ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Per-round ratios ``numerator[i] / denominator[i]``."""
    return [a / b for a, b in zip(numerator, denominator)]


def line(name: str, values: Sequence[float], unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    """``name: median M (min a, max b, n=k)`` for the human-readable output."""
    s = spread([v * scale for v in values], digits + 2)
    return (
        f"{name}: median {s['median']:.{digits}f}{unit} (min {s['min']:.{digits}f}, max {s['max']:.{digits}f}, "
        f"{len(values)} repeats)"
    )


def flat(prefix: str, values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """``{prefix_median, prefix_min, prefix_max}`` for the JSON line."""
    return {f"{prefix}_{k}": v for k, v in spread(values, digits).items()}


class PeakRSS:
    """Largest resident-set increase (MiB) of this process while the block runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0

    @staticmethod
    def rss_mb() -> float:
        """The current resident set of this process, MiB."""
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self) -> "PeakRSS":
        self._start = self.rss_mb()
        self._stop = threading.Event()
        self._peak = self._start

        def sample() -> None:
            while not self._stop.is_set():
                self._peak = max(self._peak, self.rss_mb())
                time.sleep(0.005)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self.rss_mb())
        self.peak_mb = self._peak - self._start


def max_rss_mb(children: bool = False) -> float:
    """The peak resident set (``ru_maxrss``) of this process (or its waited-for children), MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def traced_peak_mb(fn: Callable[[], Any]) -> float:
    """Peak Python-heap allocation (tracemalloc, MiB) of one untimed call of ``fn``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def cuda_peak_mb(fn: Callable[[], Any], device: str | torch.device) -> float:
    """Peak CUDA memory allocated (MiB) during one call of ``fn``."""
    device = torch.device(device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def emit(summary: dict[str, Any]) -> None:
    """Print ``summary`` as the closing JSON line."""
    print(json.dumps(summary, default=lambda v: round(float(v), 6)), flush=True)


__all__ = [
    "CLOCKS",
    "PeakRSS",
    "cpu_model",
    "cuda_peak_mb",
    "describe",
    "emit",
    "environment",
    "flat",
    "line",
    "max_rss_mb",
    "pick_clock",
    "ratios",
    "repeat",
    "spread",
    "synchronize",
    "timed",
    "traced_peak_mb",
]
