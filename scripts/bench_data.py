#!/usr/bin/env python
"""The streaming real-image pipeline: decode + face detection + crop per image, in worker processes.

Builds a folder of CK+-sized frames (640x490 grayscale JPEGs, a SynthFACS face of
about 320 px drawn into a blurred-noise canvas at a varying position, so the Haar
detector has a face to find), opens it as ``load_folder(root, lazy=True)`` (a
:class:`~captum_fau.data.lazy.LazyFaceSet`) and reads it the way the scan does
(:class:`~captum_fau.stats.batching.MapSource`, batches of 64):

* ``workers_speedup``: images/s with 2 DataLoader workers over 0 workers (decoding
  in the main process), crop cache off so every pass detects; median, min and max
  over ``--repeats`` rounds after a warm-up (want >= 1.5 on 2 cores);
* ``images_per_s``: the 2-worker rate (median); ``cached_images_per_s``: a pass
  that reads every crop from the per-file cache;
* ``rss_ratio_4x``: peak RSS (main process + largest worker) of a full pass over 4N
  images over that of N images, each in a fresh process (want <= 1.2: flat).

Usage::

    python scripts/bench_data.py --json              # N = 200 (800 frames written once)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build_frames(folder: Path, count: int, seed: int) -> None:
    """``count`` 640x490 JPEG frames with one face each, rendered 64 at a time."""
    import cv2
    import numpy as np

    from captum_fau.data.synthfacs import render

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, count, 64):
        faces = render(min(64, count - start), seed, size=320, start=start).images
        for offset, face in enumerate(faces):
            canvas = cv2.GaussianBlur(rng.integers(0, 256, (490, 640), dtype=np.uint8), (0, 0), 3)
            y, x = int(rng.integers(40, 130)), int(rng.integers(60, 260))
            canvas[y : y + 320, x : x + 320] = face
            cv2.imwrite(str(folder / f"frame_{start + offset:06d}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])


def one_pass(faces: object, batch_size: int = 64) -> int:
    """Read every item as the scan does; returns the images with a detected face."""
    from captum_fau._utils.distributed import batch_ranges
    from captum_fau.stats.batching import MapSource

    found = 0
    for _, extras, _ in MapSource(faces).batches(batch_ranges(len(faces), batch_size)):
        found += int(extras["face_found"].sum())
    return found


def open_folder(root: Path, images: int, workers: int, cache_dir: Path | None) -> object:
    from captum_fau.data.folder import load_folder

    faces = load_folder(root, lazy=True, workers=workers, cache=cache_dir is not None, cache_dir=cache_dir,
                        progress=False)  # fmt: skip
    return faces.subset(range(images))


def child(root: Path, images: int, workers: int) -> None:
    """One full uncached pass over the first ``images`` frames; prints peak RSS as JSON."""
    import resource

    faces = open_folder(root, images, workers, None)
    found = one_pass(faces)
    print(json.dumps({"images": images, "found": found,
                      "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))  # fmt: skip


def fresh(root: Path, images: int, workers: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, __file__, "--child", str(root), "--images", str(images),
                          "--workers", str(workers)], env=env, capture_output=True, text=True)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"measurement with {images} images failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="N: images per timed pass and the small RSS run")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel side (default: 2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="build the frames in this folder and keep them")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--images", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), args.images, args.workers)
        return
    import torch

    torch.set_num_threads(1)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-data-"))
    frames = work / "frames"
    try:
        started = time.perf_counter()
        if len(list(frames.glob("*.jpg"))) < 4 * args.n:
            build_frames(frames, 4 * args.n, args.seed)
        print(f"{4 * args.n} frames 640x490 JPEG in {frames} ({time.perf_counter() - started:.0f} s to build)")
        env = _bench.environment()
        print(f"machine: {_bench.describe(env)}")
        serial = open_folder(frames, args.n, 0, None)
        parallel = open_folder(frames, args.n, args.workers, None)
        times, last = _bench.repeat({"workers_0": lambda: one_pass(serial), "workers_n": lambda: one_pass(parallel)},
                                    repeats=args.repeats)  # fmt: skip
        speedup = _bench.ratios(times["workers_0"], times["workers_n"])
        rate = [args.n / t for t in times["workers_n"]]
        cache_dir = work / "cache"
        cached = open_folder(frames, args.n, args.workers, cache_dir)
        one_pass(cached)  # fills the per-file cache
        cached_times, _ = _bench.repeat({"cached": lambda: one_pass(cached)}, repeats=args.repeats, warmup=0)
        print(_bench.line("0 workers", [args.n / t for t in times["workers_0"]], " images/s", digits=1))
        print(_bench.line(f"{args.workers} workers", rate, " images/s", digits=1))
        print(_bench.line(f"workers speedup ({args.workers} vs 0)", speedup, "x"))
        print(_bench.line("cached crops", [args.n / t for t in cached_times["cached"]], " images/s", digits=1))
        print(f"faces detected: {last['workers_n']} of {args.n}")
        small, large = fresh(frames, args.n, args.workers), fresh(frames, 4 * args.n, args.workers)
        peak = lambda m: m["self_mb"] + m["children_mb"]  # noqa: E731
        rss_ratio = peak(large) / peak(small)
        print(f"peak RSS (main + largest worker): {peak(small):.0f} MiB at {args.n} images, {peak(large):.0f} MiB at "
              f"{4 * args.n} -> ratio {rss_ratio:.3f}")  # fmt: skip
        summary = {
            "n": args.n, "workers": args.workers, "repeats": len(speedup),
            "workers_speedup": round(statistics.median(speedup), 3), **_bench.flat("workers_speedup", speedup),
            "images_per_s": round(statistics.median(rate), 1), **_bench.flat("images_per_s", rate, 1),
            "serial_images_per_s": round(statistics.median(args.n / t for t in times["workers_0"]), 1),
            "cached_images_per_s": round(statistics.median(args.n / t for t in cached_times["cached"]), 1),
            "faces_found": last["workers_n"], "rss_ratio_4x": round(rss_ratio, 3),
            "peak_rss_mb_n": round(peak(small), 1), "peak_rss_mb_4n": round(peak(large), 1), **env,
        }  # fmt: skip
        if args.json:
            _bench.emit(summary)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
