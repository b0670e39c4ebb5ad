"""Benchmark: TopNDeconv.top_n against the Captum code a user would otherwise write.

Same process, same data, same model (the SynthFACS zoo ZeroBiasCNN, layer conv3,
the first ``--filters`` filters x N=``--n``, ``--images`` SynthFACS images at 96x96):

* baseline scan: ``LayerActivation(model, model.conv3)`` per batch, spatial max, top-N;
* baseline reconstruction: ``NeuronGuidedBackprop(model, model.conv3).attribute(x,
  neuron_selector=(c, h, w))`` once per (filter, image) pair, scaled by the activation,
  timed on ``--pairs`` seeded random pairs (default 256; ``--full`` times every pair of
  all 256 filters). With the defaults (32 filters x N=8) that is every pair, so nothing
  is extrapolated; otherwise the per-pair time is scaled to all pairs and the output says so;
* ours: ``TopNDeconv(model, "conv3").top_n(...)`` (one scan + batched crop reconstructions);
* the scan's overhead over a bare ``torch.no_grad()`` forward up to conv3.

Every phase runs once untimed (warm-up), then all phases run in turn ``--repeats``
times (and until ``--budget-s`` seconds have passed); every ratio is printed as the
median, min and max over rounds, each round's baseline over the same round's ours.
Peak memory is the largest increase of the process's resident memory over a phase
(CUDA: max allocated). ``--json`` prints one JSON line last.

Usage::

    python scripts/bench_topn.py --json                 # defaults: 256 images, 32 filters x N=8, every pair timed
    python scripts/bench_topn.py --full --json          # all 2,560 pairs (slow on a CPU)
    python scripts/bench_topn.py --device cuda --json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench  # noqa: E402


def load_model(seed: int) -> tuple[torch.nn.Module, str]:
    from captum_fau import ZeroBiasCNN

    try:
        from captum_fau import zoo

        return zoo.load("zerobias-synthfacs-8class").eval(), "zoo:zerobias-synthfacs-8class"
    except Exception:
        torch.manual_seed(seed)
        return ZeroBiasCNN().eval(), f"ZeroBiasCNN (random init, seed {seed})"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256, help="SynthFACS images scanned (default: 256)")
    parser.add_argument("--n", type=int, default=8, help="top images per filter (default: 8)")
    parser.add_argument("--filters", type=int, default=32, help="first K filters of conv3 (default: 32)")
    parser.add_argument("--pairs", type=int, default=256, help="Captum loop pairs timed (default: 256)")
    parser.add_argument("--full", action="store_true", help="all 256 filters, N=10, and every pair timed")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds at least (default: 5)")
    parser.add_argument("--budget-s", type=float, default=0.0, help="keep repeating until this many seconds")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default: cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.full:
        args.filters, args.n, args.pairs = 256, 10, 256 * 10
    if args.repeats < 1 or args.pairs < 1 or args.filters < 1:
        parser.error("--repeats, --pairs and --filters must be positive")
    return args


def relative_error(refs: list[torch.Tensor], pairs: list[tuple[int, int]], result: Any) -> float:
    """Largest |ours - Captum| / max|Captum| over the timed pairs (inside the box and outside it)."""
    worst = 0.0
    for ref, (row, k) in zip(refs, pairs):
        y0, x0, y1, x1 = result.boxes[row, k].tolist()
        ref = ref.cpu()
        inside = ref[:, y0:y1, x0:x1]
        outside = ref.clone()
        outside[:, y0:y1, x0:x1] = 0
        scale = float(ref.abs().max()) or 1.0
        err = max(float((inside - result.patches[row, k].cpu()).abs().max()), float(outside.abs().max())) / scale
        worst = max(worst, err)
    return worst


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    warnings.filterwarnings("ignore", module="captum")
    from captum.attr import LayerActivation, NeuronGuidedBackprop

    from captum_fau._utils.device import resolve_device
    from captum_fau.attr import TopNDeconv
    from captum_fau.data.synthfacs import load_synthfacs
    from captum_fau.stats.scan import scan

    device = resolve_device(args.device)
    images = load_synthfacs(args.images, seed=args.seed).tensors().to(device)
    model, model_name = load_model(args.seed)
    model = model.to(device)
    filters = list(range(args.filters))
    pairs_total = len(filters) * args.n
    env = _bench.environment(device)
    print(f"model: {model_name}; data: SynthFACS ({args.images} images); conv3, {len(filters)} filters x "
          f"N={args.n} = {pairs_total} pairs\nmachine: {_bench.describe(env)}")  # fmt: skip

    width = None

    def bare() -> None:
        with torch.no_grad():
            for start in range(0, len(images), args.batch_size):
                x = images[start : start + args.batch_size]
                model.conv3(model.pool2(model.relu2(model.conv2(model.pool1(model.relu1(model.conv1(x)))))))

    def ours_scan() -> Any:
        return scan(model, "conv3", images, top_n=args.n, keep_inputs=True, batch_size=args.batch_size,
                    progress=False)  # fmt: skip

    topn = TopNDeconv(model, "conv3", rule="guided")

    def ours() -> Any:
        return topn.top_n(images, n=args.n, filters=filters, batch_size=args.batch_size, progress=False)

    def captum_scan() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal width
        la = LayerActivation(model, model.conv3)
        maxima, where = [], []
        for start in range(0, len(images), args.batch_size):
            act = la.attribute(images[start : start + args.batch_size])
            width = act.shape[-1]
            values, idx = act.flatten(2).max(2)
            maxima.append(values)
            where.append(idx)
        top = torch.cat(maxima).topk(args.n, dim=0)
        return top.indices.T, torch.cat(where).gather(0, top.indices).T

    # the pairs the Captum loop reconstructs (all of them when they fit in --pairs)
    gen = torch.Generator().manual_seed(args.seed)
    chosen = torch.randperm(pairs_total, generator=gen)[: min(args.pairs, pairs_total)].tolist()
    pairs = [divmod(p, args.n) for p in chosen]
    reference = ours()  # activation values scale the Captum maps, as TopNDeconv's do
    cap_idx, cap_where = captum_scan()
    ngb = NeuronGuidedBackprop(model, model.conv3)

    def captum_loop() -> list[torch.Tensor]:
        refs = []
        for row, k in pairs:
            c = filters[row]
            i = int(cap_idx[c, k])
            h, w = divmod(int(cap_where[c, k]), width)
            attr = ngb.attribute(images[i : i + 1], neuron_selector=(c, h, w))
            refs.append(attr[0] * reference.values[row, k])
        return refs

    phases = {"bare": bare, "scan": ours_scan, "ours": ours, "captum_scan": captum_scan, "captum_loop": captum_loop}
    print(f"warm-up, then >= {args.repeats} rounds of {', '.join(phases)} ...", flush=True)
    started = time.perf_counter()
    ours_recon: list[float] = []
    ours_inner = phases["ours"]

    def ours_recorded() -> Any:
        result = ours_inner()
        ours_recon.append(result.meta["timings"]["reconstruct_s"])
        return result

    phases["ours"] = ours_recorded
    times, last = _bench.repeat(phases, repeats=args.repeats, budget_s=args.budget_s, device=device)
    ours_recon = ours_recon[-len(times["ours"]) :]  # drop the warm-up call
    wall = time.perf_counter() - started
    result = last["ours"]
    scale = pairs_total / len(pairs)
    captum_recon = [t * scale for t in times["captum_loop"]]
    recon = _bench.ratios(captum_recon, ours_recon)
    end_to_end = _bench.ratios([a + b for a, b in zip(times["captum_scan"], captum_recon)], times["ours"])
    overhead = _bench.ratios(times["scan"], times["bare"])

    assert torch.equal(cap_idx[filters].cpu(), result.indices.cpu()), "top-N indices differ from LayerActivation's"
    max_rel = relative_error(last["captum_loop"], pairs, result)
    mem = measure_memory(ours, lambda: (captum_scan(), captum_loop()), device)

    extrapolated = len(pairs) < pairs_total
    per_pair_ms = [1e3 * t / len(pairs) for t in times["captum_loop"]]
    ours_ms = [1e3 * t / pairs_total for t in ours_recon]
    print(_bench.line("bare forward to conv3", times["bare"], " s"))
    print(_bench.line("ours: scan", times["scan"], " s"))
    print(_bench.line("  scan overhead over the bare forward", overhead, "x", digits=3))
    print(_bench.line("ours: top_n end to end", times["ours"], " s"))
    print(_bench.line(f"  reconstruction per pair ({pairs_total} pairs)", ours_ms, " ms"))
    print(_bench.line("captum: LayerActivation scan", times["captum_scan"], " s"))
    print(_bench.line(f"captum: NeuronGuidedBackprop per pair ({len(pairs)} pairs timed"
                      + (f", scaled to {pairs_total})" if extrapolated else ", every pair)"), per_pair_ms, " ms"))
    print(_bench.line("reconstruction speedup", recon, "x", digits=1))
    print(_bench.line("end-to-end speedup", end_to_end, "x", digits=1))
    print(f"max relative error vs Captum {max_rel:.2e} over {len(pairs)} pairs; top-N indices identical; "
          f"peak memory ours +{mem['ours_peak_mb']:.0f} MiB, captum +{mem['captum_peak_mb']:.0f} MiB; "
          f"{len(times['ours'])} rounds in {wall:.0f} s")  # fmt: skip
    if args.json:
        _bench.emit({
            "repeats": len(times["ours"]),
            "images": args.images, "filters": len(filters), "n": args.n, "pairs_total": pairs_total,
            "captum_pairs_timed": len(pairs), "captum_extrapolated": extrapolated,
            "recon_speedup_median": round(statistics.median(recon), 2),
            **_bench.flat("recon_speedup", recon, 2),
            **_bench.flat("end_to_end_speedup", end_to_end, 2),
            **_bench.flat("scan_overhead", overhead, 3),
            "scan_overhead": round(statistics.median(overhead), 3),
            "ours_ms_per_pair_median": round(statistics.median(ours_ms), 3),
            "captum_ms_per_pair_median": round(statistics.median(per_pair_ms), 3),
            "max_rel_err": max_rel,
            **mem,
            **env,
        })  # fmt: skip


def measure_memory(ours: Any, captum: Any, device: torch.device) -> dict[str, Any]:
    """Peak memory of one untimed run of each side (RSS increase on a CPU, max allocated on CUDA)."""
    if device.type == "cuda":
        return {"ours_peak_mb": round(_bench.cuda_peak_mb(ours, device), 1),
                "captum_peak_mb": round(_bench.cuda_peak_mb(captum, device), 1), "peak_memory_kind": "cuda_max_allocated"}  # fmt: skip
    with _bench.PeakRSS() as ours_mem:
        ours()
    with _bench.PeakRSS() as captum_mem:
        captum()
    return {"ours_peak_mb": round(ours_mem.peak_mb, 1), "captum_peak_mb": round(captum_mem.peak_mb, 1),
            "peak_memory_kind": "rss_increase", "process_max_rss_mb": round(_bench.max_rss_mb(), 1)}  # fmt: skip


if __name__ == "__main__":
    main()
