"""``captum-fau train`` and ``captum-fau evaluate``.

``train`` runs a protocol (folds x ablation variants) on a dataset spec and
writes, under ``--out``: one run folder per ``VARIANT/fold_N`` (checkpoints,
``training_log.jsonl``, the selected model in Hub format under ``model/``),
``results.json`` and ``results.md`` (the paper's table layout). A run with a
single variant and a single fold also writes its model in Hub format directly
into ``--out`` (``config.json``, ``model.safetensors``, ``metrics.json``).
Rerunning the same command resumes interrupted runs from their last
checkpoint. Each (variant, fold) run trains from its own seed, derived from
``--seed`` (:func:`captum_fau.train.protocols.run_seed`) and recorded in
``results.json``. ``--fc4-init reference`` reproduces the reference code's
``fc4`` initialisation (std ``k / 256``: its fan-in counted the batch of 64).

``evaluate`` prints the table of a ``results.json`` (or of a run folder), or
evaluates a saved model on a dataset (``--model DIR --data SPEC``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from captum_fau.errors import ConfigError, DatasetError

#: Dataset kind of a spec -> protocol.
SPEC_PROTOCOLS: dict[str, str] = {
    "synthfacs": "synthfacs",
    "ckplus": "ckplus8",
    "ckplus8": "ckplus8",
    "ckplus6": "ckplus6",
    "tfd": "tfd",
}


def add_fc4_init_argument(parser: argparse.ArgumentParser) -> None:
    """``--fc4-init {fan_in,reference}`` (:class:`~captum_fau.models.zerobias.ZeroBiasCNN`'s ``fc4_init``)."""
    from captum_fau.models.zerobias import FC4_INIT_CHOICES

    parser.add_argument(
        "--fc4-init",
        choices=list(FC4_INIT_CHOICES),
        default="fan_in",
        help="fc4 weight init: fan_in (std k/sqrt(1024), the default) or reference (std k/256, the reference "
        "code's fan-in that also counted the batch of 64)",
    )


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``train`` and ``evaluate`` to the top-level parser."""
    from captum_fau.train.protocols import ABLATIONS
    from captum_fau.train.trainer import SELECTIONS

    p = subparsers.add_parser(
        "train",
        parents=[common],
        help="train zero-bias CNNs with the paper's recipe and protocols",
        description=(
            "Train with the paper's recipe (SGD lr 0.01, momentum 0.9, weight decay 1e-5, batch 64 with "
            "replacement, 31,000 iterations) on a protocol's folds, for one or more ablation variants. "
            "Rerun the same command to resume an interrupted run."
        ),
    )
    p.add_argument("--data", required=True, help="dataset spec: synthfacs[:N], ckplus:PATH, ckplus6:PATH, tfd:PATH")
    p.add_argument("--out", required=True, help="output folder (run folders, results.json, results.md)")
    p.add_argument(
        "--variant",
        dest="variants",
        action="append",
        choices=list(ABLATIONS),
        help="ablation row(s) to train; repeat for several (default: +AD)",
    )
    p.add_argument("--all-variants", action="store_true", help="train plain, +D, +A and +AD (the paper's tables)")
    p.add_argument("--folds", type=int, nargs="+", help="test folds to run (default: all)")
    p.add_argument("--n-folds", type=int, help="number of subject folds (CK+: 10, SynthFACS: 5)")
    p.add_argument("--iterations", type=int, default=31_000, help="SGD steps per run (default: 31000)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default: 64)")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (default: 0.01)")
    p.add_argument("--checkpoint-every", type=int, default=1_000, help="iterations between checkpoints (default: 1000)")
    p.add_argument(
        "--selection",
        choices=list(SELECTIONS),
        default="valid",
        help="checkpoint choice: best on the validation fold (default), the last one, or best on the TEST "
        "fold (the reference code's optimistic protocol, for comparison only)",
    )
    add_fc4_init_argument(p)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds checkpoints")
    p.set_defaults(handler=run_train)

    e = subparsers.add_parser(
        "evaluate",
        parents=[common],
        help="print a results table, or evaluate a saved model on a dataset",
        description="Print the paper-style table of a results.json (or run folder), or evaluate --model on --data.",
    )
    e.add_argument("results", nargs="?", help="results.json or a `captum-fau train` output folder")
    e.add_argument("--model", help="a Hub-format model folder (config.json + model.safetensors) or a zoo name")
    e.add_argument("--data", help="dataset spec to evaluate --model on")
    e.add_argument("--out", help="write the table (Markdown) here; JSON next to it")
    e.add_argument("--variant", help="variant whose confusion matrix to show (default: the best)")
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
    from captum_fau.data.spec import load_data_spec
    from captum_fau.train.protocols import ABLATIONS, run_protocol
    from captum_fau.train.trainer import TrainConfig, resolve_device

    resolve_device(args.device)
    protocol = _protocol_of(args.data)
    variants = list(ABLATIONS) if args.all_variants else (args.variants or ["+AD"])
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
    data = load_data_spec(args.data, seed=args.seed, progress=not args.quiet)
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
    (out / "results.md").write_text(markdown)
    if len(table.folds) == 1:
        only = table.folds[0]
        run_dir = out / only.variant.replace("+", "plus_") / f"fold_{only.fold}" / "model"
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(run_dir / name, out / name)
        metrics = {"protocol": protocol, "data": args.data, **only.to_dict(), "recipe": config.to_dict()}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print(markdown)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from captum_fau.train.evaluate import ResultsTable, evaluate_model

    if args.results and (args.model or args.data):
        raise ConfigError("Give either a results file or --model with --data, not both.")
    if args.results:
        path = Path(args.results)
        if path.is_dir():
            path = path / "results.json"
        table = ResultsTable.load(path)
    elif args.model and args.data:
        from captum_fau.data.spec import load_data_spec
        from captum_fau import zoo

        model_path = Path(args.model)
        if model_path.exists():
            from captum_fau.models.zerobias import ZeroBiasCNN

            if not (model_path / "model.safetensors").is_file():
                raise DatasetError(f"{model_path} holds no model.safetensors; point --model at a model folder.")
            model = ZeroBiasCNN.from_pretrained(str(model_path))
        else:
            model = zoo.load(args.model)
        data = load_data_spec(args.data, seed=args.seed, progress=not args.quiet)
        if len(data.class_names) != model.num_classes:
            raise DatasetError(
                f"The model has {model.num_classes} classes but {args.data} has {len(data.class_names)}; "
                "evaluate on a dataset with the model's classes."
            )
        fold = evaluate_model(model.to(args.device), data, device=args.device)
        table = ResultsTable(title=f"{args.model} on {args.data}", class_names=data.class_names, folds=[fold])
    else:
        raise ConfigError("Nothing to evaluate: give a results.json / run folder, or --model DIR --data SPEC.")
    markdown = table.to_markdown(args.variant)
    print(markdown)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown)
        table.save(out.with_suffix(".json"))
    return 0


__all__ = ["SPEC_PROTOCOLS", "add_fc4_init_argument", "register", "run_evaluate", "run_train"]
