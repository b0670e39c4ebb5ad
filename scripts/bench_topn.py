"""Benchmark: TopNDeconv.top_n against the Captum code a user would otherwise write.

Same process, same data, same model (ZeroBiasCNN, layer conv3, 256 filters x N=10,
1,308 SynthFACS images at 96x96 by default):

* baseline scan: ``LayerActivation(model, model.conv3)`` per batch, spatial max, top-N;
* baseline reconstruction: ``NeuronGuidedBackprop(model, model.conv3).attribute(x,
  neuron_selector=(c, h, w))`` once per (filter, image) pair, scaled by the activation.
  That loop is slow on a CPU, so it runs on a seeded random subset of ``--pairs`` pairs
  and its time is extrapolated per pair to all pairs (the output says so);
* ours: ``TopNDeconv(model, "conv3").top_n(...)`` (one scan + batched crop reconstructions);
* the scan's overhead over a bare ``torch.no_grad()`` forward up to conv3.

Peak memory is the largest increase of the process's resident memory over the phase
(sampled every 5 ms). ``--json`` prints one JSON line last.

Usage::

    python scripts/bench_topn.py            # full size
    python scripts/bench_topn.py --images 200 --pairs 16 --json   # quick
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import warnings
from typing import Any, Callable

import torch


class PeakRSS:
    """Largest resident-set increase (MB) while the block runs."""

    def __init__(self) -> None:
        self.peak_mb = 0.0

    @staticmethod
    def _rss_mb() -> float:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self) -> "PeakRSS":
        self._start = self._rss_mb()
        self._stop = threading.Event()
        self._peak = self._start

        def sample() -> None:
            while not self._stop.is_set():
                self._peak = max(self._peak, self._rss_mb())
                time.sleep(0.005)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss_mb())
        self.peak_mb = self._peak - self._start


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def load_model(seed: int) -> tuple[torch.nn.Module, str]:
    from captum_fau import ZeroBiasCNN

    try:
        from captum_fau import zoo

        return zoo.load("zerobias-synthfacs-8class").eval(), "zoo:zerobias-synthfacs-8class"
    except Exception:
        torch.manual_seed(seed)
        return ZeroBiasCNN().eval(), f"ZeroBiasCNN (random init, seed {seed})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1308)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--filters", type=int, default=256, help="first K filters of conv3 (default: all 256)")
    parser.add_argument("--pairs", type=int, default=48, help="Captum loop subset size (extrapolated per pair)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    warnings.filterwarnings("ignore", module="captum")

    from captum.attr import LayerActivation, NeuronGuidedBackprop

    from captum_fau.attr import TopNDeconv
    from captum_fau.stats.scan import scan

    try:
        from captum_fau.data.synthfacs import load_synthfacs

        images = load_synthfacs(args.images, seed=args.seed).tensors()
        source = f"SynthFACS ({args.images} images)"
    except ImportError:
        images = torch.randn(args.images, 1, 96, 96)
        source = f"random images ({args.images}; SynthFACS missing)"
    model, model_name = load_model(args.seed)
    filters = list(range(args.filters))
    print(f"model: {model_name}; data: {source}; conv3, {len(filters)} filters x N={args.n}; "
          f"threads={torch.get_num_threads()}")

    # 1. bare forward up to conv3 vs our scan
    def bare() -> None:
        with torch.no_grad():
            for start in range(0, len(images), args.batch_size):
                x = images[start : start + args.batch_size]
                model.conv3(model.pool2(model.relu2(model.conv2(model.pool1(model.relu1(model.conv1(x)))))))

    _, t_bare = timed(bare)
    _, t_scan = timed(lambda: scan(model, "conv3", images, top_n=args.n, keep_inputs=True,
                                   batch_size=args.batch_size, progress=False))
    print(f"scan: {t_scan:.2f}s vs bare forward to conv3 {t_bare:.2f}s -> overhead x{t_scan / t_bare:.3f}")

    # 2. ours, end to end
    topn = TopNDeconv(model, "conv3", rule="guided")
    with PeakRSS() as ours_mem:
        result, t_ours = timed(lambda: topn.top_n(images, n=args.n, filters=filters, batch_size=args.batch_size,
                                                  progress=False))
    t_ours_recon = result.meta["timings"]["reconstruct_s"]  # measured inside top_n (receptive fields included)
    pairs_total = len(filters) * args.n
    print(f"ours: top_n {t_ours:.2f}s (scan {result.meta['timings']['scan_s']:.2f}s, reconstruction {t_ours_recon:.2f}s for {pairs_total} pairs, "
          f"{t_ours_recon / pairs_total * 1e3:.2f} ms/pair), peak +{ours_mem.peak_mb:.0f} MB")

    # 3. baseline: LayerActivation scan + per-pair Captum loop on a subset
    def captum_scan() -> tuple[torch.Tensor, torch.Tensor]:
        la = LayerActivation(model, model.conv3)
        maxima, where = [], []
        for start in range(0, len(images), args.batch_size):
            act = la.attribute(images[start : start + args.batch_size])
            values, idx = act.flatten(2).max(2)
            maxima.append(values)
            where.append(idx)
        maxima_all = torch.cat(maxima)
        top = maxima_all.topk(args.n, dim=0)
        return top.indices.T, torch.cat(where).gather(0, top.indices).T

    with PeakRSS() as captum_mem:
        (cap_idx, cap_where), t_la = timed(captum_scan)
        ngb = NeuronGuidedBackprop(model, model.conv3)
        gen = torch.Generator().manual_seed(args.seed)
        subset = torch.randperm(pairs_total, generator=gen)[: args.pairs]
        refs = []
        start = time.perf_counter()
        for pair in subset.tolist():
            row, k = divmod(pair, args.n)
            c = filters[row]
            i = int(cap_idx[c, k])
            h, w = divmod(int(cap_where[c, k]), 24)
            attr = ngb.attribute(images[i : i + 1], neuron_selector=(c, h, w))
            refs.append(attr[0] * result.values[row, k])
        t_loop_subset = time.perf_counter() - start
    per_pair = t_loop_subset / len(subset)
    t_captum_recon = per_pair * pairs_total
    print(f"captum: LayerActivation scan {t_la:.2f}s; NeuronGuidedBackprop loop {per_pair * 1e3:.1f} ms/pair "
          f"measured on {len(subset)} random pairs (seed {args.seed}), extrapolated to {pairs_total} pairs: "
          f"{t_captum_recon:.1f}s; peak +{captum_mem.peak_mb:.0f} MB")

    # 4. agreement
    assert torch.equal(cap_idx[filters], result.indices), "top-N indices differ from the LayerActivation reference"
    max_rel = 0.0
    for ref, pair in zip(refs, subset.tolist()):
        row, k = divmod(pair, args.n)
        y0, x0, y1, x1 = result.boxes[row, k].tolist()
        inside = ref[:, y0:y1, x0:x1]
        outside = ref.clone()
        outside[:, y0:y1, x0:x1] = 0
        scale = float(ref.abs().max()) or 1.0
        err = max(float((inside - result.patches[row, k]).abs().max()), float(outside.abs().max())) / scale
        max_rel = max(max_rel, err)
    recon_speedup = t_captum_recon / t_ours_recon
    end_to_end = (t_la + t_captum_recon) / t_ours
    print(f"reconstruction speedup x{recon_speedup:.1f}; end-to-end speedup x{end_to_end:.1f}; "
          f"max relative error vs Captum {max_rel:.2e}; top-N indices identical")
    if args.json:
        print(json.dumps({
            "recon_speedup": round(recon_speedup, 2),
            "end_to_end_speedup": round(end_to_end, 2),
            "max_rel_err": max_rel,
            "peak_mb": round(ours_mem.peak_mb, 1),
            "captum_peak_mb": round(captum_mem.peak_mb, 1),
            "scan_overhead": round(t_scan / t_bare, 3),
            "captum_pairs_timed": len(subset),
        }))


if __name__ == "__main__":
    main()
