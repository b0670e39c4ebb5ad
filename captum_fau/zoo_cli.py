"""``captum-fau zoo list|info``: what the model zoo holds."""

from __future__ import annotations

import argparse
import json

from captum_fau import zoo


def _list(args: argparse.Namespace) -> int:
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
    print(json.dumps(zoo.info(args.name).to_dict(), indent=2))
    return 0


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("zoo", help="list the pretrained models and their metadata", description=__doc__)
    sub = p.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)
    sub.add_parser("list", help="one line per model: classes and where its weights come from").set_defaults(
        handler=_list
    )
    pi = sub.add_parser("info", help="the full registry entry of one model, as JSON")
    pi.add_argument("name", help="a zoo name, e.g. zerobias-synthfacs-8class")
    pi.set_defaults(handler=_info)
