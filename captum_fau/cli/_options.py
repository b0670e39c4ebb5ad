"""Options shared by the commands, each with one name and one meaning everywhere.

Nothing here imports torch or the analysis code: building the parser must stay fast.
The model and data helpers import what they need when a command runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from captum_fau.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

#: Back-projection rules (the same tuple as captum_fau.attr.rules.RULES, which imports torch).
RULES: tuple[str, ...] = ("guided", "deconv", "gradient")

MODEL_FORMS = """\
model forms (--model):
  zerobias-synthfacs-8class        a zoo name (captum-fau zoo list)
  path/to/folder                   config.json + model.safetensors (save_pretrained, captum-fau train)
  timm:resnet18 --checkpoint W     a timm architecture with your safetensors weights
  my_pkg.models:build              module:factory (or file.py:factory) returning any nn.Module
  NAME --checkpoint W              a zoo architecture (NAME) with other weights
"""

DATA_FORMS = """\
data forms (--data):
  synthfacs[:N]                    built-in faces with known AUs (no download)
  ckplus:PATH  ckplus6:PATH        CK+ (FACS files give the AU labels)
  tfd:PATH[#FOLD]  fer2013:PATH    TFD .mat / FER2013 csv (no AU labels)
  folder:PATH --au-csv FILE        your images + OpenFace / py-feat AU csv
"""


def epilog(example: str, *sections: str) -> str:
    """A help epilog: the reference sections, then ``example:`` with the command lines indented."""
    lines = [section.rstrip("\n") for section in sections]
    body = "\n".join(f"  {line}" if line else "" for line in example.strip("\n").splitlines())
    return "\n\n".join([*lines, f"example:\n{body}"]) + "\n"


def command(
    subparsers: argparse._SubParsersAction, name: str, *, help: str, description: str, example: str, sections: tuple[str, ...] = ()
) -> argparse.ArgumentParser:
    """A subcommand whose help keeps the layout of its description and epilog."""
    return subparsers.add_parser(
        name, help=help, description=description, epilog=epilog(example, *sections),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from err
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from err
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, only results and errors")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default: cpu)")


def add_seed(parser: argparse.ArgumentParser, what: str = "runs are reproducible") -> None:
    parser.add_argument("--seed", type=non_negative_int, default=0, help=f"random seed; {what} (default: 0)")


def add_model_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--model`` and ``--checkpoint``, resolved by :func:`load_model` (every form of MODEL_FORMS)."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", required=required, help="zoo name, model folder, timm:NAME or module:factory")
    group.add_argument("--checkpoint", help="safetensors weights for timm:/module: models, or to replace a zoo model's")


def add_data_options(
    parser: argparse.ArgumentParser, *, required: bool = True, au_csv: bool = True, stream: bool = True
) -> None:
    """``--data`` (a data spec, see DATA_FORMS), where AU labels are used ``--au-csv``, and
    ``--stream`` / ``--workers`` where the command reads its data in one streaming pass."""
    group = parser.add_argument_group("data")
    group.add_argument("--data", required=required, help="synthfacs[:N], ckplus:PATH, tfd:PATH, fer2013:PATH, folder:PATH")
    if au_csv:
        group.add_argument("--au-csv", help="AU labels (OpenFace 2.0 or py-feat csv, or a folder of them) for folder: data")
    if not stream:
        return
    group.add_argument("--stream", action="store_true",
                       help="ckplus:/folder: data: decode, detect and crop per image in worker processes "
                            "(memory flat in the number of images; crops cached per file) instead of all up front")
    group.add_argument("--workers", type=non_negative_int, default=None, metavar="N",
                       help="worker processes that decode and crop streamed images (default: the usable cores, at most 8)")


def add_filters(parser: argparse.ArgumentParser, what: str) -> None:
    """``--filters``: a list of filter indices, parsed by :func:`parse_filters`."""
    parser.add_argument("--filters", metavar="LIST", help=f"filter indices such as 0-15 or 3,17,20-23; {what}")


def add_featured(parser: argparse.ArgumentParser, default: int, what: str) -> None:
    """``--featured K``: how many filters the figures and tables show, the most informative first."""
    parser.add_argument("--featured", type=positive_int, default=default, metavar="K",
                        help=f"{what} (default: {default})")  # fmt: skip


def parse_filters(text: str | None) -> list[int] | None:
    """``"3,17,20-23"`` -> ``[3, 17, 20, 21, 22, 23]``; ``None`` or ``"all"`` -> ``None``.

    Examples::

        >>> parse_filters("3,5-7")
        [3, 5, 6, 7]
    """
    if text is None or text.strip().lower() == "all":
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                out.extend(range(low, high + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"--filters {text!r} is not a list like '3,17,20-23' (or 'all').") from None
    if any(f < 0 for f in out):
        raise ConfigError(f"--filters {text!r} holds a negative index; filters count from 0.")
    return out


def load_model(args: argparse.Namespace) -> nn.Module:
    """The model ``--model`` / ``--checkpoint`` name, in eval mode on ``--device``."""
    from captum_fau.zoo.resolve import load_model_spec

    return load_model_spec(args.model, checkpoint=args.checkpoint, device=getattr(args, "device", "cpu"))


def load_data(args: argparse.Namespace, spec: str | None = None) -> Any:
    """The FaceSet ``--data`` (or ``spec``) names, with ``--au-csv`` and ``--seed`` where the command has them."""
    from captum_fau.data.spec import load_data_spec

    return load_data_spec(
        spec or args.data, au_csv=getattr(args, "au_csv", None), seed=getattr(args, "seed", 0),
        progress=not getattr(args, "quiet", False), lazy=getattr(args, "stream", False),
        workers=getattr(args, "workers", None),
    )  # fmt: skip


__all__ = [
    "DATA_FORMS",
    "MODEL_FORMS",
    "RULES",
    "add_data_options",
    "add_device",
    "add_featured",
    "add_filters",
    "add_model_options",
    "add_quiet",
    "add_seed",
    "command",
    "epilog",
    "load_data",
    "load_model",
    "non_negative_int",
    "parse_filters",
    "positive_int",
]
