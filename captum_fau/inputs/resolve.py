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
import warnings
from typing import Any, Mapping, Sequence, TextIO

import torch
from torch import nn

from captum_fau.inputs.fields import _scaled_side, unverified_fields, unverified_note
from captum_fau.inputs.forward import check_forward
from captum_fau.inputs.model_inputs import ModelInputs, raw_shape
from captum_fau.inputs.probe import _reference_tensor, check_single_input
from captum_fau.inputs.sources import declared_input_spec
from captum_fau.inputs.spec import SOURCE_DEFAULT, SOURCE_PROBE, InputSpec


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
        what it does to these data (conversions, resizing, probes, overrides), and name every field a
        probe, a default or the data supplied as UNVERIFIED, with its flag
        (:func:`~captum_fau.inputs.fields.unverified_note`).

    Raises:
        ConfigError / InputShapeError: conflicting or impossible specs, data that are not raw
            face crops (RGBA, 16-bit, 0..255 floats), a model that needs two inputs or runs at no size
            (or not at the spec's size).
        LayerError: a layer in ``layers`` is not reached or outputs no ``[B, C, H, W]``.
    """
    shape = raw_shape(data)
    spec = resolve_input_spec(model, shape, explicit, explicit_sources, check=False)
    notes = [f"Input: {spec.describe()}."] + [f"Input: {note}." for note in spec.notes(shape)]
    guessed = unverified_note(unverified_fields(spec.to_dict(), spec.sources))
    if guessed:
        notes.append(guessed + ".")
    inputs = ModelInputs(data, spec)
    if check and len(inputs):
        ref = _reference_tensor(model)
        sample = inputs[0]["image"][None]
        sample = sample.to(ref.device) if ref is not None else sample
        inputs.forward_check = check_forward(
            model, sample, layers, size_source=spec.sources.get("size", SOURCE_DEFAULT)
        )
    return inputs, spec, notes


def declared_inputs(model: nn.Module, data: Any, stacklevel: int = 2) -> Any:
    """A bare FaceSet or SynthFACS set, as ``model`` declares it wants its inputs.

    Their items carry the zero-bias CNN's reference preprocessing with the data's own local-mean padding.
    A model that declares an input spec (:func:`~captum_fau.inputs.sources.declared_input_spec`: a zero-bias
    config with the padding it was trained with, timm's ``pretrained_cfg``, a Hub folder's
    ``preprocessor_config.json``) gets the tensors that spec makes. A model that declares nothing gets the
    reference preprocessing, with a warning saying so and how to choose (``analyze`` and the CLI resolve a
    spec for every model, probing when needed). Other data and data already wrapped for a model
    (:class:`~captum_fau.inputs.model_inputs.ModelInputs`) pass unchanged. This is what
    :func:`~captum_fau.stats.scan.scan` does with data that no one wrapped for the model.
    """
    if isinstance(data, ModelInputs) or not hasattr(data, "raw_item"):
        return data
    spec = declared_input_spec(model, with_conv=False)
    if spec is not None:
        return ModelInputs(data, spec)
    warnings.warn(
        f"{type(model).__name__} declares no input spec, so {type(data).__name__} items are fed with the zero-bias "
        "CNN's reference preprocessing (x/255*2 minus a 5x5 local mean). If the model was trained on other inputs, "
        "wrap the data: ModelInputs(data, InputSpec(mean=..., std=..., local_mean=0)) from captum_fau.inputs, "
        "or use analyze(), which resolves and reports a spec.",
        stacklevel=stacklevel,
    )
    return data


def print_notes(notes: Sequence[str], file: TextIO | None = None) -> None:
    """The one way input notes are shown before long work: ``note: ...`` lines, flushed.

    Under the command line they go through its printer (:mod:`captum_fau._utils.notes`), which shows each
    note once per run; elsewhere they are printed on ``file`` (stdout by default).
    """
    from captum_fau._utils import notes as _notes

    for text in notes:
        if _notes.is_routed():
            _notes.note(text)
        else:
            print(f"note: {text}", file=file or sys.stdout, flush=True)


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
    spec = InputSpec.resolve(
        explicit, declared_input_spec(model), explicit_sources=explicit_sources, model=model, data_shape=data_shape
    )
    if check and spec.size is not None and spec.sources.get("size") != SOURCE_PROBE:
        check_forward(model, zeros_like_input(model, spec), size_source=spec.sources.get("size", SOURCE_DEFAULT))
    return spec


def face_crop_side(model: nn.Module, explicit: Any = None,
                   explicit_sources: Mapping[str, str] | None = None) -> int | None:  # fmt: skip
    """The side at which a loader should cut faces for ``model``: the side its input spec resizes to before any
    centre crop (``floor(size / crop_pct)``, the larger of height and width), so faces are never cut small and
    enlarged. None when neither the user nor the model gives a size (a probe decides it later).

    Examples::

        >>> face_crop_side(nn.Identity(), {"size": 224, "crop_pct": 0.875}), face_crop_side(nn.Identity())
        (256, None)
    """
    spec = InputSpec.resolve(explicit, declared_input_spec(model), explicit_sources=explicit_sources)
    if spec.size is None:
        return None
    return max(_scaled_side(side, spec.crop_pct) for side in spec.size)


def merge_spec(explicit: Any = None, discovered: InputSpec | None = None, **kwargs: Any) -> InputSpec:
    """Merge a spec's sources: explicit > discovered > (probe) > defaults (:meth:`InputSpec.resolve`)."""
    return InputSpec.resolve(explicit, discovered, **kwargs)


__all__ = [
    "declared_inputs",
    "face_crop_side",
    "merge_spec",
    "model_inputs",
    "print_notes",
    "resolve_input_spec",
    "zeros_like_input",
]
