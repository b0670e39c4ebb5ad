#!/usr/bin/env python
"""Benchmark the SynthFACS renderer: images/s for render, region masks and the CLI write.

The requirement is >= 500 images/s at 96x96 on 2 cores, including the writing; the
ratios printed are measured rate / 500. Run from the repository root:

    .venv/bin/python scripts/bench_synthfacs.py            # 2000 images
    .venv/bin/python scripts/bench_synthfacs.py --n 5000 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
import tracemalloc

from captum_fau.data.synthfacs import region_masks, render
from captum_fau.data.synthfacs_writer import write_synthfacs

TARGET_IMAGES_PER_S = 500.0


def _timed(fn, n_memory: int) -> tuple[float, int]:  # noqa: ANN001
    """Wall time of ``fn(n)`` untraced, then the traced peak of ``fn(n_memory)``.

    tracemalloc slows Python-level code several-fold, so the timing run is not traced;
    the peak is measured on a separate run (the same size unless ``n_memory`` is smaller).
    """
    t0 = time.perf_counter()
    fn(None)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    fn(n_memory)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="images per measurement (default: 2000)")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-n", type=int, default=0, help="images in the traced memory run (default: --n)")
    parser.add_argument("--json", action="store_true", help="print one JSON line with all numbers last")
    args = parser.parse_args()

    render(16, args.seed, size=args.size)  # warm caches and imports outside the timings
    results: dict[str, float] = {"n": args.n, "size": args.size, "cpus": os.cpu_count() or 0}
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "render": lambda n: render(n or args.n, args.seed, size=args.size),
            "render_with_masks": lambda n: render(n or args.n, args.seed, size=args.size, masks=True),
            "region_masks": lambda n: region_masks(args.seed, range(n or args.n), size=args.size),
            "cli_write": lambda n: write_synthfacs(tmp, n or args.n, args.seed, size=args.size, progress=False),
        }
        for name, fn in cases.items():
            seconds, peak = _timed(fn, args.memory_n or args.n)
            rate = args.n / seconds
            results[f"{name}_images_per_s"] = rate
            results[f"{name}_peak_mib"] = peak / 2**20
            print(f"{name:18s} {rate:8.0f} images/s  ({rate / TARGET_IMAGES_PER_S:4.2f}x the 500/s target)  "
                  f"peak traced memory {peak / 2**20:7.1f} MiB for {args.memory_n or args.n} images")
    results["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS {results['max_rss_mib']:.0f} MiB")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
