"""Causal-probe benchmark: planted ground truth (recovery, false positives, ablation rank) and speed.

Usage::

    python scripts/bench_causal.py --json          # everything; one JSON line last
    python scripts/bench_causal.py --quick --json  # ground truth on few seeds, small speed case (tests)

Sections:

1. ``causal_recovery``: planted region networks (:func:`captum_fau.probes.planted.region_filter_net`,
   one filter per AU seeing the pixels only that AU changes among AU1, AU5, AU6, AU9, AU12, AU15,
   AU17; "energy" and "brightness" filters; 16 faces; several seeds): the share of planted (filter, AU)
   pairs whose top causal AU is the planted one. ``causal_false_positive``: the brow-masked
   no-effect network (:func:`~captum_fau.probes.planted.brow_masked_net`) probed on all 20 AUs: the
   share of (filter, mouth AU) pairs reported significant (BH q < 0.05). ``region_off_target_positive``:
   the same share for the region networks' non-planted pairs.
2. ``importance_planted_rank1``: planted-decision networks (the happy logit weighs one planted
   filter): the share whose planted filter ranks first for happy under zero ablation.
3. Speed on the zoo model (``zerobias-synthfacs-8class``, conv3): the probe for 256 filters x 20 AUs x
   6 intensities x 64 faces (neutral base, ``precision="bfloat16"``; one float32 run for comparison
   and the largest effect difference between the two), and the ablation of all 256 filters (zero and
   mean) over 1,308 SynthFACS images from cached activations (the one activation pass timed apart);
   medians over ``--repeats`` (>= 5). ``ablation_vs_captum_max_abs_err``: the largest difference of the
   log-probability drops against Captum's ``LayerFeatureAblation`` on 3 filters x 64 images, with the
   per-filter speedup.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench  # noqa: E402

from captum_fau import InputSpec, zoo  # noqa: E402
from captum_fau.synthfacs import load_synthfacs, render  # noqa: E402
from captum_fau.probes import AUProbe, FilterImportance, ProbeOptions  # noqa: E402
from captum_fau.probes.planted import (  # noqa: E402
    MOUTH_AUS,
    brow_masked_net,
    exclusive_masks,
    planted_decision_net,
    region_filter_net,
)

REGION_AUS = ("AU1", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17")
SPEC = InputSpec(size=96)


def ground_truth(report: dict[str, Any], seeds: list[int], n_faces: int) -> None:
    hits = pairs = off_sig = off_n = 0
    for seed in seeds:
        masks = exclusive_masks(seed, n_faces, 96, REGION_AUS)
        for feature in ("energy", "brightness"):
            net, planted = region_filter_net(masks, feature=feature)
            options = ProbeOptions(n_faces=n_faces, seed=seed, prototypes=False)
            res = AUProbe(net.eval(), "1", SPEC, aus=REGION_AUS, options=options).probe(progress=False)
            hits += sum(top == au for top, au in zip(res.top_au, planted))
            pairs += len(planted)
            own = np.array([[res.aus[j] == au for j in range(len(res.aus))] for au in planted])
            off_sig += int(res.significant[~own].sum())
            off_n += int((~own).sum())
    fp = fp_n = 0
    exact = True
    for seed in seeds:
        net = brow_masked_net(seed, n_faces, 96).eval()
        res = AUProbe(net, "body.2", SPEC, options=ProbeOptions(n_faces=n_faces, seed=seed, prototypes=False)
                      ).probe(progress=False)  # fmt: skip
        mouth = [res.aus.index(a) for a in MOUTH_AUS]
        fp += int(res.significant[:, mouth].sum())
        fp_n += res.significant[:, mouth].size
        exact &= bool(np.all(res.diff[:, mouth] == 0))
    report.update(causal_recovery=hits / pairs, causal_recovery_pairs=pairs, causal_false_positive=fp / fp_n,
                  causal_false_positive_pairs=fp_n, no_effect_exactly_zero=exact,
                  region_off_target_positive=off_sig / off_n)  # fmt: skip


def planted_importance(report: dict[str, Any], n_models: int) -> None:
    batch = render(96, seed=2)
    x = SPEC.apply(torch.from_numpy(batch.images)[:, None])
    first = 0
    for planted in range(n_models):
        net = planted_decision_net(planted, seed=planted)
        res = FilterImportance(net, "conv").run(
            x,
            batch.emotions,
            ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"),
            units=batch.subjects,
            progress=False,
        )
        first += res.ranking("zero")["happy"][0] == planted
    report.update(importance_planted_rank1=first / n_models, importance_planted_models=n_models)


def _median(values: list[float]) -> dict[str, float]:
    return _bench.spread(values, digits=3)


def probe_speed(report: dict[str, Any], model: torch.nn.Module, n_faces: int, repeats: int) -> None:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = AUProbe(model, "conv3", options=ProbeOptions(n_faces=n_faces, prototypes=False, precision="bfloat16")
                         ).probe(progress=False)  # fmt: skip
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    exact = AUProbe(model, "conv3", options=ProbeOptions(n_faces=n_faces, prototypes=False)).probe(progress=False)
    fp32 = time.perf_counter() - start
    assert result is not None
    agree = np.mean([a == b for a, b in zip(result.top_au, exact.top_au)])
    report.update(probe_seconds=statistics.median(times), probe_seconds_spread=_median(times),
                  probe_precision="bfloat16", probe_seconds_float32=fp32,
                  probe_bf16_vs_fp32_max_effect_diff=float(np.abs(result.effect - exact.effect).max()),
                  probe_bf16_vs_fp32_top_au_agreement=float(agree),
                  probe_size={"filters": int(result.effect.shape[0]), "aus": len(result.aus), "intensities": 6,
                              "faces": n_faces},
                  probe_filters_with_causal_au=int(sum(a is not None for a in exact.top_au)))  # fmt: skip


def ablation_speed(report: dict[str, Any], model: torch.nn.Module, n_images: int, repeats: int) -> None:
    from captum_fau.inputs import ModelInputs
    from captum_fau.inputs.resolve import resolve_input_spec

    faces = load_synthfacs(n_images, seed=7)
    x = ModelInputs(faces, resolve_input_spec(model, (1, 96, 96))).tensors()  # THE input decision, as analyze makes it
    imp = FilterImportance(model, "conv3")
    layer, split = imp.split(x[:4])
    start = time.perf_counter()
    cached = imp.cache(split, x, 128, progress=False)
    activation_pass = time.perf_counter() - start
    targets = torch.from_numpy(np.maximum(faces.emotions, 0))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for mode in ("zero", "mean"):
            imp.ablated_logp(split, cached["reduced"], cached[f"fill_{mode}"], targets, progress=False)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    full = imp.run(x, faces.emotions, faces.class_names, units=faces.subjects, progress=False)
    end_to_end = time.perf_counter() - start
    check = imp.compare_with_captum(x[:64], targets[:64].numpy(), [0, 1, 2])
    report.update(ablation_seconds=statistics.median(times), ablation_seconds_spread=_median(times),
                  ablation_images=n_images, ablation_activation_pass_seconds=activation_pass,
                  ablation_end_to_end_seconds=end_to_end, ablation_vs_captum_max_abs_err=check["max_abs_err"],
                  ablation_speedup_vs_captum_per_filter=check["speedup"],
                  importance_top_happy_filters=full.ranking()["happy"][:5])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--quick", action="store_true", help="few seeds, small speed case (for tests)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each speed phase (>= 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target: 2 CPU cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    repeats = 1 if args.quick else max(5, args.repeats)  # medians over >= 5 repeats (1 in --quick, for tests)
    report: dict[str, Any] = {"environment": _bench.environment("cpu"), "repeats": repeats}
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    ground_truth(report, seeds, 12 if args.quick else 16)
    planted_importance(report, 3 if args.quick else 10)
    model = zoo.load("zerobias-synthfacs-8class")
    probe_speed(report, model, 4 if args.quick else 64, repeats)
    ablation_speed(report, model, 96 if args.quick else 1308, repeats)
    for key in ("causal_recovery", "causal_false_positive", "importance_planted_rank1", "probe_seconds",
                "ablation_seconds", "ablation_vs_captum_max_abs_err"):  # fmt: skip
        print(f"{key}: {report[key]}")
    if args.json:
        print(json.dumps(report, default=lambda v: round(float(v), 6)))


if __name__ == "__main__":
    main()
