"""ONE place decides which :class:`~captum_fau.inputs.spec.InputSpec` turns a dataset's raw face crops into a
model's input, and says so in one way.

:func:`model_inputs` is the entry point the analysis, the command line, training and evaluation share:
explicit values (Python ``input_spec=``, CLI flags) win over what the model declares
(:func:`~captum_fau.inputs.sources.declared_input_spec`), a model that declares no size is probed
(:func:`~captum_fau.inputs.probe.probe_input`), and the notes say where each field came from and what the
spec does to these data. :func:`merge_spec` is the merge itself; :func:`resolve_input_spec` is the spec alone.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, Mapping, Sequence, TextIO

import torch
from torch import nn

from captum_fau.errors import ConfigError
from captum_fau.inputs.forward import check_forward
from captum_fau.inputs.model_inputs import ModelInputs, raw_shape
from captum_fau.inputs.probe import _reference_tensor, check_single_input, probe_input
from captum_fau.inputs.sources import declared_input_spec
from captum_fau.inputs.spec import (
    _DEFAULTS,
    SOURCE_DATA,
    SOURCE_DEFAULT,
    SOURCE_EXPLICIT,
    SOURCE_PROBE,
    InputSpec,
    _as_floats,
    _fmt_value,
    parse_pixel_range,
    parse_size,
)


def model_inputs(
    model: nn.Module,
    data: Any,
    explicit: Any = None,
    explicit_sources: Mapping[str, str] | None = None,
    *,
    layers: Sequence[str] = (),
    check: bool = True,
) -> tuple[ModelInputs, InputSpec, list[str]]:
    """``data`` as ``model``'s input: its resolved spec applied to the raw face crops, and the notes.

    THE function that decides a model's input for a dataset. With ``check``, the first item goes through
    the model once (:func:`~captum_fau.inputs.forward.check_forward`, recording ``layers``): the one
    forward check before the first batch, kept on the result as ``ModelInputs.forward_check``.

    Args:
        model (nn.Module): The model the images are for.
        data (Dataset): Raw face crops (a FaceSet, a lazy SynthFACS, any dataset of dict items).
        explicit (InputSpec or dict, optional): Fields given by the user (they win, with a note).
        explicit_sources (dict, optional): Field -> how it was given (e.g. the CLI flag).
        layers (sequence of str, optional): Layer names whose outputs the check records (each must
            output a feature map ``[B, C, H, W]``). Default: none
        check (bool, optional): Run the forward check on the first item. Default: True

    Returns:
        tuple: ``(ModelInputs, InputSpec, notes)``; the notes say where the spec came from and
        what it does to these data (conversions, resizing, probes, overrides).

    Raises:
        ConfigError / InputShapeError: conflicting or impossible specs, data that are not raw
            face crops (RGBA, 16-bit, 0..255 floats), a model that needs two inputs or runs at no size
            (or not at the spec's size).
        LayerError: a layer in ``layers`` is not reached or outputs no ``[B, C, H, W]``.
    """
    shape = raw_shape(data)
    spec = resolve_input_spec(model, shape, explicit, explicit_sources, check=False)
    notes = [f"Input: {spec.describe()}."] + [f"Input: {note}." for note in spec.notes(shape)]
    inputs = ModelInputs(data, spec)
    if check and len(inputs):
        ref = _reference_tensor(model)
        sample = inputs[0]["image"][None]
        sample = sample.to(ref.device) if ref is not None else sample
        inputs.forward_check = check_forward(model, sample, layers, size_source=spec.sources.get("size", SOURCE_DEFAULT))
    return inputs, spec, notes


def print_notes(notes: Sequence[str], file: TextIO | None = None) -> None:
    """The one way input notes are shown before long work: ``note: ...`` lines, flushed."""
    if notes:
        print("\n".join(f"note: {note}" for note in notes), file=file or sys.stdout, flush=True)


def zeros_like_input(model: nn.Module, spec: InputSpec, batch: int = 2) -> torch.Tensor:
    """A zero batch at ``spec``'s channels and size, on the device and float dtype of ``model``'s parameters."""
    assert spec.size is not None
    ref = _reference_tensor(model)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    return torch.zeros(batch, spec.channels, *spec.size, device=device, dtype=dtype)


def resolve_input_spec(
    model: nn.Module,
    data_shape: Sequence[int] | None = None,
    explicit: "Mapping[str, Any] | InputSpec | None" = None,
    explicit_sources: Mapping[str, str] | None = None,
    *,
    check: bool = True,
) -> InputSpec:
    """The :class:`InputSpec` that turns raw face crops into ``model``'s input.

    Explicit values win over what the model declares (:func:`declared_input_spec`), with a
    remark for every value they override; a model that declares no size is probed with
    forwards at the data's size, then the usual sizes (:func:`~captum_fau.inputs.probe.probe_input`),
    and the remark names the size found. Finally one forward of two zero images at the spec's
    size checks that the model runs, so a wrong size fails here, not after a long scan.

    Args:
        model (nn.Module): The model.
        data_shape (sequence of int, optional): The raw data's ``(C, H, W)``.
        explicit (Mapping or InputSpec, optional): Field -> value given by the user (Python
            ``input_spec=``, or CLI strings such as ``{"size": "48", "mean": "0.5"}``).
        explicit_sources (Mapping, optional): Field -> how it was given, e.g.
            :data:`~captum_fau.inputs.spec.CLI_FLAGS`. Default: ``"explicit"``
        check (bool, optional): Run the forward check at the spec's size
            (:func:`~captum_fau.inputs.forward.check_forward`); :func:`model_inputs` leaves it to the one
            check on the first real item. Default: True

    Returns:
        InputSpec: with :attr:`~InputSpec.sources` and :attr:`~InputSpec.remarks`.

    Raises:
        ConfigError: ``forward`` needs several inputs, an invalid or conflicting value, no
            size runs (the message names ``--input-size``), or the model fails at the spec's size.

    Examples::

        >>> from captum_fau import ZeroBiasCNN
        >>> spec = resolve_input_spec(ZeroBiasCNN(img_size=48), (1, 96, 96))
        >>> spec.size, spec.local_mean, spec.sources["size"]
        ((48, 48), 5, 'zero-bias config')
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 46 * 46, 7))
        >>> resolve_input_spec(net, (1, 96, 96)).remarks[-1][:60]
        'the model declares no input size; a probe forward at 48x48 ('
    """
    check_single_input(model)
    spec = merge_spec(
        explicit, declared_input_spec(model), explicit_sources=explicit_sources, model=model, data_shape=data_shape
    )
    if check and spec.size is not None and spec.sources.get("size") != SOURCE_PROBE:
        check_forward(model, zeros_like_input(model, spec), size_source=spec.sources.get("size", SOURCE_DEFAULT))
    return spec


def merge_spec(
    explicit: "Mapping[str, Any] | InputSpec | None" = None,
    discovered: "InputSpec | None" = None,
    *,
    explicit_sources: Mapping[str, str] | None = None,
    model: "nn.Module | None" = None,
    data_shape: Sequence[int] | None = None,
    candidates: Sequence[int] | None = None,
) -> InputSpec:
    """Merge the spec's sources: explicit > discovered > (probe) > defaults.

    Args:
        explicit (Mapping or InputSpec, optional): Field name -> value given by the user (CLI
            flags or Python arguments); ``None`` values count as not given. Values may be CLI
            strings (``"48x48"``, ``"0.5,0.5,0.5"``, ``"0-1"``). An :class:`InputSpec` (Python
            ``input_spec=``) contributes the fields whose source is not ``"default"``.
        discovered (InputSpec, optional): What the model declares (zero-bias config, timm
            ``pretrained_cfg``, ``preprocessor_config.json``); its ``"default"`` fields count
            as not declared.
        explicit_sources (Mapping, optional): Field name -> how the user gave it, e.g.
            ``{"size": "--input-size"}``; unlisted explicit fields are ``"explicit"``.
        model (nn.Module, optional): When given and no size is known, the model is probed
            with :func:`captum_fau.inputs.probe.probe_input`. Default: None (no probe)
        data_shape (sequence of int, optional): The data's ``(C, H, W)`` (or ``(H, W)``):
            the default channel count and the probe's first size.
        candidates (sequence of int, optional): Sizes the probe tries after the data's.

    Returns:
        InputSpec: with :attr:`sources` for every field and a remark for every explicit
        value that overrides a different discovered one
        (``"--mean 0.5 overrides 0.485,0.456,0.406 from timm pretrained_cfg"``).

    Raises:
        ConfigError: unknown explicit keys, an invalid merged spec (e.g. ``--channels 1``
            against a discovered 3-channel mean, with the fix), or a failed probe.

    Examples::

        >>> timm_spec = InputSpec.from_timm_cfg({"input_size": (3, 224, 224),
        ...                                      "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)})
        >>> spec = merge_spec({"mean": 0.5, "std": 0.5}, timm_spec,
        ...                          explicit_sources={"mean": "--mean", "std": "--std"})
        >>> spec.mean, spec.remarks[0]
        ((0.5, 0.5, 0.5), '--mean 0.5 overrides 0.485,0.456,0.406 from timm pretrained_cfg')
    """
    if isinstance(explicit, InputSpec):
        set_fields = [n for n, src in explicit.sources.items() if src != SOURCE_DEFAULT]
        explicit_sources = {**{n: explicit.sources[n] for n in set_fields}, **dict(explicit_sources or {})}
        explicit = {n: getattr(explicit, n) for n in set_fields}
    given = {k: v for k, v in dict(explicit or {}).items() if v is not None}
    unknown = set(given) - set(_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown input spec fields {sorted(unknown)}; known fields are {', '.join(_DEFAULTS)}.")
    labels = {name: str((explicit_sources or {}).get(name, SOURCE_EXPLICIT)) for name in given}
    given = _normalise_explicit(given)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    remarks: list[str] = list(discovered.remarks) if discovered is not None else []
    for name, default in _DEFAULTS.items():
        found = discovered is not None and discovered.sources.get(name, SOURCE_DEFAULT) != SOURCE_DEFAULT
        if name in given:
            values[name], sources[name] = given[name], labels[name]
        elif found:
            values[name], sources[name] = getattr(discovered, name), discovered.sources[name]
        else:
            values[name], sources[name] = default, SOURCE_DEFAULT
    data_c = _data_channels(data_shape)
    if sources["channels"] == SOURCE_DEFAULT and data_c in (1, 3):
        values["channels"], sources["channels"] = data_c, SOURCE_DATA
    if values["size"] is None and model is not None:
        remarks.append(_probe_into(values, sources, model, data_shape, candidates))
    if discovered is not None:
        remarks.extend(_override_notes(given, labels, discovered))
    _check_channel_fit(values, sources)
    return InputSpec(**values, sources=sources, remarks=tuple(remarks))



def _normalise_explicit(given: dict[str, Any]) -> dict[str, Any]:
    """Explicit values (CLI strings or Python values) as the dataclass stores them, so that
    overrides compare like with like."""
    parsers = {"size": parse_size, "pixel_range": parse_pixel_range}
    out = {k: parsers[k](v) if k in parsers else v for k, v in given.items()}
    for key, value in out.items():
        if not isinstance(value, str):
            continue
        if key in ("interpolation", "local_mean_padding"):
            out[key] = value.strip().lower()
        elif key in ("channels", "local_mean"):
            out[key] = _parse_int(key, value)
        elif key in ("crop_pct", "face_margin"):
            out[key] = _as_floats(key, value)[0]
    return out


def _probe_into(
    values: dict[str, Any],
    sources: dict[str, str],
    model: "nn.Module",
    data_shape: Sequence[int] | None,
    candidates: Sequence[int] | None,
) -> str:
    """Probe ``model`` for its size (and channels), write them into ``values``/``sources``, return the note."""
    data_size = (int(data_shape[-2]), int(data_shape[-1])) if data_shape is not None else None
    probe_kwargs = {} if candidates is None else {"candidates": tuple(candidates)}
    size, channels, note = probe_input(model, int(values["channels"]), data_size, **probe_kwargs)
    values["size"], sources["size"] = size, SOURCE_PROBE
    if channels != values["channels"]:
        if sources["channels"] not in (SOURCE_DATA, SOURCE_DEFAULT):
            raise ConfigError(
                f"the model runs on {channels}-channel input, not the {values['channels']} channel(s) from "
                f"{sources['channels']}; pass --channels {channels}."
            )
        values["channels"], sources["channels"] = channels, SOURCE_PROBE
    return note


def _parse_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}.") from None


def _data_channels(data_shape: Sequence[int] | None) -> int | None:
    if data_shape is None:
        return None
    shape = tuple(data_shape)
    return 1 if len(shape) == 2 else int(shape[-3])


def _override_notes(given: Mapping[str, Any], labels: Mapping[str, str], discovered: InputSpec) -> list[str]:
    notes = []
    probe = InputSpec(channels=discovered.channels)
    for name, value in given.items():
        source = discovered.sources.get(name, SOURCE_DEFAULT)
        if source == SOURCE_DEFAULT:
            continue
        old = getattr(discovered, name)
        if name in ("mean", "std"):
            try:
                new = getattr(replace(probe, **{name: value}), name)
            except ConfigError:
                new = value
        else:
            new = value
        if new != old:
            label = labels[name] if labels[name] != SOURCE_EXPLICIT else f"explicit {name}"
            shown = _fmt_value(name, _as_floats(name, value) if name in ("mean", "std") else value)
            notes.append(f"{label} {shown} overrides {_fmt_value(name, old)} from {source}")
    return notes


def _check_channel_fit(values: dict[str, Any], sources: Mapping[str, str]) -> None:
    channels = int(values["channels"])
    for name in ("mean", "std"):
        v = _as_floats(name, values[name])
        if len(v) not in (1, channels):
            raise ConfigError(
                f"{name} {_fmt_value(name, v)} from {sources[name]} has {len(v)} values but channels is {channels} "
                f"(from {sources['channels']}); pass --{name} with {channels} value(s) as well."
            )


__all__ = ["merge_spec", "model_inputs", "print_notes", "resolve_input_spec", "zeros_like_input"]
