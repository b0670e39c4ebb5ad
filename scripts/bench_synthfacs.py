#!/usr/bin/env python
"""Benchmark the SynthFACS renderer: images/s for render, region masks and the CLI write.

The requirement is >= 500 images/s at 96x96 on 2 cores, including the writing; the
ratios printed are measured rate / 500. Run from the repository root:

    .venv/bin/python scripts/bench_synthfacs.py            # 2000 images
    .venv/bin/python scripts/bench_synthfacs.py --n 5000 --json

Each case runs once untimed (warm-up), then ``--repeats`` times; rates are the
median (min and max printed and in the JSON line).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

from captum_fau.data.synthfacs import region_masks, render  # noqa: E402
from captum_fau.synthfacs.writer import write_synthfacs  # noqa: E402

TARGET_IMAGES_PER_S = 500.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="images per measurement (default: 2000)")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (default: 5)")
    parser.add_argument("--memory-n", type=int, default=0, help="images in the traced memory run (default: --n)")
    parser.add_argument("--json", action="store_true", help="print one JSON line with all numbers last")
    args = parser.parse_args()

    env = _bench.environment()
    print(_bench.describe(env))
    results: dict[str, object] = {"n": args.n, "size": args.size, "repeats": args.repeats, **env}
    memory_n = args.memory_n or args.n
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "render": lambda n: render(n, args.seed, size=args.size),
            "render_with_masks": lambda n: render(n, args.seed, size=args.size, masks=True),
            "region_masks": lambda n: region_masks(args.seed, range(n), size=args.size),
            "cli_write": lambda n: write_synthfacs(tmp, n, args.seed, size=args.size, progress=False),
        }
        for name, fn in cases.items():
            # tracemalloc slows Python code several-fold: the peak comes from one separate traced run
            times, _ = _bench.repeat({name: lambda: fn(args.n)}, repeats=args.repeats)
            rates = [args.n / t for t in times[name]]
            peak = _bench.traced_peak_mb(lambda: fn(memory_n))
            results[f"{name}_images_per_s"] = round(statistics.median(rates), 1)
            results.update(_bench.flat(f"{name}_images_per_s", rates, 1))
            results[f"{name}_ratio_to_target"] = round(statistics.median(rates) / TARGET_IMAGES_PER_S, 3)
            results[f"{name}_peak_mib"] = round(peak, 2)
            print(_bench.line(f"{name:18s}", rates, " images/s", digits=0)
                  + f"  ({statistics.median(rates) / TARGET_IMAGES_PER_S:4.2f}x the 500/s target)  "
                  f"peak traced memory {peak:7.1f} MiB for {memory_n} images")  # fmt: skip
    results["max_rss_mib"] = round(_bench.max_rss_mb(), 1)
    print(f"process max RSS {results['max_rss_mib']:.0f} MiB")
    if args.json:
        _bench.emit(results)


if __name__ == "__main__":
    main()
