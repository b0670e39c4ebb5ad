#!/usr/bin/env python
"""Publish a zoo model to a Hugging Face Hub repository.

Assembles ``zoo/NAME/`` and ``model_cards/NAME.md`` into
the exact Hub folder (``config.json``, ``model.safetensors``, ``README.md``),
checks that it loads with ``ZeroBiasCNN.from_pretrained`` and
``timm.create_model``, uploads it in one commit, tags that commit, downloads it
back to compare checksums, and prints the commit hash and the registry fields
to pin. The registry is written only with ``--pin``, and only after a
successful upload.

Examples::

    python scripts/publish_to_hub.py zerobias-ckplus-8class --write-card
    python scripts/publish_to_hub.py zerobias-ckplus-8class --repo-id my-lab/zerobias-ckplus-8class --dry-run
    HF_TOKEN=... python scripts/publish_to_hub.py zerobias-ckplus-8class \\
        --repo-id my-lab/zerobias-ckplus-8class --tag v1 --pin

The token comes from huggingface_hub's usual lookup (``HF_TOKEN`` or
``hf auth login``) and is never printed. ``HF_ENDPOINT`` selects another Hub.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from captum_fau import __version__, zoo  # noqa: E402
from captum_fau.errors import CaptumFAUError  # noqa: E402
from captum_fau.zoo import cards, publish  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help=f"the zoo entry ({', '.join(zoo.list())})")
    p.add_argument("--repo-id", help="target repository ORG/NAME (default: the registry's)")
    p.add_argument("--zoo-dir", default=str(zoo.ZOO_DIR), help="trained model folders (default: zoo/)")
    p.add_argument("--cards-dir", default=str(zoo.CARDS_DIR), help="model cards (default: model_cards/)")
    p.add_argument(
        "--tag", default=f"v{__version__}", help="tag to create on the uploaded commit (default: %(default)s)"
    )
    p.add_argument("--no-tag", action="store_true", help="do not tag the uploaded commit")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument(
        "--dry-run", action="store_true", help="assemble and verify, show what would be sent, upload nothing"
    )
    p.add_argument(
        "--pin", action="store_true", help="write the commit and sha256 into the zoo registry after the upload"
    )
    p.add_argument("--registry", default=None, help="registry file to pin into (default: zoo/registry.json)")
    p.add_argument(
        "--staging-dir", default=None, help="assemble the Hub folder here and keep it (default: a temp folder)"
    )
    p.add_argument("--write-card", action="store_true", help="render model_cards/NAME.md from metrics.json and stop")
    args = p.parse_args(argv)

    try:
        if args.write_card:
            path = cards.write_card(args.name, cards_dir=args.cards_dir, zoo_dir=args.zoo_dir)
            print(f"Wrote {path}")
            return 0
        repo_id = args.repo_id or zoo.info(args.name).repo_id
        result = publish.publish(
            args.name,
            repo_id,
            zoo_dir=args.zoo_dir,
            cards_dir=args.cards_dir,
            tag=None if args.no_tag else args.tag,
            private=args.private,
            dry_run=args.dry_run,
            pin=args.pin,
            registry_file=args.registry,
            staging_dir=args.staging_dir,
        )
    except CaptumFAUError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        return 0
    pin = result.registry_pin()
    print(f"commit: {result.commit}")
    if result.tag:
        print(f"tag: {result.tag}")
    print("Pin it in zoo/registry.json:")
    print(json.dumps({args.name: pin}))
    if result.pinned:
        print(f"Pinned {args.name} at {result.commit} in {args.registry or zoo.REGISTRY_FILE}.")
    else:
        print("(not written; rerun with --pin, or edit the registry)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
