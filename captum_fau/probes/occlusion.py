"""AU-region occlusion on labelled data: does a filter lose activation when the AU's region is hidden?

For every image where an AU is present, the AU's region is replaced (``fill="mean"``: by the image's
mean pixel; ``fill="blur"``: by a Gaussian blur of the image, sigma = 4% of the side) and each
filter's spatial maximum at the layer is measured before and after. Per filter x AU: the mean drop
over the data's permutation units (subjects, else sequences; images, with a warning, when no ids are
given), a two-sided sign-flip p over units, BH q and a t interval. Regions come from SynthFACS'
ground-truth masks (:func:`synthfacs_masks`) or from 68-point landmarks
(:mod:`~captum_fau.probes.landmark_regions`).

The result is only local when the layer's units see part of the face: a layer whose receptive field
covers the whole input is refused (hiding any region could change every unit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from captum_fau._utils.modules import eval_mode, layer_name, stop_at_layer
from captum_fau.errors import ConfigError, InputShapeError, LabelError, LayerError
from captum_fau.probes._model import batched_maxima, check_model, layer_forward, model_device, resolve_spec
from captum_fau.probes._result import load_arrays, save_arrays
from captum_fau.probes._stats import bh_q, sign_flip_test, t_interval, unit_codes, unit_means

FILLS: tuple[str, ...] = ("mean", "blur")


def receptive_extent(model: nn.Module, layer: Any, spec: Any, size: int) -> tuple[int, int]:
    """``(height, width)`` in input pixels that the layer's centre unit depends on (measured by its gradient)."""
    name = layer_name(model, layer)
    run = stop_at_layer(model, model.get_submodule(name))
    raw = torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))
    x = spec.apply(raw).to(model_device(model)).requires_grad_(True)
    with eval_mode(model, "AUOcclusion"):
        out = run(x)
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise LayerError(
                f"Layer {name!r} does not output a [B, C, H, W] map; occlusion needs a convolutional layer."
            )
        out[0, :, out.shape[2] // 2, out.shape[3] // 2].abs().sum().backward()
    support = np.argwhere(x.grad[0].abs().sum(0).cpu().numpy() > 0)
    if not len(support):
        return 0, 0
    return int(np.ptp(support[:, 0]) + 1), int(np.ptp(support[:, 1]) + 1)


def synthfacs_masks(faces: Any, dilate: int = 2) -> np.ndarray:
    """bool ``[N, J, S, S]`` ground-truth AU regions of a ``load_synthfacs`` FaceSet, dilated by ``dilate`` px
    (the renderer's masks miss a few pixels next to moving features)."""
    from captum_fau.synthfacs import region_masks

    meta = getattr(faces, "meta", {}) or {}
    if "seed" not in meta:
        raise LabelError("synthfacs_masks needs a FaceSet from load_synthfacs (its meta has the seed and size).")
    keys = {k: meta[k] for k in ("size", "mode", "n_subjects") if k in meta}
    masks = region_masks(meta["seed"], np.asarray(meta.get("indices", np.arange(len(faces.images)))), **keys)
    if dilate:
        kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        flat = masks.reshape((-1,) + masks.shape[2:]).astype(np.uint8)
        masks = np.stack([cv2.dilate(m, kernel) for m in flat]).reshape(masks.shape) > 0
    return masks


def _occlude(images: np.ndarray, masks: np.ndarray, fill: str) -> np.ndarray:
    """uint8 ``[n, S, S]`` images with ``masks`` ``[n, S, S]`` replaced by the image mean or a blur."""
    out = images.copy()
    for k in range(len(images)):
        if fill == "mean":
            replacement = np.full_like(images[k], int(round(float(images[k].mean()))))
        else:
            sigma = 0.04 * images.shape[-1]
            replacement = cv2.GaussianBlur(images[k], (0, 0), sigmaX=sigma)
        out[k][masks[k]] = replacement[masks[k]]
    return out


@dataclass
class OcclusionResult:
    """Per filter x AU (``[F, A]``): mean activation drop over units, its interval, p and q."""

    layer: str
    aus: tuple[str, ...]
    fill: str
    drop: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p: np.ndarray
    q: np.ndarray
    n_units: np.ndarray
    alpha: float = 0.05
    meta: dict[str, Any] = field(default_factory=dict)

    _ARRAYS = ("drop", "ci_low", "ci_high", "p", "q", "n_units")

    @property
    def significant(self) -> np.ndarray:
        return np.nan_to_num(self.q, nan=1.0) < self.alpha

    def to_dict(self) -> dict[str, Any]:
        best = np.where(self.significant, self.drop, -np.inf).argmax(1)
        top = [self.aus[j] if self.significant[f, j] and self.drop[f, j] > 0 else None for f, j in enumerate(best)]
        return {"layer": self.layer, "aus": list(self.aus), "fill": self.fill, "alpha": self.alpha,
                "n_units": dict(zip(self.aus, self.n_units.tolist())), "n_significant": int(self.significant.sum()),
                "top_au": top, **self.meta}  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        meta = {"layer": self.layer, "aus": list(self.aus), "fill": self.fill, "alpha": self.alpha, "meta": self.meta}
        return save_arrays(path, "occlusion", {k: getattr(self, k) for k in self._ARRAYS}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "OcclusionResult":
        arrays, meta = load_arrays(path, "occlusion")
        return cls(layer=meta["layer"], aus=tuple(meta["aus"]), fill=meta["fill"], alpha=meta["alpha"],
                   meta=meta["meta"], **arrays)  # fmt: skip


class AUOcclusion:
    """AU-region occlusion of one layer (see the module docstring).

    Args:
        model (nn.Module): The model.
        layer (str or nn.Module): A convolutional layer whose units see part of the face.
        input_spec (InputSpec, optional): How raw crops become model inputs (default: the model's own).
        fill (str, optional): ``"mean"`` or ``"blur"``. Default: ``"mean"``
        max_extent (float, optional): Largest receptive field, as a fraction of the input side, that
            still counts as local. Default: 0.9

    Raises:
        ConfigError: an unknown fill.
        LayerError: a layer whose receptive field covers the whole face ("not local").
    """

    def __init__(self, model: nn.Module, layer: Any, input_spec: Any = None, *, fill: str = "mean",
                 max_extent: float = 0.9) -> None:  # fmt: skip
        self.model = check_model(model, "AUOcclusion")
        if fill not in FILLS:
            raise ConfigError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}.")
        self.fill, self.max_extent = fill, float(max_extent)
        self.spec, self.notes = resolve_spec(model, input_spec)
        self.layer, self._maxima = layer_forward(model, layer)
        self._layer_arg = layer
        if self.spec.size is not None:
            self.check_local(self.spec.size[0])

    def check_local(self, size: int) -> tuple[int, int]:
        """The layer's receptive extent at ``size``; raises when it covers the whole face."""
        side = self.spec.size[0] if self.spec.size is not None else size
        extent = receptive_extent(self.model, self._layer_arg, self.spec, size)
        if min(extent) >= self.max_extent * side:
            raise LayerError(
                f"Layer {self.layer!r} is not local: each of its units sees {extent[0]}x{extent[1]} of the "
                f"{side}x{side} "
                "input, i.e. the whole face, so hiding one AU's region can change every unit and an occlusion result "
                "would not be about that region. Pick an earlier layer (e.g. conv2 or conv3)."
            )
        return extent

    def run(self, images: np.ndarray, masks: np.ndarray, present: np.ndarray, aus: Sequence[str], *,
            units: Any = None, batch_size: int = 128, progress: bool = True) -> OcclusionResult:  # fmt: skip
        """Occlude each present AU's region and test the drops.

        Args:
            images (np.ndarray): uint8 raw face crops ``[N, S, S]`` (gray).
            masks (np.ndarray): bool ``[N, A, S, S]`` AU regions (:func:`synthfacs_masks`,
                :func:`~captum_fau.probes.landmark_regions.region_masks`).
            present (np.ndarray): bool ``[N, A]`` AU labels; only present AUs are occluded.
            aus (sequence of str): The ``A`` AU names.
            units (array-like, optional): ``[N]`` subject (else sequence) ids. Default: images (warns)
            batch_size (int, optional): Images per forward pass. Default: 128
            progress (bool, optional): Progress bar over AUs. Default: True

        Returns:
            OcclusionResult
        """
        images, masks, present = self._checked(images, masks, present, aus)
        extent = self.check_local(images.shape[-1])
        codes, kind = unit_codes(units, len(images))
        device = model_device(self.model)
        with eval_mode(self.model, "AUOcclusion"):
            base = batched_maxima(self._maxima, self.spec, images, batch_size, device)
            f, a = base.shape[1], len(aus)
            arrays = {k: np.full((f, a), np.nan) for k in ("drop", "ci_low", "ci_high", "p")}
            n_units = np.zeros(a, np.int64)
            for j in tqdm(range(a), desc=f"occlusion {self.layer}", disable=not progress, leave=False):
                rows = np.flatnonzero(present[:, j] & masks[:, j].any((1, 2)))
                if not len(rows):
                    continue
                hidden = batched_maxima(self._maxima, self.spec, _occlude(images[rows], masks[rows, j], self.fill),
                                        batch_size, device)  # fmt: skip
                _, local = np.unique(codes[rows], return_inverse=True)
                per_unit = unit_means(base[rows] - hidden, local)
                n_units[j] = len(per_unit)
                arrays["drop"][:, j] = per_unit.mean(0)
                if len(per_unit) >= 2:
                    arrays["p"][:, j] = sign_flip_test(per_unit)
                    arrays["ci_low"][:, j], arrays["ci_high"][:, j] = t_interval(per_unit)
        meta = {"unit": kind, "receptive_extent": list(extent), "fill_definition": {
            "mean": "the image's mean pixel", "blur": "Gaussian blur, sigma = 4% of the side"}[self.fill],
            "test": "two-sided sign-flip over units, BH q over filter x AU", "notes": self.notes}  # fmt: skip
        return OcclusionResult(self.layer, tuple(aus), self.fill, arrays["drop"], arrays["ci_low"], arrays["ci_high"],
                               arrays["p"], bh_q(arrays["p"]), n_units, meta=meta)  # fmt: skip

    @staticmethod
    def _checked(
        images: Any, masks: Any, present: Any, aus: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        images = np.asarray(images)
        if images.ndim == 4 and images.shape[1] == 1:
            images = images[:, 0]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise InputShapeError(f"images must be uint8 gray face crops [N, S, S], got {images.dtype} {images.shape}.")
        masks, present = np.asarray(masks, bool), np.asarray(present, bool)
        n, a = len(images), len(aus)
        if masks.shape != (n, a) + images.shape[1:]:
            raise LabelError(f"masks must be [N, A, S, S] = {(n, a) + images.shape[1:]}, got {masks.shape}.")
        if present.shape != (n, a):
            raise LabelError(f"present must be [N, A] = {(n, a)} AU labels, got {present.shape}.")
        return images, masks, present


__all__ = ["FILLS", "AUOcclusion", "OcclusionResult", "receptive_extent", "synthfacs_masks"]
