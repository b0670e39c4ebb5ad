"""Filter -> emotion importance: ablate each filter at the layer and measure what the decision loses.

For every filter and every image, the filter's map is replaced (``"zero"``: by zeros; ``"mean"``:
by its mean map over the data) and the model's head is run from cached layer activations
(:class:`~captum_fau.probes.split.SplitModel`): the part before the layer runs once per image,
the per-channel prefix of the head once per image, and only the rest of the head once per (filter,
image), batched over filters. Per emotion (data classes matched to the model's classes **by name**):

* the drop in the true class's log-probability, mean over units (subjects) with a t interval;
* the drop in accuracy (share of the emotion's images no longer classified correctly), likewise;
* the filters ranked by the log-probability drop.

Examples::

    >>> from captum_fau import zoo
    >>> from captum_fau.synthfacs import load_synthfacs
    >>> from captum_fau.probes import FilterImportance
    >>> model = zoo.load("zerobias-synthfacs-8class")
    >>> faces = load_synthfacs(64)
    >>> x = model_inputs_of(faces)  # doctest: +SKIP
    >>> result = FilterImportance(model, "conv3").run(x, faces.emotions, faces.class_names, units=faces.subjects)
    ... # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from captum_fau._utils.modules import eval_mode
from captum_fau.inputs.classes import ClassMapping, model_class_names
from captum_fau.errors import ConfigError, InputShapeError, LabelError
from captum_fau.probes._model import check_model, model_device
from captum_fau.probes._result import cache_key, load_arrays, model_fingerprint, save_arrays
from captum_fau.probes._stats import t_interval, unit_codes, unit_means
from captum_fau.probes.split import SplitModel

#: Replacement values of an ablated filter.
MODES: tuple[str, ...] = ("zero", "mean")


@dataclass
class ImportanceResult:
    """Per mode, emotion and filter: the drops an ablation causes. Arrays are ``[mode, emotion, filter]``.

    Attributes:
        layer (str): The layer.
        modes (tuple of str): ``"zero"`` and/or ``"mean"``.
        emotions (tuple of str): Data emotions with a model output (by name) and images.
        logprob_drop, logprob_low, logprob_high (np.ndarray): Mean drop of the true class's
            log-probability over units and its 95% t interval.
        accuracy_drop, accuracy_low, accuracy_high (np.ndarray): The same for accuracy.
        base_accuracy (np.ndarray): ``[emotion]`` accuracy without ablation.
        n_units (np.ndarray): ``[emotion]`` units (subjects) with images of the emotion.
        meta (dict): Mapping notes, unit kind, timings.
    """

    layer: str
    modes: tuple[str, ...]
    emotions: tuple[str, ...]
    logprob_drop: np.ndarray
    logprob_low: np.ndarray
    logprob_high: np.ndarray
    accuracy_drop: np.ndarray
    accuracy_low: np.ndarray
    accuracy_high: np.ndarray
    base_accuracy: np.ndarray
    n_units: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    _ARRAYS = ("logprob_drop", "logprob_low", "logprob_high", "accuracy_drop", "accuracy_low", "accuracy_high",
               "base_accuracy", "n_units")  # fmt: skip

    def ranking(self, mode: str = "zero") -> dict[str, list[int]]:
        """Emotion -> filter indices, largest log-probability drop first."""
        if mode not in self.modes:
            raise ConfigError(f"mode {mode!r} was not run; this result has {', '.join(self.modes)}.")
        m = self.modes.index(mode)
        return {e: np.argsort(-self.logprob_drop[m, i], kind="stable").tolist() for i, e in enumerate(self.emotions)}

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """JSON summary: per mode and emotion the ``top`` filters with drops and intervals."""
        out: dict[str, Any] = {
            "layer": self.layer,
            "modes": list(self.modes),
            "emotions": list(self.emotions),
            "base_accuracy": dict(zip(self.emotions, self.base_accuracy.tolist())),
            "n_units": dict(zip(self.emotions, self.n_units.tolist())),
            "ranking": {},
            **self.meta,
        }
        for m, mode in enumerate(self.modes):
            out["ranking"][mode] = {
                e: [{"filter": f, "logprob_drop": float(self.logprob_drop[m, i, f]),
                     "logprob_ci": [float(self.logprob_low[m, i, f]), float(self.logprob_high[m, i, f])],
                     "accuracy_drop": float(self.accuracy_drop[m, i, f]),
                     "accuracy_ci": [float(self.accuracy_low[m, i, f]), float(self.accuracy_high[m, i, f])]}
                    for f in order[:top]]
                for i, (e, order) in enumerate(self.ranking(mode).items())
            }  # fmt: skip
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        meta = {"layer": self.layer, "modes": list(self.modes), "emotions": list(self.emotions), "meta": self.meta}
        return save_arrays(path, "importance", {k: getattr(self, k) for k in self._ARRAYS}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ImportanceResult":
        arrays, meta = load_arrays(path, "importance")
        return cls(layer=meta["layer"], modes=tuple(meta["modes"]), emotions=tuple(meta["emotions"]),
                   meta=meta["meta"], **arrays)  # fmt: skip


class FilterImportance:
    """Ablation importance of every filter of a layer for every emotion (see the module docstring).

    Args:
        model (nn.Module): The classifier (logits out).
        layer (str or nn.Module): The layer whose filters are ablated (``[B, C, H, W]`` output).
        class_names (sequence of str, optional): The model's class names in output order, when it
            does not declare them (``config["class_names"]``, ``id2label``).

    Raises:
        LayerError: (at :meth:`run`) a layer whose output is not ``[B, C, H, W]`` or whose head
            cannot be run from its output alone.
        ConfigError: a model without class names.
    """

    def __init__(self, model: nn.Module, layer: Any, *, class_names: Sequence[str] | None = None) -> None:
        self.model = check_model(model, "FilterImportance")
        self.layer_spec = layer
        names = model_class_names(model, class_names)
        if not names:
            raise ConfigError(
                "FilterImportance maps the data's emotions to the model's classes by name, and the model declares no "
                "class names; pass class_names=('anger', ...) in output order."
            )
        self.class_names = tuple(names)

    def split(self, sample: torch.Tensor) -> tuple[str, SplitModel]:
        """Split the model after the layer, checked on ``sample`` (model inputs)."""
        with eval_mode(self.model, "FilterImportance"):
            return SplitModel.build(self.model, self.layer_spec, sample)

    def cache(
        self, split: SplitModel, inputs: torch.Tensor, batch_size: int, progress: bool
    ) -> dict[str, torch.Tensor]:
        """One pass: the head prefix of every image, the layer's mean map and the un-ablated log-probabilities."""
        reduced, logp = [], []
        total: torch.Tensor | None = None
        device = model_device(self.model)
        with eval_mode(self.model, "FilterImportance"), torch.no_grad():
            for start in tqdm(range(0, len(inputs), batch_size), desc="layer activations", disable=not progress,
                              leave=False):  # fmt: skip
                a = split.before(inputs[start : start + batch_size].to(device)).float()
                total = a.sum(0) if total is None else total + a.sum(0)
                r = split.prefix(a.clone())
                reduced.append(r)
                logp.append(torch.log_softmax(split.rest(r.clone()).float(), dim=1))
            mean_map = (total / len(inputs))[None]  # type: ignore[operator]
            fills = {"zero": split.prefix(torch.zeros_like(mean_map))[0], "mean": split.prefix(mean_map.clone())[0]}
        return {"reduced": torch.cat(reduced), "logp": torch.cat(logp), **{f"fill_{k}": v for k, v in fills.items()}}

    def ablated_logp(
        self, split: SplitModel, reduced: torch.Tensor, fill: torch.Tensor, targets: torch.Tensor,
        filter_batch: int = 16, progress: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """``[F, N]`` log-probability of ``targets`` with each filter replaced by ``fill`` (its prefix output),
        and ``[F, N]`` whether the ablated model still predicts the target."""
        n, c = reduced.shape[:2]
        out = torch.empty(c, n)
        still = torch.empty(c, n, dtype=torch.bool)
        with eval_mode(self.model, "FilterImportance"), torch.no_grad():
            for start in tqdm(range(0, c, filter_batch), desc="ablation", disable=not progress, leave=False):
                fs = torch.arange(start, min(c, start + filter_batch))
                x = reduced[None].repeat(len(fs), *([1] * reduced.dim()))
                x[torch.arange(len(fs)), :, fs] = fill[fs][:, None]
                logits = split.rest(x.reshape((-1,) + reduced.shape[1:])).float()
                logp = torch.log_softmax(logits, dim=1).reshape(len(fs), n, -1)
                out[fs] = logp.gather(2, targets[None, :, None].expand(len(fs), n, 1))[..., 0].cpu()
                still[fs] = (logits.reshape(len(fs), n, -1).argmax(2) == targets[None]).cpu()
        return out, still

    def run(
        self,
        inputs: torch.Tensor,
        labels: Sequence[int] | np.ndarray,
        data_classes: Sequence[str],
        *,
        units: Sequence[Any] | np.ndarray | None = None,
        modes: Sequence[str] = MODES,
        batch_size: int = 128,
        progress: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> ImportanceResult:
        """Ablate every filter in every mode on ``inputs`` (model inputs ``[N, C, H, W]``).

        Args:
            inputs (Tensor): Preprocessed model inputs (``ModelInputs.tensors``).
            labels (array-like): ``[N]`` data class indices (-1: unlabelled, left out).
            data_classes (sequence of str): The data's class names; matched to the model's by name.
            units (array-like, optional): ``[N]`` subject (else sequence) ids; ``None`` tests over
                images with a warning.
            modes (sequence of str, optional): ``"zero"`` and/or ``"mean"``. Default: both
            batch_size (int, optional): Images per forward pass. Default: 128
            progress (bool, optional): Progress bars. Default: True
            cache_dir (str or Path, optional): Folder for the cached layer activations (the one pass
                over the data), keyed by the model's weights, the layer and the inputs; a rerun after
                a kill starts from it. Default: None

        Returns:
            ImportanceResult
        """
        x, y, mapping = self._checked(inputs, labels, data_classes, modes)
        keep = mapping.remap(y) >= 0
        x, y = x[keep], y[keep]
        codes, unit_kind = unit_codes(None if units is None else np.asarray(units)[keep], len(y))
        targets = torch.from_numpy(mapping.remap(y).astype(np.int64))
        layer, split = self.split(x[: min(4, len(x))].to(model_device(self.model)))
        cached = self._cached_pass(split, layer, x, batch_size, progress, cache_dir)
        base = cached["logp"].gather(1, targets[:, None])[:, 0]
        correct = (cached["logp"].argmax(1) == targets).numpy()
        drops, acc = [], []
        for mode in modes:
            fill = cached[f"fill_{mode}"]
            ablated, still = self.ablated_logp(split, cached["reduced"], fill, targets, progress=progress)
            drops.append((base[None] - ablated).numpy())
            acc.append(correct[None].astype(float) - still.numpy().astype(float))
        drops_all, acc_all = np.stack(drops), np.stack(acc)
        return self._summarise(layer, tuple(modes), mapping, y, codes, unit_kind, drops_all, acc_all, correct)

    def _cached_pass(self, split: SplitModel, layer: str, x: torch.Tensor, batch_size: int, progress: bool,
                     cache_dir: str | os.PathLike[str] | None) -> dict[str, torch.Tensor]:  # fmt: skip
        if cache_dir is None:
            return self.cache(split, x, batch_size, progress)
        digest = hashlib.sha256(x.detach().cpu().float().numpy().tobytes()).hexdigest()[:16]
        key = cache_key(model=model_fingerprint(self.model), layer=layer, inputs=digest, shape=list(x.shape))
        path = Path(cache_dir) / f"importance-activations-{key}.npz"
        if path.is_file():
            arrays, _ = load_arrays(path, "importance_step")
            return {k: torch.from_numpy(v) for k, v in arrays.items()}
        cached = self.cache(split, x, batch_size, progress)
        save_arrays(path, "importance_step", {k: v.numpy() for k, v in cached.items()}, {"key": key})
        return cached

    def compare_with_captum(
        self, inputs: torch.Tensor, targets: Sequence[int] | np.ndarray, filters: Sequence[int], batch_size: int = 64
    ) -> dict[str, Any]:
        """Zero ablation of ``filters`` here and with Captum's ``LayerFeatureAblation``, on the same images.

        Args:
            inputs (Tensor): Model inputs ``[N, C, H, W]`` (a few dozen images suffice).
            targets (array-like): ``[N]`` model class indices whose log-probability is compared.
            filters (sequence of int): The filters Captum ablates (one group each; the other
                filters form one more group, ablated too but not compared).
            batch_size (int, optional): Images per Captum call. Default: 64

        Returns:
            dict: ``max_abs_err`` between the two log-probability drops, ``captum_seconds`` and
            ``seconds`` (this class, every filter), ``captum_seconds_per_filter``,
            ``seconds_per_filter`` and ``speedup`` (per filter and image).
        """
        import time

        from captum.attr import LayerFeatureAblation

        t = torch.as_tensor(np.asarray(targets), dtype=torch.int64)
        device = model_device(self.model)
        start = time.perf_counter()
        layer, split = self.split(inputs[:4].to(device))
        cached = self.cache(split, inputs, batch_size, progress=False)
        ablated, _ = self.ablated_logp(split, cached["reduced"], cached["fill_zero"], t, progress=False)
        ours = (cached["logp"].gather(1, t[:, None])[:, 0][None] - ablated).numpy()
        seconds = time.perf_counter() - start
        module = self.model.get_submodule(layer)
        n_channels = cached["reduced"].shape[1]
        mask = torch.full((1, n_channels, 1, 1), len(filters), dtype=torch.long)
        for g, f in enumerate(filters):
            mask[0, int(f)] = g
        ablation = LayerFeatureAblation(lambda x: torch.log_softmax(self.model(x), dim=1), module)
        start = time.perf_counter()
        with eval_mode(self.model, "FilterImportance"), torch.no_grad():
            attrs = [ablation.attribute(inputs[i : i + batch_size].to(device), target=t[i : i + batch_size].to(device),
                                        layer_baselines=0.0, layer_mask=mask.to(device)).cpu()
                     for i in range(0, len(inputs), batch_size)]  # fmt: skip
        captum_seconds = time.perf_counter() - start
        theirs = torch.cat(attrs)[:, [int(f) for f in filters], 0, 0].T.numpy()
        per_filter_captum = captum_seconds / (len(filters) + 1)
        return {"layer": layer, "filters": [int(f) for f in filters], "n_images": len(inputs),
                "max_abs_err": float(np.abs(ours[list(filters)] - theirs).max()), "seconds": seconds,
                "seconds_per_filter": seconds / n_channels, "captum_seconds": captum_seconds,
                "captum_seconds_per_filter": per_filter_captum,
                "speedup": per_filter_captum / (seconds / n_channels)}  # fmt: skip

    def _checked(self, inputs: Any, labels: Any, data_classes: Sequence[str], modes: Sequence[str]
                 ) -> tuple[torch.Tensor, np.ndarray, ClassMapping]:  # fmt: skip
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise InputShapeError(f"inputs must be preprocessed model inputs [N, C, H, W], got {shape}.")
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (len(inputs),):
            raise LabelError(f"labels must give one class index per image ({len(inputs)}), got shape {y.shape}.")
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            raise ConfigError(f"modes must be a non-empty subset of {', '.join(MODES)}, got {list(modes)}.")
        mapping = ClassMapping.build(self.class_names, tuple(data_classes), labels=y)
        if not (mapping.remap(y) >= 0).any():
            raise LabelError(f"None of the images has a class the model has ({', '.join(self.class_names)}); "
                             "check data_classes and the model's class_names.")  # fmt: skip
        return inputs, y, mapping

    def _summarise(self, layer: str, modes: tuple[str, ...], mapping: ClassMapping, y: np.ndarray, codes: np.ndarray,
                   unit_kind: str, drops: np.ndarray, acc: np.ndarray, correct: np.ndarray
                   ) -> ImportanceResult:  # fmt: skip
        emotions = [c for c in sorted(set(y.tolist()))]
        shape = (len(modes), len(emotions), drops.shape[1])
        arrays = {k: np.full(shape, np.nan) for k in ("lp", "lpl", "lph", "ac", "acl", "ach")}
        base_acc, n_units = np.zeros(len(emotions)), np.zeros(len(emotions), np.int64)
        for i, cls in enumerate(emotions):
            rows = y == cls
            _, local = np.unique(codes[rows], return_inverse=True)
            n_units[i] = local.max() + 1
            base_acc[i] = correct[rows].mean()
            for m in range(len(modes)):
                for key, values in (("lp", drops[m][:, rows]), ("ac", acc[m][:, rows])):
                    per_unit = unit_means(values.T, local)
                    arrays[key][m, i] = per_unit.mean(0)
                    if n_units[i] >= 2:
                        arrays[key + "l"][m, i], arrays[key + "h"][m, i] = t_interval(per_unit)
        meta = {
            "unit": {"unit": "subject or sequence (as given)", "image": "image (no ids given)"}[unit_kind],
            "mapping": mapping.to_dict(),
            "interval": "Student-t 95% over units",
            "n_images": int(len(y)),
        }
        return ImportanceResult(layer, modes, tuple(mapping.data_classes[c] for c in emotions), arrays["lp"],
                                arrays["lpl"], arrays["lph"], arrays["ac"], arrays["acl"], arrays["ach"], base_acc,
                                n_units, meta)  # fmt: skip


__all__ = ["MODES", "FilterImportance", "ImportanceResult"]
