#!/usr/bin/env python
"""How the analysis scan scales: time and peak memory at N, 2N, 4N images, and 1 vs 2 processes.

SynthFACS faces are rendered on the fly (lazy dataset, nothing stored). Each
measurement runs in a fresh process, so its peak resident memory (ru_maxrss)
is its own; the time is the scan itself (imports and model loading excluded).
The scan is the one ``captum-fau analyze`` runs: layer conv3 of the packaged
zoo model, running top-10 per filter with the top images' inputs kept, and the
per-image maxima spilled to memory-mapped files above ``--spill-mb``.
Every process uses one thread, so "2 processes" means two cores. Each process
scans once untimed (warm-up), then ``--repeats`` times; times are medians (min and
max printed too). ``--device cuda`` scans on the GPU (one process per GPU for the
two-process run; peak CUDA memory is reported next to RSS).

Usage::

    python scripts/bench_scale.py --n 1000 --json
    python scripts/bench_scale.py --n 4000 --device cuda --json

The last line (with ``--json``) is
``{"time_ratio_4x": ..., "rss_ratio_4x": ..., "two_proc_speedup": ...}``:
the time for 4N over N (linear: about 4), peak RSS for 4N over N (flat: about 1),
and the 2N-image scan time of one process over two.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def child(images: int, spill_mb: float, batch_size: int, repeats: int = 5, device: str = "cpu") -> None:
    """One measurement (run under torchrun for several processes); prints a JSON line on rank 0."""
    import torch

    torch.set_num_threads(1)
    from captum_fau import zoo
    from captum_fau._utils import distributed
    from captum_fau.data.synthfacs import SynthFACS
    from captum_fau.stats.scan import scan

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
    model = zoo.load("zerobias-synthfacs-8class").to(device)
    data = SynthFACS(n=images, seed=11)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def once() -> object:
        return scan(model, "conv3", data, top_n=10, batch_size=batch_size, keep_inputs=True, progress=False,
                    spill_bytes=int(spill_mb * 2**20), gather="rank0")  # fmt: skip

    seconds = []
    for round_ in range(repeats + 1):  # round 0 is the warm-up
        distributed.barrier()
        _bench.synchronize(device)
        started = time.perf_counter()
        result = once()
        _bench.synchronize(device)
        distributed.barrier()
        if round_:
            seconds.append(time.perf_counter() - started)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if result.rank == 0:
        cuda_mb = torch.cuda.max_memory_allocated(device) / 2**20 if device.startswith("cuda") else None
        print(json.dumps({"images": images, "processes": world, "seconds": statistics.median(seconds),
                          "seconds_all": seconds, "peak_rss_mb": rss, "peak_cuda_mb": cuda_mb,
                          "rss_before_scan_mb": rss_before, "rows": int(result.indices.numel()),
                          **_bench.environment(device)}))  # fmt: skip
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()


def measure(images: int, processes: int, args: argparse.Namespace) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [__file__, "--child", "--images", str(images), "--spill-mb", str(args.spill_mb),
               "--batch-size", str(args.batch_size), "--repeats", str(args.repeats), "--device", args.device]  # fmt: skip
    if processes == 1:
        command = [sys.executable, *command]
    else:
        torchrun = str(Path(sys.executable).with_name("torchrun"))
        command = [torchrun, "--standalone", "--nproc_per_node", str(processes), *command]
    run = subprocess.run(command, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"measurement failed ({images} images, {processes} processes):\n{run.stderr[-4000:]}")
    line = [l for l in run.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="smallest dataset size N (default: 1000)")
    parser.add_argument(
        "--spill-mb",
        type=float,
        default=4.0,
        help="per-image rows kept in memory before spilling to files, MiB (default: 4)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed scans per measurement after a warm-up")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--json", action="store_true", help="end with the summary as one JSON line")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.images, args.spill_mb, args.batch_size, args.repeats, args.device)
        return
    from captum_fau._utils.device import resolve_device

    resolve_device(args.device)  # an unknown or absent device fails here, before any measurement

    sizes = [args.n, 2 * args.n, 4 * args.n]
    single = {}
    print(f"{'images':>8} {'procs':>5} {'seconds':>8} {'ms/image':>9} {'peak RSS MB':>12} {'RSS before scan':>16}")
    for images in sizes:
        single[images] = m = measure(images, 1, args)
        print(f"{images:>8} {1:>5} {m['seconds']:>8.2f} {1000 * m['seconds'] / images:>9.3f} "
              f"{m['peak_rss_mb']:>12.0f} {m['rss_before_scan_mb']:>16.0f}")  # fmt: skip
    two = measure(2 * args.n, 2, args)
    print(f"{2 * args.n:>8} {2:>5} {two['seconds']:>8.2f} {1000 * two['seconds'] / (2 * args.n):>9.3f} "
          f"{two['peak_rss_mb']:>12.0f} {two['rss_before_scan_mb']:>16.0f}  (rank 0)")  # fmt: skip
    time_4x = _bench.ratios(single[sizes[2]]["seconds_all"], single[sizes[0]]["seconds_all"])
    two_proc = _bench.ratios(single[sizes[1]]["seconds_all"], two["seconds_all"])
    print(_bench.line("time 4N / N", time_4x, "x", digits=3))
    print(_bench.line("two-process speed-up", two_proc, "x", digits=3))
    env = {k: v for k, v in single[sizes[0]].items() if k in _bench.environment(args.device)}
    summary = {
        "repeats": args.repeats,
        "time_ratio_4x": round(statistics.median(time_4x), 3),
        **_bench.flat("time_ratio_4x", time_4x),
        "rss_ratio_4x": round(single[sizes[2]]["peak_rss_mb"] / single[sizes[0]]["peak_rss_mb"], 3),
        "two_proc_speedup": round(statistics.median(two_proc), 3),
        **_bench.flat("two_proc_speedup", two_proc),
        "ms_per_image_4n": round(1000 * single[sizes[2]]["seconds"] / sizes[2], 4),
        "peak_rss_mb_4n": round(single[sizes[2]]["peak_rss_mb"], 1),
        "peak_cuda_mb_4n": single[sizes[2]]["peak_cuda_mb"],
        **env,
    }
    print(f"ms per image at 4N: {1000 * single[sizes[2]]['seconds'] / sizes[2]:.3f} (one process, one thread, "
          f"median of {args.repeats}; {_bench.describe(env)}); "
          f"spill threshold {args.spill_mb} MiB")  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    else:
        print(summary)


if __name__ == "__main__":
    main()
