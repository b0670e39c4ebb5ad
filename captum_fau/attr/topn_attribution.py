"""Zeiler-Fergus deconvolution of single units as a Captum attribution (the model side of top-N).

:class:`TopNAttribution` keeps one activation of a layer at its value, every other activation of
the layer at zero, and projects it back to pixel space with the deconvnet, guided-backpropagation
or plain-gradient rule (paper section 4.3): :meth:`~TopNAttribution.attribute` for the strongest
unit of each filter in a batch, :meth:`~TopNAttribution.reconstruct_pairs` for any list of
``(image, filter, unit)`` pairs. The dataset side (the scan, the top-N per filter, which filters are
reconstructed when, sharding) is :mod:`captum_fau.attr.topn_pipeline`; :class:`~captum_fau.attr.TopNDeconv`
joins both.

Reconstructions are batched and, where the layer's units are local, computed
on each unit's receptive-field crop (see :mod:`captum_fau.attr.receptive_field`)
or, when the path up to the layer is a plain chain of convolutions, pooling and
ReLUs, on each unit's cone (every layer evaluated only where the unit depends
on it); each unit's value there is checked against the value recorded on the
full image, and any pair that disagrees is recomputed on the full image.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch
from captum.attr import GradientAttribution, NeuronAttribution
from torch import nn

from captum_fau._utils.modules import eval_mode, layer_name, probe_layers, stop_at_layer
from captum_fau.attr.crops import crop_friendly
from captum_fau.attr.receptive_field import (
    ConeChain,
    ReceptiveFields,
    receptive_fields,
    trace_cone_chain,
    whole_image_fields,
)
from captum_fau.attr.rules import ReluRuleMode, check_activations, check_rule
from captum_fau.errors import AttributionError, ConfigError, InputShapeError


#: Crop pixels per reconstruction batch at most (``recon_batch_size`` pairs of small crops, fewer of large ones).
CROP_BATCH_PIXELS = 1 << 20


class TopNAttribution(NeuronAttribution, GradientAttribution):
    r"""Back-projection of single units (Zeiler & Fergus 2014; Khorrami et al. 2015, section 4.3).

    The attribution half of :class:`~captum_fau.attr.TopNDeconv` (which adds the dataset
    pipeline: :meth:`~captum_fau.attr.TopNDeconv.top_n` and its relatives).

    Args:
        forward_func (nn.Module): The model. Any ``nn.Module`` works; ReLUs may be
            modules (also ``inplace=True`` or reused) or functional calls
            (``F.relu``, ``torch.relu``, ``x.relu()``): the rule applies to all.
            With other activations before the layer (GELU, SiLU, LeakyReLU, ReLU6,
            a clamp, sigmoid, ...; see :mod:`captum_fau.attr.rules`), ``"deconv"``
            and ``"guided"`` raise :class:`~captum_fau.errors.AttributionError`
            naming them, on first use, unless ``relu_like=True``.
        layer (nn.Module or str): The layer (or its dotted name) whose filters
            are visualised; it must output ``[B, C, H, W]``.
        rule (str, optional): ``"guided"`` (guided backpropagation), ``"deconv"``
            (Zeiler-Fergus deconvnet) or ``"gradient"``. Default: ``"guided"``
        relu_like (bool, optional): Apply the rule to non-ReLU activations as to ReLUs
            (deconv: ``relu(grad)``; guided: ``relu(grad) * max(f'(x), 0)``). A model
            without them gets a warning. Default: False
        device_ids (list of int, optional): As in Captum, for DataParallel models.

    Examples::

        >>> import torch
        >>> from captum_fau import ZeroBiasCNN
        >>> model = ZeroBiasCNN().eval()
        >>> attribution = TopNAttribution(model, model.conv3, rule="deconv")
        >>> attribution.attribute(torch.randn(2, 1, 96, 96), filters=[3, 17]).shape
        torch.Size([2, 2, 1, 96, 96])
    """

    def __init__(
        self,
        forward_func: nn.Module,
        layer: nn.Module | str,
        rule: str = "guided",
        device_ids: list[int] | None = None,
        relu_like: bool = False,
    ) -> None:
        if not isinstance(forward_func, nn.Module):
            raise ConfigError(
                f"TopNDeconv needs the model as an nn.Module (to find and stop at the layer), got "
                f"{type(forward_func).__name__}."
            )
        self.layer_name = layer_name(forward_func, layer)
        module = forward_func.get_submodule(self.layer_name)
        NeuronAttribution.__init__(self, forward_func, module, device_ids)
        GradientAttribution.__init__(self, forward_func)
        self.model = forward_func
        self.rule = check_rule(rule)
        self.relu_like = bool(relu_like)
        self._activations_checked = False
        #: The non-ReLU activations the rule is applied to as to ReLUs (``relu_like``), once checked; None before.
        self.relu_like_activations: str | None = None
        #: Size of the reconstruction batches (pairs per backward pass).
        self.recon_batch_size = 128
        #: Evaluate units on their cones where the path to the layer is a plain chain (see
        #: :class:`~captum_fau.attr.receptive_field.ConeChain`); False keeps the receptive-field crops.
        self.use_cones = True
        self._fields: dict[tuple[int, ...], ReceptiveFields] = {}

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _single_input(inputs: Any) -> torch.Tensor:
        if isinstance(inputs, tuple):
            if len(inputs) != 1:
                raise AttributionError(
                    f"TopNDeconv reconstructs one image input, got a tuple of {len(inputs)}; pass the "
                    "other model inputs through additional_forward_args."
                )
            inputs = inputs[0]
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise InputShapeError(f"TopNDeconv expects images [B, C, H, W], got {shape}.")
        if not inputs.is_floating_point():
            raise InputShapeError(
                f"TopNDeconv expects float images, got a {inputs.dtype} tensor; convert 8-bit pixels with "
                "images.float() / 255 (what every captum-fau dataset yields)."
            )
        return inputs

    def _check_filters(self, filters: Sequence[int] | torch.Tensor | int | None, channels: int) -> torch.Tensor:
        if filters is None:
            return torch.arange(channels)
        if isinstance(filters, int):
            filters = [filters]
        raw = torch.as_tensor(list(filters) if not isinstance(filters, torch.Tensor) else filters).reshape(-1)
        if raw.dtype == torch.bool or (raw.is_floating_point() and not bool((raw == raw.round()).all())):
            shown = raw[~(raw == raw.round())].tolist()[:8] if raw.is_floating_point() else raw.tolist()[:8]
            raise ConfigError(
                f"filters must be whole filter indices, got {shown}; pass integers such as filters=[1, 5] "
                "(a fractional index names no filter)."
            )
        chosen = raw.long()
        if chosen.numel() == 0:
            raise ConfigError("filters is empty; pass filter indices or None for all filters.")
        bad = chosen[(chosen < 0) | (chosen >= channels)]
        if bad.numel():
            raise ConfigError(
                f"Filters {bad.tolist()[:8]} are out of range: layer {self.layer_name!r} has {channels} "
                f"filters, numbered 0..{channels - 1}."
            )
        return chosen

    def receptive_fields(
        self, input_shape: tuple[int, int, int], map_size: tuple[int, int], additional_forward_args: Any = None
    ) -> ReceptiveFields:
        """The layer's receptive fields for inputs of ``input_shape`` (measured once, cached)."""
        key = (*input_shape, *map_size)
        if key not in self._fields:
            try:
                with eval_mode(self.model, "TopNDeconv"), crop_friendly(self.model):
                    fields = receptive_fields(
                        stop_at_layer(self.model, self.layer, additional_forward_args),
                        input_shape,
                        map_size,
                        next(iter(self.model.parameters()), torch.empty(0)).device,
                    )
            except Exception as err:  # any model the probe cannot run: fall back, exactly
                warnings.warn(
                    f"TopNDeconv could not establish receptive fields for layer {self.layer_name!r} ({err}); "
                    "reconstructions use the full image (exact, slower).",
                    UserWarning,
                    stacklevel=3,
                )
                fields = whole_image_fields(map_size, input_shape[1:])
            self._fields[key] = fields
        return self._fields[key]

    def _check_inputs_taken(self, additional_forward_args: Any) -> None:
        """Refuse a model whose forward needs more than the images when no other inputs are given."""
        if additional_forward_args is not None:
            return
        from captum_fau.inputs.probe import check_single_input

        try:
            check_single_input(self.model)
        except ConfigError as err:
            raise ConfigError(f"{err} Or pass the other inputs as additional_forward_args=(...) "
                              "(Captum's convention).") from None  # fmt: skip

    def _check_activations(self, sample: torch.Tensor | None, additional_forward_args: Any) -> None:
        """Refuse the rule on non-ReLU activations unless ``relu_like`` (once, on one image)."""
        if sample is None or self._activations_checked:
            return
        self._check_inputs_taken(additional_forward_args)
        with eval_mode(self.model, "TopNDeconv"), crop_friendly(self.model):
            report = check_activations(self.model, self.layer, sample, self.rule, self.relu_like, self.layer_name,
                                       additional_forward_args)  # fmt: skip
        describe = getattr(report, "describe", None)
        self.relu_like_activations = describe() if self.relu_like and callable(describe) else ""
        self._activations_checked = True

    # ------------------------------------------------------------- reconstruct
    def reconstruct(
        self,
        images: torch.Tensor,
        channels: torch.Tensor,
        positions: torch.Tensor,
        values: torch.Tensor,
        boxes: torch.Tensor,
        stride: tuple[int, int],
        additional_forward_args: Any = None,
        signal: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Back-project single units of the layer, batched, each on its crop box.

        Args:
            images (Tensor): ``[P, C, H, W]`` the image of each pair.
            channels (Tensor): ``[P]`` filter of each pair.
            positions (Tensor): ``[P, 2]`` ``(h, w)`` of the unit on the full map.
            values (Tensor): ``[P]`` the unit's value on the full image (start of the back-projection).
            boxes (Tensor): ``[P, 4]`` crop boxes ``(y0, x0, y1, x1)``, starts aligned to ``stride``.
            stride (tuple of int): The layer's total stride.
            signal (Tensor, optional): ``[P]`` the signal back-projected from each unit, when it
                differs from ``values`` (the model-randomisation check back-projects the trained
                model's value through randomised weights). Default: ``values``

        Returns:
            (list of Tensor, Tensor): the reconstruction of each pair on its box
            ``[C, y1 - y0, x1 - x0]``, and a ``[P]`` bool mask of the pairs whose
            crop did not reproduce the full-image value (to be redone on the full image).
        """
        count = len(channels)
        out: list[torch.Tensor | None] = [None] * count
        mismatch = torch.zeros(count, dtype=torch.bool)
        sizes = (boxes[:, 2] - boxes[:, 0]) * 100000 + (boxes[:, 3] - boxes[:, 1])
        forward = stop_at_layer(self.model, self.layer, additional_forward_args)
        conv_input = self._conv_input_fn(additional_forward_args)
        scale = float(values.abs().max()) if count else 1.0
        signal = values if signal is None else signal
        for size in torch.unique(sizes).tolist():
            group = (sizes == size).nonzero().flatten()
            # Large crops in smaller batches: the graph of a batch holds every layer's map up to the layer.
            per_batch = max(
                1, min(self.recon_batch_size, CROP_BATCH_PIXELS // max(1, size // 100000 * (size % 100000)))
            )
            for start in range(0, len(group), per_batch):
                ids = group[start : start + per_batch]
                crops = (
                    torch.stack(
                        [
                            images[p, :, int(boxes[p, 0]) : int(boxes[p, 2]), int(boxes[p, 1]) : int(boxes[p, 3])]
                            for p in ids.tolist()
                        ]
                    )
                    .detach()
                    .requires_grad_(True)
                )
                with torch.enable_grad(), ReluRuleMode(self.rule, self.relu_like):
                    if conv_input is not None:
                        layer_out = self._selected_channel_conv(conv_input(crops), channels[ids])
                    else:
                        layer_out = forward(crops)
                local_h = positions[ids, 0].long() - torch.div(boxes[ids, 0], stride[0], rounding_mode="floor")
                local_w = positions[ids, 1].long() - torch.div(boxes[ids, 1], stride[1], rounding_mode="floor")
                inside = (
                    (local_h >= 0) & (local_h < layer_out.shape[2]) & (local_w >= 0) & (local_w < layer_out.shape[3])
                )
                rows = torch.arange(len(ids))
                got = torch.zeros(len(ids), dtype=layer_out.dtype)
                pair_channels = torch.zeros_like(channels[ids]) if conv_input is not None else channels[ids]
                got[inside] = layer_out.detach()[
                    rows[inside], pair_channels[inside], local_h[inside], local_w[inside]
                ].cpu()
                bad = ~inside | ((got - values[ids].to(got.dtype)).abs() > 1e-4 * scale + 1e-3 * values[ids].abs())
                grad_out = torch.zeros_like(layer_out)
                good = ~bad
                grad_out[rows[good], pair_channels[good], local_h[good], local_w[good]] = (
                    signal[ids][good].to(grad_out.dtype).to(grad_out.device)
                )
                (grads,) = torch.autograd.grad(layer_out, crops, grad_out)
                mismatch[ids[bad]] = True
                for row, p in enumerate(ids.tolist()):
                    out[p] = grads[row].detach()
        return out, mismatch  # type: ignore[return-value]

    def _conv_input_fn(self, additional_forward_args: Any) -> Any:
        """For a plain ``nn.Conv2d`` layer: a function returning the layer's *input*.

        Only one channel of the layer is back-projected per pair, so the layer
        itself is then evaluated for that channel alone (see
        :meth:`_selected_channel_conv`) instead of for all of its filters.
        """
        layer = self.layer
        if not (
            isinstance(layer, nn.Conv2d)
            and type(layer).forward is nn.Conv2d.forward
            and layer.padding_mode == "zeros"
            and not isinstance(layer.padding, str)
        ):
            return None

        return stop_at_layer(self.model, layer, additional_forward_args, capture="input")

    def _selected_channel_conv(self, layer_input: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        """Output channel ``channels[p]`` of the conv layer for sample ``p``: ``[P, 1, h, w]``,
        as one grouped convolution (one group per sample)."""
        conv: nn.Conv2d = self.layer  # type: ignore[assignment]
        count = layer_input.shape[0]
        per_group_out = conv.out_channels // conv.groups
        per_group_in = conv.in_channels // conv.groups
        channels = channels.to(layer_input.device)
        first_in = torch.div(channels, per_group_out, rounding_mode="floor") * per_group_in
        take = first_in[:, None] + torch.arange(per_group_in, device=layer_input.device)[None]
        selected = layer_input[torch.arange(count, device=layer_input.device)[:, None], take]
        weight = conv.weight[channels]  # [P, per_group_in, kh, kw]
        out = torch.nn.functional.conv2d(
            selected.reshape(1, count * per_group_in, *selected.shape[2:]),
            weight,
            None if conv.bias is None else conv.bias[channels],
            conv.stride,
            conv.padding,
            conv.dilation,
            count,
        )
        return out.reshape(count, 1, *out.shape[2:])

    def _cone_chain(self, sample: torch.Tensor, additional_forward_args: Any) -> ConeChain | None:
        """The model's path to the layer as a :class:`ConeChain`, or None (traced on each call,
        so weights replaced since are seen)."""
        try:
            return trace_cone_chain(stop_at_layer(self.model, self.layer, additional_forward_args), sample)
        except Exception:  # noqa: BLE001 - any model the tracer cannot follow takes the crop path
            return None

    def reconstruct_on_cones(
        self,
        chain: ConeChain,
        images: torch.Tensor,
        channels: torch.Tensor,
        positions: torch.Tensor,
        values: torch.Tensor,
        signal: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Back-project single units of the layer, batched, each through its cone only.

        Args:
            chain (ConeChain): The model's path to the layer (see :func:`trace_cone_chain`).
            images, channels, positions, values, signal: As in :meth:`reconstruct`.

        Returns:
            (list of Tensor, Tensor, Tensor): each pair's reconstruction ``[C, y1 - y0, x1 - x0]``
            on its box, the ``[P]`` bool mask of pairs whose cone did not reproduce the
            full-image value, and the ``[P, 4]`` boxes (the cones clipped to the image).
        """
        count = len(channels)
        height, width = images.shape[-2:]
        cones = chain.boxes(positions)
        clipped = torch.stack([cones[:, 0].clamp(min=0), cones[:, 1].clamp(min=0), cones[:, 2].clamp(max=height),
                               cones[:, 3].clamp(max=width)], dim=1)  # fmt: skip
        pad = (
            [
                max(0, -int(cones[:, 1].min())),
                max(0, int(cones[:, 3].max()) - width),
                max(0, -int(cones[:, 0].min())),
                max(0, int(cones[:, 2].max()) - height),
            ]
            if count
            else [0] * 4
        )
        out: list[torch.Tensor] = []
        mismatch = torch.zeros(count, dtype=torch.bool)
        scale = float(values.abs().max()) if count else 1.0
        signal = values if signal is None else signal
        # Batches sized so that the largest intermediate map stays near the cache (8 MiB).
        batch = max(8, min(self.recon_batch_size, (8 << 20) // max(1, 4 * chain.values_per_unit())))
        for start in range(0, count, batch):
            ids = slice(start, start + batch)
            padded = torch.nn.functional.pad(images[ids].detach(), pad)
            crops = torch.stack([padded[k, :, y0 + pad[2] : y1 + pad[2], x0 + pad[0] : x1 + pad[0]]
                                 for k, (y0, x0, y1, x1) in enumerate(cones[ids].tolist())]).requires_grad_(True)  # fmt: skip
            with torch.enable_grad(), ReluRuleMode(self.rule, self.relu_like):
                layer_out = chain.forward(crops, positions[ids])
            if layer_out.shape[2:] != (1, 1):
                raise AttributionError(f"the cone of a unit gave a {tuple(layer_out.shape[2:])} map, not 1x1")
            rows = torch.arange(len(crops), device=layer_out.device)
            pair_channels = channels[ids].to(layer_out.device)
            got = layer_out.detach()[rows, pair_channels, 0, 0].float().cpu()
            bad = (got - values[ids].float()).abs() > 1e-4 * scale + 1e-3 * values[ids].abs()
            good = (~bad).to(layer_out.device)
            grad_out = torch.zeros_like(layer_out)
            grad_out[rows[good], pair_channels[good], 0, 0] = signal[ids].to(grad_out)[good]
            (grads,) = torch.autograd.grad(layer_out, crops, grad_out)
            mismatch[ids] = bad
            for k, ((y0, x0, _, _), (cy0, cx0, cy1, cx1)) in enumerate(zip(cones[ids].tolist(), clipped[ids].tolist())):
                out.append(grads[k, :, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].detach())
        return out, mismatch, clipped

    def _reconstruct_exact(
        self,
        images: torch.Tensor,
        channels: torch.Tensor,
        positions: torch.Tensor,
        values: torch.Tensor,
        fields: ReceptiveFields,
        full_image: bool,
        additional_forward_args: Any,
        signal: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Crop path where allowed, then the full image for pairs whose crop failed the value check
        (``signal``: as in :meth:`reconstruct`)."""
        self._check_activations(images[:1], additional_forward_args)
        height, width = images.shape[-2:]
        full_boxes = torch.tensor([[0, 0, height, width]] * len(channels), dtype=torch.int64).reshape(-1, 4)
        boxes = full_boxes if full_image or not fields.local else fields.crop_boxes(positions)
        stride = (1, 1) if full_image or not fields.local else fields.stride
        chain = (
            None
            if full_image or not fields.local or not self.use_cones
            else self._cone_chain(images[:1], additional_forward_args)
        )
        recon: list[torch.Tensor] | None = None
        if chain is not None:
            try:
                recon, mismatch, boxes = self.reconstruct_on_cones(chain, images, channels, positions, values, signal)
            except Exception:  # noqa: BLE001 - the crop path below is exact as well
                recon = None
        with crop_friendly(self.model):
            try:
                if recon is None:
                    recon, mismatch = self.reconstruct(images, channels, positions, values, boxes, stride,
                                                       additional_forward_args, signal)  # fmt: skip
            except Exception as err:
                if bool((boxes == full_boxes).all()):
                    raise
                warnings.warn(
                    f"The model failed on receptive-field crops ({err}); reconstructing on full images instead.",
                    UserWarning,
                    stacklevel=3,
                )
                # every pair is redone on the full image below (boxes stay the crops until then)
                mismatch = torch.ones(len(channels), dtype=torch.bool)
                recon = [torch.empty(0)] * len(channels)
        redo = mismatch.nonzero().flatten()
        if redo.numel() and not bool((boxes[redo] == full_boxes[redo]).all()):
            if not bool(mismatch.all()):
                warnings.warn(
                    f"{redo.numel()} of {len(channels)} units did not match their full-image value on the "
                    "receptive-field crop (the layer is not local there); they were recomputed on the full image.",
                    UserWarning,
                    stacklevel=3,
                )
            redo_recon, still = self.reconstruct(
                images[redo],
                channels[redo],
                positions[redo],
                values[redo],
                full_boxes[redo],
                (1, 1),
                additional_forward_args,
                None if signal is None else signal[redo],
            )
            if bool(still.any()):
                raise AttributionError(
                    f"Layer {self.layer_name!r} gives different values for the same image on two forward passes "
                    "(is the model stochastic in eval mode?); reconstructions would not match the scan."
                )
            for k, p in enumerate(redo.tolist()):
                recon[p] = redo_recon[k]
            boxes = boxes.clone()
            boxes[redo] = full_boxes[redo]
        elif redo.numel():
            raise AttributionError(
                f"Layer {self.layer_name!r} gives different values for the same image on two forward passes "
                "(is the model stochastic in eval mode?); reconstructions would not match the scan."
            )
        return recon, boxes

    # ---------------------------------------------------------------- attribute
    def attribute(  # type: ignore[override]
        self,
        inputs: torch.Tensor | tuple[torch.Tensor],
        filters: Sequence[int] | torch.Tensor | int | None = None,
        additional_forward_args: Any = None,
        full_image: bool = False,
    ) -> torch.Tensor:
        r"""Reconstruct each filter's strongest unit in each image of a batch.

        For image ``b`` and filter ``f``: the unit of ``f``'s map with the
        largest value is kept at that value, every other activation of the
        layer is zeroed, and the signal is projected back to the input with
        the rule. The result equals Captum's ``NeuronGuidedBackprop`` /
        ``NeuronDeconvolution`` at that neuron multiplied by its value.

        Args:
            inputs (Tensor or tuple of one Tensor): Images ``[B, C, H, W]``.
            filters (int, sequence of int or Tensor, optional): Filters to
                reconstruct. Default: all filters of the layer
            additional_forward_args (Any, optional): Extra model arguments after the inputs.
            full_image (bool, optional): Back-project on the full image even where
                receptive-field crops are exact. Default: False

        Returns:
            Tensor: ``[B, F, C, H, W]`` reconstructions, zero outside each unit's receptive field.
        """
        images = self._single_input(inputs)
        self._check_inputs_taken(additional_forward_args)
        forward = stop_at_layer(self.model, self.layer, additional_forward_args)
        with eval_mode(self.model, "TopNDeconv"):
            shapes = probe_layers(self.model, [self.layer_name], images[:1], additional_forward_args)
            _, channels_total, map_h, map_w = shapes[self.layer_name]
            chosen = self._check_filters(filters, channels_total)
            with torch.no_grad():
                layer_out = forward(images)[:, chosen.to(images.device)]
            values, where = layer_out.flatten(2).max(dim=2)  # [B, F]
            batch, count = values.shape
            positions = torch.stack([where // map_w, where % map_w], dim=2).reshape(-1, 2).cpu()
            fields = self.receptive_fields(tuple(images.shape[1:]), (map_h, map_w), additional_forward_args)
            pair_images = images.repeat_interleave(count, dim=0)
            pair_channels = chosen.repeat(batch)
            recon, boxes = self._reconstruct_exact(
                pair_images,
                pair_channels,
                positions,
                values.reshape(-1).float().cpu(),
                fields,
                full_image,
                additional_forward_args,
            )
        result = torch.zeros((batch * count, *images.shape[1:]), dtype=images.dtype, device=images.device)
        for p, (y0, x0, y1, x1) in enumerate(boxes.tolist()):
            result[p, :, y0:y1, x0:x1] = recon[p]
        return result.reshape(batch, count, *images.shape[1:])


__all__ = ["CROP_BATCH_PIXELS", "TopNAttribution"]
