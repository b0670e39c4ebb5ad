"""The dataset side of top-N deconvolution: scan, top-N per filter, which filters are reconstructed when.

:class:`~captum_fau.attr.topn_attribution.TopNAttribution` back-projects given ``(image, filter,
unit)`` pairs; this module decides the pairs: one streaming scan finds each filter's ``N`` strongest
images (:func:`top_n`, :func:`from_scan`), a selection of filters is reconstructed at once and the
rest is kept as a :class:`~captum_fau.attr.topn_result.TopNSearch` (``pending``) that
:func:`complete` reconstructs later, in chunks, saving after each so that a killed run resumes.
Under ``torch.distributed`` each rank reconstructs a contiguous share of the filters.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from captum_fau._utils.modules import eval_mode, stop_at_layer
from captum_fau._utils.validate import positive_int, with_settings
from captum_fau.attr.crops import paste_window
from captum_fau.attr.topn_result import TopNResult, TopNSearch
from captum_fau.errors import ConfigError, DatasetError
from captum_fau.stats.scan import ScanResult, scan

if TYPE_CHECKING:
    from captum_fau.attr.topn_attribution import TopNAttribution

#: Pairs reconstructed per chunk (images of a chunk are held at once).
CHUNK_PAIRS = 1024


@dataclass
class TopNOptions:
    """How :func:`top_n`, :func:`from_scan` and :func:`complete` run.

    Attributes:
        n (int): Images per filter. Default: 10
        filters (sequence of int, optional): Filters searched and kept. Default: all
        reconstruct (sequence of int, optional): Filters reconstructed now; the other searched
            filters go to the result's ``pending``. Default: None (every searched filter)
        distinct_images (bool): Each image at most once per filter (its strongest unit). Default: True
        batch_size (int): Batch size of the scan. Default: 64
        full_maps (bool): Also keep full-size reconstructions ``[F, n, C, H, W]``. Default: False
        progress (bool): Progress bars. Default: True
        additional_forward_args (Any): Extra model arguments after the inputs. Default: None
        full_image (bool): Back-project on full images (for checks). Default: False
    """

    n: int = 10
    filters: Sequence[int] | torch.Tensor | int | None = None
    reconstruct: Sequence[int] | None = None
    distinct_images: bool = True
    batch_size: int = 64
    full_maps: bool = False
    progress: bool = True
    additional_forward_args: Any = None
    full_image: bool = False


def topn_options(options: TopNOptions | None = None, **settings: Any) -> TopNOptions:
    """``options`` (default :class:`TopNOptions`) with keyword ``settings`` (``n=3, progress=False``) applied."""
    return with_settings(TopNOptions, options, settings)


@dataclass
class _Geometry:
    """What a reconstruction needs to know about the data besides the images."""

    input_shape: tuple[int, int, int]
    map_size: tuple[int, int]
    num_images: int
    distinct_images: bool


def first_image(data: Any) -> torch.Tensor | None:
    """``[1, C, H, W]``: the first image of a tensor or map-style dataset, or None for other data."""
    if isinstance(data, torch.Tensor):
        return data[:1] if data.dim() == 4 and len(data) else None
    indexable = hasattr(data, "__getitem__") and hasattr(data, "__len__")
    if not indexable or isinstance(data, (list, tuple)) or not len(data):
        return None
    item = data[0]
    image = item.get("image") if isinstance(item, dict) else item[0] if isinstance(item, (tuple, list)) else item
    return image[None] if isinstance(image, torch.Tensor) and image.dim() == 3 else None


def image_source(data: Any) -> Callable[[int], torch.Tensor]:
    """Dataset index -> image ``[C, H, W]`` of a tensor ``[M, C, H, W]`` or a map-style dataset."""
    if isinstance(data, torch.Tensor):
        return lambda i: data[int(i)]
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise ConfigError(
            f"Completing a top-N result needs the images by index: pass the tensor or map-style dataset the "
            f"scan ran on, not a {type(data).__name__}."
        )

    def item(i: int) -> torch.Tensor:
        got = data[int(i)]
        got = got["image"] if isinstance(got, dict) else got[0] if isinstance(got, (tuple, list)) else got
        return torch.as_tensor(got)

    return item


def top_n(attribution: TopNAttribution, data: Any, options: TopNOptions) -> TopNResult:
    """Scan ``data`` once, find each filter's top-N images and reconstruct them
    (:meth:`captum_fau.attr.TopNDeconv.top_n`)."""
    positive_int(options.n, "n", hint="give the number of images per filter.")
    attribution._check_activations(first_image(data), options.additional_forward_args)  # fail before the scan
    started = time.perf_counter()
    result = scan(
        attribution.model, attribution.layer_name, data, top_n=options.n, distinct_images=options.distinct_images,
        batch_size=options.batch_size, progress=options.progress, keep_inputs=True,
        additional_forward_args=options.additional_forward_args,
    )  # fmt: skip
    top = from_scan(attribution, result, options)
    spec = getattr(data, "spec", None)  # a ModelInputs: the windows can be shown as the model saw them
    if callable(getattr(spec, "to_dict", None)):
        top.meta["input_spec"] = spec.to_dict()
    top.meta["timings"]["scan_s"] = round(time.perf_counter() - started - top.meta["timings"]["reconstruct_s"], 4)
    return top


def from_scan(attribution: TopNAttribution, result: ScanResult, options: TopNOptions) -> TopNResult:
    """Reconstruct the top-N of a finished scan (:meth:`captum_fau.attr.TopNDeconv.from_scan`)."""
    search, geometry = _search(attribution, result, options.filters)
    now = search if options.reconstruct is None else search.select(options.reconstruct)
    if result.world_size > 1:
        top = _sharded(attribution, result, now, geometry, options)
    else:
        top = reconstruct_search(attribution, now, lambda i: result.inputs[int(i)], geometry, options)
    if options.reconstruct is not None:
        top.pending = search.without(top.filters.tolist())
    never = {int(f) for f, v in zip(search.filters.tolist(), search.values[:, 0].tolist()) if v <= 0}
    dead = sorted(set(top.dead) | never)
    top.dead = dead
    if dead:
        warnings.warn(
            f"{len(dead)} filter(s) of layer {attribution.layer_name!r} never respond positively on this data "
            f"(dead units): {dead[:20]}; their reconstructions are zero.",
            UserWarning,
            stacklevel=3,
        )
    return top


def complete(
    attribution: TopNAttribution,
    result: TopNResult,
    data: Any,
    filters: Sequence[int] | None = None,
    options: TopNOptions | None = None,
    checkpoint: Callable[[TopNResult], None] | None = None,
    chunk_filters: int = 16,
) -> TopNResult:
    """Reconstruct pending filters of ``result`` (:meth:`captum_fau.attr.TopNDeconv.complete`).

    Args:
        attribution (TopNAttribution): Of the result's layer and rule.
        result (TopNResult): A result with ``pending`` filters.
        data (Tensor or Dataset): The images the result's indices refer to.
        filters (sequence of int, optional): Pending filters to reconstruct. Default: all pending
        options (TopNOptions, optional): ``progress``, ``additional_forward_args``, ``full_image``.
        checkpoint (callable, optional): Called with the result after each chunk (to save it).
        chunk_filters (int, optional): Filters per chunk. Default: 16

    Returns:
        TopNResult: ``result`` with those filters reconstructed.
    """
    options = options or TopNOptions()
    if (result.layer, result.rule) != (attribution.layer_name, attribution.rule):
        raise ConfigError(
            f"The result is of layer {result.layer!r} with rule {result.rule!r}, but this TopNDeconv analyses "
            f"{attribution.layer_name!r} with {attribution.rule!r}; complete it with a matching TopNDeconv."
        )
    if result.pending is None:
        return result
    todo = result.pending if filters is None else result.pending.select(filters)
    meta = result.meta
    geometry = _Geometry(
        tuple(meta["input_shape"]),
        tuple(meta["map_size"]),  # type: ignore[arg-type]
        int(meta["num_images"]),
        bool(meta.get("distinct_images", True)),
    )
    image_of = image_source(data)
    sample = image_of(int(todo.indices[0, 0])) if len(todo) else None
    if sample is not None and tuple(sample.shape) != geometry.input_shape:
        raise DatasetError(
            f"The images given have shape {tuple(sample.shape)}, but the result was computed on "
            f"{geometry.input_shape}; pass the data (and preprocessing) of the original run."
        )
    if sample is not None:
        _check_same_data(attribution, todo, sample, options.additional_forward_args)
    step = TopNOptions(n=result.n, progress=options.progress, additional_forward_args=options.additional_forward_args,
                       full_image=options.full_image, full_maps=result.full_maps is not None)  # fmt: skip
    for start in range(0, len(todo), chunk_filters):
        part = todo.select(todo.filters[start : start + chunk_filters].tolist())
        result = result.merged(reconstruct_search(attribution, part, image_of, geometry, step))
        if checkpoint is not None:
            checkpoint(result)
    return result


def within_budget(attribution: TopNAttribution, result: TopNResult, order: Sequence[int], budget_mb: float,
                  keep: int = 0) -> list[int]:  # fmt: skip
    """The first filters of ``order`` whose windows fit ``budget_mb`` as :meth:`TopNResult.save` stores
    them compactly (float16 reconstructions, 8-bit input windows); the first ``keep`` always.

    Args:
        attribution (TopNAttribution): Of the result's layer (for the receptive field).
        result (TopNResult): Its ``meta`` gives the input shape and map size.
        order (sequence of int): Filters, most wanted first.
        budget_mb (float): Megabytes (2**20 bytes).
        keep (int, optional): Filters taken whatever the budget. Default: 0

    Returns:
        list of int: A prefix of ``order``.
    """
    input_shape, map_size = tuple(result.meta["input_shape"]), tuple(result.meta["map_size"])
    fields = attribution.receptive_fields(input_shape, map_size)  # type: ignore[arg-type]
    per_filter = result.n * input_shape[0] * int(fields.size[0]) * int(fields.size[1]) * 3  # 2 + 1 bytes a pixel
    fit = int(budget_mb * 2**20 // max(1, per_filter))
    return [int(f) for f in order[: max(int(keep), fit)]]


def _check_same_data(attribution: TopNAttribution, todo: TopNSearch, sample: torch.Tensor, extra: Any) -> None:
    """Refuse data that does not reproduce the result's first pending unit (another model, data or preprocessing)."""
    device = next(iter(attribution.model.parameters()), torch.empty(0)).device
    with eval_mode(attribution.model, "TopNDeconv"), torch.no_grad():
        out = stop_at_layer(attribution.model, attribution.layer, extra)(sample[None].to(device))
    h, w = (int(v) for v in todo.positions[0, 0])
    got, want = float(out[0, int(todo.filters[0]), h, w]), float(todo.values[0, 0])
    if abs(got - want) > 1e-3 * max(1.0, abs(want)):
        raise DatasetError(
            f"Image {int(todo.indices[0, 0])} gives filter {int(todo.filters[0])} the value {got:.4g} where the result "
            f"recorded {want:.4g}: the model or the data (or its preprocessing) differ from the run that found the "
            "top-N images; pass the same ones to complete it."
        )


def _search(attribution: TopNAttribution, result: ScanResult, filters: Any) -> tuple[TopNSearch, _Geometry]:
    """The scan's top-N of the chosen filters, and the geometry of its images."""
    layer_scan = result.layers.get(attribution.layer_name)
    if layer_scan is None or layer_scan.topn is None or not (result.inputs or result.world_size > 1):
        raise ConfigError(
            f"from_scan needs a scan of layer {attribution.layer_name!r} made with top_n=N and keep_inputs=True."
        )
    tracker = layer_scan.topn
    if result.num_images < tracker.n and tracker.distinct_images:
        raise DatasetError(
            f"n={tracker.n} images per filter were requested but the dataset has only {result.num_images}; "
            f"pass n <= {result.num_images}."
        )
    chosen = attribution._check_filters(filters, layer_scan.num_channels)
    top = tracker.result()
    search = TopNSearch(chosen, top["indices"][chosen], top["values"][chosen], top["positions"][chosen])
    geometry = _Geometry(
        tuple(result.input_shape),
        tuple(layer_scan.map_size),  # type: ignore[arg-type]
        result.num_images,
        tracker.distinct_images,
    )
    return search, geometry


def reconstruct_search(
    attribution: TopNAttribution,
    search: TopNSearch,
    image_of: Callable[[int], torch.Tensor],
    geometry: _Geometry,
    options: TopNOptions,
) -> TopNResult:
    """Reconstruct every live pair of ``search`` into receptive-field windows: a :class:`TopNResult`."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    input_shape, (n_filters, n) = geometry.input_shape, tuple(search.indices.shape)
    fields = attribution.receptive_fields(input_shape, geometry.map_size, options.additional_forward_args)
    flat_idx, flat_val = search.indices.reshape(-1), search.values.reshape(-1)
    flat_pos, flat_ch = search.positions.reshape(-1, 2), search.filters.repeat_interleave(n)
    live = (flat_val > 0).nonzero().flatten()
    patch_boxes = fields.patch_boxes(flat_pos) if len(flat_pos) else torch.zeros((0, 4), dtype=torch.int64)
    r_h, r_w = fields.size if not len(flat_pos) else (int(patch_boxes[0, 2] - patch_boxes[0, 0]),
                                                       int(patch_boxes[0, 3] - patch_boxes[0, 1]))  # fmt: skip
    patches = torch.zeros((len(flat_idx), input_shape[0], r_h, r_w))
    image_patches = torch.zeros_like(patches)
    maps = torch.zeros((len(flat_idx), *input_shape)) if options.full_maps else None
    for p, (y0, x0, y1, x1) in enumerate(patch_boxes.tolist()):
        paste_window(image_patches[p], image_of(int(flat_idx[p])), torch.tensor([0, 0, *input_shape[1:]]),
                     torch.tensor([y0, x0, y1, x1]))  # fmt: skip
    device = next(iter(attribution.model.parameters()), torch.empty(0)).device
    bar = tqdm(total=len(live), desc=f"reconstruct {attribution.layer_name}", unit="unit",
               disable=not options.progress or not len(live))  # fmt: skip
    with eval_mode(attribution.model, "TopNDeconv"):
        for start in range(0, len(live), CHUNK_PAIRS):
            ids = live[start : start + CHUNK_PAIRS]
            images = torch.stack([image_of(int(i)) for i in flat_idx[ids].tolist()]).to(device)
            recon, boxes = attribution._reconstruct_exact(
                images,
                flat_ch[ids],
                flat_pos[ids],
                flat_val[ids],
                fields,
                options.full_image,
                options.additional_forward_args,
            )
            for k, p in enumerate(ids.tolist()):
                paste_window(patches[p], recon[k], boxes[k], patch_boxes[p])
                if maps is not None:
                    paste_window(maps[p], recon[k], boxes[k], torch.tensor([0, 0, *input_shape[1:]]))
            bar.update(len(ids))
    bar.close()
    shape = (n_filters, n)
    return TopNResult(
        layer=attribution.layer_name, rule=attribution.rule, filters=search.filters, indices=search.indices,
        values=search.values, positions=search.positions, patches=patches.reshape(*shape, *patches.shape[1:]),
        image_patches=image_patches.reshape(*shape, *image_patches.shape[1:]), boxes=patch_boxes.reshape(*shape, 4),
        full_maps=None if maps is None else maps.reshape(*shape, *maps.shape[1:]),
        dead=[int(f) for f, v in zip(search.filters.tolist(), search.values[:, 0].tolist()) if v <= 0],
        meta={
            "model": type(attribution.model).__name__, "input_shape": list(input_shape),
            "map_size": list(geometry.map_size), "num_images": geometry.num_images,
            "distinct_images": geometry.distinct_images, "receptive_field": list(fields.size),
            "stride": list(fields.stride), "local": fields.local,
            "relu_like": bool(attribution.relu_like), "relu_like_activations": attribution.relu_like_activations,
            "timings": {"scan_s": 0.0, "reconstruct_s": round(time.perf_counter() - started, 4)},
        },
    )  # fmt: skip


def _sharded(attribution: TopNAttribution, result: ScanResult, search: TopNSearch, geometry: _Geometry,
             options: TopNOptions) -> TopNResult:  # fmt: skip
    """Each rank reconstructs a contiguous share of the filters; every rank receives the whole result."""
    import numpy as np

    from captum_fau._utils import distributed

    share = np.array_split(np.arange(len(search)), result.world_size)[result.rank]
    error: BaseException | None = None
    part: TopNResult | None = None
    mine = replace(options, progress=options.progress and result.rank == 0)
    try:
        if len(share):
            part = reconstruct_search(attribution, search.select(search.filters[share].tolist()),
                                      lambda i: result.inputs[int(i)], geometry, mine)  # fmt: skip
    except Exception as err:  # noqa: BLE001 - every rank learns of it in agree()
        error = err
    distributed.agree(error)
    fields = {"filters": 1, "indices": 2, "values": 2, "positions": 3, "patches": 5, "image_patches": 5, "boxes": 3}
    if options.full_maps:
        fields["full_maps"] = 5
    tensors = {f: getattr(part, f) if part is not None else torch.zeros((0,) * d) for f, d in fields.items()}
    tensors["dead"] = torch.tensor(part.dead if part is not None else [], dtype=torch.int64)
    tensors["seconds"] = torch.tensor([part.meta["timings"]["reconstruct_s"] if part is not None else 0.0])
    gathered = distributed.gather_tensors(tensors, everyone=True)
    parts = [p for p in gathered if p["filters"].numel()]  # type: ignore[union-attr]
    if not parts:  # nothing to reconstruct anywhere
        return reconstruct_search(attribution, search, lambda i: result.inputs[int(i)], geometry, mine)
    merged = {f: torch.cat([p[f] for p in parts]) for f in fields}
    template = part if part is not None else reconstruct_search(
        attribution, search.select([]), lambda i: result.inputs[int(i)], geometry, TopNOptions(progress=False),
    )  # fmt: skip
    meta = {**template.meta, "processes": result.world_size}
    meta["timings"] = {"scan_s": 0.0, "reconstruct_s": round(max(float(p["seconds"][0]) for p in parts), 4)}
    return TopNResult(
        layer=template.layer, rule=template.rule, filters=merged["filters"], indices=merged["indices"],
        values=merged["values"], positions=merged["positions"], patches=merged["patches"],
        image_patches=merged["image_patches"], boxes=merged["boxes"], full_maps=merged.get("full_maps"),
        dead=sorted(int(d) for p in parts for d in p["dead"].tolist()), meta=meta,
    )  # fmt: skip


__all__ = ["CHUNK_PAIRS", "TopNOptions", "complete", "first_image", "from_scan", "image_source", "reconstruct_search",
           "top_n", "topn_options", "within_budget"]  # fmt: skip
