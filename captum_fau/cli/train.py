"""captum-fau train (the paper's recipe and protocols) and captum-fau evaluate (results tables)."""

from __future__ import annotations

import argparse
import sys
import json
import shutil
from pathlib import Path
from typing import Any

from captum_fau.cli import _options, _say
from captum_fau.errors import ConfigError, DatasetError

#: Dataset kind of a spec -> protocol.
SPEC_PROTOCOLS: dict[str, str] = {
    "synthfacs": "synthfacs",
    "ckplus": "ckplus8",
    "ckplus8": "ckplus8",
    "ckplus6": "ckplus6",
    "tfd": "tfd",
}


#: Training variants and checkpoint selections (the same keys as captum_fau.train.protocols.ABLATIONS
#: and captum_fau.train.trainer.SELECTIONS, which import torch).
VARIANTS: tuple[str, ...] = ("plain", "+D", "+A", "+AD")
SELECTIONS: tuple[str, ...] = ("valid", "test", "last")
#: fc4 initialisations (captum_fau.models.zerobias.FC4_INIT_CHOICES).
FC4_INITS: tuple[str, ...] = ("fan_in", "reference")


def add_fc4_init_argument(parser: argparse.ArgumentParser) -> None:
    """``--fc4-init {fan_in,reference}``, the ``fc4_init`` of the zero-bias CNN (also used by reproduce_paper.py)."""
    parser.add_argument(
        "--fc4-init", choices=FC4_INITS, default="fan_in",
        help="fc4 weight init: fan_in (std k/sqrt(1024), the default) or reference (std k/256, the reference "
        "code's fan-in that also counted the batch of 64)",
    )  # fmt: skip


TRAIN_EXAMPLE = """\
captum-fau train --data synthfacs:2000 --out runs/synth --iterations 3000
captum-fau train --data ckplus:/data/CK+ --all-variants --out runs/ckplus8 --device cuda
"""

EVALUATE_EXAMPLE = """\
captum-fau evaluate runs/ckplus8                    the table of a finished train run
captum-fau evaluate --model zerobias-synthfacs-8class --data synthfacs:500
captum-fau evaluate --model timm:resnet18 --checkpoint my.safetensors --data fer2013:fer2013.csv
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add train and evaluate to the top-level parser."""
    p = _options.command(
        subparsers, "train", help="train zero-bias CNNs with the paper's recipe and protocols",
        description=(
            "Train with the paper's recipe (SGD lr 0.01, momentum 0.9, weight decay 1e-5, batch 64 with\n"
            "replacement, 31,000 iterations) on a protocol's folds, for one or more ablation variants.\n"
            "Writes one run folder per VARIANT/fold_N, results.json and results.md (the paper's table\n"
            "layout); a single-variant single-fold run also writes its model in Hub format into --out.\n"
            "Rerun the same command to resume an interrupted run."
        ),
        example=TRAIN_EXAMPLE,
    )  # fmt: skip
    _options.add_data_options(p, au_csv=False)
    p.add_argument(
        "--out", type=_options.folder, required=True, help="output folder (run folders, results.json, results.md)"
    )
    p.add_argument("--variant", dest="variants", action="append", choices=VARIANTS,
                   help="ablation row(s) to train; repeat for several (default: +AD)")  # fmt: skip
    p.add_argument("--all-variants", action="store_true", help="train plain, +D, +A and +AD (the paper's tables)")
    p.add_argument("--folds", type=_options.non_negative_int, nargs="+", help="test folds to run (default: all)")
    p.add_argument("--n-folds", type=_options.positive_int, help="number of subject folds (CK+: 10, SynthFACS: 5)")
    p.add_argument(
        "--iterations", type=_options.positive_int, default=31_000, help="SGD steps per run (default: 31000)"
    )
    p.add_argument("--batch-size", type=_options.positive_int, default=64, help="images per step (default: 64)")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (default: 0.01)")
    p.add_argument("--checkpoint-every", type=_options.positive_int, default=1_000,
                   help="iterations between checkpoints (default: 1000)")  # fmt: skip
    p.add_argument(
        "--selection", choices=SELECTIONS, default="valid",
        help="checkpoint choice: best on the validation fold (default), the last one, or best on the TEST "
        "fold (the reference code's optimistic protocol, for comparison only)",
    )  # fmt: skip
    add_fc4_init_argument(p)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds checkpoints")
    _options.add_quiet(p)
    _options.add_device(p)
    _options.add_seed(p, "seeds data rendering, initialisation and sampling")
    p.set_defaults(handler=run_train)

    e = _options.command(
        subparsers, "evaluate", help="print a results table, or evaluate a model on a dataset",
        description=(
            "Print the paper-style table of a results.json (or of a train output folder), or evaluate\n"
            "--model on the labelled images of --data: accuracy and confusion matrix."
        ),
        example=EVALUATE_EXAMPLE, sections=(_options.MODEL_FORMS, _options.DATA_FORMS),
    )  # fmt: skip
    e.add_argument("results", nargs="?", help="results.json or a captum-fau train output folder")
    _options.add_model_options(e, required=False)
    _options.add_data_options(e, required=False, au_csv=False)
    e.add_argument("--out", help="write the table (Markdown) here; JSON next to it")
    e.add_argument("--variant", help="variant whose confusion matrix to show (default: the best)")
    _options.add_quiet(e)
    _options.add_device(e)
    _options.add_seed(e, "seeds data rendering")
    e.set_defaults(handler=run_evaluate)


def _protocol_of(spec: str) -> str:
    from captum_fau.data.spec import parse_data_spec

    kind, _ = parse_data_spec(spec)
    if kind not in SPEC_PROTOCOLS:
        raise DatasetError(
            f"`captum-fau train` has no protocol for {kind!r} data; use one of "
            f"{sorted(SPEC_PROTOCOLS)} (e.g. --data synthfacs:2000 or --data ckplus:PATH)."
        )
    return SPEC_PROTOCOLS[kind]


def run_train(args: argparse.Namespace) -> int:
    from captum_fau._utils.io import atomic_write_text
    from captum_fau.train.protocols import run_protocol
    from captum_fau.train.trainer import TrainConfig, resolve_device

    resolve_device(args.device)
    protocol = _protocol_of(args.data)
    variants = list(VARIANTS) if args.all_variants else (args.variants or ["+AD"])
    config = TrainConfig(
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        selection=args.selection,
        seed=args.seed,
        device=args.device,
        bf16=args.bf16,
        fc4_init=args.fc4_init,
    )
    out = Path(args.out)
    if args.no_resume and out.exists():
        for run in out.glob("*/fold_*"):
            shutil.rmtree(run)
    data = _options.load_data(args, in_memory=True)
    table = run_protocol(
        protocol,
        data,
        config,
        variants=variants,
        n_folds=args.n_folds,
        folds=args.folds,
        out_dir=out,
        progress=not args.quiet,
    )
    markdown = table.to_markdown()
    atomic_write_text(out / "results.md", markdown)
    if len(table.folds) == 1:
        only = table.folds[0]
        run_dir = out / only.variant.replace("+", "plus_") / f"fold_{only.fold}" / "model"
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(run_dir / name, out / name)
        metrics = {"protocol": protocol, "data": args.data, **only.to_dict(), "recipe": config.to_dict()}
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    print(markdown)
    return 0


def _evaluate_model(args: argparse.Namespace) -> Any:
    """One-fold ResultsTable of --model on --data."""
    from captum_fau.train.evaluate import ResultsTable, evaluate_model, model_label

    model = _options.load_model(args)
    data = _options.load_data(args, in_memory=True, model=model)
    from captum_fau.inputs.resolve import model_inputs

    explicit, flags = _options.input_spec_args(args)
    _, spec, notes = model_inputs(model, data, explicit or None, flags)
    for note in notes:  # once per run, on stdout beside the command's results
        _say.note(note, file=sys.stdout)
    fold = evaluate_model(model, data, device=args.device, class_names=getattr(args, "class_names", None),
                          input_spec=spec, variant="plain")  # fmt: skip
    for note in fold.extra.get("notes", []):
        _say.note(note, file=sys.stdout, prefix="Note: ")
    return ResultsTable(title=f"{args.model} on {args.data}", class_names=fold.extra["class_names"], folds=[fold],
                        meta={"mapping": fold.extra["mapping"], "method": model_label(model, args.model)})  # fmt: skip


def run_evaluate(args: argparse.Namespace) -> int:
    from captum_fau._utils.io import atomic_write_text
    from captum_fau.train.evaluate import ResultsTable

    if args.results and (args.model or args.data):
        raise ConfigError("Give either a results file or --model with --data, not both.")
    if args.results:
        path = Path(args.results)
        if path.is_dir():
            path = path / "results.json"
        table = ResultsTable.load(path)
    elif args.model and args.data:
        table = _evaluate_model(args)
    else:
        raise ConfigError("Nothing to evaluate: give a results.json / run folder, or --model MODEL --data SPEC.")
    markdown = table.to_markdown(args.variant)
    print(markdown)
    if args.out:
        out = Path(args.out)
        atomic_write_text(out, markdown)
        table.save(out.with_suffix(".json"))
    return 0


__all__ = [
    "FC4_INITS",
    "add_fc4_init_argument",
    "SELECTIONS",
    "SPEC_PROTOCOLS",
    "VARIANTS",
    "register",
    "run_evaluate",
    "run_train",
]
