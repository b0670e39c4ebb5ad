"""FAU-KL benchmark: speed against a per-pair loop, calibration and power with planted truth,
a probe model with known AU channels, and agreement with TopNDeconv on a trained model.

Usage::

    python scripts/bench_faukl.py            # human-readable report
    python scripts/bench_faukl.py --json     # ... and one JSON line last

Sections:

1. Speed: :func:`fau_kl_statistics` with 1,000 permutations on 256 filters x 20 AUs x 1,308
   images, against the loop a user would write (per pair and permutation: ``np.histogram`` of
   both groups + ``scipy.stats.entropy``). The loop is timed on a subset of pairs and
   permutations and extrapolated linearly (it is linear in both).
2. Calibration and power at CK+ size: 327 sequences of 4 frames, the first neutral (no AUs), the
   other three sharing the sequence's AUs, drawn independently with CK+-like frequencies.
   Activations = sequence effect + frame noise (unit variance), plus d = 0.8 on frames with the
   AU for 10% of (filter, AU) pairs. Group-level permutations, test statistic = two-sided AUROC.
3. Probe model: channel k's map is the squared change AU k's own drawing makes to the image
   (image minus the same face re-rendered without AU k), so it responds inside AU k's region to
   AU k only, also where AU regions overlap.
4. Trained model: the SynthFACS zoo model at conv3 on independent-mode SynthFACS; for filters with
   a significant association, its top AU against the AU whose ground-truth region holds most of the
   TopNDeconv reconstruction energy of its top images.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from typing import Any

import numpy as np
import torch
from scipy.stats import entropy
from torch import nn

from captum_fau.concept.statistics import fau_kl_statistics, histogram_edges, permutation_sources

#: CK+ sequence counts per AU (of 593 sequences), for realistic frequencies.
CKPLUS_AU_COUNTS = {
    "AU1": 177, "AU2": 117, "AU4": 194, "AU5": 102, "AU6": 123, "AU7": 121, "AU9": 75, "AU10": 21,
    "AU11": 34, "AU12": 131, "AU14": 37, "AU15": 94, "AU16": 24, "AU17": 202, "AU20": 79, "AU23": 60,
    "AU24": 58, "AU25": 324, "AU26": 50, "AU27": 81,
}  # fmt: skip


def ckplus_like(seed: int, n_sequences: int = 327, frames: int = 4, n_filters: int = 256, d: float = 0.8,
                planted_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """Fabricated CK+-sized activations and AU labels with planted (filter, AU) dependencies."""
    rng = np.random.default_rng(seed)
    freqs = np.array(list(CKPLUS_AU_COUNTS.values())) / 593.0
    seq_aus = rng.random((n_sequences, len(freqs))) < freqs
    presence = np.repeat(seq_aus, frames, axis=0)
    presence[::frames] = False  # the neutral first frame
    groups = np.repeat(np.arange(n_sequences), frames)
    n = len(groups)
    acts = np.sqrt(0.5) * rng.normal(size=(n_sequences, n_filters))[groups] + np.sqrt(0.5) * rng.normal(size=(n, n_filters))
    planted = np.zeros((n_filters, len(freqs)), bool)
    planted.ravel()[rng.choice(planted.size, int(round(planted_fraction * planted.size)), replace=False)] = True
    acts = acts + d * (presence.astype(float) @ planted.T.astype(float))
    return {"acts": acts.astype(np.float32), "presence": presence, "groups": groups, "planted": planted}


def loop_statistics(acts: np.ndarray, presence: np.ndarray, sources: np.ndarray, bins: int, smoothing: float,
                    pairs: list[tuple[int, int]]) -> np.ndarray:
    """The straightforward loop: for each pair and permutation, two histograms and scipy's KL."""
    edges = histogram_edges(acts, bins)
    out = np.zeros(len(pairs))
    for i, (c, j) in enumerate(pairs):
        def kl(labels: np.ndarray) -> float:
            hq, _ = np.histogram(acts[labels, c], bins=edges[c])
            hr, _ = np.histogram(acts[~labels, c], bins=edges[c])
            return float(entropy(hq + smoothing, hr + smoothing))
        observed = kl(presence[:, j])
        null = [kl(presence[src, j]) for src in sources]
        out[i] = (1 + sum(v >= observed for v in null)) / (1 + len(null))
    return out


def bench_speed(report: dict[str, Any]) -> None:
    data = ckplus_like(0)
    acts, presence, groups = data["acts"], data["presence"], data["groups"]
    tracemalloc.start()
    t0 = time.perf_counter()
    fau_kl_statistics(acts, presence, groups=groups, n_permutations=1000, n_bootstrap=0)
    ours = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    sources = permutation_sources(groups, len(acts), 50, seed=0)
    pairs = [(c, j) for c in range(4) for j in range(4)]
    t0 = time.perf_counter()
    loop_statistics(acts, presence, sources, 10, 0.5, pairs)
    per_unit = (time.perf_counter() - t0) / (len(pairs) * 51)
    loop_full = per_unit * acts.shape[1] * presence.shape[1] * 1001
    report.update(
        stats_seconds=ours, loop_seconds_extrapolated=loop_full, speedup_vs_loop=loop_full / ours,
        stats_peak_mb=peak,
    )
    print(f"[speed] 1000 perms x 256 filters x 20 AUs x {len(acts)} images: {ours:.2f} s "
          f"(peak {peak:.0f} MB); loop (16 pairs x 50 perms, extrapolated): {loop_full:.0f} s; "
          f"speedup {loop_full / ours:.0f}x")


def bench_calibration(report: dict[str, Any], seeds: range) -> None:
    null_p05, null_p05_kl = [], []
    for seed in seeds:
        data = ckplus_like(100 + seed, d=0.0)
        st = fau_kl_statistics(data["acts"], data["presence"], groups=data["groups"], n_permutations=1000,
                               n_bootstrap=0, seed=seed)
        null_p05.append(float((st.p[st.testable] < 0.05).mean()))
        null_p05_kl.append(float((st.p_kl[st.testable] < 0.05).mean()))
    report.update(null_p05=float(np.mean(null_p05)), null_p05_kl=float(np.mean(null_p05_kl)))
    print(f"[calibration] null: fraction p<0.05 = {np.mean(null_p05):.4f} (AUROC statistic), "
          f"{np.mean(null_p05_kl):.4f} (KL statistic), over {len(seeds)} seeds")

    fdrs, powers, rare_powers, kl_powers = [], [], [], []
    for seed in seeds:
        data = ckplus_like(200 + seed)
        st = fau_kl_statistics(data["acts"], data["presence"], groups=data["groups"], n_permutations=1000,
                               n_bootstrap=0, seed=seed)
        planted, found = data["planted"], st.q < 0.05
        fdrs.append(float((found & ~planted).sum() / max(1, found.sum())))
        common = (data["presence"].mean(axis=0) >= 0.10)[None, :] & planted
        rare = (data["presence"].mean(axis=0) < 0.10)[None, :] & planted
        powers.append(float(found[common].mean()))
        rare_powers.append(float(found[rare].mean()) if rare.any() else float("nan"))
        from captum_fau.concept.statistics import benjamini_hochberg

        kl_found = benjamini_hochberg(st.p_kl) < 0.05
        kl_powers.append(float(kl_found[common].mean()))
    report.update(fdr=float(np.mean(fdrs)), power=float(np.mean(powers)), power_rare=float(np.nanmean(rare_powers)),
                  power_kl_statistic=float(np.mean(kl_powers)))
    print(f"[planted] d=0.8 in 10% of pairs, {len(seeds)} seeds: FDR {np.mean(fdrs):.4f}, power (AU in >=10% of "
          f"images) {np.mean(powers):.3f}, power (rarer AUs) {np.nanmean(rare_powers):.3f}; "
          f"power with the KL statistic instead: {np.mean(kl_powers):.3f}")


class AUTemplateProbe(nn.Module):
    """Channel k responds to AU k's own drawing, inside AU k's region, and to nothing else.

    Its input has ``1 + J`` channels: the image, and for each AU the same face rendered with that
    AU removed (the image itself where the AU is absent). The ``drawing`` layer outputs
    ``[B, J, H, W]`` maps ``(image - image without AU k)^2``: non-zero only where AU k draws,
    so the planted truth is "channel k = AU k" even where AU regions overlap (the mouth AUs).
    """

    def __init__(self) -> None:
        super().__init__()
        self.drawing = _AblationDifference()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drawing(x)


class _AblationDifference(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - x[:, 1:]) ** 2


class ProbeFaces(torch.utils.data.Dataset):
    """Independent-mode SynthFACS faces with, per AU, the face re-rendered without that AU."""

    def __init__(self, n: int, seed: int = 0) -> None:
        from captum_fau.data.synthfacs import SYNTHFACS_AUS, render, render_with_aus

        self.au_ids = tuple(SYNTHFACS_AUS)
        batch = render(n, seed=seed, mode="independent")
        inputs = np.repeat((batch.images / 255.0).astype(np.float32)[:, None], 1 + len(SYNTHFACS_AUS), axis=1)
        for i, k in zip(*np.nonzero(batch.aus > 0)):
            vec = batch.aus[i].astype(np.float32).copy()
            vec[k] = 0
            without, _ = render_with_aus(seed, int(i), vec, mode="independent")
            inputs[i, 1 + k] = without / 255.0
        self.inputs = torch.from_numpy(inputs)
        self.aus = batch.aus.astype(np.float32)
        self.subjects = np.asarray(batch.subjects)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.inputs[i], "index": i, "aus": torch.from_numpy(self.aus[i]), "subject": int(self.subjects[i])}


def bench_probe(report: dict[str, Any], n_images: int) -> None:
    from captum_fau.concept import FAUKL

    faces = ProbeFaces(n_images)
    probe = AUTemplateProbe().eval()
    result = FAUKL(probe, ["drawing"], n_permutations=200, n_bootstrap=0, progress=False).interpret(faces)
    tops = result.top_aus()
    hits = [top == au for top, au in zip(tops, faces.au_ids)]
    report.update(probe_recovery=float(np.mean(hits)), probe_images=n_images)
    missed = [f"{au}->{top}" for top, au, ok in zip(tops, faces.au_ids, hits) if not ok]
    print(f"[probe] {n_images} images: top AU of channel k is AU k for {sum(hits)}/{len(hits)} channels"
          + (f"; missed {missed}" if missed else ""))


def trained_agreement(model: nn.Module, faces: Any, *, n_top: int = 5, alpha: float = 0.05,
                      n_permutations: int = 500, max_filters: int | None = None) -> dict[str, Any]:
    """Agreement of FAU-KL's top AU with the AU region holding most TopNDeconv reconstruction energy.

    Filters compared: those with a pair at ``q < alpha`` (at most ``max_filters``, the most
    significant first). For each, the guided-backprop reconstructions of its ``n_top`` images
    are summed, as squared values, inside each AU's ground-truth region of that image
    (:mod:`captum_fau.concept.localisation`).
    """
    from captum_fau.attr.topn_deconv import TopNDeconv
    from captum_fau.concept import FAUKL
    from captum_fau.concept.localisation import localisation_agreement, region_stats
    from captum_fau.data.synthfacs import region_masks

    result = FAUKL(model, ["conv3"], n_permutations=n_permutations, n_bootstrap=0, progress=False).interpret(faces)
    st = result.stats()
    best_q = np.where(st.dead_filters, np.inf, st.q.min(axis=1))
    significant = np.flatnonzero(best_q < alpha)
    significant = significant[np.argsort(best_q[significant], kind="stable")][:max_filters]
    if significant.size == 0:
        return {"agreement": None, "n_filters": 0, "reason": "no filter has a significant association"}
    top = TopNDeconv(model, "conv3", rule="guided").top_n(faces, n=n_top, filters=significant.tolist(), progress=False)
    meta = faces.meta

    def masks_for(indices: np.ndarray) -> np.ndarray:
        return region_masks(meta["seed"], indices, size=meta["size"], mode=meta["mode"], n_subjects=meta["n_subjects"])

    regions = region_stats(top.patches, top.boxes, top.indices, masks_for)
    out = localisation_agreement(regions, [result.top_au(int(f)) for f in significant], faces.au_ids, significant)
    return {"agreement": out["rate"], "n_filters": out["n_filters"]}


def bench_trained(report: dict[str, Any], n_images: int, weights: str | None = None) -> None:
    from captum_fau import zoo
    from captum_fau.data.synthfacs import load_synthfacs
    from captum_fau.errors import ZooWeightsUnavailable

    faces = load_synthfacs(n_images, seed=7, mode="independent", progress=False)
    try:
        model = zoo.load("zerobias-synthfacs-8class", weights=weights)
    except ZooWeightsUnavailable as err:
        report.update(trained_agreement=None, trained_reason=f"zoo weights unavailable: {str(err)[:160]}")
        print(f"[trained] skipped: {err}")
        return
    out = trained_agreement(model, faces)
    report.update(trained_agreement=out["agreement"], trained_filters=out["n_filters"])
    if out["agreement"] is None:
        report["trained_reason"] = out.get("reason", "no filter to compare")
    print(f"[trained] agreement {out['agreement']} over {out['n_filters']} significant filters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for calibration and power (default: 3)")
    parser.add_argument("--images", type=int, default=1308, help="SynthFACS images for the trained model")
    parser.add_argument("--probe-images", type=int, default=600, help="SynthFACS images for the probe")
    parser.add_argument("--skip-trained", action="store_true")
    parser.add_argument("--weights", default=None, help="trained SynthFACS weights (file or folder) to use instead of the zoo's")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    report: dict[str, Any] = {}
    bench_speed(report)
    bench_calibration(report, range(args.seeds))
    bench_probe(report, args.probe_images)
    if args.skip_trained:
        report.update(trained_agreement=None, trained_reason="skipped (--skip-trained)")
    else:
        bench_trained(report, args.images, args.weights)
    if args.json:
        keys = ["null_p05", "fdr", "power", "probe_recovery", "trained_agreement", "speedup_vs_loop"]
        line = {k: report.get(k) for k in keys}
        line.update({k: v for k, v in report.items() if k not in line})
        print(json.dumps(line))


if __name__ == "__main__":
    main()
