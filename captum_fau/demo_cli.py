"""``captum-fau demo``: the main job on the embedded default (SynthFACS)."""

from __future__ import annotations

import argparse

import torch

from captum_fau import zoo

DEMO_MODEL = "zerobias-synthfacs-8class"


def _demo(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    model = zoo.load(DEMO_MODEL, device=args.device)
    entry = zoo.info(DEMO_MODEL)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Loaded {DEMO_MODEL} ({model.config['zoo']['source']} weights, {n_params:,} parameters)")
    print(f"  classes: {', '.join(entry.class_names)}")
    print(f"  trained on: {entry.training_data}")
    for key, value in entry.metrics.items():
        print(f"  {key}: {value}")
    return 0


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "demo",
        parents=[common],
        help="run the paper's analysis on the built-in SynthFACS data (no download)",
        description=__doc__,
    )
    p.set_defaults(handler=_demo)
