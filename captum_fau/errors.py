"""Exceptions raised by captum-fau.

Every error a user can cause derives from :class:`CaptumFAUError`, and its
message says what was wrong and what to do about it. Catch the base class to
handle all of them::

    from captum_fau import errors, zoo
    try:
        model = zoo.load("zerobias-ckplus-8class")
    except errors.ZooWeightsUnavailable as err:
        print(err)  # says which dataset and which command produce the weights

The classes also derive from the built-in exception that describes them best
(``ValueError``, ``FileNotFoundError``, ...), so generic handlers keep working.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

#: Who is reading the messages: ``"python"`` (arguments such as ``weights=``) or ``"cli"`` (flags such as
#: ``--checkpoint``). The command line sets it for the length of a command (:func:`command_line`).
_AUDIENCE = ["python"]


@contextmanager
def command_line() -> Iterator[None]:
    """Within this block, messages name command-line flags instead of Python arguments (see :func:`option`)."""
    _AUDIENCE.append("cli")
    try:
        yield
    finally:
        _AUDIENCE.pop()


def option(python: str, cli: str | None = None) -> str:
    """The name of an option in the reader's language: ``cli`` under the ``captum-fau`` command, else ``python``.

    A message that tells the reader which option to change calls this, so that one message serves both::

        >>> f"choose a writable {option('out=', '--out')} folder"
        'choose a writable out= folder'
        >>> with command_line():
        ...     f"choose a writable {option('out=', '--out')} folder"
        'choose a writable --out folder'

    Args:
        python (str): The Python spelling (``"weights="``, ``"AnalysisConfig.layer"``).
        cli (str, optional): The flag (``"--checkpoint"``); ``None`` when the command line has none, then
            the Python name is used for both.

    Returns:
        str: The name to print.
    """
    return cli if cli is not None and _AUDIENCE[-1] == "cli" else python


class CaptumFAUError(Exception):
    """Base class of every exception raised by captum-fau."""


# --- models and weights -------------------------------------------------------


class InputShapeError(CaptumFAUError, ValueError):
    """A tensor given to a model or an attribution has the wrong shape or channels."""


class ConfigError(CaptumFAUError, ValueError):
    """A model or analysis was configured with invalid arguments."""


class WeightsError(CaptumFAUError, ValueError):
    """A weights file is unreadable, or its keys, shapes or checksum are wrong."""


class ChecksumMismatch(WeightsError):
    """A file's sha256 differs from the one recorded in the zoo registry."""


class UnknownModelError(CaptumFAUError, KeyError):
    """A zoo name (or model spec) is not known.

    ``KeyError`` quotes its message when printed; ``__str__`` is overridden so
    the message reads as written.
    """

    def __str__(self) -> str:  # pragma: no cover - trivial
        return str(self.args[0]) if self.args else ""


class ZooWeightsUnavailable(CaptumFAUError, FileNotFoundError):
    """A zoo entry's weights are neither packaged, cached, nor downloadable."""


# --- data ----------------------------------------------------------------------


class DatasetError(CaptumFAUError, ValueError):
    """A dataset is malformed, empty, or inconsistent with the request."""


class DatasetLayoutError(DatasetError, FileNotFoundError):
    """A dataset directory or file is missing or laid out differently than expected."""


class LabelError(DatasetError):
    """Labels (emotions, AUs, subjects) are missing, malformed or misaligned."""


class ImageFormatError(DatasetError):
    """An image file holds pixels the loaders will not convert without a choice of yours (16-bit, transparent)."""


class FaceNotFoundError(DatasetError):
    """No face could be detected in an image that needs one."""


# --- analysis -----------------------------------------------------------------


class LayerError(CaptumFAUError, ValueError):
    """A layer does not exist in the model, or its output is not usable."""


class AttributionError(CaptumFAUError, ValueError):
    """An attribution cannot be computed as requested."""


class StatisticsError(CaptumFAUError, ValueError):
    """A statistic cannot be computed from the data given."""


class ResumeError(CaptumFAUError, RuntimeError):
    """A checkpoint or partial result does not match the run trying to resume it."""


# --- training -----------------------------------------------------------------


class TrainingError(CaptumFAUError, RuntimeError):
    """Training cannot continue (NaN loss, impossible split, ...)."""


class DeviceError(CaptumFAUError, ValueError):
    """An unknown or unavailable device was requested."""


# --- distribution and I/O -------------------------------------------------------


class DistributedError(CaptumFAUError, RuntimeError):
    """Ranks of a distributed run disagree or one of them failed."""


class OutputError(CaptumFAUError, OSError):
    """An output location cannot be written."""


class HubError(CaptumFAUError, RuntimeError):
    """Publishing to, or fetching from, a Hugging Face Hub endpoint failed."""


__all__ = [
    "AttributionError",
    "CaptumFAUError",
    "ChecksumMismatch",
    "ConfigError",
    "DatasetError",
    "DatasetLayoutError",
    "DeviceError",
    "DistributedError",
    "FaceNotFoundError",
    "HubError",
    "ImageFormatError",
    "InputShapeError",
    "LabelError",
    "LayerError",
    "OutputError",
    "ResumeError",
    "StatisticsError",
    "TrainingError",
    "UnknownModelError",
    "WeightsError",
    "ZooWeightsUnavailable",
    "command_line",
    "option",
]
