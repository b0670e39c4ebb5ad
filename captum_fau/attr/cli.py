"""``captum-fau topn``: top-N deconvolution of a layer's filters over a dataset.

Example::

    captum-fau topn --model zerobias-synthfacs-8class --data synthfacs:1308 \\
        --layer conv3 --n 10 --filters 0-15 --rule guided --out runs/topn-conv3
"""

from __future__ import annotations

import argparse
from pathlib import Path

from captum_fau.errors import ConfigError


def parse_filters(text: str | None) -> list[int] | None:
    """``"3,17,20-23"`` -> ``[3, 17, 20, 21, 22, 23]``; ``None`` or ``"all"`` -> ``None``."""
    if text is None or text.strip().lower() == "all":
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                out.extend(range(low, high + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"--filters {text!r} is not a list like '3,17,20-23' (or 'all').") from None
    return out


def load_model(spec: str, device: str):  # type: ignore[no-untyped-def]
    """A zoo name, or a folder with ``config.json`` + ``model.safetensors`` (``save_pretrained`` layout)."""
    from captum_fau import zoo
    from captum_fau.models import ZeroBiasCNN

    if Path(spec).is_dir():
        return ZeroBiasCNN.from_pretrained(spec).to(device).eval()
    return zoo.load(spec, device=device)


def _run(args: argparse.Namespace) -> int:
    import torch

    from captum_fau.attr import TopNDeconv
    from captum_fau.data.spec import load_data_spec

    torch.manual_seed(args.seed)
    model = load_model(args.model, args.device)
    faces = load_data_spec(args.data, seed=args.seed, progress=not args.quiet)
    topn = TopNDeconv(model, args.layer, rule=args.rule)
    result = topn.top_n(faces, n=args.n, filters=parse_filters(args.filters), batch_size=args.batch_size,
                        full_maps=args.full_maps, progress=not args.quiet)
    out = result.save(args.out)
    shown = result.filters.tolist()[: args.plot_filters]
    result.plot(shown, path=out / "topn.png")
    import matplotlib.pyplot as plt

    plt.close("all")
    print(f"{result!r}\nwrote {out / 'topn.safetensors'}, {out / 'topn.json'}, {out / 'topn.png'}")
    if result.dead:
        print(f"dead filters (never active on this data): {result.dead}")
    return 0


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "topn", parents=[common], help="top-N deconvolution of a layer's filters (paper Fig. 1/3/4)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="zoo name (see `captum-fau zoo list`) or a save_pretrained folder")
    p.add_argument("--data", required=True, help="dataset spec, e.g. synthfacs:1308 or ckplus:/data/CK+")
    p.add_argument("--layer", default="conv3", help="dotted layer name (default: conv3)")
    p.add_argument("--n", type=int, default=10, help="images per filter (default: 10)")
    p.add_argument("--filters", default=None, help="filters, e.g. '0-15' or '3,17' (default: all)")
    p.add_argument("--rule", default="guided", choices=["guided", "deconv", "gradient"], help="default: guided")
    p.add_argument("--batch-size", type=int, default=64, help="scan batch size (default: 64)")
    p.add_argument("--full-maps", action="store_true", help="also save full-size reconstructions")
    p.add_argument("--plot-filters", type=int, default=16, help="filters in topn.png (default: first 16)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(handler=_run)
