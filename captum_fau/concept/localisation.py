"""Where do a filter's reconstructions fall? Agreement of FAU-KL with AU regions.

The paper checked by eye that the facial region a filter's top-N
reconstructions light up matches the AU that FAU-KL associates with the
filter. Where ground-truth AU regions are known (SynthFACS renders them;
landmark-derived regions work the same way), this module turns the check into
a number: for each filter, the share of its reconstruction energy inside each
AU's region, and whether the AU with the most energy is FAU-KL's top AU.

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
    out = np.zeros((f_count, masks.shape[1]))
    for f in range(f_count):
        total = energy[f].sum()
        if total <= 0:
            continue
        for k in range(n):
            y0, x0, y1, x1 = (int(v) for v in boxes[f, k])
            window = masks[inverse[f, k], :, y0:y1, x0:x1]  # [J, h', w'] (clipped at the border)
            e = energy[f, k, : window.shape[1], : window.shape[2]]
            out[f] += (window * e).sum(axis=(1, 2))
        out[f] /= total
    return out


def localisation_agreement(
    energy: np.ndarray,
    top_au: Sequence[str],
    au_ids: Sequence[str],
    filters: Sequence[int],
) -> dict[str, Any]:
    """Compare FAU-KL's top AU of each filter with the AU region holding most of its energy.

    Args:
        energy (np.ndarray): ``[F, J]`` from :func:`region_energy`, rows in the order of ``filters``.
        top_au (sequence of str): FAU-KL's top AU for each of ``filters``.
        au_ids (sequence of str): The ``J`` AU ids of the columns.
        filters (sequence of int): Filter numbers, for the per-filter rows.

    Returns:
        dict: ``rate`` (agreement over filters with any energy in a region, or None),
        ``n_filters``, ``per_filter`` rows ``{filter, fau_kl_au, region_au, share, agree}``.
    """
    rows = []
    for r, f in enumerate(filters):
        if energy[r].max() <= 0:
            continue
        region_au = au_ids[int(np.argmax(energy[r]))]
        rows.append(
            {
                "filter": int(f),
                "fau_kl_au": top_au[r],
                "region_au": region_au,
                "share": float(energy[r].max()),
                "agree": region_au == top_au[r],
            }
        )
    rate = float(np.mean([row["agree"] for row in rows])) if rows else None
    return {"rate": rate, "n_filters": len(rows), "per_filter": rows}


__all__ = ["localisation_agreement", "region_energy"]
