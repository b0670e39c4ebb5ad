"""Reproduce the paper's expression-recognition tables (Khorrami et al. 2015, Tables 1-3).

Usage (installed with the package; ``python scripts/reproduce_paper.py`` in a checkout is the same)::

    captum-fau reproduce --ckplus PATH/TO/CK+ --tfd PATH/TO/TFD_96x96.mat --device cuda

For each dataset given it runs every ablation row (plain, +D, +A, +AD) on
every fold of the paper's protocol with the paper's recipe (31,000 SGD
iterations by default), selects checkpoints on a validation fold, and
writes:

* ``OUT/tables/<protocol>.md`` and ``.json`` - accuracy ``mean ± std`` over
  folds per variant (Tables 1-2) and the confusion matrix of the best
  variant (Table 3);
* ``OUT/runs/<protocol>/<variant>/fold_<k>/`` - checkpoints and
  ``training_log.jsonl`` of every run (rerunning resumes interrupted runs);
* ``ZOO/zerobias-ckplus-8class``, ``ZOO/zerobias-ckplus-6class``,
  ``ZOO/zerobias-tfd-7class`` - Hub-format folders (``config.json``,
  ``model.safetensors``, ``metrics.json``, ``training_log.jsonl``) holding
  the +AD model of the fold with the best *validation* accuracy, with the
  protocol's test mean ± std in ``metrics.json``. ``ZOO`` (``--zoo``) defaults to the
  user zoo (``CAPTUM_FAU_ZOO``, else ``$XDG_DATA_HOME/captum-fau/zoo``), which
  ``zoo.load("zerobias-ckplus-8class")`` searches, offline; pass ``--zoo zoo`` in a checkout
  to publish them (``scripts/publish_to_hub.py`` in a checkout).

Protocols: ``ckplus8`` (10 folds), ``ckplus6`` (10 folds), ``tfd`` (5 splits).
Runs per dataset at the defaults: 4 variants x folds, i.e. 40 (CK+ 8),
40 (CK+ 6), 20 (TFD); 100 runs in all.

Expected wall time per run of 31,000 iterations (batch 64, 96x96, the
throughput of ``scripts/bench_train.py`` times the image count; validation
passes add ~5%):

=====================  ==============  ======================  ================
device                 images/s        one run (31k it)        all 100 runs
=====================  ==============  ======================  ================
NVIDIA H100 (bf16)     ~15,000-25,000  ~1.5-2.5 min            ~2.5-4 h
NVIDIA H100 (fp32)     ~8,000-12,000   ~3-4 min                ~5-7 h
2-core x86 CPU         ~20-30          ~18-28 h                months (do not)
=====================  ==============  ======================  ================

Every (variant, fold) run trains from its own seed, derived from ``--seed``
(``captum_fau.train.protocols.run_seed``; the reference drew its init scale
``k`` afresh per run), recorded with ``k`` per fold in the tables' JSON and
in the exported model's ``metrics.json``. ``--fc4-init reference`` reproduces
the reference code's ``fc4`` initialisation (std ``k / 256``: its fan-in
counted the batch of 64); the default ``fan_in`` uses ``k / sqrt(1024)``.

The GPU figures are estimates from the model's FLOPs (~2.9 GFLOP-MAC per
image for forward + backward); measure yours with ``scripts/bench_train.py``
before planning. ``--iterations`` and ``--folds`` shorten a run; ``--variants
+AD`` alone reproduces the headline numbers.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from captum_fau._utils.io import atomic_write_text
from captum_fau._utils.validate import with_settings
from captum_fau.errors import ConfigError
from captum_fau.train.protocols import ABLATIONS, run_protocol
from captum_fau.train.trainer import LOG_FILE, TrainConfig, resolve_device
from captum_fau._utils.paths import user_zoo_dir

#: protocol -> zoo entry it produces, and the paper's number for it.
ZOO_TARGETS: dict[str, tuple[str, str]] = {
    "ckplus8": ("zerobias-ckplus-8class", "96.4% +- 3.1"),
    "ckplus6": ("zerobias-ckplus-6class", "98.3% +- 1.6"),
    "tfd": ("zerobias-tfd-7class", "88.6% +- 1.5"),
}


def export_zoo_model(table, protocol: str, runs_dir: Path, zoo_dir: Path, config: TrainConfig, wall_s: float) -> Path:
    """Copy the +AD model of the fold with the best validation accuracy into ``zoo_dir`` in Hub format."""
    name, paper = ZOO_TARGETS[protocol]
    summary = table.summary()
    variant = "+AD" if "+AD" in summary else table.best_variant()
    candidates = []
    for fold in (f for f in table.folds if f.variant == variant):
        run = runs_dir / variant.replace("+", "plus_") / f"fold_{fold.fold}"
        state = json.loads((run / "checkpoint_last.json").read_text())
        valid = state["best"]["score"] if config.selection == "valid" else fold.accuracy
        candidates.append((valid, fold.fold, run))
    _, best_fold, run = max(candidates, key=lambda c: (c[0], -c[1]))
    runs = {f.fold: f.extra for f in table.folds if f.variant == variant}
    target = zoo_dir / name
    tmp = zoo_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run / "model", tmp)
    shutil.copyfile(run / LOG_FILE, tmp / "training_log.jsonl")
    metrics = {
        "model": name,
        "protocol": protocol,
        "title": table.title,
        "variant": variant,
        "exported_fold": best_fold,
        "exported_fold_selection": "highest validation accuracy among the folds' selected checkpoints",
        "exported_fold_seed": runs[best_fold].get("seed"),
        "fold_seeds": {str(k): extra.get("seed") for k, extra in sorted(runs.items())},
        "fold_init_k": {str(k): extra.get("init_k") for k, extra in sorted(runs.items())},
        "accuracy_mean": summary[variant]["mean"],
        "accuracy_std": summary[variant]["std"],
        "accuracy_std_kind": "population std over folds (numpy ddof=0)",
        "fold_accuracies": summary[variant]["fold_accuracies"],
        "per_class_accuracy": dict(zip(table.class_names, summary[variant]["per_class_accuracy"])),
        "confusion_matrix": {
            "rows": "true class",
            "columns": "predicted class",
            "counts": summary[variant]["confusion"],
        },
        "paper_accuracy": paper,
        "iterations": config.iterations,
        "recipe": config.to_dict(),
        "wall_time_s": round(wall_s, 1),
    }
    atomic_write_text(tmp / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


@dataclass(frozen=True)
class ReproduceOptions:
    """What :func:`reproduce_paper` reads, runs and writes.

    Attributes:
        ckplus (str or Path, optional): CK+ root; runs ``ckplus8`` and ``ckplus6``.
        tfd (str or Path, optional): ``TFD_96x96.mat`` or its folder; runs ``tfd``.
        out (str or Path): Tables and run folders. Default: ``"reproduction"``
        zoo_dir (str or Path, optional): Where the zoo folders go. Default: the user zoo
            (:func:`~captum_fau._utils.paths.user_zoo_dir`), which ``zoo.load`` searches.
        variants (sequence of str): Ablation rows. Default: all four.
        folds (sequence of int, optional): Only these folds. Default: all.
        progress (bool): Progress bars. Default: True
        log (callable): Receives each table (markdown) and each exported folder. Default: print
    """

    ckplus: str | Path | None = None
    tfd: str | Path | None = None
    out: str | Path = "reproduction"
    zoo_dir: str | Path | None = None
    variants: Sequence[str] = tuple(ABLATIONS)
    folds: Sequence[int] | None = None
    progress: bool = True
    log: Callable[[str], None] = print


def reproduce_paper(config: TrainConfig, options: ReproduceOptions | None = None, **settings: Any) -> dict[str, Path]:
    """Train every protocol the data given allows, write the tables, export the zoo models.

    Args:
        config (TrainConfig): The recipe (iterations, batch size, device, seed, fc4 init, ...).
        options (ReproduceOptions, optional): The data, the output folders, variants, folds, progress and
            log. Default: ``ReproduceOptions()``
        **settings: :class:`ReproduceOptions` fields as keywords (``ckplus=..., out=...``); they override
            ``options``.

    Returns:
        dict: protocol -> exported zoo folder.

    Raises:
        ConfigError: neither ``ckplus`` nor ``tfd`` was given.

    Examples::

        >>> from captum_fau.train.trainer import TrainConfig
        >>> reproduce_paper(TrainConfig(iterations=2))
        Traceback (most recent call last):
        ...
        captum_fau.errors.ConfigError: Give --ckplus PATH and/or --tfd PATH (ckplus=, tfd=); nothing to reproduce otherwise.
    """
    opts = with_settings(ReproduceOptions, options, settings)
    ckplus, tfd, variants, folds, progress, log = (
        opts.ckplus,
        opts.tfd,
        opts.variants,
        opts.folds,
        opts.progress,
        opts.log,
    )
    if not ckplus and not tfd:
        raise ConfigError("Give --ckplus PATH and/or --tfd PATH (ckplus=, tfd=); nothing to reproduce otherwise.")
    unknown = sorted(set(variants) - set(ABLATIONS))
    if unknown:
        raise ConfigError(f"Unknown variants {unknown}; choose from {list(ABLATIONS)}.")
    resolve_device(config.device)
    out_dir, zoo = Path(opts.out), Path(opts.zoo_dir) if opts.zoo_dir else user_zoo_dir()
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    zoo.mkdir(parents=True, exist_ok=True)
    jobs = []
    if ckplus:
        from captum_fau.data.ckplus import load_ckplus

        ck = load_ckplus(ckplus, num_classes=8, progress=progress)
        jobs += [("ckplus8", ck), ("ckplus6", ck)]
    if tfd:
        from captum_fau.data.tfd import load_tfd

        jobs.append(("tfd", load_tfd(tfd)))
    exported: dict[str, Path] = {}
    for protocol, data in jobs:
        t0 = time.time()
        runs_dir = out_dir / "runs" / protocol
        table = run_protocol(protocol, data, config, variants=list(variants), folds=folds, out_dir=runs_dir,
                             progress=progress)  # fmt: skip
        table.meta["reproduce_paper"] = {"iterations": config.iterations, "device": str(config.device)}
        markdown = table.to_markdown()
        atomic_write_text(out_dir / "tables" / f"{protocol}.md", markdown)
        table.save(out_dir / "tables" / f"{protocol}.json")
        exported[protocol] = export_zoo_model(table, protocol, runs_dir, zoo, config, time.time() - t0)
        log(markdown)
        log(f"wrote {exported[protocol]}")
    return exported


__all__ = ["ZOO_TARGETS", "ReproduceOptions", "export_zoo_model", "reproduce_paper"]
