"""Model-randomisation sanity check of top-N reconstructions (Adebayo et al., 2018).

Guided backpropagation and the deconvnet are known to recover image edges almost
regardless of the weights. The check measures how much of each reconstruction
depends on the trained weights: the reconstructions of the same top-N
``(image, unit)`` pairs are recomputed with randomised weights and compared with the
trained model's.

A unit of layer ``L`` depends only on ``L`` and the layers below it: the layers
above ``L`` (later convolutions, the classifier) do not change its reconstruction,
so they are left alone, and the **cascade** (Adebayo et al. randomise from the top)
starts at ``L``: ``L``, then ``L`` and the layer below, ... down to the first
weighted layer; the **independent** steps randomise one lower layer at a time.
Randomising replaces each parameter tensor of a layer by draws from a normal
distribution with the trained tensor's mean and standard deviation (the scale
stays, the structure goes), seeded per layer, in one deep copy of the model that
is randomised and restored in place from step to step; the trained model is never
modified.

Every randomised reconstruction starts from the same unit (same image, filter and
position) with the trained model's value as the back-projected signal, and goes
through the same batched code path as :meth:`TopNDeconv.from_scan`; the trained
reconstructions are those of the result being checked (not recomputed). A check
may look at a subset of the filters (:func:`select_filters`: the featured ones, then
a seeded sample), recorded in the result. Similarity to the trained reconstruction
is measured on the receptive-field window by

* **SSIM** (gaussian window, sigma 1.5) of the maps as the report draws them
  (``0.5 + 0.5 * r / max|r|``, range 1): 1 means the picture did not change;
* **Spearman rank correlation** of ``|r|`` over the window's pixels (:func:`spearman_abs`, equal to
  :func:`scipy.stats.spearmanr`).

High similarity after randomisation means the pictures mostly reflect the image,
not what the network learned.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from captum_fau._utils.io import atomic_write_text
from captum_fau._utils.modules import eval_mode, stop_at_layer
from captum_fau._utils.validate import non_negative_int, optional_positive_int
from captum_fau.errors import ConfigError, DatasetError, OutputError

if TYPE_CHECKING:
    from captum_fau.attr.topn_attribution import TopNAttribution as TopNDeconv
    from captum_fau.attr.topn_result import TopNResult


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r"""Structural similarity (Wang et al., 2004) with a gaussian window, averaged over positions and channels.

    Means, variances and the covariance are gaussian-weighted over each ``window`` x ``window``
    neighbourhood that fits inside the image (no padding); the window shrinks to the largest
    odd size that fits an image smaller than it. ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``.

    Args:
        x (Tensor): ``[..., C, H, W]`` (or ``[H, W]``).
        y (Tensor): Same shape as ``x``.
        data_range (float, optional): ``R``, the value range of the images. Default: 1.0
        window (int, optional): Window size (odd). Default: 11
        sigma (float, optional): Gaussian standard deviation. Default: 1.5

    Returns:
        Tensor: SSIM per leading index (shape ``x.shape[:-3]``; a scalar for ``[C, H, W]`` / ``[H, W]``).

    Examples::

        >>> x = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> round(float(ssim(x, x)), 6)
        1.0
        >>> float(ssim(x, 1 - x)) < 0
        True
    """
    if x.shape != y.shape or x.dim() < 2:
        raise ConfigError(f"ssim needs two images of the same shape [..., H, W], got {tuple(x.shape)} and {tuple(y.shape)}.")
    if x.dim() == 2:
        x, y = x[None], y[None]
    lead, channels = x.shape[:-3], x.shape[-3]
    x = x.reshape(-1, 1, *x.shape[-2:]).double()
    y = y.reshape(-1, 1, *y.shape[-2:]).double()
    size = min(window, x.shape[-2], x.shape[-1])
    size -= 1 - size % 2  # odd
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).to(x.device)
    rows, cols = g[None, None, :, None], g[None, None, None, :]
    mean = lambda t: F.conv2d(F.conv2d(t, rows), cols)  # noqa: E731 - the separable gaussian window
    mx, my = mean(x), mean(y)
    vx, vy, cxy = mean(x * x) - mx**2, mean(y * y) - my**2, mean(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    out = s.mean(dim=(1, 2, 3)).reshape(*lead, channels).mean(-1)
    return out.float()


def _display(recon: torch.Tensor) -> torch.Tensor:
    """A reconstruction as the report draws it: ``0.5 + 0.5 * r / max|r|`` (0.5 everywhere when zero)."""
    scale = recon.abs().amax(dim=(-3, -2, -1), keepdim=True).clamp(min=1e-12)
    return 0.5 + 0.5 * recon / scale


def spearman_abs(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman rank correlation of ``|a|`` and ``|b|`` for each leading index (ties get average ranks,
    as in :func:`scipy.stats.spearmanr`).

    Args:
        a (Tensor): ``[P, ...]`` maps.
        b (Tensor): Same shape as ``a``.

    Returns:
        np.ndarray: ``[P]`` correlations; NaN where a map is constant (it has no ranking).

    Examples::

        >>> a = torch.tensor([[[0.1, -0.5], [0.9, 0.0]]])
        >>> spearman_abs(a, 2 * a).tolist()
        [1.0]
    """
    from scipy.stats import rankdata

    if a.shape != b.shape or a.dim() < 1:
        raise ConfigError(f"spearman_abs needs two stacks of maps of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}.")
    x = rankdata(a.detach().abs().reshape(len(a), -1).double().cpu().numpy(), axis=1)
    y = rankdata(b.detach().abs().reshape(len(b), -1).double().cpu().numpy(), axis=1)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(norm > 0, (x * y).sum(axis=1) / np.where(norm > 0, norm, 1.0), np.nan)
    return np.clip(rho, -1.0, 1.0)


def weighted_layers(model: nn.Module, layer: nn.Module, sample: torch.Tensor, additional_forward_args: Any = None) -> list[str]:
    """Dotted names of the modules with a weight of 2 or more dimensions (convolutions, linear maps)
    that run before ``layer``'s output is ready, ``layer`` included, in execution order."""
    names = {module: name for name, module in model.named_modules() if name}
    order: list[str] = []

    def record(module: nn.Module, _args: Any, _out: Any) -> None:
        weight = getattr(module, "weight", None)
        name = names.get(module)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and name is not None and name not in order:
            order.append(name)

    handles = [m.register_forward_hook(record) for m in names]
    try:
        with torch.no_grad():
            stop_at_layer(model, layer, additional_forward_args)(sample)
    finally:
        for handle in handles:
            handle.remove()
    return order


def layers_above(model: nn.Module, below: Sequence[str]) -> list[str]:
    """The weighted modules (weight of 2 or more dimensions) of ``model`` not in ``below``: those that do not
    run before the analysed layer, so their weights cannot change the reconstruction of its units."""
    return [name for name, module in model.named_modules() if name and name not in below
            and isinstance(getattr(module, "weight", None), torch.Tensor) and module.weight.dim() >= 2]  # fmt: skip


def _randomise_(module: nn.Module, seed: int, index: int) -> None:
    """Replace ``module``'s own parameters, in place, by normal draws with each trained tensor's mean and sd,
    from seed ``(seed, index)``."""
    gen = torch.Generator().manual_seed(int(seed) * 1009 + int(index))
    with torch.no_grad():
        for param in module.parameters(recurse=False):
            trained = param.detach().double()
            sd = float(trained.std()) if trained.numel() > 1 else 0.0
            draw = torch.randn(param.shape, generator=gen, dtype=torch.float64) * sd + float(trained.mean())
            param.copy_(draw.to(param.dtype))


def randomised_copy(model: nn.Module, layers: Sequence[str], seed: int, all_layers: Sequence[str]) -> nn.Module:
    """A deep copy of ``model`` whose ``layers`` have random parameters (see the module docstring).

    Layer ``all_layers[i]`` is always drawn from seed ``(seed, i)``, so a layer gets the same random
    weights in every step that randomises it (and in :func:`sanity_check`, which randomises one copy
    in place step by step).

    Examples::

        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))
        >>> clone = randomised_copy(net, ["2"], seed=0, all_layers=["0", "2"])
        >>> torch.equal(clone[0].weight, net[0].weight), torch.equal(clone[2].weight, net[2].weight)
        (True, False)
    """
    clone = copy.deepcopy(model)
    for name in layers:
        _randomise_(clone.get_submodule(name), seed, list(all_layers).index(name))
    return clone


class _RandomisedModel:
    """One deep copy of the model whose layers are randomised or restored in place, step by step; a layer's
    random weights are those of :func:`randomised_copy` (same seed, same layer index)."""

    def __init__(self, model: nn.Module, layers: Sequence[str], seed: int) -> None:
        self.model = copy.deepcopy(model)
        self.layers, self.seed = list(layers), int(seed)
        self._trained = {name: [p.detach().clone() for p in self.model.get_submodule(name).parameters(recurse=False)]
                         for name in self.layers}  # fmt: skip
        self._random: set[str] = set()

    def set(self, randomised: Sequence[str]) -> None:
        """Give exactly the layers ``randomised`` random weights, the others their trained ones."""
        for index, name in enumerate(self.layers):
            want = name in randomised
            if want == (name in self._random):
                continue  # unchanged: the same seed would draw the same weights
            module = self.model.get_submodule(name)
            if want:
                _randomise_(module, self.seed, index)
            else:
                with torch.no_grad():
                    for param, trained in zip(module.parameters(recurse=False), self._trained[name]):
                        param.copy_(trained)
        self._random = set(randomised)


@dataclass
class SanityCheckResult:
    """Similarity of top-N reconstructions with randomised weights to the trained model's.

    Attributes:
        layer (str): The analysed layer.
        rule (str): The back-projection rule.
        seed (int): Seed of the random weights (and of the filter sample).
        layers (list of str): The weighted layers feeding the analysed one, bottom to top.
        steps (list of dict): One per randomisation: ``mode`` (``"cascade"`` or
            ``"independent"``) and ``randomised`` (the layers with random weights).
        filters (np.ndarray): ``[F]`` the filters checked.
        ssim (np.ndarray): ``[S, F, N]`` SSIM per step, filter and top-N rank (NaN for dead units).
        spearman (np.ndarray): ``[S, F, N]`` Spearman correlation of ``|reconstruction|``.
        interpretation (str): One sentence per cascade stage saying what the numbers mean.
        meta (dict): ``n``, ``pairs``, ``randomisation``, ``selection`` (how the filters were chosen:
            ``rule``, ``featured``, ``sampled``, ``filters_in_layer``, ``live_filters``), ``seconds``.
        images (np.ndarray, optional): ``[F, N]`` dataset index of each checked image.
        above (list of str): Weighted layers after the analysed one, never randomised (they cannot
            change the reconstruction of its units).
        reconstructions (Tensor, optional): ``[S, F, N, C, h, w]`` the randomised reconstructions on the
            receptive-field windows (only with ``keep_reconstructions=True``; not saved).
    """

    layer: str
    rule: str
    seed: int
    layers: list[str]
    steps: list[dict[str, Any]]
    filters: np.ndarray
    ssim: np.ndarray
    spearman: np.ndarray
    interpretation: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    images: np.ndarray | None = None
    above: list[str] = field(default_factory=list)
    reconstructions: torch.Tensor | None = None

    @property
    def reading(self) -> str:
        """The cut-offs the interpretation reads SSIM with (:data:`READING`)."""
        return READING

    def per_filter(self, measure: str = "ssim") -> np.ndarray:
        """``[S, F]`` each filter's mean over its checked images (NaN for a dead filter)."""
        values = {"ssim": self.ssim, "spearman": self.spearman}[measure]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (dead filters)
            return np.nanmean(values, axis=2)

    def summary(self) -> list[dict[str, Any]]:
        """One row per step: mode, layers, the median/mean over all checked pairs, and the median and
        quartiles over filters of each filter's mean (``*_filter_median``, ``*_filter_q1``, ``*_filter_q3``)."""
        rows = []
        per = {m: self.per_filter(m) for m in ("ssim", "spearman")}
        for s, step in enumerate(self.steps):
            row: dict[str, Any] = {"mode": step["mode"], "randomised": list(step["randomised"])}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                for m, values in (("ssim", self.ssim[s]), ("spearman", self.spearman[s])):
                    row[f"{m}_median"], row[f"{m}_mean"] = _num(np.nanmedian(values)), _num(np.nanmean(values))
                    q1, med, q3 = np.nanpercentile(per[m][s], [25, 50, 75]) if np.isfinite(per[m][s]).any() else [np.nan] * 3
                    row[f"{m}_filter_median"], row[f"{m}_filter_q1"], row[f"{m}_filter_q3"] = _num(med), _num(q1), _num(q3)
            row["pairs"] = int(np.isfinite(self.ssim[s]).sum())
            row["filters"] = int(np.isfinite(per["ssim"][s]).sum())
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Everything but the reconstructions as JSON-ready values (arrays as nested lists, NaN as None)."""
        return {
            "layer": self.layer, "rule": self.rule, "seed": self.seed, "layers": list(self.layers),
            "above": list(self.above), "steps": [dict(s) for s in self.steps], "filters": [int(f) for f in self.filters],
            "images": None if self.images is None else np.asarray(self.images).astype(int).tolist(),
            "ssim": _nested(self.ssim), "spearman": _nested(self.spearman), "summary": self.summary(),
            "interpretation": self.interpretation, "meta": dict(self.meta),
        }  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON (atomically); returns the path."""
        path = Path(path)
        try:
            return atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        except OSError as err:
            raise OutputError(f"Cannot write the sanity check to {path} ({err}); choose a writable location.") from err

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SanityCheckResult":
        """The inverse of :meth:`to_dict`."""
        arr = lambda v: np.array(v, dtype=float)  # noqa: E731 - None -> NaN
        images = d.get("images")
        return cls(layer=d["layer"], rule=d["rule"], seed=int(d["seed"]), layers=list(d["layers"]),
                   steps=list(d["steps"]), filters=np.asarray(d["filters"], dtype=np.int64), ssim=arr(d["ssim"]),
                   spearman=arr(d["spearman"]), interpretation=d.get("interpretation", ""), meta=d.get("meta", {}),
                   images=None if images is None else np.asarray(images, dtype=np.int64),
                   above=list(d.get("above", [])))  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SanityCheckResult":
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def _nested(a: np.ndarray) -> list:
    return [_nested(v) for v in a] if a.ndim > 1 else [None if not math.isfinite(v) else float(v) for v in a]


#: How :func:`interpret` words a median SSIM (stated in results.json with the check).
READING = "SSIM >= 0.7: depend little on the randomised weights; 0.4-0.7: partly; < 0.4: depend on them"


def _dependence(similarity: float) -> str:
    if similarity >= 0.7:
        return "depend little on"
    if similarity >= 0.4:
        return "depend partly on"
    return "depend on"


def interpret(rule: str, layer_names: Sequence[str], summary: Sequence[dict[str, Any]]) -> str:
    """What the cascade says, stage by stage, from the median over filters of the per-filter mean SSIM
    (see :class:`SanityCheckResult`): the pictures "depend little on" the randomised weights at SSIM >= 0.7,
    "partly" at 0.4-0.7, and "depend on" them below 0.4 (:data:`READING`; cut-offs for reading the
    numbers, not a statistical test).

    Examples::

        >>> rows = [{"mode": "cascade", "randomised": ["conv2"], "ssim_filter_median": 0.91},
        ...         {"mode": "cascade", "randomised": ["conv2", "conv1"], "ssim_filter_median": 0.3}]
        >>> print(interpret("guided", ["conv1", "conv2"], rows))
        Guided backpropagation reconstructions stay 0.91 similar (median SSIM over filters) after randomising conv2: they depend little on conv2's trained weights; 0.30 after randomising conv2 down to conv1: they depend on the trained weights below (the check is passed).
    """
    cascade = [row for row in summary if row["mode"] == "cascade" and row.get("ssim_filter_median") is not None]
    if not cascade:
        return "No live unit could be checked (every checked filter is dead)."
    what = {"guided": "Guided backpropagation", "deconv": "Deconvnet", "gradient": "Gradient"}[rule]
    first, last = cascade[0], cascade[-1]
    top = first["randomised"][0]
    text = (f"{what} reconstructions stay {first['ssim_filter_median']:.2f} similar (median SSIM over filters) after "
            f"randomising {top}: they {_dependence(first['ssim_filter_median'])} {top}'s trained weights")  # fmt: skip
    if len(cascade) > 1:
        worst = last["ssim_filter_median"]
        text += (f"; {worst:.2f} after randomising {top} down to {last['randomised'][-1]}: they "
                 f"{_dependence(worst)} the trained weights below")  # fmt: skip
    worst = last["ssim_filter_median"]
    if worst >= 0.7:
        return text + " (read them as edge maps of the image, not as what the filter learned)."
    if worst >= 0.4:
        return text + " (compare them with the randomised ones before reading them)."
    return text + " (the check is passed)."


def _image_source(result: Any, data: Any) -> Callable[[int], torch.Tensor]:
    """Dataset index -> image ``[C, H, W]``, from a scan's kept inputs or from ``data``."""
    inputs = getattr(result, "inputs", None)
    if inputs:
        return lambda i: inputs[int(i)]
    if data is None:
        raise ConfigError(
            "sanity_check on a TopNResult needs the images: pass data= (the tensor or dataset the top-N was "
            "computed on), or pass the ScanResult made with keep_inputs=True."
        )
    if isinstance(data, torch.Tensor):
        return lambda i: data[int(i)]

    def item(i: int) -> torch.Tensor:
        got = data[int(i)]
        if isinstance(got, dict):
            got = got["image"]
        elif isinstance(got, (tuple, list)):
            got = got[0]
        return torch.as_tensor(got)

    return item


def _unit_values(topn: TopNDeconv, images: torch.Tensor, inverse: torch.Tensor, channels: torch.Tensor,
                 positions: torch.Tensor, additional_forward_args: Any) -> torch.Tensor:
    """The units' values under ``topn.model`` (the randomised weights) on the full images, for the
    reconstruction's crop check: one forward pass per distinct image (``images[inverse[p]]`` is pair
    ``p``'s image); a plain conv layer computes only the checked filters (TopNDeconv's selected-channel path)."""
    batch_size = topn.recon_batch_size
    conv_input = topn._conv_input_fn(additional_forward_args)
    forward = stop_at_layer(topn.model, topn.layer, additional_forward_args)
    out = torch.zeros(len(channels))
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            pairs = ((inverse >= start) & (inverse < start + batch_size)).nonzero().flatten()
            if not len(pairs):
                continue
            if conv_input is not None:
                layer_input = conv_input(images[start : start + batch_size])
                dev = layer_input.device
                maps = topn._selected_channel_conv(layer_input[(inverse[pairs] - start).to(dev)], channels[pairs])
                rows, chans = torch.arange(len(pairs), device=dev), torch.zeros(len(pairs), dtype=torch.long, device=dev)
            else:
                maps = forward(images[start : start + batch_size])
                dev = maps.device
                rows, chans = (inverse[pairs] - start).to(dev), channels[pairs].to(dev)
            out[pairs] = maps[rows, chans, positions[pairs, 0].to(dev), positions[pairs, 1].to(dev)].float().cpu()
    return out


def select_filters(trained: TopNResult, max_filters: int | None = None, featured: Sequence[int] = (),
                   seed: int = 0) -> tuple[list[int], dict[str, Any]]:  # fmt: skip
    """The filters a sanity check looks at, and how they were chosen.

    Without ``max_filters``: every filter of the result (dead ones give NaN). With it: the live ``featured``
    filters first (the ones a report shows; at most ``max_filters``), then a uniform sample, seeded by
    ``seed``, of the other live filters up to ``max_filters`` in all; every live filter when there are
    no more than ``max_filters``.

    Args:
        trained (TopNResult): The result to check.
        max_filters (int, optional): How many filters at most. Default: None (all)
        featured (sequence of int, optional): Filters to include first. Default: none
        seed (int, optional): Seed of the sample. Default: 0

    Returns:
        (list of int, dict): the filters, and ``rule``, ``featured``, ``sampled``, ``max_filters``,
        ``filters_in_layer``, ``live_filters``, ``seed`` and (with a sample) ``featured_dead``, the
        featured filters left out because they never respond (what the report and results.json state).
    """
    filters = [int(f) for f in trained.filters.tolist()]
    live = [f for f, v in zip(filters, trained.values[:, 0].tolist()) if v > 0]
    info: dict[str, Any] = {"max_filters": max_filters, "filters_in_layer": len(filters), "live_filters": len(live),
                            "seed": int(seed)}  # fmt: skip
    if max_filters is None:
        return filters, {**info, "rule": "all", "featured": [], "sampled": []}
    if max_filters >= len(live):
        return live, {**info, "rule": "all live", "featured": [], "sampled": []}
    live_set = set(live)
    info["featured_dead"] = [int(f) for f in featured if int(f) in set(filters) - live_set]
    first = list(dict.fromkeys(int(f) for f in featured if int(f) in live_set))[:max_filters]
    rest = np.array([f for f in live if f not in set(first)], dtype=np.int64)
    k = max_filters - len(first)
    sampled = sorted(np.random.default_rng([int(seed), 17]).choice(rest, size=k, replace=False).tolist()) if k else []
    return first + sampled, {**info, "rule": "featured + seeded sample", "featured": first, "sampled": sampled}


def cascade_steps(layers: Sequence[str], independent: bool = True) -> list[dict[str, Any]]:
    """The randomisation steps over ``layers`` (bottom to top, the analysed layer last): the cascade from the
    analysed layer down, then (``independent``) each lower layer alone.

    Examples::

        >>> [s["randomised"] for s in cascade_steps(["conv1", "conv2", "conv3"])]
        [['conv3'], ['conv3', 'conv2'], ['conv3', 'conv2', 'conv1'], ['conv2'], ['conv1']]
    """
    top_down = list(layers)[::-1]
    steps = [{"mode": "cascade", "randomised": top_down[: k + 1]} for k in range(len(top_down))]
    if independent:
        steps += [{"mode": "independent", "randomised": [name]} for name in top_down[1:]]
    return steps


def _trained_result(topn: TopNDeconv, result_or_scan: Any, filters: Sequence[int] | None, progress: bool,
                    additional_forward_args: Any) -> TopNResult:  # fmt: skip
    from captum_fau.attr.topn_result import TopNResult
    from captum_fau.stats.result import ScanResult

    if isinstance(result_or_scan, ScanResult):
        trained: TopNResult = topn.from_scan(result_or_scan, filters=filters, progress=progress,
                                             additional_forward_args=additional_forward_args)  # fmt: skip
    elif isinstance(result_or_scan, TopNResult):
        trained = result_or_scan
    else:
        raise ConfigError(
            f"sanity_check takes a TopNResult (with data=) or a ScanResult, got {type(result_or_scan).__name__}."
        )
    if trained.layer != topn.layer_name or trained.rule != topn.rule:
        raise ConfigError(
            f"The result is of layer {trained.layer!r} with rule {trained.rule!r}, but this TopNDeconv analyses "
            f"{topn.layer_name!r} with {topn.rule!r}; check it with a matching TopNDeconv."
        )
    return trained


@dataclass
class _Pairs:
    """The checked ``(image, unit)`` pairs, flattened filter-major (``[F * N]``), and their images."""

    values: torch.Tensor
    positions: torch.Tensor
    channels: torch.Tensor
    windows: torch.Tensor
    reference: torch.Tensor
    live: torch.Tensor
    unique_images: torch.Tensor
    inverse: torch.Tensor

    @property
    def images(self) -> torch.Tensor:
        return self.unique_images[self.inverse.to(self.unique_images.device)]


def _pairs(topn: TopNDeconv, trained: TopNResult, rows: list[int], ranks: int, image_of: Callable[[int], torch.Tensor]) -> _Pairs:
    sub = lambda t: t[rows][:, :ranks]  # noqa: E731
    values = sub(trained.values).reshape(-1).float()
    live = (values > 0).nonzero().flatten()
    if not len(live):
        raise DatasetError(f"Every checked filter of {topn.layer_name!r} is dead (never active): nothing to check.")
    indices = sub(trained.indices).reshape(-1)
    distinct, inverse = torch.unique(indices[live], return_inverse=True)
    device = next(iter(topn.model.parameters()), torch.empty(0)).device
    unique_images = torch.stack([image_of(int(i)) for i in distinct.tolist()]).to(device)
    reference = sub(trained.patches)
    return _Pairs(values=values, positions=sub(trained.positions).reshape(-1, 2).long(),
                  channels=trained.filters[rows].repeat_interleave(ranks), windows=sub(trained.boxes).reshape(-1, 4),
                  reference=reference.reshape(-1, *reference.shape[2:]), live=live, unique_images=unique_images,
                  inverse=inverse)  # fmt: skip


def _randomised_windows(randomised: TopNDeconv, pairs: _Pairs, fields: Any, images: torch.Tensor,
                        additional_forward_args: Any) -> torch.Tensor:  # fmt: skip
    """The live pairs' reconstructions through ``randomised`` (a TopNDeconv on the randomised copy), on the
    trained reconstructions' windows: ``[L, C, h, w]``. The trained unit value is back-projected; the
    randomised one only checks the receptive-field crops."""
    from captum_fau.attr.crops import paste_window

    live = pairs.live
    channels, positions = pairs.channels[live], pairs.positions[live]
    new_values = _unit_values(randomised, pairs.unique_images, pairs.inverse, channels, positions, additional_forward_args)
    recon, boxes = randomised._reconstruct_exact(images, channels, positions, new_values, fields, False,
                                                 additional_forward_args, signal=pairs.values[live])  # fmt: skip
    got = torch.zeros_like(pairs.reference[live])
    windows = pairs.windows[live]
    for k in range(len(live)):
        paste_window(got[k], recon[k], boxes[k], windows[k])
    return got


def sanity_check(
    topn: TopNDeconv,
    result_or_scan: Any,
    data: Any = None,
    *,
    n: int | None = 3,
    filters: Sequence[int] | None = None,
    max_filters: int | None = None,
    featured: Sequence[int] | None = None,
    seed: int = 0,
    independent: bool = True,
    progress: bool = True,
    additional_forward_args: Any = None,
    keep_reconstructions: bool = False,
) -> SanityCheckResult:
    """The check behind :meth:`captum_fau.attr.TopNDeconv.sanity_check` (see there)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    n = optional_positive_int(n, "n", hint="give the number of top-N ranks per filter to check, or None for all.")
    max_filters = optional_positive_int(max_filters, "max_filters", hint="give a number of filters, or None for all.")
    seed = non_negative_int(seed, "seed")
    trained = _trained_result(topn, result_or_scan, filters, progress, additional_forward_args)
    image_of = _image_source(result_or_scan, data)
    if filters is not None:
        chosen = [int(f) for f in filters]
        selection = {"rule": "given", "featured": [], "sampled": [], "max_filters": None,
                     "filters_in_layer": int(trained.filters.numel()), "seed": seed}  # fmt: skip
    else:
        chosen, selection = select_filters(trained, max_filters, featured or (), seed)
    rows = [trained.row(f) for f in chosen]
    ranks = trained.n if n is None else min(n, trained.n)
    pairs = _pairs(topn, trained, rows, ranks, image_of)
    images = pairs.images
    fields = topn.receptive_fields(tuple(images.shape[1:]), tuple(trained.meta.get("map_size", ())) or _map_size(topn, images),
                                   additional_forward_args)  # fmt: skip
    layers = weighted_layers(topn.model, topn.layer, images[:1], additional_forward_args)
    if not layers:
        raise ConfigError(f"No layer with weights runs before {topn.layer_name!r}: there is nothing to randomise.")
    steps = cascade_steps(layers, independent)
    shape = (len(steps), len(rows) * ranks)
    ssim_out, rho_out = np.full(shape, np.nan), np.full(shape, np.nan)
    kept = torch.zeros((len(steps), *pairs.reference.shape)) if keep_reconstructions else None
    reference = pairs.reference[pairs.live].float()
    reference_display = _display(reference)
    # One copy of the model, randomised in place step by step; one TopNDeconv on it (same rule and fields).
    copy_ = _RandomisedModel(topn.model, layers, seed)
    randomised = type(topn)(copy_.model, topn.layer_name, rule=topn.rule, relu_like=topn.relu_like)
    randomised.recon_batch_size = topn.recon_batch_size
    randomised._fields = dict(topn._fields)  # the architecture, hence the fields, did not change
    live = pairs.live.numpy()
    bar = tqdm(total=len(steps), desc=f"sanity check {topn.layer_name}", unit="step", disable=not progress)
    with eval_mode(copy_.model, "The sanity check"):
        for s, step in enumerate(steps):
            copy_.set(step["randomised"])
            got = _randomised_windows(randomised, pairs, fields, images, additional_forward_args).float()
            ssim_out[s, live] = ssim(reference_display, _display(got)).numpy()
            rho_out[s, live] = spearman_abs(reference, got)
            if kept is not None:
                kept[s, pairs.live] = got
            bar.update(1)
    bar.close()
    result = SanityCheckResult(
        layer=topn.layer_name, rule=topn.rule, seed=seed, layers=layers, steps=steps,
        filters=np.asarray(chosen, dtype=np.int64), ssim=ssim_out.reshape(len(steps), len(rows), ranks),
        spearman=rho_out.reshape(len(steps), len(rows), ranks),
        images=trained.indices[rows][:, :ranks].numpy().astype(np.int64), above=layers_above(topn.model, layers),
        reconstructions=None if kept is None else kept.reshape(len(steps), len(rows), ranks, *kept.shape[2:]),
        meta={"n": ranks, "pairs": int(len(live)), "randomisation": "normal(mean, sd) of each trained tensor",
              "selection": selection, "seconds": round(time.perf_counter() - started, 2)},
    )  # fmt: skip
    result.interpretation = interpret(topn.rule, layers, result.summary())
    return result


def _map_size(topn: TopNDeconv, images: torch.Tensor) -> tuple[int, int]:
    with torch.no_grad():
        out = stop_at_layer(topn.model, topn.layer)(images[:1])
    return int(out.shape[2]), int(out.shape[3])


__all__ = [
    "READING", "SanityCheckResult", "cascade_steps", "layers_above", "randomised_copy", "sanity_check", "select_filters",
    "spearman_abs", "ssim", "weighted_layers",
]  # fmt: skip
