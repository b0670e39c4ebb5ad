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
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from captum_fau.errors import DatasetError, DeviceError, InputShapeError, LayerError
from captum_fau.stats.distributed import batch_ranges
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
    if isinstance(data, torch.Tensor) or _is_face_set(data):
        source = _MapSource(data)
        yield from source.batches(batch_ranges(len(source), batch_size))
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
        total_images (int or None): Images read by the whole scan (all ranks).
        rows_here (bool): Whether this process holds the per-image rows (False on ranks
            other than 0 of a distributed scan with ``gather="rank0"``).
        resumed_batches (int): Batches this process took from a checkpoint instead of reading them.
        rank (int): This process's rank; world_size (int): processes in the scan.
    """

    layers: dict[str, LayerScan]
    indices: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)
    inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    input_shape: tuple[int, ...] = ()
    outputs: torch.Tensor | None = None
    total_images: int | None = None
    rows_here: bool = True
    resumed_batches: int = 0
    rank: int = 0
    world_size: int = 1

    @property
    def num_images(self) -> int:
        """Images the scan read (on every rank of a distributed scan, even where ``rows_here`` is False)."""
        return int(self.total_images) if self.total_images is not None else int(self.indices.numel())


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


class _MapSource:
    """Random access to a map-style dataset by row: what sharding, resuming and refetching need.

    Row ``i`` is dataset index ``i``. Tensors are sliced, FaceSets read in
    batched form, other datasets collated by a ``DataLoader`` over the rows.
    """

    def __init__(self, data: Any) -> None:
        self.data = data
        self.face_set = _is_face_set(data)
        if isinstance(data, torch.Tensor) and data.dim() != 4:
            raise InputShapeError(
                f"A tensor dataset must be [M, C, H, W], got shape {tuple(data.shape)}; "
                "add the channel dimension with x.unsqueeze(1) for grayscale images."
            )

    @staticmethod
    def accepts(data: Any) -> bool:
        return isinstance(data, torch.Tensor) or (
            isinstance(data, Dataset) and not isinstance(data, torch.utils.data.IterableDataset) and hasattr(data, "__len__")
        )

    def __len__(self) -> int:
        return len(self.data)

    def batches(self, ranges: Sequence[tuple[int, int]]) -> Iterator[tuple[torch.Tensor, dict[str, Any], torch.Tensor]]:
        """``(inputs, extras, indices)`` for each ``(start, stop)`` row range, in order."""
        if isinstance(self.data, torch.Tensor) or self.face_set:
            for start, stop in ranges:
                yield self.read(np.arange(start, stop))
            return
        loader = DataLoader(self.data, batch_sampler=[list(range(a, b)) for a, b in ranges], num_workers=0)
        for (start, stop), batch in zip(ranges, loader):
            inputs, extras, _ = _split_batch(batch)
            if not isinstance(inputs, torch.Tensor):
                raise DatasetError(f"Batch inputs must be tensors, got {type(inputs).__name__}.")
            yield inputs, extras, torch.arange(start, stop, dtype=torch.int64)

    def read(self, rows: np.ndarray) -> tuple[torch.Tensor, dict[str, Any], torch.Tensor]:
        """``(inputs, extras, indices)`` of arbitrary rows."""
        rows = np.asarray(rows, dtype=np.int64)
        indices = torch.from_numpy(rows.copy())
        if isinstance(self.data, torch.Tensor):
            return self.data[indices], {}, indices
        if self.face_set:
            return self.data.tensors(rows), self.labels(rows), indices
        batch = torch.utils.data.default_collate([self.data[int(i)] for i in rows])
        inputs, extras, _ = _split_batch(batch)
        return inputs, extras, indices

    def labels(self, rows: np.ndarray) -> dict[str, Any]:
        """A FaceSet's labels of ``rows`` (cheap: no image is read)."""
        extras: dict[str, Any] = {}
        if self.data.emotions is not None:
            extras["emotion"] = torch.from_numpy(np.asarray(self.data.emotions)[rows])
        if self.data.aus is not None:
            extras["aus"] = torch.from_numpy(np.asarray(self.data.aus)[rows])
        if self.data.subjects is not None:
            extras["subject"] = np.asarray(self.data.subjects)[rows]
        return extras


def _settings(
    model: nn.Module, names: list[str], top_n: int | None, distinct_images: bool, batch_size: int,
    num_rows: int, keep_outputs: bool, additional_forward_args: Any,
) -> dict[str, Any]:  # fmt: skip
    from captum_fau.stats.checkpoint import model_fingerprint

    return {
        "layers": names, "top_n": top_n, "distinct_images": distinct_images, "batch_size": batch_size,
        "num_images": num_rows, "keep_outputs": keep_outputs, "model": model_fingerprint(model),
        "additional_forward_args": additional_forward_args is not None,
    }  # fmt: skip


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
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    spill_bytes: int | None = None,
    gather: str = "all",
) -> ScanResult:
    r"""Read ``data`` once and record per-image channel maxima (and top-N) at ``layers``.

    Runs unchanged on one process or on every rank of an initialised
    ``torch.distributed`` process group (``torchrun``): then each rank reads a
    contiguous block of whole batches of the dataset, the ranks' top-N
    trackers are merged in rank order and the per-image rows are gathered, so
    the result equals the single-process one exactly. If any rank fails, every
    rank raises :class:`~captum_fau.errors.DistributedError`.

    Args:
        model (nn.Module): Any model; it runs in eval mode during the scan and
            gets its own mode back afterwards (with a warning if it was training).
        layers (str, nn.Module or sequence of them): Layers by dotted name
            (``"conv3"``, ``"layer2.1.conv1"``) or as modules. Each must output
            a ``[B, C, H, W]`` tensor and be called once per forward.
        data: A tensor ``[M, C, H, W]``, a FaceSet or other map-style Dataset
            (row ``i`` is dataset index ``i``), or a DataLoader / iterable of
            batches (single process, no checkpoints).
        top_n (int, optional): Keep a running top-N per channel of every layer.
            Default: None (no top-N)
        distinct_images (bool, optional): With ``top_n``: each image counts at
            most once per channel (its spatial maximum), as in the paper;
            ``False`` ranks every position of every map. Default: True
        batch_size (int, optional): Batch size for tensors and datasets. Default: 64
        device (str or torch.device, optional): Where inputs go; must be the
            model's device. Default: the model's device
        progress (bool, optional): Show a tqdm progress bar (rank 0 only). Default: True
        keep_inputs (bool, optional): With ``top_n``, also keep (on CPU) the
            inputs of the images that end up in some top-N list, so that later
            stages need not read the data again. Default: False
        keep_outputs (bool, optional): Run the whole model instead of stopping
            at the deepest layer, and keep its outputs (``ScanResult.outputs``,
            e.g. logits for accuracy) from the same pass. Default: False
        additional_forward_args (Any, optional): Extra positional arguments for
            the model after the inputs. Default: None
        checkpoint (str or Path, optional): Folder for resumable checkpoints
            (map-style data only). Every ``checkpoint_every`` batches the
            accumulators are saved atomically; a rerun with the same folder and
            settings continues after the last checkpoint. Default: None
        checkpoint_every (int, optional): Batches between checkpoints. Default: 50
        spill_bytes (int, optional): Per-image rows kept in memory before they
            move to memory-mapped files, so memory stays flat however large
            the dataset. Default: 256 MiB
        gather (str, optional): Under a process group, ``"all"`` gives every
            rank the full per-image rows, ``"rank0"`` only rank 0 (the others
            get the merged top-N and an empty row set: ``ScanResult.rows_here``
            is False). Default: ``"all"``

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

    from captum_fau.data.base import preprocessed_for
    from captum_fau.errors import ConfigError, DistributedError, ResumeError
    from captum_fau.stats import distributed
    from captum_fau.stats.checkpoint import ScanCheckpoint
    from captum_fau.stats.rows import RowStore

    if top_n is not None and (not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1):
        raise DatasetError(f"top_n must be a positive integer or None, got {top_n!r}.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DatasetError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not isinstance(checkpoint_every, int) or isinstance(checkpoint_every, bool) or checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every must be a positive number of batches, got {checkpoint_every!r}.")
    if gather not in ("all", "rank0"):
        raise ConfigError(f"gather must be 'all' or 'rank0', got {gather!r}.")
    names = resolve_layers(model, layers)
    modules = {name: model.get_submodule(name) for name in names}
    target_device = resolve_device(model, device)
    data = preprocessed_for(data, model)  # the local-mean padding the model was trained with
    rank, world_size = distributed.world()
    source = _MapSource(data) if _MapSource.accepts(data) else None
    if source is None and world_size > 1:
        raise DistributedError(
            f"A scan across {world_size} processes needs a map-style dataset (a tensor, FaceSet or Dataset with "
            f"__len__ and __getitem__) to shard, not a {type(data).__name__}; pass the Dataset itself."
        )
    if source is None and checkpoint is not None:
        raise ResumeError(
            f"Resumable scans need a map-style dataset (tensor, FaceSet or Dataset), not a {type(data).__name__}: "
            "an iterable cannot skip to where the last checkpoint was. Pass the Dataset itself."
        )
    if source is not None:
        distributed.check_same(
            "the dataset length", len(source), "every rank must open the same dataset (same files, seed and filters)."
        )
    batches = None
    if source is not None:
        all_batches = batch_ranges(len(source), batch_size)
        if world_size > 1 and len(all_batches) < world_size:
            raise DistributedError(
                f"The dataset has {len(source)} images, {len(all_batches)} batch(es) of {batch_size}, for {world_size} "
                "processes; every process needs at least one batch: use fewer processes or a smaller batch size."
            )
        batches = distributed.shard(all_batches, rank, world_size)
    ckpt = None
    saved: dict[str, Any] | None = None
    if checkpoint is not None:
        settings = _settings(model, names, top_n, distinct_images, batch_size, len(source), keep_outputs,  # type: ignore[arg-type]
                             additional_forward_args)  # fmt: skip
        ckpt = ScanCheckpoint(checkpoint, settings, rank, world_size)
        saved = ckpt.load()
    done = saved["batches_done"] if saved else 0
    store = ckpt.rows(saved["rows"] if saved else 0, spill_bytes) if ckpt else RowStore(spill_bytes=spill_bytes)

    trackers: dict[str, RunningTopN] = {}
    map_sizes: dict[str, tuple[int, int]] = {}
    loose_extras: list[dict[str, Any]] = []  # non-tensor labels of iterables (single process only)
    kept_inputs: dict[int, torch.Tensor] = {}
    input_shape: tuple[int, ...] = ()
    batch_state: dict[str, Any] = {}
    handles: list[Any] = []

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

    def set_up(sample: torch.Tensor) -> None:
        nonlocal input_shape
        input_shape = tuple(sample.shape[1:])
        shapes = probe_layers(model, names, sample[:1].to(target_device).float(), additional_forward_args)
        for name in names:
            channels, height, width = shapes[name][1:]
            map_sizes[name] = (int(height), int(width))
            if top_n is not None:
                trackers[name] = RunningTopN(int(channels), top_n, distinct_images)
                if saved is not None and name in saved["trackers"]:
                    trackers[name].load_state_dict(saved["trackers"][name])
        handles.extend(modules[n].register_forward_hook(on_output) for n in names)

    def run_batch(inputs: torch.Tensor, extras: dict[str, Any], indices: torch.Tensor) -> None:
        inputs = inputs.to(target_device, non_blocking=True)
        if not inputs.is_floating_point():
            inputs = inputs.float()
        if not handles:
            set_up(inputs)
        elif tuple(inputs.shape[1:]) != input_shape:
            raise InputShapeError(
                f"Images of one scan must share a shape; the first batch had {input_shape}, a later one "
                f"{tuple(inputs.shape[1:])}. Resize the images to one size."
            )
        batch_state.update(fired=0, maxima={}, positions={}, candidates={})
        columns: dict[str, Any] = {}
        try:
            with torch.no_grad():
                output = _forward(model, inputs, additional_forward_args)
            if keep_outputs:
                if not isinstance(output, torch.Tensor):
                    raise LayerError(f"keep_outputs needs a model that returns one tensor, got {type(output).__name__}.")
                columns["outputs"] = output.detach().float().cpu().reshape(len(inputs), -1)
        except _StopForward:
            pass
        for name in names:
            if name not in batch_state["maxima"]:
                raise LayerError(f"Layer {name!r} was not reached in a forward pass of the scan.")
            columns[f"maxima:{name}"] = batch_state["maxima"][name]
            columns[f"positions:{name}"] = batch_state["positions"][name]
            if name in trackers:
                if distinct_images:
                    trackers[name].add(batch_state["maxima"][name], indices, batch_state["positions"][name])
                else:
                    values, where = batch_state["candidates"][name]
                    trackers[name].add(values, indices, where)
        loose: dict[str, Any] = {}
        if not (source is not None and source.face_set):  # a FaceSet's labels are read from it at the end
            for key, value in extras.items():
                if isinstance(value, torch.Tensor) and value.dim() >= 1 and len(value) == len(inputs):
                    columns[f"extra:{key}"] = value.detach().cpu()
                else:
                    loose[key] = value
        store.add(indices, **columns)
        if loose:
            loose_extras.append(loose)
        if keep_inputs and trackers:
            wanted = set(torch.unique(torch.cat([t.indices.reshape(-1) for t in trackers.values()])).tolist())
            for row, index in enumerate(indices.tolist()):
                if index in wanted and index not in kept_inputs:
                    kept_inputs[index] = inputs[row].detach().cpu().clone()
            for index in [i for i in kept_inputs if i not in wanted]:
                del kept_inputs[index]

    failure: BaseException | None = None
    resumed = done
    with eval_mode(model, "The scan"):
        total = len(batches) if batches is not None else _length_hint(data, batch_size)
        bar = tqdm(total=total, initial=done if total else 0, desc=f"scan {', '.join(names)}", unit="batch",
                   disable=not progress or rank != 0)  # fmt: skip
        try:
            if batches is not None:
                if len(source) == 0:  # type: ignore[arg-type]
                    raise DatasetError("The dataset is empty: the scan read no images. Check the data source and its filters.")
                set_up(source.read(np.arange(1))[0])  # type: ignore[union-attr]
                for number, batch in enumerate(source.batches(batches[done:]), start=done + 1):  # type: ignore[union-attr]
                    run_batch(*batch)
                    bar.update(1)
                    if ckpt is not None and number % checkpoint_every == 0 and number < len(batches):
                        ckpt.save(number, store, trackers)
                if ckpt is not None:
                    ckpt.save(len(batches), store, trackers, complete=True)
            else:
                for inputs, extras, indices in iter_batches(data, batch_size):
                    if inputs.shape[0]:
                        run_batch(inputs, extras, indices)
                    bar.update(1)
        except BaseException as err:  # noqa: BLE001 - re-raised below, on every rank
            if world_size == 1 or not isinstance(err, Exception):
                raise
            failure = err
        finally:
            bar.close()
            for handle in handles:
                handle.remove()
    distributed.agree(failure)

    if world_size > 1:
        for name, tracker in trackers.items():
            merged = RunningTopN(tracker.num_channels, tracker.n, tracker.distinct_images)
            states = {k: distributed.all_gather_tensor(v) for k, v in tracker.state_dict().items()}
            for r in range(world_size):
                merged.merge(RunningTopN.from_state_dict({k: parts[r] for k, parts in states.items()}))
            trackers[name] = merged
        everyone = gather == "all"
        merged_rows = RowStore(spill_bytes=spill_bytes)
        layout = dict(store.columns)
        counts = distributed.all_gather_ints([len(layout)])[:, 0]
        if (counts != counts[0]).any():
            raise DistributedError(f"The ranks recorded different per-image columns ({counts.tolist()}); "
                                   "every rank must read the same kind of dataset.")  # fmt: skip
        for chunk in distributed.gather_rows_to(store.iter_chunks(distributed._CHUNK_ROWS), len(store), layout, everyone):
            index = chunk.pop("index")
            merged_rows.add(index, **chunk)
        if everyone or rank == 0:
            merged_rows.sort_by_index()
        store = merged_rows
    rows_here = world_size == 1 or gather == "all" or rank == 0
    if rows_here and len(store) == 0:
        raise DatasetError("The dataset is empty: the scan read no images. Check the data source and its filters.")

    if keep_inputs and trackers:
        wanted = sorted(set(torch.unique(torch.cat([t.indices.reshape(-1) for t in trackers.values()])).tolist()) - {-1})
        kept_inputs = {i: kept_inputs[i] for i in wanted if i in kept_inputs}
        if world_size > 1:
            kept_inputs = _share_inputs(kept_inputs, input_shape)
        missing = [i for i in wanted if i not in kept_inputs]
        if missing and source is not None:  # scanned before a resume, or on another rank
            for start in range(0, len(missing), batch_size):
                rows = np.asarray(missing[start : start + batch_size])
                images = source.read(rows)[0]
                for row, index in enumerate(rows.tolist()):
                    kept_inputs[index] = images[row].detach().cpu().float().clone()

    indices = store.indices if len(store) else torch.zeros(0, dtype=torch.int64)
    extras: dict[str, Any] = {}
    if source is not None and source.face_set:
        extras = source.labels(indices.numpy()) if rows_here else {}
        if "subject" in extras:
            extras["subject"] = np.asarray(extras["subject"])
    else:
        for column in store.columns:
            if column.startswith("extra:"):
                value = store.column(column)
                if value.is_floating_point():
                    value = value.float()
                elif value.dtype != torch.bool:
                    value = value.long()
                extras[column[len("extra:") :]] = value
        loose = _gather_extras(loose_extras)
        if loose and world_size == 1 and checkpoint is None:
            extras.update(loose)
    layer_scans = {}
    for name in names:
        channels = trackers[name].num_channels if name in trackers else None
        if rows_here:
            maxima, positions = store.column(f"maxima:{name}"), store.column(f"positions:{name}")
        else:
            channels = channels or 0
            maxima, positions = torch.zeros((0, channels)), torch.zeros((0, channels, 2), dtype=torch.int32)
        layer_scans[name] = LayerScan(layer=name, maxima=maxima, positions=positions, map_size=map_sizes[name],
                                      topn=trackers.get(name))  # fmt: skip
    outputs = store.column("outputs") if keep_outputs and rows_here and "outputs" in store.columns else None
    num_images = len(source) if source is not None else len(store)
    return ScanResult(
        layers=layer_scans,
        indices=indices,
        extras=extras,
        inputs=kept_inputs,
        input_shape=input_shape,
        outputs=outputs,
        total_images=num_images,
        rows_here=rows_here,
        resumed_batches=resumed,
        rank=rank,
        world_size=world_size,
    )


def _share_inputs(kept: dict[int, torch.Tensor], input_shape: tuple[int, ...], chunk: int = 256) -> dict[int, torch.Tensor]:
    """Every rank's kept inputs on every rank (each top-N image was kept by the rank that read it)."""
    from captum_fau.stats import distributed

    own = sorted(kept)
    layout = {"index": ((), np.dtype(np.int64)), "input": (tuple(input_shape), np.dtype(np.float32))}

    def chunks() -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(own), chunk):
            part = own[start : start + chunk]
            yield {"index": np.asarray(part, dtype=np.int64),
                   "input": torch.stack([kept[i].float() for i in part]).numpy()}  # fmt: skip

    shared: dict[int, torch.Tensor] = {}
    for piece in distributed.gather_rows_to(chunks(), len(own), layout, everyone=True, chunk_rows=chunk):
        for row, index in enumerate(piece["index"].tolist()):
            shared[int(index)] = torch.from_numpy(piece["input"][row].copy())
    return shared


def _length_hint(data: Any, batch_size: int) -> int | None:
    try:
        return len(data) if isinstance(data, DataLoader) else -(-len(data) // batch_size)
    except TypeError:
        return None


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
