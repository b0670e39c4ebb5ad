"""captum-fau zoo list|info: what the model zoo holds."""

from __future__ import annotations

import argparse
import json

from captum_fau.cli import _options


def _list(args: argparse.Namespace) -> int:
    from captum_fau import zoo

    for name in zoo.list():
        entry = zoo.info(name)
        if entry.packaged and (entry.packaged_dir / zoo.WEIGHTS_FILENAME).is_file():
            where = "packaged (offline)"
        elif entry.revision:
            where = f"hub {entry.repo_id}@{entry.revision[:10]}"
        else:
            where = f"not published yet: {entry.train_command}"
        print(f"{name:28s} {len(entry.class_names)} classes  {where}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from captum_fau import zoo

    print(json.dumps(zoo.info(args.name).to_dict(), indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = _options.command(
        subparsers, "zoo", help="list the pretrained models and their metadata",
        description="What the model zoo holds: one line per model, or one model's full registry entry.",
        example="captum-fau zoo list\ncaptum-fau zoo info zerobias-synthfacs-8class",
    )  # fmt: skip
    sub = p.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)
    _options.command(
        sub, "list", help="one line per model: classes and where its weights come from",
        description="One line per zoo model: its classes and where its weights come from.",
        example="captum-fau zoo list",
    ).set_defaults(handler=_list)  # fmt: skip
    pi = _options.command(
        sub, "info", help="the full registry entry of one model, as JSON",
        description="The full registry entry of one zoo model (repository, revision, metrics, recipe), as JSON.",
        example="captum-fau zoo info zerobias-ckplus-8class",
    )  # fmt: skip
    pi.add_argument("name", help="a zoo name, e.g. zerobias-synthfacs-8class")
    pi.set_defaults(handler=_info)


__all__ = ["register"]
