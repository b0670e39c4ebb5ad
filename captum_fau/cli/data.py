"""captum-fau data describe|synthfacs: describe a dataset, render SynthFACS sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from captum_fau.cli import _options

#: SynthFACS AU modes (the same tuple as captum_fau.data.synthfacs.MODES, which imports torch).
SYNTHFACS_MODES: tuple[str, ...] = ("prototype", "independent")


def _describe(args: argparse.Namespace) -> int:
    from captum_fau.data.describe import describe_faceset
    from captum_fau.data.spec import load_data_spec

    faces = load_data_spec(
        args.spec,
        au_csv=args.au_csv,
        size=args.size,
        progress=not args.quiet,
        face_crop=args.face_crop,
        cache=not args.no_cache,
    )
    print(describe_faceset(faces))
    return 0


def _synthfacs(args: argparse.Namespace) -> int:
    import numpy as np

    from captum_fau.data.base import CKPLUS_CLASSES
    from captum_fau.data.synthfacs import SYNTHFACS_AUS
    from captum_fau.synthfacs.writer import write_synthfacs

    stats = write_synthfacs(
        args.out, args.n, args.seed, size=args.size, mode=args.mode, n_subjects=args.n_subjects,
        masks=args.masks, progress=not args.quiet,
    )  # fmt: skip
    with np.load(Path(args.out) / "synthfacs.npz", allow_pickle=False) as data:
        emotions = data["emotions"]
        aus = data["aus"]
    per_class = ", ".join(f"{name} {int((emotions == k).sum())}" for k, name in enumerate(CKPLUS_CLASSES))
    per_au = ", ".join(f"{au} {int((aus[:, j] > 0).sum())}" for j, au in enumerate(SYNTHFACS_AUS))
    print(f"Wrote {Path(args.out) / 'synthfacs.npz'} and contact_sheet.png: {int(stats['n'])} images "
          f"{args.size}x{args.size}, {int(stats['subjects'])} subjects, mode {args.mode}, seed {args.seed}"
          f"{', with region masks' if args.masks else ''}")  # fmt: skip
    print(f"  per class: {per_class}")
    print(f"  per AU: {per_au}")
    print(f"  {stats['images_per_s']:.0f} images/s including writing ({stats['seconds']:.2f} s)")
    return 0


def _register_describe(sub: argparse._SubParsersAction) -> None:
    p = _options.command(
        sub, "describe", help="counts per class, AU, fold and subject; files skipped",
        description=(
            "What a dataset holds before you train on it: the image count and size, images per class,\n"
            "per action unit (present / coded), per fold and per subject, and what the loader skipped\n"
            "(unreadable files, faces not found, malformed labels)."
        ),
        example="captum-fau data describe ckplus:/data/CK+\ncaptum-fau data describe folder:faces/ --au-csv openface.csv",
        sections=("SPEC forms: synthfacs[:N], ckplus:PATH, ckplus6:PATH, tfd:PATH[#FOLD], fer2013:PATH, folder:PATH",),
    )  # fmt: skip
    p.add_argument("spec", metavar="SPEC", help="dataset spec, e.g. ckplus:/data/CK+ or synthfacs:500")
    p.add_argument("--au-csv", default=None, help="OpenFace / py-feat AU CSV (or folder of them) for folder: specs")
    p.add_argument(
        "--size", type=_options.positive_int, default=None, help="face side in pixels (default: the dataset's own)"
    )
    p.add_argument("--face-crop", choices=_options.FACE_CROPS, default="auto",
                   help="faces in folder: images: auto, haar (detect every face) or none (face crops already)")  # fmt: skip
    _options.add_no_cache(p)
    _options.add_quiet(p)
    p.set_defaults(handler=_describe)


def _register_synthfacs(sub: argparse._SubParsersAction) -> None:
    p = _options.command(
        sub, "synthfacs", help="render SynthFACS faces with known action units to an .npz plus a contact sheet",
        description=(
            "Render SynthFACS faces with known action units to OUT/synthfacs.npz (images, emotions, AUs,\n"
            "subjects; read it with numpy.load) plus OUT/contact_sheet.png."
        ),
        example="captum-fau data synthfacs --n 1308 --out synth/ --seed 0\ncaptum-fau data synthfacs --n 500 --mode independent --masks --out synth-masks/",
    )  # fmt: skip
    p.add_argument("--n", type=_options.positive_int, required=True, help="number of images")
    p.add_argument("--out", type=_options.folder, required=True, help="output folder (created if missing)")
    p.add_argument("--size", type=int, default=96, help="image side in pixels, 32..1024 (default: 96)")
    p.add_argument(
        "--mode",
        choices=SYNTHFACS_MODES,
        default="prototype",
        help="prototype: AUs from each emotion's EMFACS prototype; independent: AUs independent of emotion",
    )
    p.add_argument(
        "--n-subjects",
        type=_options.positive_int,
        default=None,
        help="number of subjects (default: one per 11 images, e.g. 119 for 1308)",
    )
    p.add_argument("--masks", action="store_true", help="also store per-AU region masks [N, J, H, W] (large)")
    _options.add_quiet(p)
    _options.add_seed(p, "the same seed renders the same faces")
    p.set_defaults(handler=_synthfacs)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = _options.command(
        subparsers, "data", help="render SynthFACS sets and describe datasets",
        description="Render SynthFACS sets and describe datasets.",
        example="captum-fau data describe synthfacs:500\ncaptum-fau data synthfacs --n 1308 --out synth/",
    )  # fmt: skip
    sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    _register_describe(sub)
    _register_synthfacs(sub)


__all__ = ["SYNTHFACS_MODES", "register"]
