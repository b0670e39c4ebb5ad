#!/usr/bin/env python
"""The streaming real-image pipeline: face detection, decode and crop in DataLoader worker processes.

Builds a folder of CK+-sized frames (640x490 grayscale JPEGs, a SynthFACS face of about 320 px
drawn into a blurred-noise canvas at a varying position, so the Haar detector has a face to find)
and opens it as ``load_folder(root, lazy=True)`` (a :class:`~captum_fau.data.lazy.LazyFaceSet`,
default ``--face-crop auto``), then reads every item the way the scan does
(:class:`~captum_fau.stats.batching.MapSource`, batches of 10). A *pass* is what a first run
costs: the index pass (face detection, in the workers) plus reading every item (decode + crop, in
the workers), with the index cache off so every pass detects.

* ``workers_speedup``: pass time with 0 workers (all in this process) over that with ``--workers``
  (default 2) workers; median, min and max over ``--repeats`` rounds after a warm-up (want >= 1.5
  on 2 cores); ``images_per_s``: files per second of the worker pass (median);
* ``read_images_per_s`` / ``read_workers_speedup``: a pass over a cached index (decode + crop only,
  what every later run costs);
* ``machine_two_proc_speedup``: what two processes get over one on fixed pure-Python work in the
  same rounds, so a shared machine's load can be told from the pipeline's scaling;
* ``rss_ratio_4x``: peak RSS (main process + largest worker) of a full pass over 4N files over that
  of N files, each in a fresh process (want <= 1.2: flat in the number of images).

Usage::

    OMP_NUM_THREADS=1 python scripts/bench_data.py --json        # N = 100 (400 frames written once)
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


def open_folder(root: Path, workers: int, cache_dir: Path | None) -> object:
    """The frames as streamed data: the index pass runs here (detection in ``workers`` processes)."""
    import warnings

    from captum_fau.data.folder import load_folder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # frames where no face is found are counted, not warned about here
        return load_folder(root, lazy=True, workers=workers, cache=cache_dir is not None, cache_dir=cache_dir,
                           progress=False)  # fmt: skip


#: Items per batch of the read pass: small enough that N items make many batches, so the workers share
#: them evenly (the scan's default of 64 does the same on datasets of thousands of images).
BATCH = 10


def read_all(faces: object, batch_size: int = BATCH) -> int:
    """Read every item as the scan does (in the set's worker processes); returns the items read."""
    from captum_fau._utils.distributed import batch_ranges
    from captum_fau.stats.batching import MapSource

    return sum(len(x) for x, _, _ in MapSource(faces).batches(batch_ranges(len(faces), batch_size)))


def full_pass(root: Path, workers: int, cache_dir: Path | None = None) -> int:
    """Index (detect) + read every item; returns the items."""
    return read_all(open_folder(root, workers, cache_dir))


def _burn(count: int) -> int:
    total = 0
    for i in range(count):
        total += i
    return total


def burn(processes: int, count: int = 12_000_000) -> int:
    """Fixed pure-Python work split over ``processes`` forked processes: what the machine gives two
    processes over one at this moment (the reference for ``workers_speedup`` on a shared machine)."""
    import multiprocessing

    if processes == 1:
        return _burn(2 * count)
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.map(_burn, [2 * count // processes] * processes))


def child(root: Path, workers: int) -> None:
    """One uncached full pass over the frames of ``root``; prints peak RSS as JSON."""
    import resource

    items = full_pass(root, workers)
    print(json.dumps({"files": len(list(root.glob("*.jpg"))), "items": items,
                      "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))  # fmt: skip


def fresh(root: Path, workers: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, __file__, "--child", str(root), "--workers", str(workers)], env=env,
                         capture_output=True, text=True)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"the measurement on {root} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def subset_folder(frames: Path, target: Path, count: int) -> Path:
    """``target`` holding links to the first ``count`` frames (the same files, a folder of its own)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(frames.glob("*.jpg"))[:count]:
        link = target / path.name
        if not link.exists():
            os.symlink(path, link)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="N: files per timed pass and of the small RSS run")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel side (default: 2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="build the frames in this folder and keep them")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child), args.workers)
        return
    import torch

    torch.set_num_threads(1)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-data-"))
    frames = work / "frames"
    try:
        started = time.perf_counter()
        if len(list(frames.glob("*.jpg"))) < 4 * args.n:
            build_frames(frames, 4 * args.n, args.seed)
        small = subset_folder(frames, work / f"first_{args.n}", args.n)
        large = subset_folder(frames, work / f"first_{4 * args.n}", 4 * args.n)
        print(f"{4 * args.n} frames 640x490 JPEG in {frames} ({time.perf_counter() - started:.0f} s to build)")
        env = _bench.environment()
        print(f"machine: {_bench.describe(env)}")
        times, last = _bench.repeat({"workers_0": lambda: full_pass(small, 0),
                                     "workers_n": lambda: full_pass(small, args.workers),
                                     "burn_1": lambda: burn(1), "burn_2": lambda: burn(2)},
                                    repeats=args.repeats)  # fmt: skip
        speedup = _bench.ratios(times["workers_0"], times["workers_n"])
        machine = _bench.ratios(times["burn_1"], times["burn_2"])
        rate = [args.n / t for t in times["workers_n"]]
        cache_dir = work / "cache"
        indexed = {w: open_folder(small, w, cache_dir) for w in (0, args.workers)}  # the index, cached once
        read_times, _ = _bench.repeat({"read_0": lambda: read_all(indexed[0]),
                                       "read_n": lambda: read_all(indexed[args.workers])},
                                      repeats=args.repeats)  # fmt: skip
        read_speedup = _bench.ratios(read_times["read_0"], read_times["read_n"])
        read_rate = [args.n / t for t in read_times["read_n"]]
        print(_bench.line("first pass, 0 workers", [args.n / t for t in times["workers_0"]], " files/s", digits=1))
        print(_bench.line(f"first pass, {args.workers} workers", rate, " files/s", digits=1))
        print(_bench.line(f"workers speedup ({args.workers} vs 0)", speedup, "x"))
        print(_bench.line("the machine now: 2 processes vs 1 on fixed CPU work", machine, "x"))
        print(_bench.line(f"cached index, {args.workers} workers", read_rate, " files/s", digits=1))
        print(_bench.line(f"cached-index speedup ({args.workers} vs 0)", read_speedup, "x"))
        print(f"face items: {last['workers_n']} from {args.n} files")
        rss_small, rss_large = fresh(small, args.workers), fresh(large, args.workers)
        peak = lambda m: m["self_mb"] + m["children_mb"]  # noqa: E731
        rss_ratio = peak(rss_large) / peak(rss_small)
        print(f"peak RSS (main + largest worker): {peak(rss_small):.0f} MiB at {args.n} files, {peak(rss_large):.0f} "
              f"MiB at {4 * args.n} -> ratio {rss_ratio:.3f}")  # fmt: skip
        summary = {
            "n": args.n, "workers": args.workers, "repeats": len(speedup), "face_crop": "auto",
            "workers_speedup": round(statistics.median(speedup), 3), **_bench.flat("workers_speedup", speedup),
            "images_per_s": round(statistics.median(rate), 1), **_bench.flat("images_per_s", rate, 1),
            "serial_images_per_s": round(statistics.median(args.n / t for t in times["workers_0"]), 1),
            "read_images_per_s": round(statistics.median(read_rate), 1),
            "read_workers_speedup": round(statistics.median(read_speedup), 3),
            "machine_two_proc_speedup": round(statistics.median(machine), 3),
            "face_items": last["workers_n"], "rss_ratio_4x": round(rss_ratio, 3),
            "peak_rss_mb_n": round(peak(rss_small), 1), "peak_rss_mb_4n": round(peak(rss_large), 1),
            "items_4n": rss_large["items"], **env,
        }  # fmt: skip
        if args.json:
            _bench.emit(summary)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
