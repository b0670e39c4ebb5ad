"""FAU-KL benchmark: speed against a per-pair loop, calibration and power with planted truth,
a probe model with known AU channels, and agreement with TopNDeconv on a trained model.

Usage::

    python scripts/bench_faukl.py                 # human-readable report
    python scripts/bench_faukl.py --json          # ... and one JSON line last
    python scripts/bench_faukl.py --quick --json  # small sizes, statistics only (seconds)

All statistics sections draw from :func:`captum_fau.concept.simulate.planted_faces`: subjects x 3
sequences x 4 frames (the first neutral), AUs clustered by subject (per-subject logit propensity),
activations correlated within subject and sequence. Sections:

1. Speed: :func:`fau_kl_statistics` (300 permutations, 256 filters x 20 AUs x 1,308 images) against a
   straightforward vectorised-numpy implementation (one float64 matrix product per permutation), in
   the same process, after a warm-up, median/min/max of 5 repeats (``speedup_vs_vectorised``); and
   against a per-pair loop (``np.histogram`` + ``scipy.stats.entropy``), timed on a subset and
   extrapolated (``speedup_vs_loop``).
2. Null, 109 subjects: type-I error at 0.05 with subject permutations (``type1_clustered``,
   ``null_p05``), with the old sequence permutations and with single images (``*_before``); the share
   of filters whose default top AU is the rarest AU, over chance (``null_top_au_rarest_ratio``; the
   paper's argmax-KL rule: ``null_top_au_rarest_ratio_kl_before``).
3. Planted d = 0.8 in 10% of pairs: BH FDR and power (``fdr``, ``power``).
4. Intervals: 60 replicates of 109 subjects, filter c planted (d = 0.8) on AU c (every CK+ prevalence):
   coverage of the exact population AUROC (:func:`~captum_fau.concept.simulate.true_auroc`, checked
   against 20,000 simulated subjects) by the 95% AUROC interval over all testable pairs
   (``ci_coverage``), planted pairs (``ci_coverage_planted``, 1,200 pairs) and null pairs
   (``ci_coverage_null``), each with its standard error across replicates (``*_se``); the estimate
   inside its interval (``ci_inside``); the interval before (``K - 1`` degrees of freedom,
   ``ci_coverage_*_before``) and the old KL percentile bootstrap (``ci_coverage_kl_before``).
5. Confounded null: AUs and filters follow the posed emotion, not each other; rejection rate of the
   within-emotion test (``stratified_type1``) and of the plain one.
6. Localisation rules on planted truth: a planted filter's 10 windows (32x32, conv3's receptive
   field, centred on its AU's drawing) hold a share of energy from that AU's own drawing and the rest
   from the face's edges, on SynthFACS's real region masks; three cases: rendered prototype faces,
   a mouth AU drawn inside the jaw (AU26/27), the jaw with mouth AUs inside it. The share of filters
   for which each rule of :mod:`captum_fau.concept.localisation` names the planted AU
   (``localisation_recovery``, the default rule ``localisation_rule``).
7. Probe model (channel k responds to AU k's drawing only) and 8. the trained SynthFACS model
   (agreement with TopNDeconv); skipped by ``--quick`` and ``--skip-models``.
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

from captum_fau.concept.simulate import CKPLUS_AU_COUNTS, planted_faces  # noqa: E402  (one generator)


def ckplus_like(seed: int, n_filters: int = 256, d: float = 0.8, planted_fraction: float = 0.1,
                n_subjects: int = 109) -> dict[str, np.ndarray]:
    """CK+-sized planted data with subject structure (subjects x 3 sequences x 4 frames, AUs clustered by
    subject, frames correlated); permutation units = subjects."""
    data = planted_faces(seed, n_subjects=n_subjects, n_filters=n_filters, d=d, planted=planted_fraction)
    data["groups"] = data["subjects"]
    return data


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


def vectorised_statistics(acts: np.ndarray, presence: np.ndarray, sources: np.ndarray, bins: int,
                          smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """A straightforward vectorised-numpy FAU-KL: per permutation, one matrix product of the one-hot bins
    with the permuted labels (float64), scipy's ``rel_entr`` and AUROC rank sums; p-values of KL and AUROC."""
    from scipy.special import rel_entr
    from scipy.stats import rankdata

    edges = histogram_edges(acts, bins)
    codes = np.stack([np.clip(np.searchsorted(edges[c, 1:-1], acts[:, c], side="right"), 0, bins - 1)
                      for c in range(acts.shape[1])], axis=1)
    n_filters = acts.shape[1]
    onehot = np.eye(bins)[codes].reshape(len(acts), n_filters * bins)  # [M, C * K]
    totals = onehot.sum(axis=0).reshape(n_filters, bins, 1)
    labels = presence.astype(np.float64)
    ranks = rankdata(acts, axis=0)
    n_pos = labels.sum(axis=0)
    n_neg = len(acts) - n_pos

    def stats(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = (onehot.T @ lab).reshape(n_filters, bins, -1)
        r = totals - q
        qn = (q + smoothing) / (q.sum(axis=1, keepdims=True) + bins * smoothing)
        rn = (r + smoothing) / (r.sum(axis=1, keepdims=True) + bins * smoothing)
        kl = rel_entr(qn, rn).sum(axis=1)
        auc = (ranks.T @ lab - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        return kl, np.abs(auc - 0.5)

    kl0, a0 = stats(labels)
    ek, ea = np.zeros(kl0.shape), np.zeros(kl0.shape)
    for src in sources:
        kl, a = stats(labels[src])
        ek += kl >= kl0 - 1e-9
        ea += a >= a0 - 1e-9
    return (1 + ek) / (1 + len(sources)), (1 + ea) / (1 + len(sources))


def _timed(fn: Any, repeats: int) -> dict[str, float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": float(np.median(times)), "min": float(np.min(times)), "max": float(np.max(times))}


def bench_speed(report: dict[str, Any], size: dict[str, int]) -> None:
    data = ckplus_like(0, n_filters=size["speed_filters"], n_subjects=size["subjects"])
    acts, presence, groups = data["acts"], data["presence"], data["groups"]
    perms = size["speed_permutations"]
    sources = permutation_sources(groups, len(acts), perms, seed=0)
    engine = _timed(lambda: fau_kl_statistics(acts, presence, groups=groups, n_permutations=perms, n_bootstrap=0),
                    size["repeats"])
    vectorised = _timed(lambda: vectorised_statistics(acts, presence, sources, 10, 0.5), size["repeats"])
    tracemalloc.start()
    fau_kl_statistics(acts, presence, groups=groups, n_permutations=perms, n_bootstrap=0)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    loop_sources = sources[:20]
    pairs = [(c, j) for c in range(3) for j in range(3)]
    t0 = time.perf_counter()
    loop_statistics(acts, presence, loop_sources, 10, 0.5, pairs)
    per_unit = (time.perf_counter() - t0) / (len(pairs) * (len(loop_sources) + 1))
    loop_full = per_unit * acts.shape[1] * presence.shape[1] * (perms + 1)
    report.update(
        stats_seconds=engine["median"], vectorised_seconds=vectorised["median"],
        speedup_vs_vectorised={k: vectorised["median"] / engine[k] for k in ("median",)} | {
            "min": vectorised["min"] / engine["max"], "max": vectorised["max"] / engine["min"],
            "engine_s": engine, "vectorised_s": vectorised, "repeats": size["repeats"]},
        loop_seconds_extrapolated=loop_full, speedup_vs_loop=loop_full / engine["median"], stats_peak_mb=peak,
    )
    print(f"[speed] {perms} perms x {acts.shape[1]} filters x 20 AUs x {len(acts)} images, {size['repeats']} repeats: "
          f"engine {engine['median']:.2f} s (min {engine['min']:.2f}, max {engine['max']:.2f}; peak {peak:.0f} MB), "
          f"vectorised numpy {vectorised['median']:.2f} s -> speedup {vectorised['median'] / engine['median']:.1f}x; "
          f"per-pair loop (extrapolated) {loop_full:.0f} s")


def rarest_ratio(st: Any, result_tops: list[int]) -> float:
    """Share of filters whose top AU is the rarest testable AU, divided by chance (1 / testable AUs)."""
    testable = np.flatnonzero(st.testable_aus)
    rarest = testable[np.argmin(st.n_present[testable])]
    share = float(np.mean([t == rarest for t in result_tops]))
    return share * len(testable)


def bench_calibration(report: dict[str, Any], size: dict[str, int]) -> None:
    """Null and planted runs on subject-structured data: type-I by permutation unit, top-AU rule, FDR, power."""
    from captum_fau.concept.result import FAUKLResult

    seeds, perms = range(size["seeds"]), size["permutations"]
    rates: dict[str, list[float]] = {k: [] for k in ("subjects", "sequences", "images", "subjects_kl", "sequences_kl")}
    ratios: dict[str, list[float]] = {"z": [], "p": [], "kl": []}
    for seed in seeds:
        data = ckplus_like(100 + seed, d=0.0, n_filters=size["filters"], n_subjects=size["subjects"])
        for unit, ids in (("subjects", data["subjects"]), ("sequences", data["sequences"]), ("images", None)):
            st = fau_kl_statistics(data["acts"], data["presence"], groups=ids, n_permutations=perms, n_bootstrap=0,
                                   seed=seed)
            rates[unit].append(float((st.p_auroc[st.testable] < 0.05).mean()))
            if unit != "images":
                rates[f"{unit}_kl"].append(float((st.p_kl[st.testable] < 0.05).mean()))
            if unit == "subjects":
                res = FAUKLResult(layers={"x": st}, au_ids=tuple(CKPLUS_AU_COUNTS), n_images=len(data["acts"]))
                for rule in ratios:
                    tops = [res.au_ids.index(a) for a in res.top_aus(by=rule)]
                    ratios[rule].append(rarest_ratio(st, tops))
    mean = {k: float(np.mean(v)) for k, v in rates.items()}
    report.update(
        null_p05=mean["subjects"], null_p05_kl=mean["subjects_kl"], type1_clustered=mean["subjects"],
        type1_clustered_kl=mean["subjects_kl"], type1_sequences_before=mean["sequences"],
        type1_sequences_kl_before=mean["sequences_kl"], type1_no_ids_before=mean["images"],
        null_top_au_rarest_ratio=float(np.mean(ratios["z"])), null_top_au_rarest_ratio_p=float(np.mean(ratios["p"])),
        null_top_au_rarest_ratio_kl_before=float(np.mean(ratios["kl"])),
    )
    print(f"[null, AUs clustered by subject] type-I at 0.05 (AUROC test / KL test): subject permutations "
          f"{mean['subjects']:.3f} / {mean['subjects_kl']:.3f}; sequence permutations (old default) "
          f"{mean['sequences']:.3f} / {mean['sequences_kl']:.3f}; single images {mean['images']:.3f}")
    print(f"[null top AU] share of filters whose top AU is the rarest / chance: z (default) "
          f"{np.mean(ratios['z']):.2f}, p-then-z {np.mean(ratios['p']):.2f}, argmax KL (paper, old default) "
          f"{np.mean(ratios['kl']):.2f}")

    fdrs, powers, kl_powers = [], [], []
    for seed in seeds:
        data = ckplus_like(200 + seed, n_filters=size["filters"], n_subjects=size["subjects"])
        st = fau_kl_statistics(data["acts"], data["presence"], groups=data["groups"], n_permutations=perms,
                               n_bootstrap=0, seed=seed)
        planted, found = data["planted"], st.q < 0.05
        fdrs.append(float((found & ~planted).sum() / max(1, found.sum())))
        common = (data["presence"].mean(axis=0) >= 0.10)[None, :] & planted
        powers.append(float(found[common].mean()))
        kl_powers.append(float((st.q_kl < 0.05)[common].mean()))
    report.update(fdr=float(np.mean(fdrs)), power=float(np.mean(powers)), power_kl_statistic=float(np.mean(kl_powers)))
    print(f"[planted] d=0.8 in 10% of pairs: FDR {np.mean(fdrs):.4f}, power (AU in >=10% of images) "
          f"{np.mean(powers):.3f} (AUROC test), {np.mean(kl_powers):.3f} (KL test)")


def _old_interval(auc: np.ndarray, se: np.ndarray, n_clusters: int, level: float = 0.95) -> np.ndarray:
    """The interval before: the same logit-scale interval with ``K - 1`` degrees of freedom for every AU."""
    from scipy.stats import t as t_dist

    inner = (auc > 0) & (auc < 1) & np.isfinite(se) & (se > 0)
    safe = np.where(inner, auc, 0.5)
    half = t_dist.ppf(0.5 + level / 2, max(1, n_clusters - 1)) * np.where(inner, se, 0.0) / (safe * (1 - safe))
    centre = np.log(safe / (1 - safe))
    return np.stack([np.where(inner, 1 / (1 + np.exp(-(centre - half))), auc),
                     np.where(inner, 1 / (1 + np.exp(-(centre + half))), auc)], axis=-1)


def _share(hits: list[np.ndarray]) -> tuple[float, float, int]:
    """Pooled share of covered pairs, its standard error across replicates (pairs of one replicate share
    their labels, so replicates, not pairs, are the independent units) and the number of pairs."""
    per_rep = np.array([h.mean() for h in hits if h.size])
    pooled = np.concatenate(hits)
    return float(pooled.mean()), float(per_rep.std(ddof=1) / np.sqrt(len(per_rep))), int(pooled.size)


def bench_coverage(report: dict[str, Any], size: dict[str, int]) -> None:
    """Coverage of the AUROC interval (subject clusters) on planted and null pairs, against the exact
    population AUROC; the interval before (``K - 1`` degrees of freedom) and the old KL percentile
    bootstrap for comparison."""
    from captum_fau.concept.kernels import BinnedActivations, auroc, bin_codes, kl_from_counts
    from captum_fau.concept.resampling import bootstrap_kl_interval, bootstrap_weights
    from captum_fau.concept.simulate import true_auroc

    n_filters, d = 20, 0.8
    planted = np.eye(n_filters, 20, dtype=bool)  # filter c responds to AU c: every CK+ prevalence once
    truth = true_auroc(planted, d)
    big = planted_faces(99_999, n_subjects=size["truth_subjects"], n_filters=n_filters, d=d, planted=planted)
    truth_check = float(np.abs(auroc(big["acts"], big["presence"]) - truth).max())
    hits: dict[str, list[np.ndarray]] = {k: [] for k in ("planted", "null", "all", "planted_before", "null_before")}
    inside, old_covered, old_null_excl = [], [], []
    for seed in range(size["coverage_seeds"]):
        data = planted_faces(300 + seed, n_subjects=size["subjects"], n_filters=n_filters, d=d, planted=planted)
        st = fau_kl_statistics(data["acts"], data["presence"], groups=data["subjects"], n_permutations=0,
                               n_bootstrap=1, seed=seed)
        ok = st.testable
        lo, hi = st.auroc_ci[..., 0], st.auroc_ci[..., 1]
        hit = (lo <= truth) & (truth <= hi)
        before = _old_interval(st.auroc, st.auroc_se, size["subjects"])
        hit_before = (before[..., 0] <= truth) & (truth <= before[..., 1])
        hits["all"].append(hit[ok])
        hits["planted"].append(hit[ok & planted])
        hits["null"].append(hit[ok & ~planted])
        hits["planted_before"].append(hit_before[ok & planted])
        hits["null_before"].append(hit_before[ok & ~planted])
        inside.append(((lo <= st.auroc) & (st.auroc <= hi))[ok])
        if seed < size["old_ci_seeds"]:
            binned = BinnedActivations(bin_codes(data["acts"], st.bin_edges), st.bin_edges.shape[1] - 1)
            weights = bootstrap_weights(data["subjects"], len(data["acts"]), 200, seed + 1)
            old = bootstrap_kl_interval(binned, data["presence"].astype(np.float32), st.kl, weights, 0.5, 0.95)
            big_binned = BinnedActivations(bin_codes(big["acts"], st.bin_edges), st.bin_edges.shape[1] - 1)
            q = big_binned.counts(big["presence"].astype(np.float32)).astype(np.float64)
            true_kl = kl_from_counts(q, big_binned.totals - q, 0.0, axis=1)
            old_covered.append(((old[..., 0] <= true_kl) & (true_kl <= old[..., 1]))[ok & planted])
            old_null_excl.append((old[..., 0] > 0)[ok & ~planted])
    share = {k: _share(v) for k, v in hits.items()}
    report.update(
        ci_coverage=share["all"][0], ci_coverage_planted=share["planted"][0], ci_coverage_null=share["null"][0],
        ci_coverage_se=share["all"][1], ci_coverage_planted_se=share["planted"][1], ci_coverage_null_se=share["null"][1],
        ci_pairs_planted=share["planted"][2], ci_pairs_null=share["null"][2],
        ci_inside=float(np.concatenate(inside).mean()),
        ci_coverage_planted_before=share["planted_before"][0], ci_coverage_null_before=share["null_before"][0],
        ci_truth="exact population AUROC (captum_fau.concept.simulate.true_auroc)",
        ci_truth_check_max_abs_diff=truth_check, ci_truth_check_subjects=size["truth_subjects"],
        ci_coverage_kl_before=float(np.concatenate(old_covered).mean()),
        ci_kl_before_excludes_zero_under_null=float(np.concatenate(old_null_excl).mean()),
    )
    print(f"[intervals] AUROC 95% interval (subject clusters, t with clusters-carrying-the-AU - 1 df) covers the "
          f"exact AUROC for {share['planted'][0]:.3f} +- {share['planted'][1]:.3f} of {share['planted'][2]} planted "
          f"pairs and {share['null'][0]:.3f} +- {share['null'][1]:.3f} of {share['null'][2]} null pairs; point inside "
          f"{report['ci_inside']:.3f}; before (K - 1 df): planted {share['planted_before'][0]:.3f}, null "
          f"{share['null_before'][0]:.3f}; |MC truth ({size['truth_subjects']} subjects) - exact| <= {truth_check:.4f}; "
          f"old KL percentile bootstrap: coverage of the true KL (planted) {report['ci_coverage_kl_before']:.3f}, "
          f"excludes 0 under the null {report['ci_kl_before_excludes_zero_under_null']:.3f}")


def bench_stratified(report: dict[str, Any], size: dict[str, int]) -> None:
    """The confounded null: AUs and activations both depend on the posed emotion, not on each other."""
    within, plain, within_kl = [], [], []
    for seed in range(size["seeds"]):
        data = planted_faces(400 + seed, n_subjects=size["subjects"], n_filters=size["filters"], emotions=6, d=0.0)
        st = fau_kl_statistics(data["acts"], data["presence"], groups=data["subjects"], strata=data["emotion"],
                               n_permutations=size["permutations"], n_bootstrap=0, seed=seed)
        ok = st.testable & (st.p_auroc_within < 1.0 + 1e-12)
        within.append(float((st.p_auroc_within[ok] < 0.05).mean()))
        within_kl.append(float((st.p_kl_within[ok] < 0.05).mean()))
        plain.append(float((st.p_auroc[ok] < 0.05).mean()))
    report.update(stratified_type1=float(np.mean(within)), stratified_type1_kl=float(np.mean(within_kl)),
                  unstratified_type1_confounded=float(np.mean(plain)))
    print(f"[stratified] confounded null (AUs and filters follow the emotion): rejection at 0.05 within emotion "
          f"strata {np.mean(within):.3f} (AUROC) / {np.mean(within_kl):.3f} (KL); without strata {np.mean(plain):.3f}")


#: SynthFACS AUs whose regions lie inside the jaw regions of AU26/AU27 (the mouth).
MOUTH_AUS = ("AU12", "AU14", "AU15", "AU20", "AU23", "AU24", "AU25", "R12", "R14")


def _localisation_groups(seed: int, n_images: int, n_top: int, repeats: int = 2
                         ) -> dict[str, list[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]]]:
    """Planted localisation cases: groups of ``n_top`` faces ``(au, image, image without the AU, masks)``.

    ``faces``: prototype-mode faces as rendered, grouped by a present AU; ``nested``: a mouth AU
    (:data:`MOUTH_AUS`) drawn with the jaw (AU26 or AU27) present, so that the AU's region lies inside
    the jaw's; ``jaw``: the jaw AU drawn with two mouth AUs present inside it.
    """
    from captum_fau.data.synthfacs import SYNTHFACS_AUS, render, render_with_aus

    aus = list(SYNTHFACS_AUS)
    rng = np.random.default_rng(seed)

    def case(k: int, vec: np.ndarray, index: int, mode: str) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        image, masks = render_with_aus(seed, index, vec, mode=mode)
        off = vec.copy()
        off[k] = 0
        without, _ = render_with_aus(seed, index, off, mode=mode)
        return k, image / 255.0, without / 255.0, masks

    out: dict[str, list[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]]] = {"faces": [], "nested": [], "jaw": []}
    batch = render(n_images, seed=seed, mode="prototype")
    for k in range(len(aus)):
        idx = np.flatnonzero(batch.aus[:, k] > 0)
        for g in range(len(idx) // n_top):
            out["faces"].append([case(k, batch.aus[i].astype(np.float32), int(i), "prototype")
                                 for i in idx[g * n_top:(g + 1) * n_top]])
    mouth = [aus.index(a) for a in MOUTH_AUS]
    jaws = [aus.index("AU26"), aus.index("AU27")]
    index = 0
    for rep in range(repeats):
        for g, k in enumerate(mouth):
            group_nested, group_jaw = [], []
            jaw = jaws[(rep + g) % 2]  # one jaw AU per planted filter
            for _ in range(n_top):
                vec = np.zeros(len(aus), np.float32)
                vec[[k, jaw]] = 3.0
                group_nested.append(case(k, vec, index, "independent"))
                vec = np.zeros(len(aus), np.float32)
                vec[jaw] = 3.0
                vec[rng.choice(mouth, 2, replace=False)] = 3.0
                group_jaw.append(case(jaw, vec, index, "independent"))
                index += 1
            out["nested"].append(group_nested)
            out["jaw"].append(group_jaw)
    return out


def _planted_regions(group: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], signal: float, window: int = 32) -> Any:
    """RegionStats of one planted filter: each of its windows (``window`` px, conv3's receptive field,
    centred on the AU's drawing) holds energy ``signal`` x the AU's own drawing (the squared change it
    makes, lightly blurred) + ``(1 - signal)`` x the face's edges (squared Sobel gradient), the part of
    a guided-backprop reconstruction that hardly depends on the filter."""
    from scipy.ndimage import gaussian_filter, sobel

    from captum_fau.concept.localisation import region_stats

    patches = np.zeros((1, len(group), 1, window, window))
    boxes = np.zeros((1, len(group), 4), np.int64)
    for n, (_, image, without, _) in enumerate(group):
        drawing = gaussian_filter((image - without) ** 2, 1.0)
        edges = gaussian_filter(sobel(image, 0) ** 2 + sobel(image, 1) ** 2, 1.0)
        cy, cx = np.unravel_index(int(np.argmax(drawing)), drawing.shape)
        y0 = int(np.clip(cy - window // 2, 0, image.shape[0] - window))
        x0 = int(np.clip(cx - window // 2, 0, image.shape[1] - window))
        d = drawing[y0:y0 + window, x0:x0 + window]
        e = edges[y0:y0 + window, x0:x0 + window]
        patches[0, n, 0] = np.sqrt(signal * d / max(d.sum(), 1e-12) + (1 - signal) * e / max(e.sum(), 1e-12))
        boxes[0, n] = (y0, x0, y0 + window, x0 + window)
    masks = np.stack([m for *_, m in group])
    return region_stats(torch.from_numpy(patches), torch.from_numpy(boxes), torch.arange(len(group))[None], lambda i: masks[i])


def bench_localisation(report: dict[str, Any], size: dict[str, int]) -> None:
    """Which localisation rule names the AU a planted filter responds to (SynthFACS's real region masks)."""
    from captum_fau.concept.localisation import DEFAULT_RULE, RULES, rule_choices

    groups = _localisation_groups(21, size["localisation_images"], 10, size["localisation_repeats"])
    signals = (0.05, 0.1, 0.2, 0.35, 0.5, 0.8)  # guided backprop is mostly edges: weak signals matter
    table: dict[str, dict[str, float]] = {}
    weak: dict[str, dict[str, float]] = {}
    for scenario, cases in groups.items():
        hits: dict[str, list[bool]] = {rule: [] for rule in RULES}
        for group in cases:
            for signal in signals:
                picks = rule_choices(_planted_regions(group, signal))
                for rule in RULES:
                    hits[rule].append(bool(picks[rule][0] == group[0][0]))
        table[scenario] = {rule: float(np.mean(v)) for rule, v in hits.items()}
        weak[scenario] = {rule: float(np.mean(np.reshape(v, (-1, len(signals)))[:, :3])) for rule, v in hits.items()}
        table[scenario]["n_filters"] = len(cases)
    overall = {rule: float(np.mean([table[sc][rule] for sc in table])) for rule in RULES}
    overall_weak = {rule: float(np.mean([weak[sc][rule] for sc in weak])) for rule in RULES}
    report.update(localisation_rule=DEFAULT_RULE, localisation_recovery=table, localisation_recovery_mean=overall,
                  localisation_recovery_weak_signal=overall_weak, localisation_signal_shares=list(signals),
                  localisation_recovery_lift_before=overall["lift"])
    for scenario, row in table.items():
        print(f"[localisation] planted {scenario} ({row['n_filters']} filters, signal share {signals}): "
              + ", ".join(f"{rule} {row[rule]:.2f}" for rule in RULES))
    print("[localisation] mean over scenarios: " + ", ".join(f"{rule} {overall[rule]:.2f}" for rule in RULES)
          + "; signal share <= 0.2 only: " + ", ".join(f"{rule} {overall_weak[rule]:.2f}" for rule in RULES)
          + f"; default rule: {DEFAULT_RULE}")


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
    from captum_fau.attr import TopNDeconv
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
    return {"agreement": out["rate"], "n_filters": out["n_filters"], "rule": out["rule"],
            "by_rule": {k[5:]: v for k, v in out.items() if k.startswith("rate_")}}


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
    report.update(trained_agreement=out["agreement"], trained_filters=out["n_filters"],
                  trained_localisation_rule=out.get("rule"), trained_agreement_by_rule=out.get("by_rule"))
    if out["agreement"] is None:
        report["trained_reason"] = out.get("reason", "no filter to compare")
    print(f"[trained] agreement {out['agreement']} over {out['n_filters']} significant filters")


#: Problem sizes of the full run and of ``--quick`` (used by the tests).
SIZES = {
    "full": dict(subjects=109, filters=128, permutations=1000, seeds=3, speed_filters=256, speed_permutations=300,
                 repeats=5, coverage_seeds=60, old_ci_seeds=5, truth_subjects=20000,
                 localisation_images=400, localisation_repeats=4),
    "quick": dict(subjects=40, filters=24, permutations=200, seeds=1, speed_filters=32, speed_permutations=100,
                  repeats=5, coverage_seeds=25, old_ci_seeds=1, truth_subjects=3000,
                 localisation_images=120, localisation_repeats=1),
}

#: The keys of the JSON line that come first (issue 16's targets).
KEYS = ["null_p05", "fdr", "power", "null_top_au_rarest_ratio", "ci_coverage", "ci_coverage_planted",
        "ci_coverage_null", "ci_inside", "type1_clustered", "stratified_type1", "speedup_vs_vectorised", "probe_recovery", "trained_agreement", "speedup_vs_loop"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--quick", action="store_true", help="small sizes, statistics only (seconds; for tests)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds for calibration and power (default: 3)")
    parser.add_argument("--images", type=int, default=1308, help="SynthFACS images for the trained model")
    parser.add_argument("--probe-images", type=int, default=600, help="SynthFACS images for the probe")
    parser.add_argument("--skip-trained", action="store_true")
    parser.add_argument("--skip-models", action="store_true", help="skip the probe and the trained model")
    parser.add_argument("--weights", default=None, help="trained SynthFACS weights (file or folder) to use instead of the zoo's")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    size = dict(SIZES["quick" if args.quick else "full"])
    if args.seeds is not None:
        size["seeds"] = args.seeds
    report: dict[str, Any] = {"sizes": size}
    bench_speed(report, size)
    bench_calibration(report, size)
    bench_coverage(report, size)
    bench_stratified(report, size)
    bench_localisation(report, size)
    if not (args.quick or args.skip_models):
        bench_probe(report, args.probe_images)
    if args.quick or args.skip_models or args.skip_trained:
        report.update(trained_agreement=None, trained_reason="skipped")
    else:
        bench_trained(report, args.images, args.weights)
    if args.json:
        line = {k: report.get(k) for k in KEYS}
        line.update({k: v for k, v in report.items() if k not in line})
        print(json.dumps(line))


if __name__ == "__main__":
    main()
