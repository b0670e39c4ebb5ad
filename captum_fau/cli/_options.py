"""Options shared by the commands, each with one name and one meaning everywhere.

Nothing here imports torch or the analysis code: building the parser must stay fast.
The model and data helpers import what they need when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Callable

from captum_fau.cli import _say
from captum_fau.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

from captum_fau.attr.rules import RULES, get_rule  # the registry imports no torch

MODEL_FORMS = """\
model forms (--model):
  zerobias-synthfacs-8class        a zoo name (captum-fau zoo list)
  path/to/folder                   config.json + model.safetensors (save_pretrained, captum-fau train)
  timm:resnet18 --checkpoint W     a timm architecture with your safetensors weights
  my_pkg.models:build              module:factory (or file.py:factory) returning any nn.Module;
                                   this runs your code: the module is imported (from the
                                   current directory, as with python -m); name only code you trust
  NAME --checkpoint W              a zoo architecture (NAME) with other weights
"""

DATA_FORMS = """\
data forms (--data):
  synthfacs[:N]                    built-in faces with known AUs (no download)
  ckplus:PATH  ckplus6:PATH        CK+ (FACS files give the AU labels)
  tfd:PATH[#FOLD]  fer2013:PATH    TFD .mat / FER2013 csv (no AU labels)
  folder:PATH --au-csv FILE        your images + OpenFace / py-feat AU csv
                                   (--face-crop none for images that are already face crops)
"""

#: ``--face-crop`` choices (see captum_fau.data.folder.FACE_CROPS).
FACE_CROPS: tuple[str, ...] = ("auto", "haar", "none")


def epilog(example: str, *sections: str) -> str:
    """A help epilog: the reference sections, then ``example:`` with the command lines indented."""
    lines = [section.rstrip("\n") for section in sections]
    body = "\n".join(f"  {line}" if line else "" for line in example.strip("\n").splitlines())
    return "\n\n".join([*lines, f"example:\n{body}"]) + "\n"


def command(
    subparsers: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    example: str,
    sections: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """A subcommand whose help keeps the layout of its description and epilog."""
    return subparsers.add_parser(
        name, help=help, description=description, epilog=epilog(example, *sections),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def _number(text: str, kind: type, ok: Callable[[float], bool], rule: str) -> Any:
    """``text`` as ``kind`` (int or float) when ``ok`` holds for it; otherwise argparse's error, saying ``rule``."""
    try:
        value = kind(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from err
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v > 0, "a positive integer")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, lambda v: 0 <= v < float("inf"), "a number of seconds >= 0")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "0 or more")


def folder(text: str) -> str:
    """argparse type: a non-empty folder path (an empty ``--out ''`` would write into the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; name a folder, e.g. --out my-report (use --out . for the "
                                         "current folder)")  # fmt: skip
    return text


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, only results and errors")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default: cpu)")


def add_seed(parser: argparse.ArgumentParser, what: str = "runs are reproducible") -> None:
    parser.add_argument("--seed", type=non_negative_int, default=0, help=f"random seed; {what} (default: 0)")


def add_stratify(parser: argparse.ArgumentParser) -> None:
    """``--stratify LABEL``: FAU-KL tests within the levels of a per-image label (e.g. emotion)."""
    parser.add_argument(
        "--stratify", default=None, metavar="LABEL",
        help="also test each filter-AU association within the levels of this per-image label, e.g. 'emotion' "
        "(AUs are confounded with the posed emotion in CK+): association beyond what the label explains",
    )  # fmt: skip


def add_statistics_options(parser: argparse.ArgumentParser) -> None:
    """The FAU-KL statistics flags shared by fau-kl, analyze and demo (:func:`statistics_options` reads them):
    ``--bins``, ``--binning``, ``--smoothing``, ``--statistic``, ``--permutations``, ``--max-permutations``,
    ``--intervals/--no-intervals``, ``--stratify`` and the deprecated ``--bootstrap``."""
    parser.add_argument("--bins", type=positive_int, default=10, help="histogram bins per filter (default: 10)")
    parser.add_argument("--binning", choices=("uniform", "quantile"), default="uniform",
                        help="histogram bin edges: equal width or equal counts (default: uniform)")  # fmt: skip
    parser.add_argument("--smoothing", type=float, default=0.5, help="pseudo-count per bin (default: 0.5)")
    parser.add_argument("--statistic", choices=("auroc", "kl"), default="auroc",
                        help="permutation test statistic (default: auroc)")  # fmt: skip
    parser.add_argument("--permutations", type=non_negative_int, default=1000,
                        help="label permutations every filter-AU pair gets; pairs near the floor get more "
                             "automatically (default: 1000); 0 skips the tests")  # fmt: skip
    parser.add_argument("--max-permutations", type=non_negative_int, default=None, metavar="N",
                        help="permutations a pair whose p sits at the floor is refined to, only for those pairs "
                             "(default: 2 x pairs / 0.05, so that one association can reach q < 0.025); "
                             "0: no refinement")  # fmt: skip
    parser.add_argument("--intervals", action=argparse.BooleanOptionalAction, default=True,
                        help="clustered AUROC intervals (delete-one-subject jackknife; analytic, no resampling) "
                             "(default: on)")  # fmt: skip
    parser.add_argument("--bootstrap", type=non_negative_int, default=None, metavar="N",
                        help="deprecated (the interval is analytic and never resampled): 0 means --no-intervals, "
                             "other values change nothing; removed in the next release")  # fmt: skip
    add_stratify(parser)


def statistics_options(args: argparse.Namespace) -> Any:
    """The :class:`~captum_fau.concept.options.StatisticsOptions` the flags of :func:`add_statistics_options`
    (and ``--seed``) describe."""
    from captum_fau.concept.options import StatisticsOptions

    return StatisticsOptions(
        bins=args.bins, binning=args.binning, smoothing=args.smoothing, n_permutations=args.permutations,
        max_permutations=args.max_permutations, intervals=intervals_requested(args), test_statistic=args.statistic,
        seed=args.seed, stratify=args.stratify,
    )  # fmt: skip


def intervals_requested(args: argparse.Namespace) -> bool:
    """Whether the AUROC intervals were asked for; notes the deprecated ``--bootstrap`` on stderr."""
    import sys

    if getattr(args, "bootstrap", None) is not None:
        print("note: --bootstrap is deprecated: the AUROC interval is an analytic cluster jackknife, not a bootstrap; "
              "use --no-intervals instead of --bootstrap 0 (other values change nothing).", file=sys.stderr)  # fmt: skip
        if args.bootstrap == 0:
            return False
    return bool(getattr(args, "intervals", True))


def add_sanity_check(parser: argparse.ArgumentParser, default: bool = True) -> None:
    """``--sanity-check`` / ``--no-sanity-check`` and ``--sanity-filters K``: the model-randomisation check of
    the reconstructions (TopNDeconv.sanity_check)."""
    parser.add_argument("--sanity-check", action=argparse.BooleanOptionalAction, default=default,
                        help="recompute the top-3 reconstructions of --sanity-filters filters with randomised weights "
                             "(cascading from the layer down) and report their similarity to the trained ones (SSIM, "
                             f"Spearman); writes sanity.json (default: {'on' if default else 'off'})")  # fmt: skip
    parser.add_argument("--sanity-filters", type=non_negative_int, default=32, metavar="K",
                        help="filters the sanity check looks at: the featured ones first, then a seeded sample of the "
                             "other live filters; 0: every filter (slow on wide layers) (default: 32)")  # fmt: skip


#: ``--probe-precision`` choices (captum_fau.probes._model.PRECISIONS; kept here so the parser imports no torch).
PROBE_PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")


def add_probe_options(parser: argparse.ArgumentParser, *, default: bool, faces: int, prototypes: bool = True,
                      images: int = 2000) -> None:  # fmt: skip
    """``--causal`` / ``--importance`` (each with ``--no-``), ``--probe-faces K``, ``--probe-prototypes``,
    ``--probe-precision`` and ``--importance-images N``: the causal probes of analyze (captum_fau.probe_steps)."""
    on = "on" if default else "off"
    parser.add_argument("--causal", action=argparse.BooleanOptionalAction, default=default,
                        help="counterfactual AU probe: SynthFACS faces rendered at the model's input spec, each AU "
                             "swept 0..5 with the rest fixed; per filter the AU with the largest significant effect, "
                             "beside FAU-KL's; AU-region occlusion on data with AU regions; writes causal.npz "
                             f"(default: {on})")  # fmt: skip
    parser.add_argument("--importance", action=argparse.BooleanOptionalAction, default=default,
                        help="ablate every filter of the layer and rank the filters per emotion by the drop in the "
                             "true class's log-probability (data with emotion labels the model's classes name); then "
                             f"the EMFACS table; writes importance.npz and facs.json (default: {on})")  # fmt: skip
    parser.add_argument("--probe-faces", type=positive_int, default=faces, metavar="K",
                        help=f"faces (identities x poses x lighting) of the AU probe, the units of its tests, >= 2 "
                             f"(default: {faces})")  # fmt: skip
    parser.add_argument("--probe-prototypes", action=argparse.BooleanOptionalAction, default=prototypes,
                        help="also sweep each AU on the emotion prototypes containing it (about 2.75x the renders of "
                             f"the neutral face alone) (default: {'on' if prototypes else 'off'})")  # fmt: skip
    parser.add_argument("--probe-precision", choices=PROBE_PRECISIONS, default="float32",
                        help="precision of the AU probe's forward: bfloat16 is 3-4x faster on CPUs with BF16, maxima "
                             "within ~0.5%% of their range (default: float32)")  # fmt: skip
    parser.add_argument(
        "--importance-images",
        type=non_negative_int,
        default=images,
        metavar="N",
        help=f"images the ablation reads at most (a seeded sample); 0: all (default: {images})",
    )


def probe_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The AnalysisConfig fields of :func:`add_probe_options` (``causal``, ``importance``, ``probe_options``,
    ``importance_images``); unused probe flags are said to be unused."""
    from captum_fau.probes import ProbeOptions

    causal, importance = bool(getattr(args, "causal", False)), bool(getattr(args, "importance", False))
    if not causal:
        _say.unused("--probe-faces", "without --causal")
        _say.unused("--probe-precision", "without --causal")
        _say.unused("--probe-prototypes", "without --causal")
    if not importance:
        _say.unused("--importance-images", "without --importance")
    if getattr(args, "probe_faces", 64) < 2:
        raise ConfigError(
            f"--probe-faces {args.probe_faces}: the AU probe's faces are the units of its tests; pass "
            "--probe-faces 2 or more (e.g. 16)."
        )
    options = ProbeOptions(n_faces=getattr(args, "probe_faces", 64), seed=getattr(args, "seed", 0),
                           precision=getattr(args, "probe_precision", "float32"),
                           prototypes=getattr(args, "probe_prototypes", True))  # fmt: skip
    return {
        "causal": causal,
        "importance": importance,
        "probe_options": options,
        "importance_images": getattr(args, "importance_images", 2000),
    }


def add_model_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--model`` and ``--checkpoint``, resolved by :func:`load_model` (every form of MODEL_FORMS)."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", required=required,
                       help="zoo name, model folder, timm:NAME or module:factory (module:factory imports and runs "
                       "that Python code: name only code you trust)")  # fmt: skip
    group.add_argument("--checkpoint", help="safetensors weights for timm:/module: models, or to replace a zoo model's")
    group.add_argument("--class-names", metavar="A,B,...",
                       help="the model's class names in output order, e.g. angry,disgust,fear,happy,sad,surprise,neutral "
                            "(default: the model's config); matched to the data's emotions by name, never by index")  # fmt: skip
    add_input_options(parser)


#: The input-spec flags: (flag, InputSpec field, metavar, help). Names as in inputs.spec.CLI_FLAGS.
INPUT_FLAGS: tuple[tuple[str, str, str, str], ...] = (
    ("--input-size", "size", "H[xW]", "input size the model was trained at, e.g. 48 or 48x64"),
    ("--channels", "channels", "{1,3}", "input channels: 1 gray, 3 RGB (data are converted)"),
    ("--mean", "mean", "M[,M,M]", "per-channel mean subtracted after the pixel range, e.g. 0.5 or 0.485,0.456,0.406"),
    ("--std", "std", "S[,S,S]", "per-channel std divided by, e.g. 0.5 or 0.229,0.224,0.225"),
    ("--pixel-range", "pixel_range", "LO-HI", "pixels [0,1] are mapped onto this range first: 0-1, 0-255, -1-1"),
    ("--interpolation", "interpolation", "MODE", "resizing: bilinear, bicubic, nearest, area"),
    ("--local-mean", "local_mean", "K", "subtract a KxK local mean last (the zero-bias CNN: 5); 0 disables it"),
    ("--local-mean-padding", "local_mean_padding", "{zeros,replicate}", "border handling of the local mean"),
)


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """The input-spec flags, one group: what the model was trained on. Each flag given wins over
    what the model declares (zero-bias config, timm pretrained_cfg, preprocessor_config.json), with a note."""
    group = parser.add_argument_group(
        "model input (default: what the model declares, else a probe; flags win, with a note)"
    )
    for flag, field, metavar, text in INPUT_FLAGS:
        group.add_argument(flag, dest=f"input_{field}", metavar=metavar, default=None, help=text)


def input_spec_args(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, str]]:
    """``(explicit fields, their flags)`` of the input-spec flags given on the command line."""
    given = {field: getattr(args, f"input_{field}", None) for _, field, _, _ in INPUT_FLAGS}
    explicit = {field: value for field, value in given.items() if value is not None}
    flags = {field: flag for flag, field, _, _ in INPUT_FLAGS if field in explicit}
    return explicit, flags


def model_inputs(args: argparse.Namespace, model: nn.Module, data: Any) -> Any:
    """``data`` through the model's input spec (flags first); prints the spec and its notes."""
    from captum_fau.inputs.resolve import model_inputs as wrap

    explicit, flags = input_spec_args(args)
    dataset, _, notes = wrap(model, data, explicit or None, flags)
    for note in notes:  # once per run, on stdout beside the command's results
        _say.note(note, file=sys.stdout)
    return dataset


def add_data_options(parser: argparse.ArgumentParser, *, required: bool = True, au_csv: bool = True) -> None:
    """``--data`` (a data spec, see DATA_FORMS), where AU labels are used ``--au-csv``, ``--face-crop``,
    ``--no-cache``, and ``--stream`` / ``--no-stream`` / ``--workers`` (streamed ckplus:/folder: data)."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", required=required, help="synthfacs[:N], ckplus:PATH, tfd:PATH, fer2013:PATH, folder:PATH"
    )
    if au_csv:
        group.add_argument(
            "--au-csv", help="AU labels (OpenFace 2.0 or py-feat csv, or a folder of them) for folder: data"
        )
    group.add_argument("--face-crop", choices=FACE_CROPS, default="auto",
                       help="faces in folder: images: auto (detect; keep small/square images whole when the face fills "
                            "them or none is found), haar (always detect, general settings; one item per face), none "
                            "(images are face crops already) (default: auto)")  # fmt: skip
    add_no_cache(group)
    group.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                       help="ckplus:/folder: data: find the faces once (an index pass in worker processes, cached), "
                            "then cut each face from its file when it is read, in worker processes: memory flat in "
                            "the number of images, the same items as in memory (default: stream from 20000 files "
                            "on; --no-stream keeps every crop in memory)")  # fmt: skip
    group.add_argument("--workers", type=non_negative_int, default=None, metavar="N",
                       help="worker processes that decode and crop streamed images (0: this process; default: the "
                            "usable cores shared among a torchrun host's processes, at most 8)")  # fmt: skip


def add_no_cache(parser: Any) -> None:
    """``--no-cache``: no face-crop cache (``$CAPTUM_FAU_CACHE``, else ``$XDG_CACHE_HOME/captum-fau``)."""
    parser.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the face-crop cache of ckplus:/folder: data (default: "
                        "$CAPTUM_FAU_CACHE, else $XDG_CACHE_HOME/captum-fau/preprocessed, i.e. ~/.cache/...)")  # fmt: skip


def add_filters(parser: argparse.ArgumentParser, what: str) -> None:
    """``--filters``: a list of filter indices, parsed by :func:`parse_filters`."""
    parser.add_argument("--filters", metavar="LIST", help=f"filter indices such as 0-15 or 3,17,20-23; {what}")


def add_featured(parser: argparse.ArgumentParser, default: int, what: str) -> None:
    """``--featured K``: how many filters the figures and tables show, the most informative first."""
    parser.add_argument("--featured", type=positive_int, default=default, metavar="K",
                        help=f"{what} (default: {default})")  # fmt: skip


def add_rule(parser: argparse.ArgumentParser) -> None:
    """``--rule`` and ``--relu-like``: how reconstructions are projected back to pixels."""
    described = "; ".join(f"{name}: {get_rule(name).display} ({get_rule(name).description})" for name in RULES)
    parser.add_argument("--rule", choices=RULES, default="guided",
                        help=f"back-projection rule: {described} (default: guided, as the paper)")  # fmt: skip
    parser.add_argument("--relu-like", action="store_true",
                        help="apply deconv/guided to non-ReLU activations (GELU, SiLU, clamp, ...) as if they were "
                        "ReLUs; without it such models are refused for those rules")  # fmt: skip


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
    """The model ``--model`` / ``--checkpoint`` name, in eval mode on ``--device``.

    ``--class-names`` are checked here (duplicates, empty names), before any data is read;
    a ``timm:`` architecture is built with one output per name.
    """
    from captum_fau.inputs.classes import parse_class_names
    from captum_fau.zoo.resolve import load_model_spec

    names = getattr(args, "class_names", None)
    # a timm architecture gets one output per --class-names entry (the head of your checkpoint)
    outputs = len(parse_class_names(names)) if names and args.model.strip().startswith("timm:") else None
    return load_model_spec(
        args.model, checkpoint=args.checkpoint, device=getattr(args, "device", "cpu"), num_classes=outputs
    )


def read_options(args: argparse.Namespace) -> Any:
    """The :class:`~captum_fau.data.options.ReadOptions` of ``--face-crop``, ``--no-cache``, ``--stream`` /
    ``--no-stream``, ``--workers`` and ``--quiet``, where the command has them."""
    from captum_fau.data.options import ReadOptions

    return ReadOptions(face_crop=getattr(args, "face_crop", "auto"), cache=not getattr(args, "no_cache", False),
                       lazy=getattr(args, "stream", None), workers=getattr(args, "workers", None),
                       progress=not getattr(args, "quiet", False))  # fmt: skip


def load_data(args: argparse.Namespace, spec: str | None = None, *, in_memory: bool = False,
              model: nn.Module | None = None) -> Any:  # fmt: skip
    """The FaceSet ``--data`` (or ``spec``) names, with ``--au-csv`` and ``--seed`` where the command has them.

    Streamed data (``--stream``, or a source past the threshold) come as a LazyFaceSet; ``in_memory``
    (training, which holds every image) reads its crops into a FaceSet with the workers. With ``model``,
    ``folder:`` faces are cut at the side the model's input is made from (not 96 px and enlarged).
    """
    from captum_fau.data.spec import load_data_spec, parse_data_spec

    sized = {}
    if model is not None and parse_data_spec(spec or args.data)[0] == "folder":
        from captum_fau.inputs.resolve import face_crop_side

        side = face_crop_side(model, *input_spec_args(args))
        sized = {"size": side} if side else {}
    data = load_data_spec(spec or args.data, read_options(args), au_csv=getattr(args, "au_csv", None),
                          seed=getattr(args, "seed", 0), **sized)  # fmt: skip
    materialize = getattr(data, "materialize", None)
    if in_memory and callable(materialize):
        data = materialize(progress=not getattr(args, "quiet", False))
    else:
        from captum_fau.data.lazy import stream_note

        note = stream_note(data)
        if note and not getattr(args, "quiet", False):
            _say.note(note, file=sys.stdout)
    return data


__all__ = [
    "DATA_FORMS",
    "FACE_CROPS",
    "INPUT_FLAGS",
    "MODEL_FORMS",
    "RULES",
    "add_data_options",
    "add_device",
    "add_featured",
    "add_filters",
    "add_input_options",
    "add_model_options",
    "add_no_cache",
    "add_quiet",
    "add_rule",
    "add_sanity_check",
    "add_seed",
    "add_statistics_options",
    "add_stratify",
    "command",
    "epilog",
    "load_data",
    "input_spec_args",
    "load_model",
    "model_inputs",
    "non_negative_int",
    "parse_filters",
    "positive_int",
    "read_options",
    "statistics_options",
]
