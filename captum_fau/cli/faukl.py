"""captum-fau fau-kl: which action unit each filter of a layer responds to (FAU-KL)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from captum_fau.cli import _options, _say
from captum_fau.errors import ConfigError

EXAMPLE = """\
captum-fau fau-kl --model zerobias-synthfacs-8class --data synthfacs:1308 --out runs/faukl
captum-fau fau-kl --model zerobias-synthfacs-8class --checkpoint my.safetensors \\
    --data ckplus:/data/CK+ --layer conv2 conv3 --filters 0-9 --out runs/faukl-ck
"""


def _run(args: argparse.Namespace) -> int:
    from captum_fau._utils.io import atomic_write_text
    from captum_fau.featured import featured_filters
    from captum_fau.concept.faukl import FAUKL
    from captum_fau.viz.figures import save_figure

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the results.")
    chosen = _options.parse_filters(args.filters)
    model = _options.load_model(args)
    faces = _options.load_data(args, model=model)
    if not tuple(getattr(faces, "au_ids", ()) or ()):
        raise ConfigError(
            f"The data {args.data} has no AU labels, and FAU-KL needs them. Give them with --au-csv FILE (an "
            "OpenFace or py-feat CSV, with --data folder:PATH), or use data that carries them: ckplus:PATH (its FACS "
            "folder) or synthfacs:N."
        )
    options = _options.statistics_options(args)
    fau = FAUKL(model, args.layer, options, batch_size=args.batch_size, device=args.device, progress=not args.quiet)
    dataset = _options.model_inputs(args, model, faces)
    # permutation units: subjects first (AUs cluster by subject), then sequences
    groups = next((ids for ids in (getattr(faces, "subjects", None), getattr(faces, "sequences", None))
                   if ids is not None), "auto")  # fmt: skip
    result = fau.interpret(dataset, au_ids=getattr(faces, "au_ids", None) or None, groups=groups)
    result.save(out / "faukl.safetensors")
    result.to_csv(out / "faukl.csv")
    result.to_json(out / "faukl.json")
    shown = {
        name: chosen if chosen is not None else featured_filters(faukl=result, layer=name, count=args.featured)
        for name in result.layers
    }
    fig = result.plot_bars(shown[result.layer], layer=result.layer)
    save_figure(fig, out / "faukl_bars.png", dpi=120, bbox_inches=None)
    table = "\n\n".join(f"[{name}]\n" + result.table(shown[name], layer=name) for name in result.layers)
    atomic_write_text(out / "table4.txt", table + "\n")
    print(table)
    for name, st in result.layers.items():
        for note in st.notes:
            _say.note(note, file=sys.stdout, prefix=f"note ({name}): ")
        main_test = st.config.get("main_test", st.config["test_statistic"])
        print(
            f"note ({name}): top AU = the smallest-p AU of the {main_test} test; permutation unit "
            f"{st.config.get('permutation_unit')}; {st.config.get('refined_pairs', 0)} pairs refined up to "
            f"{st.config.get('max_permutations')} permutations; smallest attainable q "
            f"{st.config.get('min_attainable_q', float('nan')):.3g}"
        )
    print(f"wrote {out}/faukl.safetensors, faukl.csv, faukl.json, faukl_bars.png, table4.txt")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = _options.command(
        subparsers, "fau-kl", help="FAU-KL: which AU each filter responds to, with p/q-values",
        description=(
            "FAU-KL (paper section 4.4): the KL divergence between each filter's activations on images\n"
            "with and without each action unit, with subject-level permutation p-values for the KL and the\n"
            "AUROC, FDR q-values and clustered AUROC intervals. Writes faukl.safetensors/.csv/.json, a bar\n"
            "chart and the paper's Table 4."
        ),
        example=EXAMPLE, sections=(_options.MODEL_FORMS, _options.DATA_FORMS),
    )  # fmt: skip
    _options.add_model_options(p)
    _options.add_data_options(p)
    p.add_argument("--layer", nargs="+", default=["conv3"], help="layer name(s) (default: conv3)")
    p.add_argument("--out", type=_options.folder, required=True, help="output folder")
    _options.add_statistics_options(p)
    _options.add_filters(p, "the filters in the table and the bar chart (default: the --featured strongest)")
    _options.add_featured(
        p, 10, "filters in the table and the bar chart when --filters is not given: significant first, by KL"
    )
    p.add_argument("--batch-size", type=_options.positive_int, default=64, help="images per forward pass (default: 64)")
    _options.add_quiet(p)
    _options.add_device(p)
    _options.add_seed(p, "seeds data rendering and the statistics")
    p.set_defaults(handler=_run)


__all__ = ["register"]
