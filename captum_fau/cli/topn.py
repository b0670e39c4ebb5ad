"""captum-fau topn: top-N deconvolution of a layer's filters over a dataset."""

from __future__ import annotations

import argparse
from typing import Any

from captum_fau.cli import _options

EXAMPLE = """\
captum-fau topn --model zerobias-synthfacs-8class --data synthfacs:1308 \\
    --layer conv3 --n 10 --filters 0-15 --rule guided --out runs/topn-conv3
captum-fau topn --model timm:resnet18 --checkpoint my.safetensors --layer layer3 \\
    --data folder:faces/ --out runs/topn-resnet
# complete filters an analyze run left pending (same model, data, layer and rule; resumable)
captum-fau topn --model timm:resnet18 --checkpoint my.safetensors --layer layer3 \\
    --data folder:my_faces/ --out my-report/ --filters 0-63
"""


def _run(args: argparse.Namespace) -> int:
    import torch

    from captum_fau.featured import featured_filters
    from captum_fau.attr import TopNDeconv

    torch.manual_seed(args.seed)
    filters = _options.parse_filters(args.filters)
    pending = _pending_result(args)
    model = _options.load_model(args)
    dataset = _options.model_inputs(args, model, _options.load_data(args, model=model))
    topn = TopNDeconv(model, args.layer, rule=args.rule, relu_like=args.relu_like)
    if pending is not None:
        return _complete(args, topn, pending, dataset, filters)
    result = topn.top_n(dataset, n=args.n, filters=filters, batch_size=args.batch_size,
                        full_maps=args.full_maps, progress=not args.quiet)  # fmt: skip
    out = result.save(args.out)
    featured = featured_filters(topn=result, count=args.featured)
    result.plot(featured, path=out / "topn.png")
    print(f"{result!r}\nwrote {out / 'topn.safetensors'}, {out / 'topn.json'}, {out / 'topn.png'}")
    if result.rule_caveat:
        from captum_fau.cli._say import speak

        print(f"note: {speak(result.rule_caveat)}.")
    if result.dead:
        print(f"dead filters (never active on this data): {result.dead}")
    if args.sanity_check:
        check = topn.sanity_check(result, dataset, n=3, seed=args.seed, progress=not args.quiet,
                                  max_filters=args.sanity_filters or None, featured=featured)  # fmt: skip
        check.save(out / "sanity.json")
        for row in check.summary():
            print(f"  randomised {' + '.join(row['randomised']):<32} SSIM {row['ssim_median']}  "
                  f"Spearman {row['spearman_median']}")  # fmt: skip
        print(f"sanity check: {check.interpretation}\nwrote {out / 'sanity.json'}")
    return 0


def _pending_result(args: argparse.Namespace) -> Any:
    """The result in ``--out`` when it has pending filters (completion mode), else None; checked against the flags."""
    from pathlib import Path

    from captum_fau.attr import TopNResult
    from captum_fau.errors import ConfigError

    out = Path(args.out)
    if not (out / "topn.safetensors").is_file():
        return None
    result = TopNResult.load(out)
    if not result.pending_filters:
        return None
    if (result.layer, result.rule) != (args.layer, args.rule):
        raise ConfigError(
            f"{out} holds top-N results of layer {result.layer!r} with rule {result.rule!r}, with filters pending; "
            f"pass --layer {result.layer} --rule {result.rule} to complete them, or another --out for a new run."
        )
    return result


def _ranges(filters: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (the --filters form)."""
    parts: list[str] = []
    for f in sorted(filters):
        if parts and int(parts[-1].split("-")[-1]) == f - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{f}"
        else:
            parts.append(str(f))
    return ",".join(parts)


def _complete(args: argparse.Namespace, topn: Any, result: Any, dataset: Any, filters: list[int] | None) -> int:
    """Reconstruct pending filters of the result in ``--out``, saving every 16 filters (a rerun resumes)."""
    import json
    from pathlib import Path

    out = Path(args.out)
    storage = json.loads((out / "topn.json").read_text()).get("storage", {})
    compact = storage.get("patches") == "float16"
    before = len(result.pending_filters)
    result = topn.complete(result, dataset, filters, progress=not args.quiet,
                           checkpoint=lambda part: part.save(out, compact=compact))  # fmt: skip
    result.save(out, compact=compact)
    left = result.pending_filters
    print(
        f"{result!r}\nreconstructed {before - len(left)} pending filter(s) into {out / 'topn.safetensors'}; "
        f"{len(left)} still pending" + (f" ({_ranges(left)})" if left else "") + "."
    )
    if (out / "analysis.json").is_file():
        print("Rerun the same captum-fau analyze command to rebuild the report with them (finished steps are reused).")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = _options.command(
        subparsers, "topn", help="top-N deconvolution of a layer's filters (paper Fig. 1/3/4)",
        description=(
            "For every chosen filter of a layer: the N images that excite it most, where, and their\n"
            "reconstructions by guided backpropagation or the deconvnet (paper Fig. 1, 3, 4). Writes\n"
            "topn.safetensors, topn.json and topn.png."
        ),
        example=EXAMPLE, sections=(_options.MODEL_FORMS, _options.DATA_FORMS),
    )  # fmt: skip
    _options.add_model_options(p)
    _options.add_data_options(p, au_csv=False)
    p.add_argument("--layer", default="conv3", help="dotted layer name (default: conv3)")
    p.add_argument("--n", type=_options.positive_int, default=10, help="images per filter (default: 10)")
    _options.add_filters(p, "the filters to reconstruct (default: all)")
    _options.add_rule(p)
    p.add_argument("--batch-size", type=_options.positive_int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--full-maps", action="store_true", help="also save full-size reconstructions")
    _options.add_featured(p, 16, "filters drawn in topn.png: the strongest responses first")
    p.add_argument("--out", type=_options.folder, required=True, help="output folder")
    _options.add_sanity_check(p, default=False)
    _options.add_quiet(p)
    _options.add_device(p)
    _options.add_seed(p, "seeds data rendering")
    p.set_defaults(handler=_run)


__all__ = ["register"]
