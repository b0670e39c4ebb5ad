"""captum-fau zoo list|info: what the model zoo holds."""

from __future__ import annotations

import argparse
import json

from captum_fau.cli import _options


def where_available(entry: object) -> str:
    """Where ``zoo.load`` would find an entry's weights on this machine, without downloading anything."""
    from captum_fau import zoo
    from captum_fau.zoo import _hub_env

    local = zoo.local_weights(entry)  # type: ignore[arg-type]
    if local is not None:
        path, source = local
        return "packaged (offline)" if source == "packaged" else f"user zoo (offline): {path.parent}"
    if entry.revision:  # type: ignore[attr-defined]
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(entry.repo_id, zoo.WEIGHTS_FILENAME, cache_dir=_hub_env.hub_cache_dir(),  # type: ignore[attr-defined]
                                        revision=entry.revision)  # type: ignore[attr-defined]  # fmt: skip
        state = "in the Hub cache (offline)" if isinstance(cached, str) else "downloaded on first use"
        return f"hub {entry.repo_id}@{entry.revision[:10]}, {state}"  # type: ignore[attr-defined]
    return f"not available here; train it: {entry.train_command}"  # type: ignore[attr-defined]


def _list(args: argparse.Namespace) -> int:
    from captum_fau import zoo

    for name in zoo.list():
        entry = zoo.info(name)
        print(f"{name:28s} {len(entry.class_names)} classes  {where_available(entry)}")
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
