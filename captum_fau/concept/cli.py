"""``captum-fau fau-kl``: which action unit each filter of a layer responds to (FAU-KL)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from captum_fau.errors import ConfigError


def _load_model(spec: str, device: str) -> torch.nn.Module:
    """A zoo name, or a ``.safetensors`` file / folder of trained ZeroBiasCNN weights."""
    from captum_fau import zoo

    path = Path(spec)
    if path.exists():
        return zoo.load("zerobias-synthfacs-8class", weights=path, device=device)
    return zoo.load(spec, device=device)


def _run(args: argparse.Namespace) -> int:
    from captum_fau.concept.faukl import FAUKL
    from captum_fau.data.spec import load_data_spec

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the results.")
    model = _load_model(args.model, args.device)
    faces = load_data_spec(args.data, au_csv=args.au_csv, seed=args.seed, progress=not args.quiet)
    fau = FAUKL(
        model, args.layer, bins=args.bins, binning=args.binning, smoothing=args.smoothing,
        n_permutations=args.permutations, n_bootstrap=args.bootstrap, test_statistic=args.statistic,
        seed=args.seed, batch_size=args.batch_size, device=args.device, progress=not args.quiet,
    )  # fmt: skip
    result = fau.interpret(faces)
    result.save(out / "faukl.safetensors")
    result.to_csv(out / "faukl.csv")
    result.to_json(out / "faukl.json")
    filters = list(range(min(args.filters, result.kl.shape[0])))
    fig = result.plot_bars(filters)
    fig.savefig(out / "faukl_bars.png", dpi=120)
    table = "\n\n".join(f"[{name}]\n" + result.table(filters, layer=name) for name in result.layers)
    (out / "table4.txt").write_text(table + "\n")
    print(table)
    for name, st in result.layers.items():
        for note in st.notes:
            print(f"note ({name}): {note}")
    print(f"wrote {out}/faukl.safetensors, faukl.csv, faukl.json, faukl_bars.png, table4.txt")
    return 0


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "fau-kl", parents=[common], help="FAU-KL: which AU each filter responds to, with p/q-values",
        description=__doc__,
    )  # fmt: skip
    p.add_argument("--model", required=True, help="zoo name (e.g. zerobias-synthfacs-8class) or weights file/folder")
    p.add_argument("--data", required=True, help="data spec with AU labels, e.g. synthfacs:1308 or ckplus:/data/CK+")
    p.add_argument("--au-csv", default=None, help="OpenFace / py-feat AU CSV for folder: specs")
    p.add_argument("--layer", nargs="+", default=["conv3"], help="layer name(s) (default: conv3)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--bins", type=int, default=10, help="histogram bins per filter (default: 10)")
    p.add_argument("--binning", choices=("uniform", "quantile"), default="uniform")
    p.add_argument("--smoothing", type=float, default=0.5, help="pseudo-count per bin (default: 0.5)")
    p.add_argument("--permutations", type=int, default=1000, help="label permutations (default: 1000)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for CIs (default: 200)")
    p.add_argument("--statistic", choices=("auroc", "kl"), default="auroc", help="permutation test statistic")
    p.add_argument("--filters", type=int, default=10, help="filters in the table and bar chart (default: 10)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(handler=_run)
