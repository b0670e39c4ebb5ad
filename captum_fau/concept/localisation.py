"""Where do a filter's reconstructions fall? Agreement of FAU-KL with AU regions.

The paper checked by eye that the facial region a filter's top-N
reconstructions light up matches the AU that FAU-KL associates with the
filter. Where ground-truth AU regions are known (SynthFACS renders them;
landmark-derived regions work the same way), this module turns the check into
a number: for each filter, the share of its reconstruction energy inside each
AU's region, relative to the share of the reconstructed windows' area the region
covers (the *lift*; 1 = no more energy than its size predicts), and how often the
reconstruction's maximum falls inside the region (a pointing game). The default
rule names the AU region with the largest lift; the largest raw energy share is
kept only as a labelled comparison, because a large region (the jaw for AU26/27,
about 2,000 px, containing AU12's 244 px) collects more energy by its size alone.

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

from captum_fau.errors import ConfigError

MasksFn = Callable[[np.ndarray], np.ndarray]


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
    """

    energy: np.ndarray
    area: np.ndarray
    pointing: np.ndarray

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
    unique, inverse = np.unique(indices.numpy().reshape(-1), return_inverse=True)
    masks = np.asarray(masks_for(unique))  # [U, J, H, W]
    inverse = inverse.reshape(f_count, n)
    regions = masks.shape[1]
    out_energy, out_area, out_point = np.zeros((f_count, regions)), np.zeros((f_count, regions)), np.zeros((f_count, regions))
    for f in range(f_count):
        total, pixels, live = energy[f].sum(), 0, 0
        for k in range(n):
            y0, x0, y1, x1 = (int(v) for v in boxes[f, k])
            window = masks[inverse[f, k], :, y0:y1, x0:x1]  # [J, h', w'] (clipped at the border)
            e = energy[f, k, : window.shape[1], : window.shape[2]]
            out_energy[f] += (window * e).sum(axis=(1, 2))
            out_area[f] += window.sum(axis=(1, 2))
            pixels += e.size
            if e.max() > 0:
                live += 1
                peak = np.unravel_index(int(np.argmax(e)), e.shape)
                out_point[f] += window[:, peak[0], peak[1]]
        if total > 0:
            out_energy[f] /= total
        out_area[f] /= max(pixels, 1)
        out_point[f] /= max(live, 1)
    return RegionStats(out_energy, out_area, out_point)


#: Rules of :func:`localisation_agreement`: the AU region with the largest value of ...
RULES = {
    "lift": "largest energy share relative to area share",
    "pointing": "most reconstruction maxima inside the region (pointing game)",
    "energy": "largest raw energy (biased to large masks)",
}


def localisation_agreement(
    regions: RegionStats | np.ndarray,
    top_au: Sequence[str],
    au_ids: Sequence[str],
    filters: Sequence[int],
    rule: str = "lift",
    min_area: float = 0.01,
) -> dict[str, Any]:
    """Compare FAU-KL's top AU of each filter with the AU region its reconstructions concentrate in.

    Args:
        regions (RegionStats or np.ndarray): From :func:`region_stats`, rows in the order of
            ``filters``; a bare ``[F, J]`` energy array (:func:`region_energy`) allows only
            ``rule="energy"``.
        top_au (sequence of str): FAU-KL's top AU for each of ``filters``.
        au_ids (sequence of str): The ``J`` AU ids of the columns.
        filters (sequence of int): Filter numbers, for the per-filter rows.
        rule (str, optional): ``"lift"`` (energy share / area share, normalised for mask size),
            ``"pointing"`` or ``"energy"`` (the largest raw energy share, biased to large masks;
            a comparison only). Default: ``"lift"``
        min_area (float, optional): Regions covering less than this share of a filter's windows
            are not named by ``"lift"`` (a few pixels give unstable ratios). Default: 0.01

    Returns:
        dict: ``rule`` and its description, ``rate`` (agreement under ``rule`` over filters with
        energy in some region, or None), ``n_filters``, the other rules' rates under
        ``rate_energy`` / ``rate_pointing`` / ``rate_lift`` (when computable), ``pointing_hit``
        (mean share of reconstruction maxima inside FAU-KL's top AU) with ``pointing_chance``
        (the mean area share of that AU), and ``per_filter`` rows ``{filter, fau_kl_au,
        region_au, lift, share, area, pointing, energy_au, agree, agree_energy}``.
    """
    if rule not in RULES:
        raise ConfigError(f"Unknown localisation rule {rule!r}; use one of {', '.join(RULES)}.")
    if not isinstance(regions, RegionStats):
        if rule != "energy":
            raise ConfigError(
                f"rule={rule!r} needs the area shares: pass region_stats(...) instead of the energy array "
                "(rule='energy' works on energy alone but is biased to large masks)."
            )
        regions = RegionStats(np.asarray(regions), np.full(np.shape(regions), np.nan), np.full(np.shape(regions), np.nan))
    has_area = not np.isnan(regions.area).all()
    au_index = {au: j for j, au in enumerate(au_ids)}
    choices: dict[str, np.ndarray] = {"energy": regions.energy}
    if has_area:
        choices["lift"] = np.where(regions.area >= min_area, regions.lift, -np.inf)
        choices["pointing"] = regions.pointing
    rows = []
    for r, f in enumerate(filters):
        if regions.energy[r].max() <= 0 or not np.isfinite(choices[rule][r]).any():
            continue
        picked = {name: au_ids[int(np.argmax(values[r]))] for name, values in choices.items()}
        j = int(np.argmax(choices[rule][r]))
        top_j = au_index.get(top_au[r])
        rows.append({
            "filter": int(f), "fau_kl_au": top_au[r], "region_au": picked[rule],
            "lift": float(regions.lift[r, j]) if has_area else None, "share": float(regions.energy[r, j]),
            "area": float(regions.area[r, j]) if has_area else None,
            "pointing": float(regions.pointing[r, top_j]) if has_area and top_j is not None else None,
            "pointing_chance": float(regions.area[r, top_j]) if has_area and top_j is not None else None,
            "energy_au": picked["energy"], "agree": picked[rule] == top_au[r],
            **{f"agree_{name}": picked[name] == top_au[r] for name in choices},
        })  # fmt: skip
    mean = lambda key: float(np.mean([row[key] for row in rows])) if rows else None  # noqa: E731
    out: dict[str, Any] = {"rule": rule, "rule_label": RULES[rule], "rate": mean("agree"), "n_filters": len(rows),
                           "min_area": min_area, "per_filter": rows}  # fmt: skip
    for name in choices:
        out[f"rate_{name}"] = mean(f"agree_{name}")
    pointed = [row for row in rows if row["pointing"] is not None]
    out["pointing_hit"] = float(np.mean([row["pointing"] for row in pointed])) if pointed else None
    out["pointing_chance"] = float(np.mean([row["pointing_chance"] for row in pointed])) if pointed else None
    return out


__all__ = ["RULES", "RegionStats", "localisation_agreement", "region_energy", "region_stats"]
