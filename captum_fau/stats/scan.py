"""One streaming pass over a dataset at chosen layers: the engine every analysis shares.

:func:`scan` feeds a dataset through a model once and records, for every
image and every channel of each requested layer, the spatial maximum of the
channel's map and where it occurred. Optionally it keeps a running top-N per
channel (:class:`~captum_fau.stats.topn.RunningTopN`). The forward pass stops
at the deepest requested layer, the model runs in eval mode, and nothing of
size dataset x channels x height x width is ever held: the per-image store is
``[M, C]``.

Top-N deconvolution (:class:`captum_fau.attr.TopNDeconv`) and the FAU-KL
association (:class:`captum_fau.concept.FAUKL`) are both built on it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from captum_fau.errors import DatasetError, DeviceError, InputShapeError, LayerError
from captum_fau.stats.topn import RunningTopN

LayerSpec = str | nn.Module

#: Module types listed as candidate layers in error messages.
_CONV_LIKE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.SiLU,
    nn.GELU,
    nn.LeakyReLU,
    nn.ELU,
)


class _StopForward(Exception):
    """Raised from a forward hook once every requested layer has produced its output."""


# ----------------------------------------------------------------------------- layers
def conv_like_layers(model: nn.Module) -> list[str]:
    """Dotted names of the modules of ``model`` that usually produce ``[B, C, H, W]`` maps
    (convolutions, 2-D pools and norms, activations), in registration order."""
    return [name for name, module in model.named_modules() if name and isinstance(module, _CONV_LIKE_TYPES)]


def _layer_list_hint(model: nn.Module, limit: int = 40) -> str:
    names = conv_like_layers(model)
    if not names:
        names = [name for name, _ in model.named_modules() if name]
    shown = ", ".join(names[:limit])
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return f"Available conv-like layers: {shown}{more}." if names else "The model has no submodules."


def layer_name(model: nn.Module, layer: LayerSpec) -> str:
    """The dotted name of ``layer`` in ``model`` (``layer`` given by name or as the module).

    Raises:
        LayerError: if ``layer`` is not a submodule of ``model``; the message
            lists the conv-like layers the model does have.
    """
    if isinstance(layer, str):
        try:
            model.get_submodule(layer)
        except AttributeError:
            raise LayerError(
                f"The model ({type(model).__name__}) has no layer named {layer!r}. {_layer_list_hint(model)}"
            ) from None
        if layer == "":
            raise LayerError(f"The layer name is empty; name a submodule. {_layer_list_hint(model)}")
        return layer
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer and name:
                return name
        raise LayerError(
            f"The given {type(layer).__name__} module is not a submodule of the model ({type(model).__name__}); "
            f"pass a module of this model (e.g. model.conv3) or its dotted name. {_layer_list_hint(model)}"
        )
    raise LayerError(f"A layer is a dotted module name or an nn.Module, got {type(layer).__name__}.")


def resolve_layers(model: nn.Module, layers: LayerSpec | Sequence[LayerSpec]) -> list[str]:
    """Dotted names of ``layers`` (one or several, by name or module), duplicates removed."""
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    names: list[str] = []
    for layer in layers:
        name = layer_name(model, layer)
        if name not in names:
            names.append(name)
    if not names:
        raise LayerError(f"No layer was requested. {_layer_list_hint(model)}")
    return names


@contextmanager
def eval_mode(model: nn.Module, what: str = "The scan") -> Iterator[None]:
    """Put ``model`` in eval mode for the block and restore every submodule's own mode after.

    Warns (once per call site) when the model was in training mode, because
    dropout and batch statistics would otherwise change the activations.
    """
    modes = [(module, module.training) for module in model.modules()]
    if model.training:
        warnings.warn(
            f"{what} switched the model from training to eval mode (dropout off, BatchNorm running "
            "statistics) and restores training mode afterwards; call model.eval() first to silence this note.",
            UserWarning,
            stacklevel=3,
        )
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a stateless model)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def resolve_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """The device inputs go to: ``device`` if given (it must be the model's), else the model's."""
    own = model_device(model)
    if device is None:
        return own
    try:
        wanted = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"Unknown device {device!r} ({err}); use 'cpu', 'cuda', 'cuda:1' or 'mps'.") from None
    if wanted.type != own.type or (wanted.index is not None and own.index is not None and wanted.index != own.index):
        raise DeviceError(
            f"The model lives on {own} but device={str(wanted)!r} was requested; move it first with "
            f"model.to({str(wanted)!r}) (or pass device=None to use the model's device)."
        )
    return own


# ----------------------------------------------------------------------------- data
def _is_face_set(data: Any) -> bool:
    from captum_fau.data.base import FaceSet

    return isinstance(data, FaceSet)


def _split_batch(batch: Any) -> tuple[torch.Tensor, dict[str, Any], Any]:
    """(inputs, extras, indices or None) from one collated batch."""
    if isinstance(batch, torch.Tensor):
        return batch, {}, None
    if isinstance(batch, dict):
        if "image" not in batch:
            raise DatasetError(
                f"A dict batch needs an 'image' entry (FaceSet items have one); got keys {sorted(batch)}."
            )
        extras = {k: v for k, v in batch.items() if k not in ("image", "index")}
        return batch["image"], extras, batch.get("index")
    if isinstance(batch, (tuple, list)) and batch:
        extras = {"target": batch[1]} if len(batch) > 1 else {}
        return batch[0], extras, None
    raise DatasetError(
        f"Cannot read a batch of type {type(batch).__name__}; yield tensors [B, C, H, W], (input, target) "
        "tuples, or dicts with an 'image' entry."
    )


def iter_batches(
    data: Any, batch_size: int = 64
) -> Iterator[tuple[torch.Tensor, dict[str, Any], torch.Tensor]]:
    """Read ``data`` once, in order, as ``(inputs, extras, dataset_indices)`` batches.

    Args:
        data: A tensor ``[M, C, H, W]``; a :class:`~captum_fau.data.base.FaceSet`
            (read in batched form); any ``Dataset`` (batched with a
            ``DataLoader``); a ``DataLoader`` or other iterable of batches.
            Batches may be tensors, ``(input, target, ...)`` tuples (the
            target lands in ``extras["target"]``) or dicts with ``"image"``
            (other entries but ``"index"`` land in ``extras``).
        batch_size (int, optional): Batch size where this function does the
            batching (tensors and datasets). Default: 64

    Returns:
        Iterator of ``(inputs [B, C, H, W], extras dict, dataset indices [B] int64)``.
        Indices come from a dict batch's ``"index"`` entry where present,
        otherwise they count images in reading order.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DatasetError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if isinstance(data, torch.Tensor):
        if data.dim() != 4:
            raise InputShapeError(
                f"A tensor dataset must be [M, C, H, W], got shape {tuple(data.shape)}; "
                "add the channel dimension with x.unsqueeze(1) for grayscale images."
            )
        for start in range(0, len(data), batch_size):
            stop = min(start + batch_size, len(data))
            yield data[start:stop], {}, torch.arange(start, stop, dtype=torch.int64)
        return
    if _is_face_set(data):
        for start in range(0, len(data), batch_size):
            rows = np.arange(start, min(start + batch_size, len(data)))
            extras: dict[str, Any] = {}
            if data.emotions is not None:
                extras["emotion"] = torch.from_numpy(data.emotions[rows])
            if data.aus is not None:
                extras["aus"] = torch.from_numpy(data.aus[rows])
            if data.subjects is not None:
                extras["subject"] = list(data.subjects[rows])
            yield data.tensors(rows), extras, torch.from_numpy(rows.astype(np.int64))
        return
    if isinstance(data, Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        data = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    if not isinstance(data, Iterable):
        raise DatasetError(
            f"Cannot read data of type {type(data).__name__}; pass a tensor [M, C, H, W], a Dataset, "
            "a DataLoader or an iterable of batches."
        )
    seen = 0
    for batch in data:
        inputs, extras, indices = _split_batch(batch)
        if not isinstance(inputs, torch.Tensor):
            raise DatasetError(f"Batch inputs must be tensors, got {type(inputs).__name__}.")
        if inputs.dim() == 3:  # a single image slipped through an unbatched iterable
            inputs = inputs[None]
        count = inputs.shape[0]
        if indices is None:
            indices = torch.arange(seen, seen + count, dtype=torch.int64)
        else:
            indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        seen += count
        yield inputs, extras, indices


def _gather_extras(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate per-batch extras; tensors keep a tensor form, everything else becomes an ndarray."""
    if not chunks:
        return {}
    keys = [k for k in chunks[0] if all(k in c for c in chunks)]
    out: dict[str, Any] = {}
    for key in keys:
        parts = [c[key] for c in chunks]
        if all(isinstance(p, torch.Tensor) for p in parts):
            value = torch.cat([p.detach().cpu().reshape(len(p), *p.shape[1:]) if p.dim() else p.reshape(1) for p in parts])
            if value.is_floating_point():
                value = value.float()
            elif value.dtype != torch.bool:
                value = value.long()
            out[key] = value
        else:
            flat: list[Any] = []
            for p in parts:
                flat.extend(p.tolist() if isinstance(p, (torch.Tensor, np.ndarray)) else list(p))
            out[key] = np.asarray(flat)
    return out


# ----------------------------------------------------------------------------- results
@dataclass
class LayerScan:
    """Per-image, per-channel spatial maxima of one layer.

    Attributes:
        layer (str): Dotted module name.
        maxima (Tensor): ``[M, C]`` float32, the spatial maximum of each channel's map per image,
            rows in scan order (``ScanResult.indices``).
        positions (Tensor): ``[M, C, 2]`` int32 ``(h, w)`` of that maximum (first one on ties).
        map_size (tuple of int): ``(H, W)`` of the layer's maps.
        topn (RunningTopN or None): Running top-N per channel, when requested.
    """

    layer: str
    maxima: torch.Tensor
    positions: torch.Tensor
    map_size: tuple[int, int]
    topn: RunningTopN | None = None

    @property
    def num_channels(self) -> int:
        return int(self.maxima.shape[1])


@dataclass
class ScanResult:
    """What one pass over a dataset recorded.

    Attributes:
        layers (dict): Layer name -> :class:`LayerScan`.
        indices (Tensor): ``[M]`` int64 dataset index of each row, in scan order.
        extras (dict): Labels gathered from dict batches: ``"aus"`` ``[M, J]`` float32,
            ``"emotion"`` ``[M]`` int64, ``"subject"`` ndarray, ``"target"`` for tuple batches, ...
        inputs (dict): Dataset index -> input tensor (CPU) of every image in a final
            top-N, when the scan was asked to keep them (``keep_inputs=True``).
        input_shape (tuple): ``(C, H, W)`` of the inputs.
        outputs (Tensor or None): The model's outputs in scan order, with ``keep_outputs=True``.
    """

    layers: dict[str, LayerScan]
    indices: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)
    inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    outputs: torch.Tensor | None = None

    @property
    def num_images(self) -> int:
        return int(self.indices.numel())


# ----------------------------------------------------------------------------- scan
def _forward(model: nn.Module, inputs: torch.Tensor, additional_forward_args: Any) -> Any:
    if additional_forward_args is None:
        return model(inputs)
    if not isinstance(additional_forward_args, tuple):
        additional_forward_args = (additional_forward_args,)
    return model(inputs, *additional_forward_args)


def probe_layers(
    model: nn.Module, layer_names: Sequence[str], sample: torch.Tensor, additional_forward_args: Any = None
) -> dict[str, tuple[int, ...]]:
    """Run one full forward on ``sample`` and return each requested layer's output shape.

    Raises:
        LayerError: if a layer is not called, is called more than once per
            forward (its output would be ambiguous), or does not output a
            ``[B, C, H, W]`` tensor; the message lists the layers that do.
    """
    name_of = {module: name for name, module in model.named_modules() if name}
    calls: dict[str, list[Any]] = {name: [] for name in name_of.values()}

    def record(module: nn.Module, _args: Any, output: Any) -> None:
        name = name_of.get(module)
        if name is not None:
            calls[name].append(tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__)

    handles = [module.register_forward_hook(record) for module in name_of]
    try:
        with torch.no_grad():
            _forward(model, sample, additional_forward_args)
    except Exception:
        # A head that cannot run on these inputs (e.g. a fixed-size classifier on small
        # images) does not matter once every requested layer has produced its output.
        if not all(calls.get(name) for name in layer_names):
            raise
    finally:
        for handle in handles:
            handle.remove()
    four_d = [n for n, seen in calls.items() if len(seen) == 1 and isinstance(seen[0], tuple) and len(seen[0]) == 4]
    hint = f"Layers with a single [B, C, H, W] output here: {', '.join(four_d[:40]) or 'none'}."
    shapes: dict[str, tuple[int, ...]] = {}
    for name in layer_names:
        seen = calls.get(name, [])
        if not seen:
            raise LayerError(f"Layer {name!r} is not called by the model's forward pass. {hint}")
        if len(seen) > 1:
            raise LayerError(
                f"Layer {name!r} is called {len(seen)} times per forward pass (a module reused at several "
                f"places), so its output is ambiguous; give each use its own module or pick another layer. {hint}"
            )
        shape = seen[0]
        if not isinstance(shape, tuple) or len(shape) != 4:
            raise LayerError(
                f"Layer {name!r} outputs {'a ' + str(len(shape)) + '-D tensor ' + str(shape) if isinstance(shape, tuple) else shape}, "
                f"not a [B, C, H, W] map; filters and spatial maxima need a convolutional layer. {hint}"
            )
        shapes[name] = shape
    return shapes


def scan(
    model: nn.Module,
    layers: LayerSpec | Sequence[LayerSpec],
    data: Any,
    *,
    top_n: int | None = None,
    distinct_images: bool = True,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = True,
    keep_inputs: bool = False,
    keep_outputs: bool = False,
    additional_forward_args: Any = None,
) -> ScanResult:
    r"""Read ``data`` once and record per-image channel maxima (and top-N) at ``layers``.

    Args:
        model (nn.Module): Any model; it runs in eval mode during the scan and
            gets its own mode back afterwards (with a warning if it was training).
        layers (str, nn.Module or sequence of them): Layers by dotted name
            (``"conv3"``, ``"layer2.1.conv1"``) or as modules. Each must output
            a ``[B, C, H, W]`` tensor and be called once per forward.
        data: What :func:`iter_batches` reads: a tensor ``[M, C, H, W]``, a
            FaceSet or other Dataset, a DataLoader or an iterable of batches.
        top_n (int, optional): Keep a running top-N per channel of every layer.
            Default: None (no top-N)
        distinct_images (bool, optional): With ``top_n``: each image counts at
            most once per channel (its spatial maximum), as in the paper;
            ``False`` ranks every position of every map. Default: True
        batch_size (int, optional): Batch size for tensors and datasets. Default: 64
        device (str or torch.device, optional): Where inputs go; must be the
            model's device. Default: the model's device
        progress (bool, optional): Show a tqdm progress bar. Default: True
        keep_inputs (bool, optional): With ``top_n``, also keep (on CPU) the
            inputs of the images that end up in some top-N list, so that later
            stages need not read the data again. Default: False
        keep_outputs (bool, optional): Run the whole model instead of stopping
            at the deepest layer, and keep its outputs (``ScanResult.outputs``,
            e.g. logits for accuracy) from the same pass. Default: False
        additional_forward_args (Any, optional): Extra positional arguments for
            the model after the inputs. Default: None

    Returns:
        ScanResult: per-layer :class:`LayerScan`, dataset indices, gathered labels.

    Examples::

        >>> import torch
        >>> from captum_fau import ZeroBiasCNN
        >>> model = ZeroBiasCNN().eval()
        >>> result = scan(model, "conv3", torch.randn(10, 1, 96, 96), top_n=3, progress=False)
        >>> result.layers["conv3"].maxima.shape, result.layers["conv3"].topn.result()["indices"].shape
        (torch.Size([10, 256]), torch.Size([256, 3]))
    """
    from tqdm.auto import tqdm

    if top_n is not None and (not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1):
        raise DatasetError(f"top_n must be a positive integer or None, got {top_n!r}.")
    names = resolve_layers(model, layers)
    modules = {name: model.get_submodule(name) for name in names}
    target_device = resolve_device(model, device)
    total_batches: int | None = None
    try:
        total_batches = len(data) if isinstance(data, DataLoader) else -(-len(data) // batch_size)
    except TypeError:
        total_batches = None

    maxima: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    positions: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    trackers: dict[str, RunningTopN] = {}
    map_sizes: dict[str, tuple[int, int]] = {}
    index_chunks: list[torch.Tensor] = []
    output_chunks: list[torch.Tensor] = []
    extra_chunks: list[dict[str, Any]] = []
    kept_inputs: dict[int, torch.Tensor] = {}
    input_shape: tuple[int, ...] = ()
    batch_state: dict[str, Any] = {}

    def on_output(module: nn.Module, _args: Any, output: torch.Tensor) -> None:
        name = module_names[module]
        flat = output.detach().flatten(2)
        values, where = flat.max(dim=2)
        width = output.shape[3]
        pos = torch.stack([where // width, where % width], dim=2).to(torch.int32)
        batch_state["maxima"][name] = values.float().cpu()
        batch_state["positions"][name] = pos.cpu()
        if name in trackers and not distinct_images:
            k = min(trackers[name].n, flat.shape[2])
            # A stable sort keeps the first position among equal values, the tracker's tie order.
            top_values, top_where = torch.sort(flat, dim=2, descending=True, stable=True)
            top_values, top_where = top_values[..., :k], top_where[..., :k]
            batch_state["candidates"][name] = (
                top_values.float().cpu(),
                torch.stack([top_where // width, top_where % width], dim=3).to(torch.int32).cpu(),
            )
        batch_state["fired"] += 1
        if batch_state["fired"] == len(names) and not keep_outputs:
            raise _StopForward

    module_names = {modules[n]: n for n in names}
    with eval_mode(model, "The scan"):
        handles: list[Any] = []
        bar = tqdm(total=total_batches, desc=f"scan {', '.join(names)}", unit="batch", disable=not progress)
        try:
            for inputs, extras, indices in iter_batches(data, batch_size):
                if inputs.shape[0] == 0:
                    continue
                inputs = inputs.to(target_device, non_blocking=True)
                if not inputs.is_floating_point():
                    inputs = inputs.float()
                if not handles:
                    input_shape = tuple(inputs.shape[1:])
                    shapes = probe_layers(model, names, inputs[:1], additional_forward_args)
                    for name in names:
                        channels, height, width = shapes[name][1:]
                        map_sizes[name] = (int(height), int(width))
                        if top_n is not None:
                            trackers[name] = RunningTopN(int(channels), top_n, distinct_images)
                    handles = [modules[n].register_forward_hook(on_output) for n in names]
                elif tuple(inputs.shape[1:]) != input_shape:
                    raise InputShapeError(
                        f"Images of one scan must share a shape; the first batch had {input_shape}, a later one "
                        f"{tuple(inputs.shape[1:])}. Resize the images to one size."
                    )
                batch_state.update(fired=0, maxima={}, positions={}, candidates={})
                try:
                    with torch.no_grad():
                        output = _forward(model, inputs, additional_forward_args)
                    if keep_outputs:
                        if not isinstance(output, torch.Tensor):
                            raise LayerError(
                                f"keep_outputs needs a model that returns one tensor, got {type(output).__name__}."
                            )
                        output_chunks.append(output.detach().float().cpu())
                except _StopForward:
                    pass
                for name in names:
                    if name not in batch_state["maxima"]:
                        raise LayerError(f"Layer {name!r} was not reached in a forward pass of the scan.")
                    maxima[name].append(batch_state["maxima"][name])
                    positions[name].append(batch_state["positions"][name])
                    if name in trackers:
                        if distinct_images:
                            trackers[name].add(batch_state["maxima"][name], indices, batch_state["positions"][name])
                        else:
                            values, where = batch_state["candidates"][name]
                            trackers[name].add(values, indices, where)
                index_chunks.append(indices)
                extra_chunks.append(extras)
                if keep_inputs and trackers:
                    wanted = torch.unique(torch.cat([t.indices.reshape(-1) for t in trackers.values()]))
                    wanted_set = set(wanted.tolist())
                    for row, index in enumerate(indices.tolist()):
                        if index in wanted_set and index not in kept_inputs:
                            kept_inputs[index] = inputs[row].detach().cpu().clone()
                    for index in [i for i in kept_inputs if i not in wanted_set]:
                        del kept_inputs[index]
                bar.update(1)
        finally:
            bar.close()
            for handle in handles:
                handle.remove()
    if not index_chunks:
        raise DatasetError("The dataset is empty: the scan read no images. Check the data source and its filters.")
    layer_scans = {
        name: LayerScan(
            layer=name,
            maxima=torch.cat(maxima[name]),
            positions=torch.cat(positions[name]),
            map_size=map_sizes[name],
            topn=trackers.get(name),
        )
        for name in names
    }
    return ScanResult(
        layers=layer_scans,
        indices=torch.cat(index_chunks),
        extras=_gather_extras(extra_chunks),
        inputs=kept_inputs,
        input_shape=input_shape,
        outputs=torch.cat(output_chunks) if output_chunks else None,
    )


__all__ = [
    "LayerScan",
    "ScanResult",
    "conv_like_layers",
    "eval_mode",
    "iter_batches",
    "layer_name",
    "model_device",
    "probe_layers",
    "resolve_device",
    "resolve_layers",
    "scan",
]
