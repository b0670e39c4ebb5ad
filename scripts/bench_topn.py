"""Benchmark: TopNDeconv.top_n against the Captum code a user would otherwise write.

Same process, same data, same model (the SynthFACS zoo ZeroBiasCNN, layer conv3,
the first ``--filters`` filters x N=``--n``, ``--images`` SynthFACS images at 96x96):

* baseline scan: ``LayerActivation(model, model.conv3)`` per batch, spatial max, top-N;
* baseline reconstruction: ``NeuronGuidedBackprop(model, model.conv3).attribute(x,
  neuron_selector=(c, h, w))`` once per (filter, image) pair of the baseline scan's top-N,
  scaled by the activation, timed on ``--pairs`` seeded random pairs (default 256;
  ``--full`` times every pair of all 256 filters). With the defaults (32 filters x N=8)
  that is every pair, so nothing is extrapolated; otherwise the per-pair time is scaled
  to all pairs and the output says so;
* ours: ``TopNDeconv(model, "conv3").top_n(...)`` end to end (one scan + batched
  reconstructions on each unit's cone), and its reconstruction alone
  (``from_scan`` on a finished scan: the same pairs as the baseline's);
* the scan's overhead over a bare ``torch.no_grad()`` forward up to conv3;
* with ``--peer crp``: zennit-crp's ``FeatureVisualization`` (``run`` over the same
  images with zennit's ``GuidedBackprop`` composite, then ``get_max_reference(...,
  mode="activation", rf=True)`` for the same filters and N), when ``zennit`` and
  ``zennit-crp`` are importable (they are not dependencies of captum-fau).

Every phase runs once untimed (warm-up), then all phases run in turn ``--repeats``
times (and until ``--budget-s`` seconds have passed), in reverse order every other
round; every ratio is printed as the median, min and max over rounds, each round's
baseline over the same round's ours. On a CPU with one torch thread the clock is the
process's CPU time (``--clock auto``): on a machine shared with other users the wall
clock also counts the time other processes hold the cores, which moves from one phase
to the next; the wall-clock ratios are in the JSON as well (``*_wall_median``). On a GPU
the clock is the wall clock, the GPU synchronised before each reading. Peak memory is
the largest increase of the process's resident memory over a phase (CUDA: max
allocated). ``--json`` prints one JSON line last.

The README's own-model case (``resnet18_layer3_*`` in the JSON): the command
``captum-fau analyze --model timm:resnet18 --checkpoint my_model.safetensors --layer layer3
--data folder:my_faces/ --au-csv openface_output.csv --out my-report/`` run as a subprocess on
``--readme-faces`` (60) SynthFACS faces written as PNGs with an OpenFace-style AU csv and a
random-weight timm resnet18 saved as safetensors (``scripts/readme_case.py``; nothing is
downloaded), ``--readme-repeats`` times from an empty ``--out``: wall seconds (and the
subprocess's CPU seconds, which a machine shared with other jobs does not inflate), the size of
``--out`` in MB and the subprocess's peak resident memory in MB (``ru_maxrss``), each as
median/min/max. ``--case conv3`` or ``--case resnet18_layer3`` runs one part only.

Usage::

    OMP_NUM_THREADS=1 python scripts/bench_topn.py --json   # defaults: 256 images, 32 filters x N=8, every pair timed
    python scripts/bench_topn.py --case resnet18_layer3 --readme-repeats 3 --json   # the README command alone
    python scripts/bench_topn.py --full --json              # all 2,560 pairs (slow on a CPU)
    python scripts/bench_topn.py --peer crp --json          # with zennit-crp on PYTHONPATH
    python scripts/bench_topn.py --device cuda --json
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument(
        "--clock",
        choices=("auto", "cpu", "wall"),
        default="auto",
        help="auto: CPU time on a CPU with one thread, else wall (default: auto)",
    )
    parser.add_argument(
        "--peer",
        choices=("crp",),
        action="append",
        default=[],
        help="also time a peer library: crp = zennit-crp's FeatureVisualization",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--case", choices=("all", "conv3", "resnet18_layer3"), default="all", help="which cases run (default: all)"
    )
    parser.add_argument("--readme-faces", type=int, default=60, help="faces of the README case (default: 60)")
    parser.add_argument(
        "--readme-repeats",
        type=int,
        default=1,
        help="runs of the README command, about 3 min each on 2 cores (default: 1)",
    )
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


def crp_peer(model: torch.nn.Module, images: torch.Tensor, filters: list[int], n: int, batch_size: int,
             device: torch.device) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """zennit-crp's top-N with receptive-field references as a phase, or ``(None, {"reason": ...})``.

    The phase runs ``FeatureVisualization.run`` over ``images`` (its scan: activation and
    relevance maxima per filter, written to a fresh folder) and ``get_max_reference`` for
    ``filters`` with ``mode="activation"``, ``r_range=(0, n)`` and ``rf=True`` (each
    reference's heatmap restricted to the most active unit), with zennit's
    ``GuidedBackprop`` composite; ``max_target="max"`` and ``abs_norm=False`` rank images
    by their strongest unit, as TopNDeconv does.
    """
    try:
        import crp
        import zennit
        from crp.attribution import CondAttribution
        from crp.concepts import ChannelConcept
        from crp.visualization import FeatureVisualization
        from zennit.composites import GuidedBackprop
    except Exception as err:  # noqa: BLE001 - any failure to import means: no peer
        return None, {"reason": f"zennit-crp is not importable ({type(err).__name__}: {err}); install it with "
                                "'pip install --no-deps zennit zennit-crp' into a scratch folder on PYTHONPATH"}  # fmt: skip
    import shutil
    import tempfile
    from importlib import metadata

    with torch.no_grad():
        targets = torch.cat([model(images[i : i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])
    dataset = [(images[i].detach(), int(targets[i])) for i in range(len(images))]
    info = {"name": "zennit-crp", "version": metadata.version("zennit-crp"), "zennit_version": metadata.version("zennit"),
            "what": "FeatureVisualization.run + get_max_reference(mode='activation', rf=True), GuidedBackprop composite"}  # fmt: skip
    del crp, zennit

    def phase() -> dict[int, Any]:
        folder = tempfile.mkdtemp(prefix="bench_crp_")
        try:
            fv = FeatureVisualization(CondAttribution(model, device=device), dataset, {"conv3": ChannelConcept()},
                                      max_target="max", abs_norm=False, path=folder, device=device)  # fmt: skip
            fv.run(GuidedBackprop(), 0, len(dataset), batch_size=batch_size)
            return fv.get_max_reference(filters, "conv3", mode="activation", r_range=(0, n), composite=GuidedBackprop(),
                                        rf=True, plot_fn=None, batch_size=n)  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return phase, info


def peer_agreement(refs: dict[int, Any], result: Any, filters: list[int]) -> float:
    """Largest |crp heatmap - ours| / max|crp heatmap| over the pairs, inside our box and outside it."""
    worst = 0.0
    for row, c in enumerate(filters):
        _, heatmaps = refs[c]
        for k in range(min(len(heatmaps), result.indices.shape[1])):
            ref = heatmaps[k].cpu().float()
            y0, x0, y1, x1 = result.boxes[row, k].tolist()
            ours = result.patches[row, k].sum(0)
            outside = ref.clone()
            outside[y0:y1, x0:x1] = 0
            scale = float(ref.abs().max()) or 1.0
            worst = max(
                worst, float((ref[y0:y1, x0:x1] - ours).abs().max()) / scale, float(outside.abs().max()) / scale
            )
    return worst


def build_phases(args: argparse.Namespace, model: torch.nn.Module, images: torch.Tensor, filters: list[int],
                 device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """The timed phases (see the module docstring) and what checking them needs."""
    from captum.attr import LayerActivation, NeuronGuidedBackprop

    from captum_fau.attr import TopNDeconv
    from captum_fau.stats.scan import scan

    width: list[int] = []
    pairs_total = len(filters) * args.n

    def bare() -> None:
        with torch.no_grad():
            for start in range(0, len(images), args.batch_size):
                x = images[start : start + args.batch_size]
                model.conv3(model.pool2(model.relu2(model.conv2(model.pool1(model.relu1(model.conv1(x)))))))

    def ours_scan() -> Any:
        return scan(model, "conv3", images, top_n=args.n, keep_inputs=True, batch_size=args.batch_size,
                    progress=False)  # fmt: skip

    topn = TopNDeconv(model, "conv3", rule="guided")
    finished_scan = ours_scan()

    def ours() -> Any:
        return topn.top_n(images, n=args.n, filters=filters, batch_size=args.batch_size, progress=False)

    def ours_recon() -> Any:
        return topn.from_scan(finished_scan, filters=filters, progress=False)

    def captum_scan() -> tuple[torch.Tensor, torch.Tensor]:
        la = LayerActivation(model, model.conv3)
        maxima, where = [], []
        for start in range(0, len(images), args.batch_size):
            act = la.attribute(images[start : start + args.batch_size])
            width[:] = [act.shape[-1]]
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
            h, w = divmod(int(cap_where[c, k]), width[0])
            attr = ngb.attribute(images[i : i + 1], neuron_selector=(c, h, w))
            refs.append(attr[0] * reference.values[row, k].to(attr.device))
        return refs

    # the two sides of every ratio run next to each other (the order is reversed every other round)
    phases = {"bare": bare, "scan": ours_scan, "recon": ours_recon, "captum_loop": captum_loop,
              "captum_scan": captum_scan, "ours": ours}  # fmt: skip
    extra: dict[str, Any] = {"pairs": pairs, "cap_idx": cap_idx, "peer": None}
    if "crp" in args.peer:
        phase, info = crp_peer(model, images, filters, args.n, args.batch_size, device)
        extra["peer"] = info
        if phase is not None:
            phases["peer_crp"] = phase
    return phases, extra


def readme_case(args: argparse.Namespace) -> dict[str, Any]:
    """The README's own-model command on a random-weight resnet18 (layer3) and faces in a folder, as a subprocess."""
    import os
    import resource
    import shutil
    import subprocess
    import tempfile

    from readme_case import write_readme_case

    root = Path(tempfile.mkdtemp(prefix="captum-fau-readme-"))
    try:
        case = write_readme_case(root, args.readme_faces, seed=args.seed)
        out = root / "my-report"
        command = [sys.executable, "-m", "captum_fau.cli", "analyze", "--model", "timm:resnet18", "--checkpoint",
                   str(case["checkpoint"]), "--layer", "layer3", "--data", f"folder:{case['faces']}", "--au-csv",
                   str(case["au_csv"]), "--out", str(out), "--no-cache", "-q"]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                           os.environ.get("PYTHONPATH", "")])}  # fmt: skip
        seconds, cpu, sizes, peaks = [], [], [], []
        for _ in range(max(1, args.readme_repeats)):
            shutil.rmtree(out, ignore_errors=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
            seconds.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if done.returncode:
                raise RuntimeError(f"the README command failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            sizes.append(sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20)
            peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)  # the largest child so far
        status = json.loads((out / "results.json").read_text()).get("topn", {})
        print(f"README case (timm resnet18 layer3, {args.readme_faces} faces, {len(seconds)} run(s)): "
              f"{statistics.median(seconds):.1f} s wall, {statistics.median(cpu):.1f} s CPU, --out {statistics.median(sizes):.1f} MB, peak RSS "
              f"{max(peaks):.0f} MB; {len(status.get('reconstructed_filters', []))} filters reconstructed, "
              f"{len(status.get('pending_filters', []))} pending")  # fmt: skip
        return {
            "resnet18_layer3_seconds": round(statistics.median(seconds), 1),
            "resnet18_layer3_out_mb": round(statistics.median(sizes), 1),
            "resnet18_layer3_peak_mb": round(max(peaks), 0),
            **_bench.flat("resnet18_layer3_seconds", seconds, 1), "resnet18_layer3_runs": len(seconds),
            **_bench.flat("resnet18_layer3_cpu_seconds", cpu, 1),
            "resnet18_layer3_faces": args.readme_faces,
            "resnet18_layer3_reconstructed": len(status.get("reconstructed_filters", [])),
            "resnet18_layer3_pending": len(status.get("pending_filters", [])),
        }  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    warnings.filterwarnings("ignore", module="captum")
    readme = readme_case(args) if args.case in ("all", "resnet18_layer3") else {}
    if args.case == "resnet18_layer3":
        if args.json:
            _bench.emit({**readme, **_bench.environment(torch.device("cpu"))})
        return

    from captum_fau._utils.device import resolve_device
    from captum_fau.data.synthfacs import load_synthfacs

    device = resolve_device(args.device)
    clock = _bench.pick_clock(args.clock, device)
    images = load_synthfacs(args.images, seed=args.seed).tensors().to(device)
    model, model_name = load_model(args.seed)
    model = model.to(device)
    filters = list(range(args.filters))
    pairs_total = len(filters) * args.n
    env = _bench.environment(device)
    print(f"model: {model_name}; data: SynthFACS ({args.images} images); conv3, {len(filters)} filters x "
          f"N={args.n} = {pairs_total} pairs\nmachine: {_bench.describe(env)}; clock: {clock}")  # fmt: skip
    phases, extra = build_phases(args, model, images, filters, device)
    pairs = extra["pairs"]
    print(f"warm-up, then >= {args.repeats} rounds of {', '.join(phases)} ...", flush=True)
    started = time.perf_counter()
    wall: dict[str, list[float]] = {}
    times, last = _bench.repeat(phases, repeats=args.repeats, budget_s=args.budget_s, device=device, clock=clock,
                                also_wall=wall)  # fmt: skip
    elapsed = time.perf_counter() - started
    result = last["ours"]
    assert torch.equal(extra["cap_idx"][filters].cpu(), result.indices.cpu()), (
        "top-N indices differ from LayerActivation's"
    )
    assert torch.equal(last["recon"].patches, result.patches), "from_scan and top_n reconstruct differently"
    max_rel = relative_error(last["captum_loop"], pairs, result)
    ratios = {key: compute_ratios(t, pairs_total / len(pairs)) for key, t in (("", times), ("_wall", wall))}
    mem = measure_memory(phases["ours"], lambda: (phases["captum_scan"](), phases["captum_loop"]()), device)
    peer = extra["peer"]
    if peer is not None and "peer_crp" in times:
        peer.update(crp_summary(times, wall, last["peer_crp"], result, filters))
    elif peer is not None:
        print(f"peer zennit-crp: not run: {peer['reason']}")
    report(args, times, ratios, pairs, pairs_total, clock, max_rel, mem, elapsed, peer)
    if args.json:
        _bench.emit({
            "repeats": len(times["ours"]), "clock": clock,
            "images": args.images, "filters": len(filters), "n": args.n, "pairs_total": pairs_total,
            "captum_pairs_timed": len(pairs), "captum_extrapolated": len(pairs) < pairs_total,
            "recon_speedup_median": round(statistics.median(ratios[""]["recon"]), 2),
            **_bench.flat("recon_speedup", ratios[""]["recon"], 2),
            **_bench.flat("end_to_end_speedup", ratios[""]["end_to_end"], 2),
            **_bench.flat("scan_overhead", ratios[""]["overhead"], 3),
            "scan_overhead": round(statistics.median(ratios[""]["overhead"]), 3),
            **{f"{name}_wall_median": round(statistics.median(v), 3) for name, v in
               (("recon_speedup", ratios["_wall"]["recon"]), ("end_to_end_speedup", ratios["_wall"]["end_to_end"]),
                ("scan_overhead", ratios["_wall"]["overhead"]))},
            "ours_ms_per_pair_median": round(statistics.median(1e3 * t / pairs_total for t in times["recon"]), 3),
            "captum_ms_per_pair_median": round(statistics.median(1e3 * t / len(pairs) for t in times["captum_loop"]), 3),
            "max_rel_err": max_rel,
            "peer": peer if peer is None or "speedup_median" in peer else None,
            **({"peer_reason": "not asked for (--peer crp)"} if peer is None else
               {"peer_reason": peer["reason"]} if "reason" in peer else {}),
            **mem,
            **readme,
            **env,
        })  # fmt: skip


def compute_ratios(times: dict[str, list[float]], scale: float) -> dict[str, list[float]]:
    """Per-round ratios: reconstruction (Captum's loop, scaled to all pairs, over ``from_scan``),
    end to end (Captum's scan + loop over ``top_n``), and the scan over the bare forward."""
    captum_recon = [t * scale for t in times["captum_loop"]]
    return {
        "recon": _bench.ratios(captum_recon, times["recon"]),
        "end_to_end": _bench.ratios([a + b for a, b in zip(times["captum_scan"], captum_recon)], times["ours"]),
        "overhead": _bench.ratios(times["scan"], times["bare"]),
    }


def crp_summary(times: dict[str, list[float]], wall: dict[str, list[float]], refs: dict[int, Any], result: Any,
                filters: list[int]) -> dict[str, Any]:  # fmt: skip
    """The peer's seconds, its per-round ratio to ``top_n`` and how far its heatmaps are from ours."""
    speedup = _bench.ratios(times["peer_crp"], times["ours"])
    summary = {
        **_bench.flat("seconds", times["peer_crp"], 3),
        "speedup_median": round(statistics.median(speedup), 2),
        **_bench.flat("speedup", speedup, 2),
        "speedup_wall_median": round(statistics.median(_bench.ratios(wall["peer_crp"], wall["ours"])), 2),
    }
    try:
        summary["max_rel_diff_to_ours"] = peer_agreement(refs, result, filters)
    except Exception as err:  # noqa: BLE001 - the comparison is informative only
        summary["max_rel_diff_to_ours"] = None
        summary["comparison_error"] = f"{type(err).__name__}: {err}"
    return summary


def report(args: argparse.Namespace, times: dict[str, list[float]], ratios: dict[str, dict[str, list[float]]],
           pairs: list, pairs_total: int, clock: str, max_rel: float, mem: dict[str, Any], elapsed: float,
           peer: dict[str, Any] | None) -> None:  # fmt: skip
    """The human-readable lines."""
    unit = " s" if clock == "wall" else " s CPU"
    extrapolated = len(pairs) < pairs_total
    print(_bench.line("bare forward to conv3", times["bare"], unit))
    print(_bench.line("ours: scan", times["scan"], unit))
    print(_bench.line("  scan overhead over the bare forward", ratios[""]["overhead"], "x", digits=3))
    print(_bench.line("ours: top_n end to end", times["ours"], unit))
    print(_bench.line(f"  reconstruction per pair ({pairs_total} pairs)", [t / pairs_total for t in times["recon"]],
                      " ms", scale=1e3))  # fmt: skip
    print(_bench.line("captum: LayerActivation scan", times["captum_scan"], unit))
    print(_bench.line(f"captum: NeuronGuidedBackprop per pair ({len(pairs)} pairs timed"
                      + (f", scaled to {pairs_total})" if extrapolated else ", every pair)"),
                      [t / len(pairs) for t in times["captum_loop"]], " ms", scale=1e3))  # fmt: skip
    print(_bench.line("reconstruction speedup", ratios[""]["recon"], "x", digits=1))
    print(_bench.line("end-to-end speedup", ratios[""]["end_to_end"], "x", digits=1))
    if clock != "wall":
        print(f"  (wall clock: reconstruction {statistics.median(ratios['_wall']['recon']):.1f}x, end to end "
              f"{statistics.median(ratios['_wall']['end_to_end']):.1f}x, scan overhead "
              f"{statistics.median(ratios['_wall']['overhead']):.3f}x)")  # fmt: skip
    if peer is not None and "speedup_median" in peer:
        print(_bench.line(f"zennit-crp {peer['version']}: FeatureVisualization top-{args.n} with rf references",
                          times["peer_crp"], unit))  # fmt: skip
        diff = peer.get("max_rel_diff_to_ours")
        print(f"  top_n speedup over zennit-crp: median {peer['speedup_median']:.1f}x (min {peer['speedup_min']:.1f}, "
              f"max {peer['speedup_max']:.1f}); its heatmaps vs ours: max rel. diff "
              + (f"{diff:.2e}" if diff is not None else "not compared"))  # fmt: skip
    print(f"max relative error vs Captum {max_rel:.2e} over {len(pairs)} pairs; top-N indices identical; "
          f"peak memory ours +{mem['ours_peak_mb']:.0f} MiB, captum +{mem['captum_peak_mb']:.0f} MiB; "
          f"{len(times['ours'])} rounds in {elapsed:.0f} s")  # fmt: skip


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
