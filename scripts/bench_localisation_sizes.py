"""Localisation recovery on planted filters at several model input sizes (issue 29, item 1).

The planted filters of ``scripts/bench_faukl.py`` ("localisation": rendered faces, a mouth AU inside
the jaw, the jaw with mouth AUs inside it; energy a share of the AU's own drawing, the rest the
face's edges) are planted in the frame of a model that takes ``S x S`` inputs: SynthFACS faces are
rendered at 96 px, go through ``InputSpec(size=S).apply`` as the model's inputs do, the windows
are conv3's 32 px receptive field scaled to ``S``, and the AU region masks come from
:func:`captum_fau.inputs.model_inputs.map_masks` (the path ``analyze`` takes). The share of planted
filters whose region the default rule names is printed per size; it must not depend on the size.
``--unmapped`` adds the previous behaviour (masks left at 96 px) for the sizes where it can run.

Usage::

    python scripts/bench_localisation_sizes.py                   # sizes 48 96 224
    python scripts/bench_localisation_sizes.py --quick --json    # small sizes (seconds; for tests)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_faukl import _localisation_groups  # noqa: E402

from captum_fau.concept.localisation import DEFAULT_RULE, RULES, rule_choices, region_stats  # noqa: E402
from captum_fau.inputs.model_inputs import map_masks  # noqa: E402
from captum_fau.inputs.spec import InputSpec  # noqa: E402

#: Signal shares of the planted windows (as bench_faukl's localisation section).
SIGNALS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.8)


def planted_regions(
    group: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], signal: float, spec: InputSpec, mapped: bool = True
) -> Any:
    """RegionStats of one planted filter in the frame of a model with input ``spec``."""
    from scipy.ndimage import gaussian_filter, sobel

    side = spec.output_size(group[0][1].shape)[0]
    window = max(4, int(round(32 * side / group[0][1].shape[0])))
    sigma = side / group[0][1].shape[0]
    images = spec.apply(torch.from_numpy(np.stack([g[1] for g in group])[:, None]).float().clamp(0, 1))[:, 0].numpy()
    without = spec.apply(torch.from_numpy(np.stack([g[2] for g in group])[:, None]).float().clamp(0, 1))[:, 0].numpy()
    patches = np.zeros((1, len(group), 1, window, window))
    boxes = np.zeros((1, len(group), 4), np.int64)
    for n in range(len(group)):
        image = images[n]
        drawing = gaussian_filter((image - without[n]) ** 2, sigma)
        edges = gaussian_filter(sobel(image, 0) ** 2 + sobel(image, 1) ** 2, sigma)
        cy, cx = np.unravel_index(int(np.argmax(drawing)), drawing.shape)
        y0 = int(np.clip(cy - window // 2, 0, image.shape[0] - window))
        x0 = int(np.clip(cx - window // 2, 0, image.shape[1] - window))
        d = drawing[y0 : y0 + window, x0 : x0 + window]
        e = edges[y0 : y0 + window, x0 : x0 + window]
        patches[0, n, 0] = np.sqrt(signal * d / max(d.sum(), 1e-12) + (1 - signal) * e / max(e.sum(), 1e-12))
        boxes[0, n] = (y0, x0, y0 + window, x0 + window)
    masks = np.stack([m for *_, m in group])
    if mapped:
        masks = map_masks(spec, masks)
    return region_stats(
        torch.from_numpy(patches), torch.from_numpy(boxes), torch.arange(len(group))[None], lambda i: masks[i]
    )


def recovery(groups: dict[str, list], spec: InputSpec, mapped: bool = True) -> dict[str, float]:
    """Share of planted filters (all scenarios and signal shares) whose planted AU each rule names."""
    hits: dict[str, list[bool]] = {rule: [] for rule in RULES}
    for cases in groups.values():
        for group in cases:
            for signal in SIGNALS:
                picks = rule_choices(planted_regions(group, signal, spec, mapped))
                for rule in RULES:
                    hits[rule].append(bool(picks[rule][0] == group[0][0]))
    return {rule: float(np.mean(v)) for rule, v in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[48, 96, 224])
    parser.add_argument("--images", type=int, default=400, help="SynthFACS images the planted groups come from")
    parser.add_argument("--quick", action="store_true", help="120 images, one repeat of the nested cases")
    parser.add_argument("--unmapped", action="store_true", help="also the masks left at 96 px (the previous code)")
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    args = parser.parse_args()
    groups = _localisation_groups(21, 120 if args.quick else args.images, 10, 1 if args.quick else 4)
    report: dict[str, Any] = {"rule": DEFAULT_RULE, "n_filters": sum(len(c) for c in groups.values()) * len(SIGNALS)}
    table = {}
    for size in args.sizes:
        table[size] = recovery(groups, InputSpec(size=size))
        print(
            f"[localisation {size}x{size}] {DEFAULT_RULE} {table[size][DEFAULT_RULE]:.3f}; "
            + ", ".join(f"{rule} {table[size][rule]:.3f}" for rule in RULES if rule != DEFAULT_RULE)
        )
        if args.unmapped and size <= 96 and size != 96:
            before = recovery(groups, InputSpec(size=size), mapped=False)
            report.setdefault("unmapped", {})[size] = before
            print(f"[localisation {size}x{size}, masks left at 96 px] {DEFAULT_RULE} {before[DEFAULT_RULE]:.3f}")
    values = [table[s][DEFAULT_RULE] for s in args.sizes]
    report.update(recovery={s: table[s] for s in args.sizes}, spread=float(max(values) - min(values)))
    print(
        f"[localisation] {DEFAULT_RULE} rule over {report['n_filters']} planted filters: "
        + ", ".join(f"{s} px {v:.3f}" for s, v in zip(args.sizes, values))
        + f"; spread {report['spread']:.3f}"
    )
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
