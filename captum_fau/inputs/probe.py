"""Find the input size of a model that declares none, with no-grad probe forwards.

A plain ``nn.Module`` says nothing about the images it takes. :func:`probe_input` tries a
batch of two zero images at the data's size, then at the usual sizes, then with the other
channel count, and reports the first that runs, in a note the caller prints. When nothing
runs, the :class:`~captum_fau.errors.ConfigError` names ``--input-size`` / ``input_spec=``,
what was tried, and the first failure's one-line reason (never a traceback).

A model whose ``forward`` needs more than one input cannot be fed images alone:
:func:`check_single_input` says so, with how to wrap it.

Examples::

    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 62 * 62, 7))
    >>> size, channels, note = probe_input(net, channels=1, data_size=(96, 96))
    >>> size, channels
    ((64, 64), 1)
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple, Sequence

import torch
from torch import nn

from captum_fau.errors import ConfigError
from captum_fau.inputs.fields import SOURCE_DATA, SOURCE_DEFAULT, SOURCE_PROBE

#: Square sizes tried after the data's own, in this order.
PROBE_SIZES: tuple[int, ...] = (48, 64, 96, 112, 128, 224)


class ProbeResult(NamedTuple):
    """What :func:`probe_input` found: unpacks as ``size, channels, note``."""

    size: tuple[int, int]
    channels: int
    note: str


def _required_inputs(model: nn.Module) -> list[str]:
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # builtins / C extensions without a signature
        return []
    required = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    return [p.name for p in params if p.kind in required and p.default is inspect.Parameter.empty]


def check_single_input(model: nn.Module) -> None:
    """Raise unless ``model(images)`` can be called with one image batch.

    Raises:
        ConfigError: ``forward`` has more than one required parameter; the message names
            them and shows a one-input wrapper.

    Examples::

        >>> from torch import nn
        >>> class TwoInputs(nn.Module):
        ...     def forward(self, image, landmarks):
        ...         return image
        >>> check_single_input(TwoInputs())
        Traceback (most recent call last):
        ...
        captum_fau.errors.ConfigError: TwoInputs.forward needs 2 inputs (image, landmarks), but captum-fau feeds one batch of images. Wrap it in a module whose forward takes the images only, e.g. class Wrapped(nn.Module): def forward(self, x): return model(x, landmarks) with the other inputs fixed, and pass the wrapper.
    """
    names = _required_inputs(model)
    if len(names) > 1:
        others = ", ".join(names[1:])
        raise ConfigError(
            f"{type(model).__name__}.forward needs {len(names)} inputs ({', '.join(names)}), but captum-fau feeds one "
            "batch of images. Wrap it in a module whose forward takes the images only, e.g. class Wrapped(nn.Module): "
            f"def forward(self, x): return model(x, {others}) with the other inputs fixed, and pass the wrapper."
        )


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else '(no message)'}"


def _reference_tensor(model: nn.Module) -> torch.Tensor | None:
    for tensor in model.parameters():
        return tensor
    for tensor in model.buffers():
        return tensor
    return None


def forward_shape(model: nn.Module, channels: int, size: tuple[int, int]) -> tuple[int, ...]:
    """Output shape of ``model`` on a batch of two zero images ``[2, channels, *size]``.

    Runs under ``torch.no_grad()`` in eval mode (the model's mode is restored afterwards),
    on the device and floating dtype of the model's first parameter. An output that is a
    tuple, list, dict or has ``.logits`` (Hugging Face) is reduced to its first tensor.

    Args:
        model (nn.Module): The model.
        channels (int): Input channels.
        size (tuple of int): ``(H, W)``.

    Returns:
        tuple of int: the output's shape, e.g. ``(2, 7)``.

    Raises:
        Exception: whatever the model raises; :func:`probe_input` turns it into a note.
    """
    ref = _reference_tensor(model)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    x = torch.zeros(2, channels, *size, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
    return tuple(_first_tensor(out).shape)


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
        return out.logits
    items = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    for item in items:
        if isinstance(item, torch.Tensor):
            return item
    raise TypeError(f"the model returned {type(out).__name__}, not a tensor of class scores")


def probe_input(
    model: nn.Module,
    channels: int,
    data_size: tuple[int, int] | None,
    candidates: Sequence[int] = PROBE_SIZES,
) -> ProbeResult:
    """Find an input size (and channel count) ``model`` accepts.

    Tries, in order: the data's size, then each of ``candidates`` (squares), with ``channels``
    channels; then the same sizes with the other channel count (1 <-> 3). A size counts when
    the forward runs and returns a batch of two.

    Args:
        model (nn.Module): A model that declares no input size.
        channels (int): The channel count to try first (the data's, or one given).
        data_size (tuple of int, optional): The data's ``(H, W)``, tried first.
        candidates (sequence of int, optional): Square sides tried next.
            Default: :data:`PROBE_SIZES` (48, 64, 96, 112, 128, 224)

    Returns:
        ProbeResult: ``(size, channels, note)``; the note says what was found and, when the
        data's size failed, why.

    Raises:
        ConfigError: ``forward`` needs several inputs (see :func:`check_single_input`), or no
            size worked; the message lists what was tried, the first failure's reason, and
            the fix (``--input-size`` / ``input_spec=InputSpec(size=...)``).

    Examples::

        >>> from torch import nn
        >>> probe_input(nn.Conv2d(3, 8, 3), channels=3, data_size=(96, 96)).note
        'the model declares no input size; a probe forward at the data size 96x96 (3 channels) runs'
    """
    check_single_input(model)
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3 for a probe, got {channels!r}; pass --channels 1 or 3.")
    sizes: list[tuple[int, int]] = []
    for size in ([tuple(data_size)] if data_size is not None else []) + [(int(c), int(c)) for c in candidates]:
        if size not in sizes:
            sizes.append(size)  # type: ignore[arg-type]
    first_failure: tuple[tuple[int, int], int, str] | None = None
    for chans in (channels, 4 - channels):
        for size in sizes:
            try:
                shape = forward_shape(model, chans, size)
                if not shape or shape[0] != 2:
                    raise ValueError(f"output shape {shape} does not have the batch of 2 first")
            except Exception as err:  # a failed probe is information, not an error
                if first_failure is None:
                    first_failure = (size, chans, _one_line(err))
                continue
            return ProbeResult(size, chans, _found_note(size, chans, channels, data_size, first_failure))
    if first_failure is None:
        raise ConfigError("probe_input needs a data_size or candidate sizes to try; pass --input-size instead.")
    (fh, fw), fc, reason = first_failure
    tried = ", ".join(f"{h}x{w}" for h, w in sizes)
    raise ConfigError(
        f"{type(model).__name__} declares no input size and no probe forward ran: tried {tried} with {channels} "
        f"and {4 - channels} channel(s); the first failure ({fh}x{fw}, {fc} channel(s)) was {reason}. Pass the "
        "size the model was trained at: --input-size H[xW] (and --channels), or input_spec=InputSpec(size=..., "
        "channels=...) in Python."
    )


def _found_note(
    size: tuple[int, int],
    chans: int,
    channels: int,
    data_size: tuple[int, int] | None,
    first_failure: tuple[tuple[int, int], int, str] | None,
) -> str:
    where = (
        f"at the data size {size[0]}x{size[1]}"
        if data_size is not None and size == tuple(data_size)
        else f"at {size[0]}x{size[1]}"
    )
    note = f"the model declares no input size; a probe forward {where} ({chans} channel{'s' if chans > 1 else ''}) runs"
    if first_failure is not None:
        (fh, fw), fc, reason = first_failure
        note += f" ({fh}x{fw} with {fc} channel(s) failed: {reason})"
    if chans != channels:
        note += f"; it needs {chans} channel(s), not {channels}"
    return note + ("" if where.startswith("at the data") else "; pass --input-size to choose another size")


def probe_into(
    values: dict[str, Any],
    sources: dict[str, str],
    model: nn.Module,
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


__all__ = ["PROBE_SIZES", "ProbeResult", "check_single_input", "forward_shape", "probe_input", "probe_into"]
