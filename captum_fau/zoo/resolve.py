"""THE model-spec resolver: a specification string becomes a ready ``nn.Module``.

Every ``--model`` of the command line and :func:`captum_fau.analyze` accept any of:

* a zoo name: ``zerobias-synthfacs-8class`` (see ``captum-fau zoo list``);
* a local Hugging Face-format folder (``config.json`` + ``model.safetensors``),
  e.g. the output of ``captum-fau train`` or ``save_pretrained``;
* ``timm:NAME`` (built offline with ``pretrained=False``) plus an optional
  ``.safetensors`` checkpoint;
* ``module:factory`` or ``path/to/file.py:factory``: a callable returning any
  ``nn.Module`` — how you analyse your own expression model. This imports and runs
  **your code**, as ``python -m`` would: ``module`` is found from the current
  directory first, then ``sys.path``.

Examples::

    >>> from captum_fau.zoo.resolve import load_model_spec, resolve_input_spec
    >>> model = load_model_spec("timm:resnet18", num_classes=7)
    >>> resolve_input_spec(model, (1, 96, 96)).describe()
    '224x224 RGB, pixels in [0,1], mean 0.485,0.456,0.406 std 0.229,0.224,0.225, bicubic, crop_pct 0.95; size, channels, pixel_range, mean, std, interpolation and crop_pct from timm pretrained_cfg'

Each model's input contract (:class:`~captum_fau.inputs.spec.InputSpec`) is decided in
:mod:`captum_fau.inputs` (:func:`~captum_fau.inputs.resolve.model_inputs`); ``declared_input_spec`` and
``resolve_input_spec`` are re-exported here for one release.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from captum_fau._utils.notes import note
from captum_fau.errors import ConfigError, UnknownModelError, WeightsError, option
from captum_fau.inputs.resolve import resolve_input_spec  # noqa: F401 - re-export for one release
from captum_fau.inputs.sources import (  # noqa: F401 - re-exports for one release
    INPUT_SPEC_ATTR,
    SOURCE_FIRST_CONV,
    declared_input_spec,
    discover_input_spec,
)

SPEC_FORMS = (
    "a zoo name (captum-fau zoo list)",
    "a folder with config.json + model.safetensors",
    "timm:NAME (with --checkpoint FILE.safetensors)",
    "module:factory or path/to/file.py:factory returning an nn.Module",
)


def _forms() -> str:
    return "; ".join(SPEC_FORMS)


def _mismatch_hint(model: nn.Module, state: dict[str, Any], num_classes: int | None) -> str:
    """What to change when checkpoint and model disagree: the class count of a head, else the architecture."""
    own = model.state_dict()
    shapes = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
              if k in own and v.shape != own[k].shape]  # fmt: skip
    if not shapes:
        return "Check the architecture name."
    key, saved, built = shapes[-1]  # the head is last in every architecture timm builds
    listed = "; ".join(f"{k}: checkpoint {s}, model {b}" for k, s, b in shapes[:3])
    if num_classes is not None and built and built[0] == num_classes and saved:
        names = option("class_names=", "--class-names")
        return (
            f"({listed}) The model was built with {num_classes} outputs, one per {names} entry, but the "
            f"checkpoint's head {key} has {saved[0]}: give {names} with {saved[0]} names in the head's output "
            f"order, or check the architecture name."
        )
    names = option("class_names=", "--class-names")
    hint = f" (for a head of {saved[0]} outputs, give {names} with {saved[0]} names)" if saved else ""
    return f"({listed}) Check the architecture name{hint}."


def _load_checkpoint(model: nn.Module, checkpoint: str | Path, num_classes: int | None = None) -> None:
    from safetensors.torch import load_file

    from captum_fau._utils.weights import require_safetensors, safetensors_in_folder

    path = Path(checkpoint).expanduser()
    path = safetensors_in_folder(path) if path.is_dir() else require_safetensors(path, "Checkpoint")
    try:
        state = load_file(str(path))
    except Exception as err:
        raise WeightsError(f"Checkpoint {path} cannot be read as safetensors ({err}).") from err
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise WeightsError(
            f"Checkpoint {path} does not match the model's tensor shapes. {_mismatch_hint(model, state, num_classes)}"
        ) from err
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"Checkpoint {path} does not match the model: missing {result.missing_keys[:6]}, "
            f"unexpected {result.unexpected_keys[:6]}. Check the architecture name (keys that start with 'module.' "
            "come from DataParallel: save model.module.state_dict() instead)."
        )


def _import_module(target: str, spec: str) -> Any:
    """``import target`` with the current directory on ``sys.path``, as ``python -m`` puts it there.

    The directory stays on ``sys.path`` (as under ``python -m``), so that the factory may import
    its sibling modules when it runs.
    """
    import os
    import sys

    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(target)
    except ImportError as err:
        line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UnknownModelError(
            f"Cannot import module {target!r} (from model spec {spec!r}) with {cwd} as the current directory: "
            f"{type(err).__name__}: {line}. Run from the folder that holds {target.split('.')[0]!r} (or its "
            f"package), or name the file: path/to/{target.replace('.', '/')}.py:FACTORY. Accepted forms: {_forms()}."
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else '(no message)'}"


def random_weights_note(spec: str) -> str:
    """The note of a ``timm:NAME`` model loaded without a checkpoint: its weights are random."""
    return (f"The model {spec} has random weights (timm's architecture, no --checkpoint / checkpoint= given, and "
            "captum-fau never downloads weights): its filters are untrained, so the analysis describes an untrained "
            f"network. Pass --checkpoint FILE.safetensors (checkpoint=) with your trained weights.")  # fmt: skip


def _factory(spec: str) -> Callable[[], nn.Module]:
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UnknownModelError(
                f"Model file {path} does not exist (from spec {spec!r}, current directory {Path.cwd()})."
            )
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise UnknownModelError(f"Cannot import {path} (from spec {spec!r}).")
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001 - the user's file: its first line and the fix, not a traceback
            raise ConfigError(
                f"Importing {path} (from model spec {spec!r}) failed: {_first_line(err)}. Fix the "
                "file so that `python " + str(path) + "` runs, then retry."
            ) from err
    else:
        module = _import_module(target, spec)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UnknownModelError(f"{target!r} has no callable {attr!r} (from model spec {spec!r}).")
    return factory


def _load_folder(path: Path, config_file: Path) -> nn.Module:
    """A model folder: ZeroBiasCNN, or a timm architecture built without weights and then filled from
    ``model.safetensors`` (timm's own loader would unpickle a ``.bin``/``.pth`` it finds there)."""
    from captum_fau._utils.weights import safetensors_in_folder
    from captum_fau.models import ZeroBiasCNN

    try:
        arch = json.loads(config_file.read_text()).get("architecture")
    except (OSError, ValueError, AttributeError) as err:
        raise UnknownModelError(
            f"{config_file} is not a JSON object ({err}); save models with save_pretrained()."
        ) from err
    weights = safetensors_in_folder(path)
    if arch in (None, "zerobias_cnn"):
        return ZeroBiasCNN.from_pretrained(path)
    import timm

    try:
        model = timm.create_model(f"local-dir:{path}", pretrained=False)
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise UnknownModelError(
            f"{config_file} names architecture {arch!r}, which timm cannot build ({err}); "
            "write a timm model name (timm.list_models()) or save the folder with save_pretrained()."
        ) from err
    _load_checkpoint(model, weights)
    return model


def load_model_spec(
    spec: str,
    *,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Build the model a spec names, in eval mode, on ``device``.

    Args:
        spec (str): See the module docstring for the accepted forms.
        checkpoint (str or Path, optional): ``.safetensors`` weights for ``timm:`` and
            ``module:factory`` specs. Default: None
        num_classes (int, optional): Output classes for ``timm:`` models. Default: the model's default.
        device (str or torch.device, optional): Default: ``"cpu"``

    Returns:
        nn.Module: The model, in eval mode.

    Raises:
        UnknownModelError: the spec matches no accepted form.
        WeightsError: the checkpoint is missing, not safetensors, or does not fit.
    """
    from captum_fau.zoo import loading, registry

    if not isinstance(spec, str) or not spec.strip():
        raise UnknownModelError(f"Empty model spec. Accepted forms: {_forms()}.")
    spec = spec.strip()
    if spec in registry.names():
        return loading.load(spec, weights=checkpoint, device=device)
    path = Path(spec).expanduser()
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise UnknownModelError(f"Model folder {path} has no config.json; save models with save_pretrained().")
        model = _load_folder(path, config_file)
        config = json.loads(config_file.read_text())
        setattr(model, INPUT_SPEC_ATTR, discover_input_spec(
            config=config, pretrained_cfg=getattr(model, "pretrained_cfg", None), folder=path, model=model))  # fmt: skip
        return model.to(device).eval()
    if spec.startswith("timm:"):
        import timm

        name = spec[len("timm:") :]
        if not timm.is_model(name):
            raise UnknownModelError(f"timm has no model {name!r}; list them with timm.list_models('*pattern*').")
        kwargs = {"num_classes": num_classes} if num_classes is not None else {}
        model = timm.create_model(name, pretrained=False, **kwargs)
        if checkpoint is not None:
            _load_checkpoint(model, checkpoint, num_classes)
        else:
            note(random_weights_note(spec))
        return model.to(device).eval()
    if ":" in spec:
        factory = _factory(spec)
        try:
            model = factory()
        except Exception as err:  # noqa: BLE001 - the user's factory: its first line and the fix, not a traceback
            raise ConfigError(
                f"The model factory {spec!r} raised {_first_line(err)}. captum-fau calls it with no arguments and "
                "expects an nn.Module; fix the factory (or give it defaults for its arguments) and retry."
            ) from err
        if not isinstance(model, nn.Module):
            raise UnknownModelError(f"Factory {spec!r} returned {type(model).__name__}, not an nn.Module.")
        if checkpoint is not None:
            _load_checkpoint(model, checkpoint)
            _attach_folder_spec(model, checkpoint)
        return model.to(device).eval()
    raise UnknownModelError(f"Unknown model spec {spec!r}. Accepted forms: {_forms()}.")


def _attach_folder_spec(model: nn.Module, checkpoint: str | Path) -> None:
    """A ``preprocessor_config.json`` beside a ``module:factory`` checkpoint declares its input,
    unless the model declares one itself."""
    folder = Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent
    if (folder / "preprocessor_config.json").is_file() and declared_input_spec(model, with_conv=False) is None:
        setattr(model, INPUT_SPEC_ATTR, discover_input_spec(folder=folder))


__all__ = [
    "INPUT_SPEC_ATTR",
    "SOURCE_FIRST_CONV",
    "SPEC_FORMS",
    "declared_input_spec",
    "discover_input_spec",
    "load_model_spec",
    "resolve_input_spec",
]
