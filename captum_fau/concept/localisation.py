"""Where do a filter's reconstructions fall? Agreement of FAU-KL with AU regions.

The paper checked by eye that the facial region a filter's top-N
reconstructions light up matches the AU that FAU-KL associates with the
filter. Where ground-truth AU regions are known (SynthFACS renders them;
landmark-derived regions work the same way), this module turns the check into
a number. For each filter and AU region it measures the share of the
reconstruction energy inside the region, the share of the reconstructed windows'
area the region covers, their pairwise overlaps, and how often a reconstruction's
maximum falls inside the region (the pointing game, whose chance level is the
area share).

The default rule, ``"nested"``, names the most specific region that holds most of
the energy: start from the region with the largest energy share, and move into a
region nested in it (at least 90% of its pixels inside) while that one holds most
of its energy at a higher density (regions nest: the jaw of AU26/27, about 2,000 px,
contains the lip regions of AU12, AU25, ...). It was chosen by a measurement on
planted truth (``scripts/bench_faukl.py``, "localisation"): reconstructions whose
energy is a share (5% to 80%) of an AU's own drawing and the rest the face's edges,
in conv3's 32x32 windows, on SynthFACS's region masks; the share of planted filters
for which a rule names the planted AU, for rendered faces / a mouth AU inside the
jaw / the jaw with mouth AUs inside it, is printed there and written to the JSON
(``localisation_recovery``). The largest raw energy share never names a region
nested in a present larger one (0.00 for the mouth AUs inside the jaw); the lift
(energy share / area share, the previous default) is fooled by a few pixels of a
small region (about 0.35 on faces, 0.00 for the jaw); the pointing game (maxima
inside, smallest region on ties) matches the nested rule at strong signals but
falls behind it when the AU's drawing holds 20% of the energy or less. Those
rules, the energy-minus-area excess and a binomial concentration score are kept
only as labelled comparisons (``rate_<rule>`` of :func:`localisation_agreement`).

Examples::

    >>> import numpy as np, torch
    >>> from captum_fau.concept.localisation import region_energy
    >>> patches = torch.ones(1, 2, 1, 2, 2)                  # [F, N, C, h, w]
    >>> boxes = torch.tensor([[[0, 0, 2, 2], [2, 2, 4, 4]]])  # [F, N, 4]
    >>> masks = np.zeros((2, 2, 4, 4), bool); masks[:, 0, :2, :2] = True
    >>> region_energy(patches, boxes, torch.tensor([[0, 1]]), lambda idx: masks[idx]).round(2)
    array([[0.5, 0. ]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from scipy.special import rel_entr

from captum_fau.errors import ConfigError

MasksFn = Callable[[np.ndarray], np.ndarray]

#: Filters whose region masks :func:`region_stats` asks for at once.
_MASK_CHUNK = 16


def region_energy(
    patches: torch.Tensor,
    boxes: torch.Tensor,
    indices: torch.Tensor,
    masks_for: MasksFn,
) -> np.ndarray:
    """Share of each filter's squared reconstruction inside each AU region.

    Args:
        patches (Tensor): ``[F, N, C, h, w]`` reconstructions in their receptive-field windows.
        boxes (Tensor): ``[F, N, 4]`` ``(y0, x0, y1, x1)`` of each window in the image.
        indices (Tensor): ``[F, N]`` dataset index of each image.
        masks_for (callable): Dataset indices ``[k]`` -> bool masks ``[k, J, H, W]``.

    Returns:
        np.ndarray: ``[F, J]``; row ``f`` sums to at most 1 (energy outside every region is the rest).
    """
    return region_stats(patches, boxes, indices, masks_for).energy


@dataclass
class RegionStats:
    """Per filter and AU region, statistics of a filter's top-N reconstructions (rows: filters).

    Attributes:
        energy (np.ndarray): ``[F, J]`` share of the squared reconstruction inside each region.
        area (np.ndarray): ``[F, J]`` share of the reconstructed windows' pixels inside each region.
        pointing (np.ndarray): ``[F, J]`` share of the ``N`` reconstructions whose maximum of
            squared value lies inside the region (pointing game).
        pair_energy (np.ndarray, optional): ``[F, J, J]`` energy share inside the intersection of
            two regions (its diagonal is ``energy``); needed by the ``"nested"`` rule.
        pair_area (np.ndarray, optional): ``[F, J, J]`` area share of the intersections.
    """

    energy: np.ndarray
    area: np.ndarray
    pointing: np.ndarray
    pair_energy: np.ndarray | None = None
    pair_area: np.ndarray | None = None

    @property
    def excess(self) -> np.ndarray:
        """``[F, J]`` energy share - area share: the energy beyond what the region's size predicts
        (0 for energy spread evenly, at most ``1 - area`` for energy all inside the region)."""
        return self.energy - self.area

    @property
    def concentration(self) -> np.ndarray:
        """``[F, J]`` ``KL(Bernoulli(energy) || Bernoulli(area))`` where the energy share exceeds the
        area share, its negative where it falls short: the log-likelihood ratio per unit of energy of
        a binomial test of the energy share against the area share (0 where the region is not in
        the windows). A region holding all the energy scores ``-log(area)``, so a small region nested
        in a large one wins when the energy is in the small one; a few pixels with a high lift but
        little energy score little."""
        e = np.clip(self.energy, 0.0, 1.0)
        a = np.clip(self.area, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = rel_entr(e, a) + rel_entr(1.0 - e, 1.0 - a)
        kl = np.where(np.isfinite(kl), kl, 0.0)  # area 1 with energy < 1 cannot happen; guard anyway
        return np.where(a > 0, np.sign(e - a) * kl, 0.0)

    @property
    def lift(self) -> np.ndarray:
        """``[F, J]`` energy share / area share (0 where the region is not in the windows)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.area > 0, self.energy / np.where(self.area > 0, self.area, 1.0), 0.0)


def region_stats(patches: torch.Tensor, boxes: torch.Tensor, indices: torch.Tensor, masks_for: MasksFn) -> RegionStats:
    """Energy share, area share and pointing-game hits of each filter's reconstructions per AU region.

    Args: as :func:`region_energy`.

    Returns:
        RegionStats

    Examples::

        >>> import numpy as np, torch
        >>> patches = torch.zeros(1, 1, 1, 4, 4); patches[0, 0, 0, 0, 0] = 1.0; patches[0, 0, 0, 3, :] = 0.5
        >>> masks = np.zeros((1, 2, 4, 4), bool); masks[0, 0, 0, 0] = True; masks[0, 1, 2:] = True
        >>> st = region_stats(patches, torch.tensor([[[0, 0, 4, 4]]]), torch.tensor([[0]]), lambda i: masks[i])
        >>> st.energy.round(2), st.area.round(3), st.lift.round(1), st.pointing
        (array([[0.5, 0.5]]), array([[0.062, 0.5  ]]), array([[8., 1.]]), array([[1., 0.]]))
    """
    if patches.dim() != 5 or boxes.shape[:2] != patches.shape[:2] or indices.shape != patches.shape[:2]:
        raise ConfigError(
            f"patches [F, N, C, h, w], boxes [F, N, 4] and indices [F, N] must agree; got "
            f"{tuple(patches.shape)}, {tuple(boxes.shape)}, {tuple(indices.shape)}."
        )
    energy = patches.detach().double().pow(2).sum(dim=2).numpy()  # [F, N, h, w]
    f_count, n = energy.shape[:2]
    out_point, pair_energy, pair_area = np.zeros((f_count, 0)), np.zeros((f_count, 0, 0)), np.zeros((f_count, 0, 0))
    for f in range(f_count):
        if f % _MASK_CHUNK == 0:  # masks of a chunk of filters at a time: memory bounded at any input size
            unique, inverse = np.unique(indices[f : f + _MASK_CHUNK].numpy().reshape(-1), return_inverse=True)
            masks = np.asarray(masks_for(unique))  # [U, J, H, W]
            inverse = inverse.reshape(-1, n)
            regions = masks.shape[1]
            _check_frame(masks.shape[2:], boxes[f : f + _MASK_CHUNK])
            if f == 0:
                out_point = np.zeros((f_count, regions))
                pair_energy, pair_area = np.zeros((f_count, regions, regions)), np.zeros((f_count, regions, regions))
        total, pixels, live = energy[f].sum(), 0, 0
        for k in range(n):
            y0, x0, y1, x1 = (int(v) for v in boxes[f, k])
            window = masks[inverse[f % _MASK_CHUNK, k], :, y0:y1, x0:x1]  # [J, h', w'] (clipped at the border)
            e = energy[f, k, : window.shape[1], : window.shape[2]]
            flat = window.reshape(regions, -1).astype(np.float64)
            pair_energy[f] += (flat * e.reshape(1, -1)) @ flat.T  # [J, J] energy in each intersection
            pair_area[f] += flat @ flat.T
            pixels += e.size
            if e.max() > 0:
                live += 1
                peak = np.unravel_index(int(np.argmax(e)), e.shape)
                out_point[f] += window[:, peak[0], peak[1]]
        if total > 0:
            pair_energy[f] /= total
        pair_area[f] /= max(pixels, 1)
        out_point[f] /= max(live, 1)
    diag = np.arange(pair_energy.shape[1])
    return RegionStats(
        pair_energy[:, diag, diag].copy(), pair_area[:, diag, diag].copy(), out_point, pair_energy, pair_area
    )


def _check_frame(mask_size: tuple[int, ...], boxes: torch.Tensor) -> None:
    """Masks and windows must share the model's input frame: a window reaching past the masks means they do not."""
    reach = (int(boxes[..., 2].max()), int(boxes[..., 3].max())) if boxes.numel() else (0, 0)
    if reach[0] > mask_size[0] or reach[1] > mask_size[1]:
        raise ConfigError(
            f"the region masks are {mask_size[0]}x{mask_size[1]} but the reconstruction windows reach "
            f"{reach[0]}x{reach[1]}: masks and windows must be in the model's input frame (map masks drawn on the "
            "raw crops with captum_fau.inputs.model_inputs.map_masks(spec, masks))."
        )


def nested_choice(regions: RegionStats, row: int, nested: float = 0.9) -> int:
    """The ``"nested"`` rule for one filter: the region with the most energy, refined into nested regions.

    Start from the region holding the largest energy share (ties: the smaller region). While a
    region ``c`` nested in the current one ``r`` (at least ``nested`` of ``c``'s pixels inside
    ``r``, and ``c`` smaller) holds most of ``r``'s energy (``E(c & r) > E(r) / 2``) at a higher
    density than ``r`` (its energy share of ``r`` above its area share of ``r``), move to it (the
    one holding the most energy); the answer is the most specific region that holds most of the
    energy. A large region (the jaw) is thus not named for energy that sits in a small region inside
    it (the lip corners), and a small region is not named for a few pixels (its energy must be the
    majority of its parent's).

    Args:
        regions (RegionStats): With ``pair_energy`` and ``pair_area`` (from :func:`region_stats`).
        row (int): The filter's row.
        nested (float): Share of a region's pixels inside another for it to count as nested in
            it. Default: 0.9

    Returns:
        int: The chosen region's column.
    """
    if regions.pair_energy is None or regions.pair_area is None:
        raise ConfigError("the 'nested' rule needs the pairwise overlaps: pass region_stats(...) output.")
    e, a = regions.energy[row], regions.area[row]
    pe, pa = regions.pair_energy[row], regions.pair_area[row]
    order = np.lexsort((a, -e))  # most energy first, then the smaller region
    current = int(order[0])
    while True:
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = pa[:, current] / a  # share of each region's pixels inside the current one
            denser = pe[:, current] / e[current] > pa[:, current] / a[current]
        ok = (a > 0) & (a < a[current]) & (inside >= nested) & (pe[:, current] > e[current] / 2) & denser
        ok[current] = False
        if not ok.any():
            return current
        current = int(np.flatnonzero(ok)[np.argmax(pe[ok, current])])


#: Rules of :func:`localisation_agreement`: the AU region with ... (``"nested"`` is the default; the
#: others are labelled comparisons).
RULES = {
    "nested": "most energy, refined into the nested region holding most of it (most specific region)",
    "energy": "largest raw energy share (biased to large masks)",
    "lift": "largest energy share relative to area share (the previous default; biased to small masks)",
    "pointing": "most reconstruction maxima inside it, the smallest such region on ties (pointing game)",
    "concentration": "energy share most significantly above area share (binomial likelihood ratio)",
    "excess": "largest energy share minus area share",
}
DEFAULT_RULE = "nested"

#: What the default rule does, in a sentence for reports.
RULE_DESCRIPTIONS = {
    "nested": "For every filter with a significant association, the AU region holding the largest share of its "
              "top-N reconstruction energy, refined into a region nested inside it (90% of its pixels inside) "
              "while that region holds most of the energy at a higher density: the most specific region holding "
              "most of the energy (a lip region inside the jaw when the energy is on the lips, the jaw when it is "
              "spread over the jaw). The rule was chosen on planted SynthFACS truth, where it named "
              "the planted AU most often.",
    "pointing": "For every filter with a significant association, each of its top-N reconstructions points at "
                "the pixel of its largest squared value; the filter's AU region is the one holding the most of "
                "these maxima (the pointing game; on ties the smallest region). Chance for a region is its share "
                "of the windows' area.",
    "energy": "For every filter with a significant association, the AU region holding the largest share of its "
              "top-N reconstruction energy (biased to large regions).",
    "lift": "For every filter with a significant association, the AU region with the largest share of its top-N "
            "reconstruction energy relative to the share of the windows it covers (lift; biased to small regions).",
    "concentration": "For every filter with a significant association, the AU region whose energy share lies most "
                     "significantly above its area share (binomial likelihood ratio).",
    "excess": "For every filter with a significant association, the AU region with the largest energy share minus "
              "area share.",
}  # fmt: skip


def _argmax_smallest(values: np.ndarray, area: np.ndarray) -> int:
    """Column of the largest value; among ties, the smallest region (the most specific answer)."""
    best = np.flatnonzero(values >= values.max() - 1e-12)
    return int(best[np.argmin(area[best])]) if np.isfinite(area[best]).all() else int(best[0])


def rule_choices(regions: RegionStats, min_area: float = 0.01) -> dict[str, np.ndarray]:
    """``{rule: [F] column chosen by the rule}`` for every rule computable from ``regions``; -1 where a
    filter has no energy in any region (or, for ``"lift"``, no region of at least ``min_area``)."""
    has_area = not np.isnan(regions.area).all()
    scores: dict[str, np.ndarray] = {"energy": regions.energy}
    if has_area:
        present = regions.area > 0
        scores.update(
            lift=np.where(regions.area >= min_area, regions.lift, -np.inf),
            concentration=np.where(present, regions.concentration, -np.inf),
            excess=np.where(present, regions.excess, -np.inf),
            pointing=regions.pointing,
        )
    area = regions.area if has_area else np.zeros_like(regions.energy)
    out: dict[str, np.ndarray] = {}
    for name, values in scores.items():
        out[name] = np.array([
            _argmax_smallest(values[r], area[r]) if regions.energy[r].max() > 0 and np.isfinite(values[r]).any()
            and (name != "pointing" or values[r].max() > 0) else -1
            for r in range(len(values))
        ], dtype=np.int64)  # fmt: skip
    if regions.pair_energy is not None:
        out["nested"] = np.array(
            [nested_choice(regions, r) if regions.energy[r].max() > 0 else -1 for r in range(len(regions.energy))],
            dtype=np.int64,
        )
    return out


def localisation_agreement(
    regions: RegionStats | np.ndarray,
    top_au: Sequence[str],
    au_ids: Sequence[str],
    filters: Sequence[int],
    rule: str = DEFAULT_RULE,
    min_area: float = 0.01,
) -> dict[str, Any]:
    """Compare FAU-KL's top AU of each filter with the AU region its reconstructions concentrate in.

    The default rule, ``"nested"`` (:func:`nested_choice`), names the most specific region holding
    most of the energy; it named the planted AU most often on planted truth (module docstring,
    ``scripts/bench_faukl.py``). The other rules are labelled comparisons (``rate_<rule>``).

    Args:
        regions (RegionStats or np.ndarray): From :func:`region_stats`, rows in the order of
            ``filters``; a bare ``[F, J]`` energy array (:func:`region_energy`) allows only
            ``rule="energy"``.
        top_au (sequence of str): FAU-KL's top AU for each of ``filters``.
        au_ids (sequence of str): The ``J`` AU ids of the columns.
        filters (sequence of int): Filter numbers, for the per-filter rows.
        rule (str, optional): One of :data:`RULES`. Default: ``"nested"``
        min_area (float, optional): Regions covering less than this share of a filter's windows
            are not named by ``"lift"`` (a few pixels give unstable ratios). Default: 0.01

    Returns:
        dict: ``rule``, ``rule_label`` and ``rule_description``, ``rate`` (agreement under ``rule``
        over filters whose reconstructions reach some region, or None), ``n_filters``, every
        computable rule's rate as ``rate_<rule>`` with ``comparison`` (``{rule: (label, rate)}``
        for the other rules), ``pointing_hit`` (mean share of reconstruction maxima inside
        FAU-KL's top AU) with ``pointing_chance`` (the mean area share of that AU), and
        ``per_filter`` rows ``{filter, fau_kl_au, region_au, rule, region_hits, lift, share,
        area, pointing, pointing_chance, energy_au, agree, agree_<rule>...}`` (``region_hits``,
        ``lift``, ``share`` and ``area`` describe the chosen region; ``pointing`` and
        ``pointing_chance`` FAU-KL's top AU).

    Examples::

        >>> import numpy as np
        >>> e = np.array([[0.9, 1.0, 0.05]]); a = np.array([[0.2, 1.0, 0.01]])  # region 0 inside region 1
        >>> pe = np.diag(e[0])[None].copy(); pe[0, 0, 1] = pe[0, 1, 0] = 0.9
        >>> pa = np.diag(a[0])[None].copy(); pa[0, 0, 1] = pa[0, 1, 0] = 0.2
        >>> hits = np.array([[0.7, 0.7, 0.3]])  # 7 of 10 maxima in region 0 (so in region 1 too)
        >>> st = RegionStats(e, a, hits, pe, pa)
        >>> out = localisation_agreement(st, ["AU12"], ["AU12", "AU26", "AU2"], [0])
        >>> out["per_filter"][0]["region_au"], out["rate_energy"], out["rate_lift"], out["rate_pointing"]
        ('AU12', 0.0, 0.0, 1.0)
    """
    if rule not in RULES:
        raise ConfigError(f"Unknown localisation rule {rule!r}; use one of {', '.join(RULES)}.")
    if not isinstance(regions, RegionStats):
        if rule != "energy":
            raise ConfigError(
                f"rule={rule!r} needs the area shares: pass region_stats(...) instead of the energy array "
                "(rule='energy' works on energy alone but is biased to large masks)."
            )
        regions = RegionStats(
            np.asarray(regions), np.full(np.shape(regions), np.nan), np.full(np.shape(regions), np.nan)
        )
    if rule == "nested" and regions.pair_energy is None:
        raise ConfigError("rule='nested' needs the pairwise overlaps of region_stats(...); this RegionStats has none.")
    has_area = not np.isnan(regions.area).all()
    au_index = {au: j for j, au in enumerate(au_ids)}
    picks = rule_choices(regions, min_area)
    rows = []
    for r, f in enumerate(filters):
        j = int(picks[rule][r])
        if j < 0:
            continue
        named = {name: au_ids[int(c[r])] if c[r] >= 0 else None for name, c in picks.items()}
        top_j = au_index.get(top_au[r])
        rows.append({
            "filter": int(f), "fau_kl_au": top_au[r], "region_au": named[rule], "rule": rule,
            "region_hits": float(regions.pointing[r, j]) if has_area else None,
            "lift": float(regions.lift[r, j]) if has_area else None, "share": float(regions.energy[r, j]),
            "area": float(regions.area[r, j]) if has_area else None,
            "pointing": float(regions.pointing[r, top_j]) if has_area and top_j is not None else None,
            "pointing_chance": float(regions.area[r, top_j]) if has_area and top_j is not None else None,
            "energy_au": named["energy"], "agree": named[rule] == top_au[r],
            **{f"agree_{name}": named[name] == top_au[r] for name in picks},
        })  # fmt: skip
    mean = lambda key: float(np.mean([row[key] for row in rows])) if rows else None  # noqa: E731
    out: dict[str, Any] = {
        "rule": rule,
        "rule_label": RULES[rule],
        "rule_description": RULE_DESCRIPTIONS[rule],
        "rate": mean("agree"),
        "n_filters": len(rows),
        "min_area": min_area,
        "per_filter": rows,
    }
    for name in picks:
        out[f"rate_{name}"] = mean(f"agree_{name}")
    out["comparison"] = {name: (RULES[name], out[f"rate_{name}"]) for name in RULES if name in picks and name != rule}
    pointed = [row for row in rows if row["pointing"] is not None]
    out["pointing_hit"] = float(np.mean([row["pointing"] for row in pointed])) if pointed else None
    out["pointing_chance"] = float(np.mean([row["pointing_chance"] for row in pointed])) if pointed else None
    return out


__all__ = [
    "DEFAULT_RULE",
    "RULES",
    "RULE_DESCRIPTIONS",
    "RegionStats",
    "localisation_agreement",
    "nested_choice",
    "region_energy",
    "region_stats",
    "rule_choices",
]
