"""captum-fau reproduce: the paper's Tables 1-3 on your copy of CK+ / TFD, and the zoo models they give."""

from __future__ import annotations

import argparse

from captum_fau.cli import _options
from captum_fau.cli.train import VARIANTS, add_fc4_init_argument

EXAMPLE = """\
captum-fau reproduce --ckplus /data/CK+ --tfd /data/TFD_96x96.mat --device cuda --out runs/paper
captum-fau reproduce --tfd /data/TFD_96x96.mat --variants +AD --folds 0 --iterations 2000
"""


def _run(args: argparse.Namespace) -> int:
    from captum_fau.train.reproduce import reproduce_paper
    from captum_fau.train.trainer import TrainConfig

    config = TrainConfig(
        iterations=args.iterations, batch_size=args.batch_size, checkpoint_every=args.checkpoint_every,
        selection=args.selection, seed=args.seed, device=args.device, bf16=args.bf16, fc4_init=args.fc4_init,
    )  # fmt: skip
    reproduce_paper(config, ckplus=args.ckplus, tfd=args.tfd, out=args.out, zoo_dir=args.zoo, variants=args.variants,
                    folds=args.folds, progress=not args.quiet)  # fmt: skip
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = _options.command(
        subparsers, "reproduce", help="train the paper's Tables 1-3 on CK+ / TFD and export the zoo models",
        description=(
            "Every ablation row (plain, +D, +A, +AD) on every fold of the paper's protocols with the paper's recipe\n"
            "(31,000 SGD iterations), the tables in OUT/tables/, and the best +AD model of each protocol in the user\n"
            "zoo (CAPTUM_FAU_ZOO, else $XDG_DATA_HOME/captum-fau/zoo), where zoo.load('zerobias-ckplus-8class')\n"
            "finds it offline. A GPU is needed for the full recipe (hours on an H100; months on a CPU)."
        ),
        example=EXAMPLE,
    )  # fmt: skip
    p.add_argument("--ckplus", help="CK+ root (cohn-kanade-images/, Emotion/, FACS/): protocols ckplus8 and ckplus6")
    p.add_argument("--tfd", help="TFD_96x96.mat or its folder: protocol tfd")
    p.add_argument(
        "--out", type=_options.folder, default="reproduction", help="tables and run folders (default: reproduction/)"
    )
    p.add_argument(
        "--zoo", default=None, help="where the zoo folders go (default: the user zoo that zoo.load searches)"
    )
    _options.add_device(p)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CUDA")
    p.add_argument(
        "--iterations", type=_options.positive_int, default=31_000, help="SGD iterations per run (default: 31000)"
    )
    p.add_argument(
        "--checkpoint-every", type=_options.positive_int, default=1_000, help="iterations between checkpoints"
    )
    p.add_argument("--batch-size", type=_options.positive_int, default=64, help="images per SGD step (default: 64)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="ablation rows")
    p.add_argument("--folds", type=_options.non_negative_int, nargs="+", help="only these folds (default: all)")
    p.add_argument(
        "--selection",
        default="valid",
        choices=["valid", "test"],
        help="valid (default) or test: the reference's optimistic checkpoint choice, labelled as such",
    )
    _options.add_seed(p, "each run derives its own seed from it")
    add_fc4_init_argument(p)
    _options.add_quiet(p)
    p.set_defaults(handler=_run)


__all__ = ["register"]
