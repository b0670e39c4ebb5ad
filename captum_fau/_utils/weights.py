"""The safetensors-only rule for weights, with one message everywhere.

captum-fau never unpickles weights: ``torch.load`` of a ``.pth``/``.bin``/``.pt``/``.ckpt`` file
can run arbitrary code. Every path that reads weights (``--checkpoint``, ``zoo.load(weights=)``,
model folders, :func:`~captum_fau.models.zerobias.load_weights`) goes through
:func:`require_safetensors` or :func:`safetensors_in_folder`, and a pickled file is refused with
the one-line command that converts it.

Examples::

    >>> from pathlib import Path
    >>> conversion_command(Path("model.pth"))[:36]
    "python -c 'import sys, torch, safete"
"""

from __future__ import annotations

from pathlib import Path

from captum_fau._utils.shell import convert_weights
from captum_fau.errors import WeightsError

#: File endings of pickled PyTorch weights (what ``torch.load`` reads).
PICKLE_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin", ".ckpt", ".pkl", ".pickle", ".tar")

#: Weights files of a model folder (Hugging Face / timm layout), safetensors first.
FOLDER_WEIGHTS: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin", "model.pth", "pytorch_model.pth")


def conversion_command(path: Path) -> str:
    """The shell line that converts a pickled checkpoint at ``path`` to ``model.safetensors`` beside it.

    Quoted for any file name (:func:`captum_fau._utils.shell.convert_weights`); it unwraps the usual
    nestings (``{"state_dict": ...}``, ``{"model": ...}``, ``{"network": ...}``) and DataParallel's
    ``module.`` prefix. ``weights_only=True`` makes ``torch.load`` refuse anything but tensors, so
    running it on a file of unknown origin does not execute its code.
    """
    return convert_weights(path)


def _refusal(path: Path, what: str) -> WeightsError:
    return WeightsError(
        f"{what} {path} is not a .safetensors file; captum-fau never unpickles weights (loading a pickle can run "
        f"code). Convert it once with:\n  {conversion_command(path)}\nthen pass the .safetensors file. (The command "
        "unwraps {'state_dict': ...}, {'model': ...}, {'network': ...} and a 'module.' prefix; a whole pickled model, "
        "torch.save(model), is refused by weights_only=True: in your own code, save model.state_dict() with "
        "safetensors.torch.save_file instead.)"
    )


def require_safetensors(path: str | Path, what: str = "Weights file") -> Path:
    """``path`` if it names an existing ``.safetensors`` file; else a :class:`WeightsError` naming the fix.

    Args:
        path (str or Path): The weights file.
        what (str, optional): How the message calls it. Default: ``"Weights file"``

    Returns:
        Path: ``path``.
    """
    path = Path(path).expanduser()
    if path.suffix != ".safetensors":
        raise _refusal(path, what)
    if not path.is_file():
        raise WeightsError(f"{what} {path} does not exist; pass an existing .safetensors file.")
    return path


def safetensors_in_folder(folder: str | Path) -> Path:
    """``folder/model.safetensors``; a folder holding only pickled weights is refused with the conversion command.

    Raises:
        WeightsError: no ``model.safetensors`` in ``folder``.
    """
    folder = Path(folder).expanduser()
    weights = folder / FOLDER_WEIGHTS[0]
    if weights.is_file():
        return weights
    pickled = [folder / name for name in FOLDER_WEIGHTS[1:] if (folder / name).is_file()]
    pickled += sorted(p for p in folder.glob("*") if p.suffix in PICKLE_SUFFIXES and p not in pickled)
    if pickled:
        raise _refusal(pickled[0], f"The model folder {folder} holds no model.safetensors; its weights file")
    raise WeightsError(f"The model folder {folder} holds no model.safetensors; save models with save_pretrained().")


__all__ = ["FOLDER_WEIGHTS", "PICKLE_SUFFIXES", "conversion_command", "require_safetensors", "safetensors_in_folder"]
