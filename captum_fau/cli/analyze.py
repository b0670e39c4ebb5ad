"""captum-fau analyze (the whole paper analysis on any model and data) and captum-fau demo."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from captum_fau.cli import _options, _say

if TYPE_CHECKING:
    from captum_fau.analyze import AnalysisConfig, AnalysisResult

DEMO_MODEL = "zerobias-synthfacs-8class"
DEMO_IMAGES = 1308  # the size of the paper's CK+ set
#: The demo's probes, smaller than analyze's defaults (64 faces on the neutral face and the prototypes, 2000
#: images) so that the demo stays short: 16 faces on the neutral face (1,920 renders; with 8 the smallest exact
#: sign-flip p, 1/128, leaves no pair below q = 0.05 over 5,120 tests), 400 images ablated.
DEMO_PROBE_FACES = 16
DEMO_IMPORTANCE_IMAGES = 400

ANALYZE_EXAMPLE = """\
captum-fau analyze --model timm:resnet18 --checkpoint my.safetensors --layer layer3 \\
    --data folder:faces/ --au-csv openface.csv --out report/
captum-fau analyze --model my_pkg.models:build --layer features.6 --data ckplus:/data/CK+ --out ck-report/
"""

DISTRIBUTED = """\
several processes or GPUs (each rank scans a share of the data; rank 0 writes the report):
  torchrun --nproc_per_node 4 -m captum_fau.cli analyze --model ... --data ... --device cuda --top-n 10
"""

DEMO_EXAMPLE = """\
captum-fau demo                          1308 faces, report in captum-fau-demo/index.html
captum-fau demo --images 200 --permutations 200 --out quick-demo/
"""


def summarize(result: AnalysisResult, elapsed: float, top: int = 10) -> str:
    """A short terminal summary: accuracy, top associations, localisation, where the report is."""
    lines = []
    if result.accuracy is not None:
        lines.append(f"Accuracy: {result.accuracy['accuracy']:.1%} on {result.accuracy['n']} labelled images")
    if result.faukl is not None:
        rows = result.faukl.table_rows(result.featured[:top])
        lines.append("Strongest filter -> action unit associations (paper Table 4):")
        lines.append(f"  {'filter':>6}  {'AU':<6} {'name':<28} {'KL':>6} {'q (KL)':>8} {'AUROC':>6} {'q (AUROC)':>9}")
        for r in rows:
            lines.append(
                f"  {r['filter']:>6}  {r['au'] or '-':<6} {r['name'][:28]:<28} {r['kl']:>6.2f} {r['q_kl']:>8.3g} "
                f"{r['auroc']:>6.2f} {r['q_auroc']:>9.3g}"
            )
        warned = [n for n in result.faukl.stats().notes if n.startswith("WARNING")]
        lines.extend(f"  {_say.speak(n)}" for n in warned if _say.first(n))
    if result.localisation is not None and result.localisation.get("rate") is not None:
        loc = result.localisation
        lines.append(
            f"Localisation: for {loc['rate']:.0%} of {loc['n_filters']} significant filters FAU-KL's top AU is the AU "
            f"region with the {loc.get('rule_label', 'largest energy')}"
            + (
                f" (largest raw energy, biased to large masks: {loc['rate_energy']:.0%})"
                if loc.get("rate_energy") is not None and loc.get("rule") != "energy"
                else ""
            )
        )
    if result.sanity is not None:
        check = result.sanity
        total = (check.meta.get("selection") or {}).get("filters_in_layer", len(check.filters))
        lines.append(f"Sanity check ({len(check.filters)} of {total} filters, top {check.meta.get('n', '?')} images each, "
                     f"sanity.json): {check.interpretation}")  # fmt: skip
    lines += _probe_lines(result.probes)
    lines += [f"Note: {_say.speak(note)}" for note in result.notes if _say.first(note)]
    lines.append(f"Report: {result.report}  ({elapsed:.0f} s)")
    return "\n".join(lines)


def _probe_lines(probes: object) -> list[str]:
    """The causal probes in three lines: causal AUs and their agreement with FAU-KL, importance, FACS score."""
    lines = []
    causal, agreement = getattr(probes, "causal", None), getattr(probes, "agreement", None)
    if causal is not None:
        found = sum(a is not None for a in causal.top_au)
        line = (
            f"Causal AU probe ({causal.n_faces} faces, causal.npz): {found} of {len(causal.top_au)} filters "
            f"respond to an AU (q < {causal.alpha:g})"
        )
        if agreement and agreement.get("n_filters"):
            line += (
                f"; the same AU as FAU-KL for {agreement['agreement']:.0%} of {agreement['n_filters']} filters "
                f"(chance {agreement['chance']:.0%})"
            )
        lines.append(line)
    importance = getattr(probes, "importance", None)
    if importance is not None:
        mode = "zero" if "zero" in importance.modes else importance.modes[0]
        top = ", ".join(f"{e} {order[0]}" for e, order in importance.ranking(mode).items())
        lines.append(f"Most important filter per emotion ({mode} ablation, importance.npz): {top}")
    facs = getattr(probes, "facs", None)
    if facs is not None:
        scores = ", ".join(f"{s} {v:.2f}" if v is not None else f"{s} n/a" for s, v in facs.to_dict()["score"].items())
        lines.append(f"FACS score (top-{facs.top_k} filters' AUs in the EMFACS prototype, facs.json): {scores}")
    return lines


def analysis_config(args: argparse.Namespace) -> AnalysisConfig:
    """The AnalysisConfig the options of analyze / demo describe."""
    from captum_fau.analyze import AnalysisConfig

    explicit, flags = _options.input_spec_args(args)
    if not getattr(args, "sanity_check", True):
        _say.unused("--sanity-filters", "with --no-sanity-check")
    return AnalysisConfig(
        input_spec=explicit or None, input_spec_sources=flags or None,
        layer=args.layer, out=args.out, n=args.n, rule=args.rule, relu_like=args.relu_like, checkpoint=getattr(args, "checkpoint", None),
        au_csv=getattr(args, "au_csv", None), cache=not getattr(args, "no_cache", False), n_featured=args.featured,
        statistics=_options.statistics_options(args), batch_size=args.batch_size, device=args.device, seed=args.seed,
        progress=not args.quiet, resume=not args.no_resume, checkpoint_every_s=args.checkpoint_every_s,
        sanity_check=getattr(args, "sanity_check", True), sanity_filters=getattr(args, "sanity_filters", 32),
        topn_budget_mb=getattr(args, "topn_budget_mb", 48.0),
        class_names=getattr(args, "class_names", None), face_crop=getattr(args, "face_crop", "auto"),
        stream=getattr(args, "stream", None), workers=getattr(args, "workers", None),
        **_options.probe_settings(args),
    )  # fmt: skip


def _run(args: argparse.Namespace, model: str, data: str) -> int:
    from captum_fau.analyze import analyze

    started = time.perf_counter()
    result = analyze(model, data, analysis_config(args))
    if result.report is None and result.topn is None:  # a rank other than 0 of a distributed run
        return 0
    print(summarize(result, time.perf_counter() - started))
    return 0


def _analysis_options(p: argparse.ArgumentParser, out_default: str, demo: bool = False) -> None:
    p.add_argument("--layer", default="conv3", help="layer to analyse, by dotted module name (default: conv3)")
    p.add_argument(
        "--out",
        type=_options.folder,
        default=out_default,
        help=f"report folder; a rerun reuses finished steps (default: {out_default})",
    )
    p.add_argument(
        "--n",
        "--top-n",
        dest="n",
        type=_options.positive_int,
        default=10,
        help="top images per filter, the paper's N (default: 10); write --top-n under torchrun",
    )
    _options.add_rule(p)
    _options.add_featured(p, 10, "filters shown in the figures: strongest significant AU association first")
    _options.add_statistics_options(p)
    p.add_argument("--batch-size", type=_options.positive_int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--no-resume", action="store_true", help="recompute every step even if --out has it")
    p.add_argument(
        "--checkpoint-every-s",
        type=_options.non_negative_float,
        default=60.0,
        metavar="S",
        help="save the scan's state every S seconds (and when it ends) so a killed run resumes there; "
        "0: after every batch (default: 60)",
    )
    p.add_argument(
        "--topn-budget-mb",
        type=_options.non_negative_float,
        default=48.0,
        metavar="MB",
        help="size budget of the reconstructions kept: the featured filters always, then significant and "
        "strong ones while they fit; the others' top-N images are found and left pending (captum-fau topn "
        "--out OUT --filters ... completes them); 0: every filter (default: 48)",
    )
    _options.add_sanity_check(p)
    if demo:
        _options.add_probe_options(p, default=True, faces=DEMO_PROBE_FACES, prototypes=False,
                                   images=DEMO_IMPORTANCE_IMAGES)  # fmt: skip
    else:
        _options.add_probe_options(p, default=False, faces=64)
    _options.add_quiet(p)
    _options.add_device(p)
    _options.add_seed(p, "seeds data rendering and the statistics")


def register(subparsers: argparse._SubParsersAction) -> None:
    pa = _options.command(
        subparsers, "analyze", help="the whole analysis on any model and data: top-N, FAU-KL, accuracy, report",
        description=(
            "Top-N deconvolution of every filter of a layer, the FAU-KL association of each filter with each\n"
            "action unit (with subject-level permutation p-values, FDR q-values and clustered AUROC intervals), accuracy when the data\n"
            "has emotion labels, and an HTML report with the paper's figures."
        ),
        example=ANALYZE_EXAMPLE, sections=(_options.MODEL_FORMS, _options.DATA_FORMS, DISTRIBUTED),
    )  # fmt: skip
    _options.add_model_options(pa)
    _options.add_data_options(pa)
    _analysis_options(pa, "captum-fau-report")
    pa.set_defaults(handler=lambda args: _run(args, args.model, args.data))

    pd = _options.command(
        subparsers, "demo", help="the analysis on built-in SynthFACS faces with the zoo model (no download)",
        description=(
            f"Runs analyze with the packaged {DEMO_MODEL} model on {DEMO_IMAGES} seeded SynthFACS faces\n"
            "(faces rendered with known action units) of subjects the model never saw in training or\n"
            "validation, and writes the report. No network needed."
        ),
        example=DEMO_EXAMPLE,
    )  # fmt: skip
    pd.add_argument("--images", type=_options.positive_int, default=DEMO_IMAGES,
                    help=f"SynthFACS images (default: {DEMO_IMAGES})")  # fmt: skip
    _analysis_options(pd, "captum-fau-demo", demo=True)
    pd.set_defaults(handler=lambda args: _run(args, DEMO_MODEL, f"synthfacs:{args.images}"))


__all__ = ["analysis_config", "register", "summarize"]
