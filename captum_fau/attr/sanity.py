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

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from captum_fau.attr.sanity_result import BASELINE_MARGIN, READING, SanityCheckResult, interpret
from captum_fau.attr.randomise import (
    _RandomisedModel,
    layers_above,
    normalisation_layers,
    randomised_copy,
    weighted_layers,
)
from captum_fau._utils.modules import eval_mode, stop_at_layer
from captum_fau._utils.validate import non_negative_int, optional_positive_int
from captum_fau.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from captum_fau.attr.topn_attribution import TopNAttribution as TopNDeconv
    from captum_fau.attr.topn_result import TopNResult


def ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
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
        raise ConfigError(
            f"ssim needs two images of the same shape [..., H, W], got {tuple(x.shape)} and {tuple(y.shape)}."
        )
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
        raise ConfigError(
            f"spearman_abs needs two stacks of maps of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}."
        )
    x = rankdata(a.detach().abs().reshape(len(a), -1).double().cpu().numpy(), axis=1)
    y = rankdata(b.detach().abs().reshape(len(b), -1).double().cpu().numpy(), axis=1)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(norm > 0, (x * y).sum(axis=1) / np.where(norm > 0, norm, 1.0), np.nan)
    return np.clip(rho, -1.0, 1.0)


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


def _unit_values(
    topn: TopNDeconv,
    images: torch.Tensor,
    inverse: torch.Tensor,
    channels: torch.Tensor,
    positions: torch.Tensor,
    additional_forward_args: Any,
) -> torch.Tensor:
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
                rows, chans = (
                    torch.arange(len(pairs), device=dev),
                    torch.zeros(len(pairs), dtype=torch.long, device=dev),
                )
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


def _pairs(
    topn: TopNDeconv, trained: TopNResult, rows: list[int], ranks: int, image_of: Callable[[int], torch.Tensor]
) -> _Pairs:
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
    new_values = _unit_values(
        randomised, pairs.unique_images, pairs.inverse, channels, positions, additional_forward_args
    )
    recon, boxes = randomised._reconstruct_exact(images, channels, positions, new_values, fields, False,
                                                 additional_forward_args, signal=pairs.values[live])  # fmt: skip
    got = torch.zeros_like(pairs.reference[live])
    windows = pairs.windows[live]
    for k in range(len(live)):
        paste_window(got[k], recon[k], boxes[k], windows[k])
    return got


@dataclass(frozen=True)
class SanityOptions:
    """Settings of the model-randomisation check (:func:`sanity_check`).

    Attributes:
        n (int, optional): Top-N ranks per filter to check (None: all). Default: 3
        filters (sequence of int, optional): Exactly these filters. Default: None (see ``max_filters``)
        max_filters (int, optional): At most this many filters: the featured ones, then a seeded
            sample (:func:`select_filters`). Default: None (all)
        featured (sequence of int, optional): Filters to include first. Default: None
        seed (int): Seed of the random weights and the sample. Default: 0
        independent (bool): Also randomise each lower layer alone. Default: True
        keep_reconstructions (bool): Keep the randomised reconstructions (not saved). Default: False
        baseline (bool): Also measure the SSIM between different trained filters' reconstructions at
            the same image and unit, the baseline the verdict reads the randomised SSIM against. Default: True
    """

    n: int | None = 3
    filters: Sequence[int] | None = None
    max_filters: int | None = None
    featured: Sequence[int] | None = None
    seed: int = 0
    independent: bool = True
    keep_reconstructions: bool = False
    baseline: bool = True

    def __post_init__(self) -> None:
        optional_positive_int(self.n, "n", hint="give the number of top-N ranks per filter to check, or None for all.")
        optional_positive_int(self.max_filters, "max_filters", hint="give a number of filters, or None for all.")
        non_negative_int(self.seed, "seed")

    @classmethod
    def from_keywords(cls, options: "SanityOptions | None" = None, **keywords: Any) -> "SanityOptions":
        """Options from the keywords of earlier releases (``n=``, ``seed=``, ...)."""
        import dataclasses

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise ConfigError(f"{unknown} are not sanity-check options; the options are {sorted(known)}.")
        base = options if options is not None else cls()
        return dataclasses.replace(base, **keywords) if keywords else base


def sanity_check(
    topn: TopNDeconv,
    result_or_scan: Any,
    data: Any = None,
    options: SanityOptions | None = None,
    *,
    progress: bool = True,
    additional_forward_args: Any = None,
    **keywords: Any,
) -> SanityCheckResult:
    """The check behind :meth:`captum_fau.attr.TopNDeconv.sanity_check` (see there); ``options`` holds
    the settings (the keywords of earlier releases, ``n=``, ``filters=``, ..., are mapped onto it)."""
    opts = SanityOptions.from_keywords(options, **keywords)
    n, max_filters, seed, filters = opts.n, opts.max_filters, opts.seed, opts.filters
    independent, keep_reconstructions, featured = opts.independent, opts.keep_reconstructions, opts.featured
    from tqdm.auto import tqdm

    started = time.perf_counter()
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
        baseline = _baseline_ssim(randomised, copy_, pairs, (fields, images), ranks, additional_forward_args) \
            if opts.baseline else None  # fmt: skip
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
              "not_randomised": normalisation_layers(topn.model), "selection": selection,
              "seconds": round(time.perf_counter() - started, 2)},
        baseline_ssim=None if baseline is None else baseline.reshape(len(rows), ranks),
    )  # fmt: skip
    result.interpretation = interpret(topn.rule, layers, result.summary())
    if result.meta["not_randomised"]:
        result.interpretation += (f" Normalisation layers ({', '.join(result.meta['not_randomised'][:6])}) keep their "
                                  "trained parameters and statistics: they are not randomised.")  # fmt: skip
    return result


def _baseline_ssim(randomised: TopNDeconv, copy_: _RandomisedModel, pairs: _Pairs, fields_images: tuple[Any, Any],
                   ranks: int, additional_forward_args: Any) -> np.ndarray | None:  # fmt: skip
    """``[F * N]`` SSIM of each trained reconstruction with a different checked filter's trained reconstruction
    at the same image and unit position (the next checked filter, same rank); None with one filter."""
    n_filters = len(pairs.channels) // ranks
    if n_filters < 2:
        return None
    fields, images = fields_images
    copy_.set([])  # the trained weights
    other = _Pairs(**{**vars(pairs), "channels": pairs.channels.reshape(n_filters, ranks).roll(1, dims=0).reshape(-1)})
    got = _randomised_windows(randomised, other, fields, images, additional_forward_args).float()
    out = np.full(len(pairs.channels), np.nan)
    out[pairs.live.numpy()] = ssim(_display(pairs.reference[pairs.live].float()), _display(got)).numpy()
    return out


def _map_size(topn: TopNDeconv, images: torch.Tensor) -> tuple[int, int]:
    with torch.no_grad():
        out = stop_at_layer(topn.model, topn.layer)(images[:1])
    return int(out.shape[2]), int(out.shape[3])


#: Pixels back-projected by the sanity check at most (pairs x randomisation steps x window pixels), about a
#: minute on one CPU core; --sanity-filters 0 checks every reconstructed filter whatever it costs.
SANITY_BUDGET_PIXELS = 4e7


def sanity_budget(model: nn.Module, layer: str, topn: Any, n: int, max_filters: int) -> tuple[int, int, str | None]:
    """``(ranks, filters, note)`` of the sanity check of ``topn`` within :data:`SANITY_BUDGET_PIXELS`: fewer
    ranks first (down to the top-1 image), then fewer filters (the featured ones first); the note says so
    (None when the whole check fits)."""
    if not len(topn.filters) or topn.patches.numel() == 0:
        return n, max_filters, None
    device = next(iter(model.parameters()), torch.empty(0)).device
    sample = torch.zeros((1, *topn.meta["input_shape"]), device=device)
    with torch.no_grad():
        steps = len(cascade_steps(weighted_layers(model, model.get_submodule(layer), sample), True))
    per_pair = steps * topn.patches[0, 0].numel()
    allowed = max(1, int(SANITY_BUDGET_PIXELS // max(1, per_pair)))
    filters = min(max_filters, len(topn.filters))
    ranks = min(n, max(1, allowed // filters))
    fit = min(filters, max(1, allowed // ranks))
    if (ranks, fit) == (n, filters):
        return ranks, fit, None
    return (
        ranks,
        fit,
        (
            f"The sanity check looks at the top {ranks} image(s) of {fit} filter(s) (not {n} of {filters}): each pair "
            f"is back-projected {steps} times over {tuple(topn.patches.shape[-3:])} windows, and the check is kept "
            "near a minute; --sanity-filters 0 (Python: sanity_filters=0) checks every reconstructed filter's top 3."
        ),
    )


__all__ = [
    "BASELINE_MARGIN", "interpret", "READING", "SanityCheckResult", "SanityOptions", "normalisation_layers", "cascade_steps", "layers_above", "randomised_copy", "SANITY_BUDGET_PIXELS", "sanity_budget", "sanity_check", "select_filters",
    "spearman_abs", "ssim", "weighted_layers",
]  # fmt: skip
