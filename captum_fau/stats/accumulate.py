"""What a scan records per batch, and the running state it folds the batches into.

* :class:`LayerRecorder` -- forward hooks on the scanned layers: for every
  batch, each channel's spatial maximum and its ``(h, w)`` (and, when every
  position competes for the top-N, each channel's best ``k`` positions). The
  forward pass stops once the deepest layer has run.
* :class:`ScanAccumulator` -- the running state of one scan: the per-image
  rows (:class:`~captum_fau.stats.rows.RowStore`), a
  :class:`~captum_fau.stats.topn.RunningTopN` per layer, and the inputs of the
  images currently in some top-N. It speaks the verbs of every accumulator
  here (``add``, ``result``, ``state_dict``, ``load_state_dict``, ``merge``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from captum_fau._utils.modules import StopForward, forward_with_args, probe_layers
from captum_fau.errors import InputShapeError, LayerError, StatisticsError
from captum_fau.stats.batching import MapSource, gather_extras, label_tensor, split_extras
from captum_fau.stats.result import LayerScan
from captum_fau.stats.rows import RowStore
from captum_fau.stats.topn import RunningTopN


@dataclass
class LayerBatch:
    """One layer's record of one batch.

    Attributes:
        maxima (Tensor): ``[B, C]`` float32 spatial maximum per image and channel (CPU).
        positions (Tensor): ``[B, C, 2]`` int32 ``(h, w)`` of each maximum (first one on ties).
        candidates (tuple or None): ``([B, C, k] values, [B, C, k, 2] positions)``, the best
            ``k`` positions per image and channel, when every position competes for the top-N.
    """

    maxima: torch.Tensor
    positions: torch.Tensor
    candidates: tuple[torch.Tensor, torch.Tensor] | None = None


def spatial_maxima(output: torch.Tensor, candidates: int | None = None) -> LayerBatch:
    """Spatial maximum (and, with ``candidates``, the best ``k`` positions) of each channel of ``[B, C, H, W]``.

    Examples::

        >>> out = torch.zeros(1, 1, 2, 3); out[0, 0, 1, 2] = 5.0
        >>> rec = spatial_maxima(out)
        >>> rec.maxima.tolist(), rec.positions.tolist()
        ([[5.0]], [[[1, 2]]])
    """
    flat = output.detach().flatten(2)
    values, where = flat.max(dim=2)
    width = output.shape[3]
    positions = torch.stack([where // width, where % width], dim=2).to(torch.int32)
    best = None
    if candidates is not None:
        k = min(candidates, flat.shape[2])
        # A stable sort keeps the first position among equal values, the tracker's tie order.
        top_values, top_where = torch.sort(flat, dim=2, descending=True, stable=True)
        top_values, top_where = top_values[..., :k], top_where[..., :k]
        best = (
            top_values.float().cpu(),
            torch.stack([top_where // width, top_where % width], dim=3).to(torch.int32).cpu(),
        )
    return LayerBatch(values.float().cpu(), positions.cpu(), best)


class LayerRecorder:
    r"""Forward hooks that record the scanned layers of ``model`` batch by batch.

    Use as a context manager: the hooks are attached by :meth:`start` (which
    probes the layers on a first sample) and removed when the block ends.

    Args:
        model (nn.Module): The model.
        names (list of str): Dotted names of the layers (validated).
        device (torch.device): Where inputs go.
        additional_forward_args (Any, optional): Extra model arguments. Default: None
        candidates (int, optional): Also record the best ``k`` positions per channel. Default: None
        keep_outputs (bool, optional): Run the whole model and return its outputs. Default: False
        checked (ForwardCheck, optional): The forward check already run on the first item
            (:attr:`ModelInputs.forward_check <captum_fau.inputs.model_inputs.ModelInputs>`); when it recorded
            every layer at the inputs' shape, :meth:`start` takes the layer shapes from it instead of probing
            again. Default: None
    """

    def __init__(
        self,
        model: nn.Module,
        names: Sequence[str],
        device: torch.device,
        additional_forward_args: Any = None,
        candidates: int | None = None,
        keep_outputs: bool = False,
        checked: Any = None,
    ) -> None:
        self.model, self.names, self.device = model, list(names), device
        self.checked = checked
        self.additional_forward_args = additional_forward_args
        self.candidates, self.keep_outputs = candidates, keep_outputs
        self._modules = {model.get_submodule(name): name for name in self.names}
        #: ``(C, H, W)`` of the inputs, known after :meth:`start`.
        self.input_shape: tuple[int, ...] = ()
        self._handles: list[Any] = []
        self._batch: dict[str, LayerBatch] = {}

    @property
    def started(self) -> bool:
        return bool(self._handles)

    def start(self, sample: torch.Tensor) -> dict[str, tuple[int, int, int]]:
        """Probe the layers on ``sample[:1]``, attach the hooks; returns ``(C, H, W)`` per layer."""
        self.input_shape = tuple(sample.shape[1:])
        known = getattr(self.checked, "layer_shapes", {})
        if (self.additional_forward_args is None and all(name in known for name in self.names)
                and tuple(self.checked.input_shape[1:]) == self.input_shape):  # fmt: skip
            probed = known  # the one forward check before the first batch recorded them
        else:
            probed = probe_layers(self.model, self.names, sample[:1].to(self.device).float(),
                                  self.additional_forward_args)  # fmt: skip
        shapes = {name: tuple(int(s) for s in probed[name][1:]) for name in self.names}
        self._handles = [module.register_forward_hook(self._on_output) for module in self._modules]
        return shapes  # type: ignore[return-value]

    def _on_output(self, module: nn.Module, _args: Any, output: torch.Tensor) -> None:
        self._batch[self._modules[module]] = spatial_maxima(output, self.candidates)
        if len(self._batch) == len(self.names) and not self.keep_outputs:
            raise StopForward

    def record(self, inputs: torch.Tensor) -> tuple[dict[str, LayerBatch], torch.Tensor, torch.Tensor | None]:
        """Run one batch: ``(records by layer, inputs as fed to the model, outputs [B, K] or None)``.

        Raises:
            InputShapeError: the batch's image shape differs from the first batch's.
            LayerError: a layer was not reached, or ``keep_outputs`` met a non-tensor output.
        """
        inputs = inputs.to(self.device, non_blocking=True)
        if not inputs.is_floating_point():  # scaling 8-bit pixels here would be a guess: refuse it
            raise InputShapeError(
                f"The scan reads float images, got a {inputs.dtype} batch; convert 8-bit pixels with "
                "images.float() / 255 (what every captum-fau dataset yields)."
            )
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise InputShapeError(
                f"Images of one scan must share a shape; the first batch had {self.input_shape}, a later one "
                f"{tuple(inputs.shape[1:])}. Resize the images to one size."
            )
        self._batch = {}
        outputs = None
        try:
            with torch.no_grad():
                output = forward_with_args(self.model, inputs, self.additional_forward_args)
            if self.keep_outputs:
                if not isinstance(output, torch.Tensor):
                    raise LayerError(
                        f"keep_outputs needs a model that returns one tensor, got {type(output).__name__}."
                    )
                outputs = output.detach().float().cpu().reshape(len(inputs), -1)
        except StopForward:
            pass
        for name in self.names:
            if name not in self._batch:
                raise LayerError(f"Layer {name!r} was not reached in a forward pass of the scan.")
        return self._batch, inputs, outputs

    def __enter__(self) -> "LayerRecorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class ScanAccumulator:
    r"""The running state of one scan: per-image rows, a top-N per layer, the top-N images' inputs.

    Per-image rows hold, for every layer, ``"maxima:<layer>"`` ``[C]`` and
    ``"positions:<layer>"`` ``[C, 2]``; optionally ``"outputs"`` (the model's
    outputs) and ``"extra:<label>"`` (per-image tensor labels of the batches).

    Args:
        rows (RowStore): Where the per-image rows go (in memory, spilled, or checkpoint files).
        top_n (int, optional): Entries of each layer's running top-N; None keeps none. Default: None
        distinct_images (bool, optional): Each image counts once per channel in the top-N. Default: True
        keep_inputs (bool, optional): Keep the inputs of the images in some top-N. Default: False
        label_columns (bool, optional): Store the batches' tensor labels as rows (False when the
            labels are read from a FaceSet at the end). Default: True
    """

    def __init__(
        self,
        rows: RowStore,
        top_n: int | None = None,
        distinct_images: bool = True,
        keep_inputs: bool = False,
        label_columns: bool = True,
    ) -> None:
        self.rows = rows
        self.top_n, self.distinct_images = top_n, distinct_images
        self.keep_inputs, self.label_columns = keep_inputs, label_columns
        self.layers: list[str] = []
        self.map_sizes: dict[str, tuple[int, int]] = {}
        self.trackers: dict[str, RunningTopN] = {}
        #: Dataset index -> input (CPU) of the images currently in some top-N (``keep_inputs``).
        self.inputs: dict[int, torch.Tensor] = {}
        #: Labels of the batches that are not per-image tensors (kept as given, batch by batch).
        self.loose: list[dict[str, Any]] = []

    def start(self, shapes: dict[str, tuple[int, int, int]], trackers: dict[str, Any] | None = None) -> None:
        """Set up the layers (``(C, H, W)`` each) and their top-N, restoring saved tracker states."""
        for name, (channels, height, width) in shapes.items():
            self.layers.append(name)
            self.map_sizes[name] = (height, width)
            if self.top_n is not None:
                self.trackers[name] = RunningTopN(channels, self.top_n, self.distinct_images)
        if trackers:
            self.load_state_dict({"trackers": trackers})

    # ------------------------------------------------------------------ update
    def add(
        self,
        indices: torch.Tensor,
        layers: dict[str, LayerBatch],
        inputs: torch.Tensor,
        extras: dict[str, Any] | None = None,
        outputs: torch.Tensor | None = None,
    ) -> None:
        """Fold in one batch: its dataset indices, each layer's record, inputs, labels and outputs."""
        columns: dict[str, Any] = {} if outputs is None else {"outputs": outputs}
        for name in self.layers:
            record = layers[name]
            columns[f"maxima:{name}"], columns[f"positions:{name}"] = record.maxima, record.positions
            if name in self.trackers:
                if self.distinct_images or record.candidates is None:
                    self.trackers[name].add(record.maxima, indices, record.positions)
                else:
                    self.trackers[name].add(record.candidates[0], indices, record.candidates[1])
        loose: dict[str, Any] = {}
        if self.label_columns:
            labels, loose = split_extras(extras or {}, len(inputs))
            columns.update({f"extra:{key}": value for key, value in labels.items()})
        self.rows.add(indices, **columns)
        if loose:
            self.loose.append(loose)
        if self.keep_inputs and self.trackers:
            wanted = self.wanted()
            for row, index in enumerate(indices.tolist()):
                if index in wanted and index not in self.inputs:
                    self.inputs[index] = inputs[row].detach().cpu().clone()
            for index in [i for i in self.inputs if i not in wanted]:
                del self.inputs[index]

    def wanted(self) -> set[int]:
        """Dataset indices in some layer's top-N (``-1`` marks an empty slot)."""
        if not self.trackers:
            return set()
        return set(torch.unique(torch.cat([t.indices.reshape(-1) for t in self.trackers.values()])).tolist())

    def merge(self, other: "ScanAccumulator") -> "ScanAccumulator":
        """Fold in another shard's accumulator (disjoint images); returns ``self``."""
        if not isinstance(other, ScanAccumulator) or other.layers != self.layers:
            raise StatisticsError("ScanAccumulator.merge needs an accumulator of a scan of the same layers.")
        for name, tracker in self.trackers.items():
            tracker.merge(other.trackers[name])
        self.rows.merge(other.rows)
        self.inputs.update(other.inputs)
        wanted = self.wanted()
        self.inputs = {i: x for i, x in sorted(self.inputs.items()) if i in wanted}
        self.loose.extend(other.loose)
        return self

    # ------------------------------------------------------------- serialising
    def state_dict(self) -> dict[str, Any]:
        """``{"trackers": {layer: RunningTopN state}, "rows": RowStore state}``."""
        return {
            "trackers": {name: tracker.state_dict() for name, tracker in self.trackers.items()},
            "rows": self.rows.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> "ScanAccumulator":
        """Restore the trackers (of the layers set up by :meth:`start`) and, if present, the rows."""
        for name, tracker_state in state.get("trackers", {}).items():
            if name in self.trackers:
                self.trackers[name].load_state_dict(tracker_state)
        if "rows" in state:
            self.rows.load_state_dict(state["rows"])
        return self

    # ----------------------------------------------------------------- results
    @property
    def indices(self) -> torch.Tensor:
        """``[M]`` int64 dataset index of each row, in scan order."""
        return self.rows.indices if len(self.rows) else torch.zeros(0, dtype=torch.int64)

    def result(self, rows_here: bool = True) -> dict[str, LayerScan]:
        """One :class:`LayerScan` per layer (empty maxima where this process holds no rows)."""
        scans = {}
        for name in self.layers:
            if rows_here:
                maxima, positions = self.rows.column(f"maxima:{name}"), self.rows.column(f"positions:{name}")
            else:
                channels = self.trackers[name].num_channels if name in self.trackers else 0
                maxima, positions = torch.zeros((0, channels)), torch.zeros((0, channels, 2), dtype=torch.int32)
            scans[name] = LayerScan(layer=name, maxima=maxima, positions=positions, map_size=self.map_sizes[name],
                                    topn=self.trackers.get(name))  # fmt: skip
        return scans

    def outputs(self, rows_here: bool = True) -> torch.Tensor | None:
        """The model's outputs in scan order, when they were recorded and are held here."""
        return self.rows.column("outputs") if rows_here and "outputs" in self.rows.columns else None

    def labels(self, source: MapSource | None, rows_here: bool = True, loose: bool = True) -> dict[str, Any]:
        """Labels of the rows: a FaceSet's own (read now, cheaply), else the batches' label columns
        plus (with ``loose``) their other labels."""
        if source is not None and source.face_set:
            return source.data.labels(self.indices.numpy()) if rows_here else {}
        out: dict[str, Any] = {
            column[len("extra:") :]: label_tensor(self.rows.column(column))
            for column in self.rows.columns
            if column.startswith("extra:")
        }
        gathered = gather_extras(self.loose)
        if gathered and loose:
            out.update(gathered)
        return out


__all__ = ["LayerBatch", "LayerRecorder", "ScanAccumulator", "spatial_maxima"]
