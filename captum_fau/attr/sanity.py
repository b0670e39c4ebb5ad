"""Model-randomisation sanity check of top-N reconstructions (Adebayo et al., 2018).

Guided backpropagation and the deconvnet are known to recover image edges almost
regardless of the weights. The check measures how much of each reconstruction
depends on the trained weights: the reconstructions of the same top-N
``(image, unit)`` pairs are recomputed with randomised weights and compared with the
trained model's.

A unit of layer ``L`` depends only on ``L`` and the layers below it, so the
**cascade** randomises ``L``, then ``L`` and the layer below, ... down to the first
weighted layer (the order of Adebayo et al., from the top of the analysed part
down); the **independent** steps randomise one layer at a time. Layers above ``L``
cannot change the reconstructions and are left alone. Randomising replaces each
parameter tensor of a layer by draws from a normal distribution with the trained
tensor's mean and standard deviation (the scale stays, the structure goes), seeded
per layer, in a deep copy of the model; the trained model is never modified.

Every randomised reconstruction starts from the same unit (same image, filter and
position) with the trained model's value as the back-projected signal, and goes
through the same code path as :meth:`TopNDeconv.from_scan`. Similarity to the
trained reconstruction is measured on the receptive-field window by

* **SSIM** (gaussian window, sigma 1.5) of the maps as the report draws them
  (``0.5 + 0.5 * r / max|r|``, range 1): 1 means the picture did not change;
* **Spearman rank correlation** of ``|r|`` over the window's pixels (:func:`scipy.stats.spearmanr`).

High similarity after randomisation means the pictures mostly reflect the image,
not what the network learned.
"""

from __future__ import annotations

import copy
import json
import math
import os
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
    from captum_fau.attr.topn_deconv import TopNDeconv
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
    kernel = ((g[:, None] * g[None, :]) / (g.sum() ** 2))[None, None].to(x.device)
    mean = lambda t: F.conv2d(t, kernel)  # noqa: E731
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


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    from scipy.stats import spearmanr

    x, y = a.abs().flatten().double().numpy(), b.abs().flatten().double().numpy()
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # a constant map has no ranking
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x, y)[0])


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


def randomised_copy(model: nn.Module, layers: Sequence[str], seed: int, all_layers: Sequence[str]) -> nn.Module:
    """A deep copy of ``model`` whose ``layers`` have random parameters (see the module docstring).

    Layer ``all_layers[i]`` is always drawn from seed ``(seed, i)``, so a layer gets the same random
    weights in every step that randomises it.
    """
    clone = copy.deepcopy(model)
    for name in layers:
        index = list(all_layers).index(name)
        gen = torch.Generator().manual_seed(int(seed) * 1009 + index)
        module = clone.get_submodule(name)
        with torch.no_grad():
            for param in module.parameters(recurse=False):
                trained = param.detach().double()
                sd = float(trained.std()) if trained.numel() > 1 else 0.0
                draw = torch.randn(param.shape, generator=gen, dtype=torch.float64) * sd + float(trained.mean())
                param.copy_(draw.to(param.dtype))
    return clone


@dataclass
class SanityCheckResult:
    """Similarity of top-N reconstructions with randomised weights to the trained model's.

    Attributes:
        layer (str): The analysed layer.
        rule (str): The back-projection rule.
        seed (int): Seed of the random weights.
        layers (list of str): The weighted layers feeding the analysed one, bottom to top.
        steps (list of dict): One per randomisation: ``mode`` (``"cascade"`` or
            ``"independent"``) and ``randomised`` (the layers with random weights).
        filters (np.ndarray): ``[F]`` the filters checked.
        ssim (np.ndarray): ``[S, F, N]`` SSIM per step, filter and top-N rank (NaN for dead units).
        spearman (np.ndarray): ``[S, F, N]`` Spearman correlation of ``|reconstruction|``.
        interpretation (str): One sentence saying what the numbers mean.
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

    def summary(self) -> list[dict[str, Any]]:
        """One row per step: mode, layers, median/mean SSIM and Spearman over all checked pairs, and
        the median over filters of each filter's mean SSIM."""
        rows = []
        for s, step in enumerate(self.steps):
            sim, rho = self.ssim[s], self.spearman[s]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices (dead filters)
                per_filter = np.nanmean(sim, axis=1)
                rows.append({
                    "mode": step["mode"], "randomised": list(step["randomised"]),
                    "ssim_median": _num(np.nanmedian(sim)), "ssim_mean": _num(np.nanmean(sim)),
                    "ssim_filter_median": _num(np.nanmedian(per_filter)),
                    "spearman_median": _num(np.nanmedian(rho)), "spearman_mean": _num(np.nanmean(rho)),
                    "pairs": int(np.isfinite(sim).sum()),
                })  # fmt: skip
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (arrays as nested lists, NaN as None)."""
        return {
            "layer": self.layer, "rule": self.rule, "seed": self.seed, "layers": list(self.layers),
            "steps": [dict(s) for s in self.steps], "filters": [int(f) for f in self.filters],
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
        return cls(layer=d["layer"], rule=d["rule"], seed=int(d["seed"]), layers=list(d["layers"]),
                   steps=list(d["steps"]), filters=np.asarray(d["filters"], dtype=np.int64), ssim=arr(d["ssim"]),
                   spearman=arr(d["spearman"]), interpretation=d.get("interpretation", ""), meta=d.get("meta", {}))  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SanityCheckResult":
        """Read a file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else round(value, 4)


def _nested(a: np.ndarray) -> list:
    return [_nested(v) for v in a] if a.ndim > 1 else [None if not math.isfinite(v) else float(v) for v in a]


def interpret(rule: str, layer_names: Sequence[str], summary: Sequence[dict[str, Any]]) -> str:
    """One sentence on what the cascade says (see :class:`SanityCheckResult`)."""
    cascade = [row for row in summary if row["mode"] == "cascade" and row["ssim_median"] is not None]
    if not cascade:
        return "No live unit could be checked (every checked filter is dead)."
    first, last = cascade[0], cascade[-1]
    what = {"guided": "guided backpropagation", "deconv": "deconvnet", "gradient": "gradient"}[rule]
    text = f"{what} reconstructions keep a median SSIM of {first['ssim_median']:.2f} after randomising {first['randomised'][0]}"
    if len(cascade) > 1:
        text += f" and {last['ssim_median']:.2f} after randomising {last['randomised'][0]} down to {last['randomised'][-1]}"
    worst = last["ssim_median"]
    if worst >= 0.7:
        verdict = "they mostly reflect the image, not the trained weights: read them as edge maps, not as what the filter learned"
    elif worst >= 0.4:
        verdict = "they partly depend on the trained weights; compare them with the randomised ones before reading them"
    else:
        verdict = "they depend on the trained weights (the check is passed)"
    return f"{text}: {verdict}."


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


def _unit_values(model: nn.Module, layer: nn.Module, images: torch.Tensor, inverse: torch.Tensor, channels: torch.Tensor,
                 positions: torch.Tensor, batch_size: int, additional_forward_args: Any) -> torch.Tensor:
    """The units' values under ``model`` (the randomised weights), for the reconstruction's value check:
    one forward pass per distinct image (``images[inverse[p]]`` is pair ``p``'s image)."""
    forward = stop_at_layer(model, layer, additional_forward_args)
    out = torch.zeros(len(channels))
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            maps = forward(images[start : start + batch_size])
            pairs = ((inverse >= start) & (inverse < start + len(maps))).nonzero().flatten()
            dev = maps.device
            out[pairs] = maps[(inverse[pairs] - start).to(dev), channels[pairs].to(dev), positions[pairs, 0].to(dev),
                              positions[pairs, 1].to(dev)].float().cpu()  # fmt: skip
    return out


def sanity_check(
    topn: TopNDeconv,
    result_or_scan: Any,
    data: Any = None,
    *,
    n: int | None = 3,
    filters: Sequence[int] | None = None,
    seed: int = 0,
    independent: bool = True,
    progress: bool = True,
    additional_forward_args: Any = None,
) -> SanityCheckResult:
    """The check behind :meth:`captum_fau.attr.TopNDeconv.sanity_check` (see there)."""
    from tqdm.auto import tqdm

    from captum_fau.attr.topn_deconv import paste_window
    from captum_fau.attr.topn_result import TopNResult
    from captum_fau.stats.result import ScanResult

    n = optional_positive_int(n, "n", hint="give the number of top-N ranks per filter to check, or None for all.")
    seed = non_negative_int(seed, "seed")
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
    image_of = _image_source(result_or_scan, data)
    rows = list(range(len(trained.filters))) if filters is None else [trained.row(f) for f in filters]
    ranks = trained.n if n is None else min(n, trained.n)
    sub = lambda t: t[rows][:, :ranks]  # noqa: E731
    values, positions, indices, windows, reference = (
        sub(trained.values), sub(trained.positions), sub(trained.indices), sub(trained.boxes), sub(trained.patches)
    )
    flat_val, flat_pos = values.reshape(-1).float(), positions.reshape(-1, 2).long()
    flat_ch = trained.filters[rows].repeat_interleave(ranks)
    live = (flat_val > 0).nonzero().flatten()
    if not len(live):
        raise DatasetError(f"Every checked filter of {topn.layer_name!r} is dead (never active): nothing to check.")
    device = next(iter(topn.model.parameters()), torch.empty(0)).device
    distinct, inverse = torch.unique(indices.reshape(-1)[live], return_inverse=True)
    unique_images = torch.stack([image_of(int(i)) for i in distinct.tolist()]).to(device)
    images = unique_images[inverse.to(device)]
    input_shape = tuple(images.shape[1:])
    fields = topn.receptive_fields(input_shape, tuple(trained.meta.get("map_size", ())) or _map_size(topn, images),
                                   additional_forward_args)  # fmt: skip
    layers = weighted_layers(topn.model, topn.layer, images[:1], additional_forward_args)
    if not layers:
        raise ConfigError(f"No layer with weights runs before {topn.layer_name!r}: there is nothing to randomise.")
    top_down = layers[::-1]
    steps = [{"mode": "cascade", "randomised": top_down[: k + 1]} for k in range(len(top_down))]
    if independent:
        steps += [{"mode": "independent", "randomised": [name]} for name in top_down[1:]]
    shape = (len(steps), len(rows) * ranks)
    ssim_out, rho_out = np.full(shape, np.nan), np.full(shape, np.nan)
    ref_flat = reference.reshape(-1, *reference.shape[2:])
    win_flat = windows.reshape(-1, 4)
    bar = tqdm(total=len(steps), desc=f"sanity check {topn.layer_name}", unit="step", disable=not progress)
    for s, step in enumerate(steps):
        model = randomised_copy(topn.model, step["randomised"], seed, layers)
        randomised = type(topn)(model, topn.layer_name, rule=topn.rule)
        randomised.recon_batch_size = topn.recon_batch_size
        randomised._fields = dict(topn._fields)  # the architecture, hence the fields, did not change
        with eval_mode(model, "The sanity check"):
            new_values = _unit_values(model, randomised.layer, unique_images, inverse, flat_ch[live], flat_pos[live],
                                      topn.recon_batch_size, additional_forward_args)  # fmt: skip
            recon, boxes = randomised._reconstruct_exact(images, flat_ch[live], flat_pos[live], new_values, fields,
                                                         False, additional_forward_args, signal=flat_val[live])  # fmt: skip
        got = torch.zeros_like(ref_flat[live])
        for k, p in enumerate(live.tolist()):
            paste_window(got[k], recon[k], boxes[k], win_flat[p])
            rho_out[s, p] = _spearman(ref_flat[p], got[k])
        ssim_out[s, live.numpy()] = ssim(_display(ref_flat[live].float()), _display(got.float())).numpy()
        bar.update(1)
    bar.close()
    result = SanityCheckResult(
        layer=topn.layer_name, rule=topn.rule, seed=seed, layers=layers, steps=steps,
        filters=trained.filters[rows].numpy().astype(np.int64), ssim=ssim_out.reshape(len(steps), len(rows), ranks),
        spearman=rho_out.reshape(len(steps), len(rows), ranks),
        meta={"n": ranks, "pairs": int(len(live)), "randomisation": "normal(mean, sd) of each trained tensor"},
    )  # fmt: skip
    result.interpretation = interpret(topn.rule, layers, result.summary())
    return result


def _map_size(topn: TopNDeconv, images: torch.Tensor) -> tuple[int, int]:
    with torch.no_grad():
        out = stop_at_layer(topn.model, topn.layer)(images[:1])
    return int(out.shape[2]), int(out.shape[3])


__all__ = ["SanityCheckResult", "randomised_copy", "sanity_check", "ssim", "weighted_layers"]
