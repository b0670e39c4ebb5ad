"""FAU-KL benchmark: speed against a per-pair loop, calibration and power with planted truth,
a probe model with known AU channels, and agreement with TopNDeconv on a trained model.

Usage::

    python scripts/bench_faukl.py                 # human-readable report
    python scripts/bench_faukl.py --json          # ... and one JSON line last
    python scripts/bench_faukl.py --quick --json  # small sizes, statistics only (seconds)

The statistics are measured per calibration design (:mod:`captum_fau.concept.designs`: balanced,
unbalanced, heavy_tailed, correlated, emotion, sparse, few_subjects), each at the default settings
(1,000 permutations, adaptive refinement, subject units with sequence structure). Sections:

1. Speed: :func:`fau_kl_statistics` (300 permutations, no refinement, 256 filters x 20 AUs x 1,308
   images of :func:`~captum_fau.concept.simulate.planted_faces`) against a straightforward
   vectorised-numpy implementation, in the same process, after a warm-up, median/min/max of 5 repeats
   (``speedup_vs_vectorised``); and against a per-pair loop, timed on a subset and extrapolated.
2. Designs (``designs`` in the JSON, one row per design): on complete-null data sets, the per-pair
   type-I error at 0.05 and 0.001 (``type1_05``, ``type1_001``), the share of data sets where BH
   rejects anything (``bh_fwer``), the share of filters whose default top AU is each AU over chance
   (``top_au_share_vs_chance``) and AUs named for dead filters; on sparse-effect data sets (filter
   ``k`` planted on AU ``k``, AUROC about 0.70), the false discovery proportion (``fdr``, false = no
   population association: the exact population AUROC of :func:`~captum_fau.concept.designs.population_auroc`
   is 1/2; within emotions for the emotion design), the power on planted pairs of AUROC >= 0.70 on AUs with
   >= 10% prevalence (also per AU, ``power_by_au``),
   the share of planted filters whose top AU is the planted one and its mean rank, and the coverage
   of the 95% AUROC interval of the population AUROC by the number of subjects the interval rests on
   (``coverage_by_subjects``: subjects on the smaller side of the AU whose activations are not all at the
   filter's floor; below 10 the interval is marked approximate). Each rate comes as ``[value, Monte-Carlo SE across data sets, count]``.
   The emotion design is judged by the within-emotion test (its plain test is confounded by design).
   The keys of earlier releases (``null_p05``, ``fdr``, ``power``, ``ci_coverage``, ...) are the
   worst case over the designs.
3. Localisation rules on planted truth: a planted filter's 10 windows (32x32, conv3's receptive
   field, centred on its AU's drawing) hold a share of energy from that AU's own drawing and the rest
   from the face's edges, on SynthFACS's real region masks; three cases: rendered prototype faces,
   a mouth AU drawn inside the jaw (AU26/27), the jaw with mouth AUs inside it. The share of filters
   for which each rule of :mod:`captum_fau.concept.localisation` names the planted AU
   (``localisation_recovery``, the default rule ``localisation_rule``).
4. Probe model (channel k responds to AU k's drawing only) and 5. the trained SynthFACS model
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

from captum_fau.concept.designs import DESIGN_AUS, DESIGNS, design_faces, design_truth, population_auroc
from captum_fau.concept.result import TOP_AU_RULES
from captum_fau.concept.simulate import planted_faces


def ckplus_like(
    seed: int, n_filters: int = 256, d: float = 0.8, planted_fraction: float = 0.1, n_subjects: int = 109
) -> dict[str, np.ndarray]:
    """CK+-sized planted data with subject structure (subjects x 3 sequences x 4 frames, AUs clustered by
    subject, frames correlated); permutation units = subjects."""
    data = planted_faces(seed, n_subjects=n_subjects, n_filters=n_filters, d=d, planted=planted_fraction)
    data["groups"] = data["subjects"]
    return data


def loop_statistics(
    acts: np.ndarray,
    presence: np.ndarray,
    sources: np.ndarray,
    bins: int,
    smoothing: float,
    pairs: list[tuple[int, int]],
) -> np.ndarray:
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


def vectorised_statistics(
    acts: np.ndarray, presence: np.ndarray, sources: np.ndarray, bins: int, smoothing: float
) -> tuple[np.ndarray, np.ndarray]:
    """A straightforward vectorised-numpy FAU-KL: per permutation, one matrix product of the one-hot bins
    with the permuted labels (float64), scipy's ``rel_entr`` and AUROC rank sums; p-values of KL and AUROC."""
    from scipy.special import rel_entr
    from scipy.stats import rankdata

    edges = histogram_edges(acts, bins)
    codes = np.stack(
        [np.clip(np.searchsorted(edges[c, 1:-1], acts[:, c], side="right"), 0, bins - 1) for c in range(acts.shape[1])],
        axis=1,
    )
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
    import inspect

    # the same work as the vectorised baseline: a fixed number of permutations, no refinement
    same = {"max_permutations": 0} if "options" in inspect.signature(fau_kl_statistics).parameters else {}
    engine = _timed(
        lambda: fau_kl_statistics(acts, presence, groups=groups, n_permutations=perms, n_bootstrap=0, **same),
        size["repeats"],
    )
    vectorised = _timed(lambda: vectorised_statistics(acts, presence, sources, 10, 0.5), size["repeats"])
    tracemalloc.start()
    fau_kl_statistics(acts, presence, groups=groups, n_permutations=perms, n_bootstrap=0, **same)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    loop_sources = sources[:20]
    pairs = [(c, j) for c in range(3) for j in range(3)]
    t0 = time.perf_counter()
    loop_statistics(acts, presence, loop_sources, 10, 0.5, pairs)
    per_unit = (time.perf_counter() - t0) / (len(pairs) * (len(loop_sources) + 1))
    loop_full = per_unit * acts.shape[1] * presence.shape[1] * (perms + 1)
    report.update(
        stats_seconds=engine["median"],
        vectorised_seconds=vectorised["median"],
        speedup_vs_vectorised={k: vectorised["median"] / engine[k] for k in ("median",)}
        | {
            "min": vectorised["min"] / engine["max"],
            "max": vectorised["max"] / engine["min"],
            "engine_s": engine,
            "vectorised_s": vectorised,
            "repeats": size["repeats"],
        },
        loop_seconds_extrapolated=loop_full,
        speedup_vs_loop=loop_full / engine["median"],
        stats_peak_mb=peak,
    )
    print(
        f"[speed] {perms} perms x {acts.shape[1]} filters x 20 AUs x {len(acts)} images, {size['repeats']} repeats: "
        f"engine {engine['median']:.2f} s (min {engine['min']:.2f}, max {engine['max']:.2f}; peak {peak:.0f} MB), "
        f"vectorised numpy {vectorised['median']:.2f} s -> speedup {vectorised['median'] / engine['median']:.1f}x; "
        f"per-pair loop (extrapolated) {loop_full:.0f} s"
    )


def _statistics(data: dict[str, Any], design: str, permutations: int, seed: int) -> Any:
    """The default statistics of one data set (subjects as units, sequences for the structure); the
    emotion design adds the within-emotion tests. Runs on the code of earlier releases too (no
    ``sequences`` keyword there), so that the same designs measure before and after."""
    import inspect

    keywords: dict[str, Any] = dict(groups=data["subjects"], n_permutations=permutations, seed=seed)
    if "options" in inspect.signature(fau_kl_statistics).parameters:
        keywords["sequences"] = data["sequences"]
    if DESIGNS[design].get("emotions"):
        keywords["strata"] = data["emotion"]
    return fau_kl_statistics(data["acts"], data["presence"], **keywords)


def _main_test(st: Any, design: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p, q, tested)`` of the test a design is judged by: within emotion strata for the confounded design."""
    tested = getattr(st, "tested", st.testable)
    if DESIGNS[design].get("emotions"):
        within = tested & ~np.isnan(st.p_auroc_within)
        return st.p_auroc_within, st.q_auroc_within, within
    return st.p, st.q, tested


def _clusters_side(data: dict[str, Any]) -> np.ndarray:
    """``[J]`` subjects on the smaller side (with / without) of each AU."""
    from captum_fau.concept.kernels import as_presence

    subjects = data["subjects"]
    labels = as_presence(data["presence"], len(subjects))
    member = np.zeros((len(subjects), int(subjects.max()) + 1))
    member[np.arange(len(subjects)), subjects] = 1.0
    return np.minimum(((member.T @ labels) > 0).sum(axis=0), ((member.T @ ~labels) > 0).sum(axis=0))


#: Buckets of subjects carrying an AU (the smaller side) for the interval coverage.
COVERAGE_BUCKETS = ((3, 5), (6, 9), (10, 19), (20, 10**9))


def _null_replicate(design: str, seed: int, size: dict[str, int], acc: dict[str, list]) -> None:
    """One complete-null data set: per-pair type-I, BH family-wise error, top-AU share per AU."""
    from captum_fau.concept.result import FAUKLResult

    data = design_faces(
        design, 10_000 + seed, n_filters=size.get("design_filters"), n_subjects=size.get("design_subjects")
    )
    st = _statistics(data, design, size["permutations"], seed)
    p, q, tested = _main_test(st, design)
    acc["p05"].append((p[tested] < 0.05).astype(float))
    acc["p001"].append((p[tested] < 0.001).astype(float))
    acc["fwer"].append(float((q[tested] < 0.05).any()))
    acc["untested"].append(float(1 - tested[~st.dead_filters].mean()))
    result = FAUKLResult(layers={"x": st}, au_ids=DESIGN_AUS, n_images=len(data["acts"]))
    tops = [t for t in result.top_aus() if t is not None]
    au_tested = tested.any(axis=0)
    counts = np.array([tops.count(au) for au in DESIGN_AUS], dtype=float)
    acc["top_share"].append(np.where(au_tested, counts / max(1, len(tops)) * au_tested.sum(), np.nan))
    acc["dead_named"].append(float(sum(result.top_au(int(f)) is not None for f in np.flatnonzero(st.dead_filters))))


def _planted_replicate(design: str, seed: int, size: dict[str, int], truth: np.ndarray, acc: dict[str, list]) -> None:
    """One sparse-effect data set: FDR, power, planted AU named first and its rank, interval coverage."""
    from captum_fau.concept.result import FAUKLResult

    data = design_faces(design, 20_000 + seed, planted=True, n_filters=size.get("design_filters"),
                        n_subjects=size.get("design_subjects"))  # fmt: skip
    st = _statistics(data, design, size["permutations"], seed)
    p, q, tested = _main_test(st, design)
    exact = None if DESIGNS[design].get("emotions") else truth  # the emotion design's truth is a large draw
    # truly associated: the exact population AUROC differs from 1/2 (AU2 beside a planted AU1 counts); the
    # emotion design is judged within emotions, where only the planted pairs are associated
    associated = data["planted"].copy() if exact is None else np.abs(exact - 0.5) > 1e-9
    found = (q < 0.05) & tested
    acc["fdp"].append(float((found & ~associated).sum() / max(1, found.sum())))
    prevalence = data["presence"].mean(axis=0)
    planted = data["planted"] & tested & (prevalence >= 0.10)[None, :] & ((truth if exact is None else exact) >= 0.70)
    acc["power"].append(found[planted].astype(float))
    for f, j in zip(*np.nonzero(planted)):
        acc.setdefault(f"power_{DESIGN_AUS[j]}", []).append(float(found[f, j]))

    result = FAUKLResult(layers={"x": st}, au_ids=DESIGN_AUS, n_images=len(data["acts"]))
    for f, j in zip(*np.nonzero(data["planted"] & tested)):
        order = [int(j) for j in result._ranking(st, int(f), "test" if "test" in TOP_AU_RULES else "z")]
        acc["named_first"].append(float(order[:1] == [j]))
        acc["rank"].append(float(order.index(j) + 1) if j in order else np.nan)
    side = getattr(st, "ci_clusters", getattr(st, "clusters_side", None))  # per pair where known, else per AU
    side = _clusters_side(data) if side is None else side
    side = np.broadcast_to(side, st.auroc.shape)
    live = (~st.dead_filters)[:, None] & st.testable_aus[None, :]
    hit = (st.auroc_ci[..., 0] <= truth) & (truth <= st.auroc_ci[..., 1])
    for lo, hi in COVERAGE_BUCKETS:
        cells = (side >= lo) & (side <= hi)
        acc[f"cover_{lo}"].append(hit[live & cells].astype(float))
    acc["inside"].append(((st.auroc_ci[..., 0] <= st.auroc) & (st.auroc <= st.auroc_ci[..., 1]))[live].astype(float))


def _rate(parts: list[np.ndarray]) -> tuple[float | None, float | None, int]:
    """Pooled rate, its Monte-Carlo SE across replicates (pairs of one data set share labels) and the count."""
    parts = [np.atleast_1d(np.asarray(x, float)) for x in parts]
    pooled = np.concatenate(parts) if parts else np.zeros(0)
    if not pooled.size:
        return None, None, 0
    per_rep = np.array([x.mean() for x in parts if x.size])
    se = float(per_rep.std(ddof=1) / np.sqrt(len(per_rep))) if len(per_rep) > 1 else None
    return float(pooled.mean()), se, int(pooled.size)


_fmt = lambda value: "n/a" if value is None else f"{value:.3f}"  # noqa: E731


def bench_designs(report: dict[str, Any], size: dict[str, int]) -> None:
    """Every figure per design (:mod:`captum_fau.concept.designs`); the old keys as the worst case over designs."""
    table: dict[str, dict[str, Any]] = {}
    for design in size.get("designs") or DESIGNS:
        t0 = time.perf_counter()
        acc: dict[str, list] = {k: [] for k in ("p05", "p001", "fwer", "untested", "top_share", "dead_named", "fdp",
                                                "power", "named_first", "rank", "inside")}  # fmt: skip
        acc.update({f"cover_{lo}": [] for lo, _ in COVERAGE_BUCKETS})
        for seed in range(size["null_reps"]):
            _null_replicate(design, seed, size, acc)
        truth = population_auroc(design, n_filters=size.get("design_filters"))  # exact; None: the emotion design
        if truth is None:
            truth = design_truth(design, n_filters=size.get("design_filters"), n_subjects=size["truth_subjects"])
        for seed in range(size["planted_reps"]):
            _planted_replicate(design, seed, size, truth, acc)
        shares = np.array(acc["top_share"])
        share_se = np.nanstd(shares, axis=0, ddof=1) / np.sqrt(max(1, len(shares))) if len(shares) > 1 else None
        row = {
            "type1_05": _rate(acc["p05"]),
            "type1_001": _rate(acc["p001"]),
            "bh_fwer": _rate(acc["fwer"]),
            "untested_share": _rate(acc["untested"])[0],
            "fdr": _rate(acc["fdp"]),
            "power": _rate(acc["power"]),
            "planted_named_first": _rate(acc["named_first"]),
            "planted_rank_mean": _rate(acc["rank"])[0],
            "top_au_share_vs_chance": dict(zip(DESIGN_AUS, np.round(np.nanmean(shares, axis=0), 3).tolist())),
            "top_au_share_min": float(np.nanmin(np.nanmean(shares, axis=0))),
            "top_au_share_max": float(np.nanmax(np.nanmean(shares, axis=0))),
            "top_au_share_se": None if share_se is None else dict(zip(DESIGN_AUS, np.round(share_se, 3).tolist())),
            "power_by_au": {
                au: _rate([np.array(acc[f"power_{au}"])])[0] for au in DESIGN_AUS if acc.get(f"power_{au}")
            },  # fmt: skip
            "dead_filters_named": float(np.mean(acc["dead_named"])),
            "ci_inside": _rate(acc["inside"])[0],
            "coverage_by_subjects": {
                f"{lo}-{hi if hi < 10**9 else ''}": _rate(acc[f"cover_{lo}"]) for lo, hi in COVERAGE_BUCKETS
            },  # fmt: skip
            "seconds": time.perf_counter() - t0,
        }
        table[design] = row
        cov = row["coverage_by_subjects"]
        print(
            f"[design {design}] type-I {row['type1_05'][0]:.4f} (0.05) {row['type1_001'][0]:.5f} (0.001); BH FWER "
            f"{row['bh_fwer'][0]:.3f}; FDR {row['fdr'][0]:.3f}; power {_fmt(row['power'][0])}; planted AU first "
            f"{_fmt(row['planted_named_first'][0])}; top-AU share/chance {row['top_au_share_min']:.2f}-"
            f"{row['top_au_share_max']:.2f}; coverage "
            + ", ".join(f"{k}: {_fmt(v[0])}" for k, v in cov.items())
            + f" ({row['seconds']:.0f} s)"
        )
    report["designs"] = table
    report["design_sizes"] = {k: size[k] for k in ("null_reps", "planted_reps", "permutations", "truth_subjects")}
    _worst_case(report, table)


def _worst_case(report: dict[str, Any], table: dict[str, dict[str, Any]]) -> None:
    """The keys of earlier releases, now the worst case over the designs."""
    vals = lambda key: [r[key][0] for r in table.values() if r[key][0] is not None]  # noqa: E731
    type1 = vals("type1_05")
    worst_type1 = max(type1, key=lambda v: abs(v - 0.05))
    coverage = [r["coverage_by_subjects"][k][0] for r in table.values() for k in ("10-19", "20-")
                if r["coverage_by_subjects"][k][0] is not None]  # fmt: skip
    approx = [r["coverage_by_subjects"][k][0] for r in table.values() for k in ("3-5", "6-9")
              if r["coverage_by_subjects"][k][0] is not None]  # fmt: skip
    report.update(
        null_p05=worst_type1,
        type1_clustered=worst_type1,
        type1_001_worst=max(vals("type1_001")),
        bh_fwer_worst=max(vals("bh_fwer")),
        fdr=max(vals("fdr")),
        power=min(vals("power")),
        planted_named_first=min(vals("planted_named_first")),
        null_top_au_rarest_ratio=min(r["top_au_share_min"] for r in table.values()),
        null_top_au_share_max=max(r["top_au_share_max"] for r in table.values()),
        ci_coverage=min(coverage) if coverage else None,
        ci_coverage_planted=min(coverage) if coverage else None,
        ci_coverage_null=min(coverage) if coverage else None,
        ci_coverage_under_10_subjects=min(approx) if approx else None,
        ci_inside=min(r["ci_inside"] for r in table.values()),
        stratified_type1=table.get("emotion", {}).get("type1_05", (None,))[0],
    )


#: SynthFACS AUs whose regions lie inside the jaw regions of AU26/AU27 (the mouth).
MOUTH_AUS = ("AU12", "AU14", "AU15", "AU20", "AU23", "AU24", "AU25", "R12", "R14")


def _localisation_groups(
    seed: int, n_images: int, n_top: int, repeats: int = 2
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
            out["faces"].append(
                [
                    case(k, batch.aus[i].astype(np.float32), int(i), "prototype")
                    for i in idx[g * n_top : (g + 1) * n_top]
                ]
            )
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


def _planted_regions(
    group: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], signal: float, window: int = 32
) -> Any:
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
        d = drawing[y0 : y0 + window, x0 : x0 + window]
        e = edges[y0 : y0 + window, x0 : x0 + window]
        patches[0, n, 0] = np.sqrt(signal * d / max(d.sum(), 1e-12) + (1 - signal) * e / max(e.sum(), 1e-12))
        boxes[0, n] = (y0, x0, y0 + window, x0 + window)
    masks = np.stack([m for *_, m in group])
    return region_stats(
        torch.from_numpy(patches), torch.from_numpy(boxes), torch.arange(len(group))[None], lambda i: masks[i]
    )


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
    report.update(
        localisation_rule=DEFAULT_RULE,
        localisation_recovery=table,
        localisation_recovery_mean=overall,
        localisation_recovery_weak_signal=overall_weak,
        localisation_signal_shares=list(signals),
        localisation_recovery_lift_before=overall["lift"],
    )
    for scenario, row in table.items():
        print(
            f"[localisation] planted {scenario} ({row['n_filters']} filters, signal share {signals}): "
            + ", ".join(f"{rule} {row[rule]:.2f}" for rule in RULES)
        )
    print(
        "[localisation] mean over scenarios: "
        + ", ".join(f"{rule} {overall[rule]:.2f}" for rule in RULES)
        + "; signal share <= 0.2 only: "
        + ", ".join(f"{rule} {overall_weak[rule]:.2f}" for rule in RULES)
        + f"; default rule: {DEFAULT_RULE}"
    )


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
        return {
            "image": self.inputs[i],
            "index": i,
            "aus": torch.from_numpy(self.aus[i]),
            "subject": int(self.subjects[i]),
        }


def bench_probe(report: dict[str, Any], n_images: int) -> None:
    from captum_fau.concept import FAUKL

    faces = ProbeFaces(n_images)
    probe = AUTemplateProbe().eval()
    result = FAUKL(probe, ["drawing"], n_permutations=200, n_bootstrap=0, progress=False).interpret(faces)
    tops = result.top_aus()
    hits = [top == au for top, au in zip(tops, faces.au_ids)]
    report.update(probe_recovery=float(np.mean(hits)), probe_images=n_images)
    missed = [f"{au}->{top}" for top, au, ok in zip(tops, faces.au_ids, hits) if not ok]
    print(
        f"[probe] {n_images} images: top AU of channel k is AU k for {sum(hits)}/{len(hits)} channels"
        + (f"; missed {missed}" if missed else "")
    )


def trained_agreement(
    model: nn.Module,
    faces: Any,
    *,
    n_top: int = 5,
    alpha: float = 0.05,
    n_permutations: int = 500,
    max_filters: int | None = None,
) -> dict[str, Any]:
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
    best_q = np.where(st.testable, st.q, np.inf).min(axis=1)  # untested pairs (q = NaN) left out
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
    return {
        "agreement": out["rate"],
        "n_filters": out["n_filters"],
        "rule": out["rule"],
        "by_rule": {k[5:]: v for k, v in out.items() if k.startswith("rate_")},
    }


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
    report.update(
        trained_agreement=out["agreement"],
        trained_filters=out["n_filters"],
        trained_localisation_rule=out.get("rule"),
        trained_agreement_by_rule=out.get("by_rule"),
    )
    if out["agreement"] is None:
        report["trained_reason"] = out.get("reason", "no filter to compare")
    print(f"[trained] agreement {out['agreement']} over {out['n_filters']} significant filters")


#: Problem sizes of the full run and of ``--quick`` (used by the tests).
SIZES = {
    "full": dict(
        subjects=109,
        permutations=1000,
        speed_filters=256,
        speed_permutations=100,
        repeats=5,
        null_reps=10,
        planted_reps=6,
        truth_subjects=20000,
        localisation_images=400,
        localisation_repeats=4,
    ),
    "quick": dict(
        subjects=40,
        permutations=200,
        speed_filters=32,
        speed_permutations=100,
        repeats=5,
        null_reps=1,
        planted_reps=1,
        truth_subjects=2000,
        design_filters=12,
        design_subjects=50,
        designs=("unbalanced", "heavy_tailed", "emotion"),
        localisation_images=120,
        localisation_repeats=1,
    ),
}

#: The keys of the JSON line that come first (issue 16's targets).
KEYS = [
    "null_p05",
    "type1_001_worst",
    "bh_fwer_worst",
    "fdr",
    "power",
    "planted_named_first",
    "null_top_au_rarest_ratio",
    "null_top_au_share_max",
    "ci_coverage",
    "ci_coverage_under_10_subjects",
    "ci_coverage_planted",
    "ci_coverage_null",
    "ci_inside",
    "type1_clustered",
    "stratified_type1",
    "designs",
    "speedup_vs_vectorised",
    "probe_recovery",
    "trained_agreement",
    "speedup_vs_loop",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--quick", action="store_true", help="small sizes, statistics only (seconds; for tests)")
    parser.add_argument("--reps", type=int, default=None, help="null replicates per design (planted: 60%%)")
    parser.add_argument(
        "--designs", nargs="+", choices=list(DESIGNS), default=None, help="designs to run (default: all)"
    )
    parser.add_argument("--images", type=int, default=1308, help="SynthFACS images for the trained model")
    parser.add_argument("--probe-images", type=int, default=600, help="SynthFACS images for the probe")
    parser.add_argument("--skip-trained", action="store_true")
    parser.add_argument("--skip-models", action="store_true", help="skip the probe and the trained model")
    parser.add_argument(
        "--weights", default=None, help="trained SynthFACS weights (file or folder) to use instead of the zoo's"
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    size = dict(SIZES["quick" if args.quick else "full"])
    if args.reps is not None:
        size["null_reps"], size["planted_reps"] = args.reps, max(1, round(0.6 * args.reps))
    if args.designs:
        size["designs"] = tuple(args.designs)
    report: dict[str, Any] = {"sizes": size}
    bench_speed(report, size)
    bench_designs(report, size)
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
