"""The causal-probe steps of :func:`captum_fau.analyze.analyze`: AU probe, occlusion, importance, FACS table.

Each step is keyed in the run's manifest like the other steps (``OUT/analysis.json``): a rerun with the
same settings reuses its archive, changed settings recompute it. They read what the run decided once:
the model's resolved :class:`~captum_fau.inputs.spec.InputSpec` (the AU probe renders its faces at it),
the model inputs of the data (``ModelInputs``) and the class mapping by name (preflight's
``Prepared.mapping``). What cannot run on these data is skipped with a note, never guessed.

* ``causal`` (``config.causal``): :class:`~captum_fau.probes.AUProbe` -> ``causal.npz``, and its
  agreement with FAU-KL's top AU per filter;
* ``occlusion`` (with ``causal``, on data with ground-truth AU regions): ``occlusion.npz``;
* ``importance`` (``config.importance``, data with emotions the model's classes name):
  :class:`~captum_fau.probes.FilterImportance` -> ``importance.npz``;
* ``facs``: the EMFACS table of the important filters' causal and associational AUs -> ``facs.json``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from captum_fau.errors import ConfigError, LayerError

#: Images of the data the occlusion probe reads at most (a seeded sample).
OCCLUSION_IMAGES = 128


@dataclass
class ProbeFindings:
    """What the probe steps found (``None`` for a step skipped or switched off).

    Attributes:
        causal: :class:`~captum_fau.probes.AUProbeResult`.
        agreement (dict): :meth:`AUProbeResult.agreement` with FAU-KL's top AU per filter.
        association_top (list): FAU-KL's top AU per filter (``None`` for a filter without one).
        occlusion: :class:`~captum_fau.probes.OcclusionResult`.
        importance: :class:`~captum_fau.probes.ImportanceResult`.
        facs: :class:`~captum_fau.probes.FACSTable`.
        notes (list of str): Why a step was skipped.
    """

    causal: Any = None
    agreement: dict[str, Any] | None = None
    association_top: list[str | None] | None = None
    occlusion: Any = None
    importance: Any = None
    facs: Any = None
    notes: list[str] = field(default_factory=list)

    def to_results(self) -> dict[str, Any]:
        """The ``causal``, ``importance`` and ``facs`` entries of ``results.json`` (None when not run)."""
        causal = None
        if self.causal is not None:
            causal = {**self.causal.to_dict(), "agreement": _agreement_summary(self.agreement),
                      "occlusion": None if self.occlusion is None else self.occlusion.to_dict(),
                      "file": "causal.npz"}  # fmt: skip
        importance = None if self.importance is None else {**self.importance.to_dict(), "file": "importance.npz"}
        facs = None if self.facs is None else {**self.facs.to_dict(), "file": "facs.json"}
        return {"causal": causal, "importance": importance, "facs": facs}


def _agreement_summary(agreement: dict[str, Any] | None) -> dict[str, Any] | None:
    if agreement is None:
        return None
    return {k: v for k, v in agreement.items() if k != "per_filter"} | {
        "per_filter": [r for r in agreement["per_filter"] if r["causal"] or r["association"]],
        "definition": "share of filters, among those with both a causal and an associational (FAU-KL) top AU, "
                      "whose two AUs are equal; chance: the same share with the associational AUs shuffled over "
                      "filters (p: share of shuffles at least as high); kappa: Cohen's",
    }  # fmt: skip


def probe_options(config: Any) -> Any:
    """The :class:`~captum_fau.probes.ProbeOptions` of a run: ``config.probe_options``, seeded by ``config.seed``
    when not given."""
    from captum_fau.probes import ProbeOptions

    return config.probe_options if config.probe_options is not None else ProbeOptions(seed=config.seed)


def check_probes(run: Any) -> None:
    """Refuse, before the scan, the probes the run asked for but cannot run: an input spec the renderer cannot
    meet (``causal``), a layer whose removal changes the head's shapes (``importance``).

    Raises:
        ConfigError: the AU probe cannot render faces for the model's input spec (the message says why).
        LayerError: the model's head cannot be run from the layer's output alone.
    """
    config = run.config
    if config.causal:
        from captum_fau.probes import AUProbe

        try:
            AUProbe(run.model, run.layer, run.spec, options=probe_options(config))
        except ConfigError as err:
            raise ConfigError(
                f"{err} The AU probe (--causal / causal=True) cannot run on this model: drop it."
            ) from err
    if config.importance and run.mapping is not None and hasattr(run.dataset, "tensors"):
        from captum_fau.probes import FilterImportance

        sample = run.dataset.tensors(np.arange(min(2, len(run.dataset))))
        try:
            FilterImportance(run.model, run.layer, class_names=run.mapping.model_classes).split(
                sample.to(_device(run.model))
            )
        except LayerError as err:
            raise LayerError(
                f"{err} The filter ablation (--importance / importance=True) needs it: drop it or pick another --layer."
            ) from err


def _device(model: Any) -> Any:
    from captum_fau.probes._model import model_device

    return model_device(model)


def causal_step(run: Any, faukl: Any | None, masks_for: Any = None) -> ProbeFindings:
    """The AU probe at the run's input spec (``causal.npz``), its agreement with FAU-KL, and the occlusion
    (with ``masks_for``: dataset indices -> bool ``[n, AUs, S, S]`` ground-truth AU regions)."""
    findings = ProbeFindings()
    if not run.config.causal:
        return findings
    from captum_fau.probes import AUProbe, AUProbeResult

    options = probe_options(run.config)
    path = run.out / "causal.npz"
    opts = dataclasses.asdict(options)
    opts.pop("batch_size")
    run.manifest.key("causal", model=run.manifest.fingerprint["model"], layer=run.layer, options=opts)
    if run.manifest.finished("causal", path):
        findings.causal = AUProbeResult.load(path)
    else:
        probe = AUProbe(run.model, run.layer, run.spec, options=options)
        findings.causal = probe.probe(cache_dir=run.out / "cache", progress=run.progress)
        findings.causal.save(path)
        run.manifest.mark("causal", {"n_faces": options.n_faces, "aus": len(findings.causal.aus)})
    floor = _floor_note(findings.causal)
    if floor:
        findings.notes.append(floor)
    if faukl is not None:
        findings.association_top = faukl.top_aus(run.layer)
        findings.agreement = findings.causal.agreement(findings.association_top, seed=run.config.seed)
    else:
        findings.notes.append("Causal vs associational AU skipped: the data has no AU labels, so FAU-KL names no AU.")
    findings.occlusion = _occlusion_step(run, masks_for, findings.notes)
    return findings


def masks_fn(faces: Any, spec: Any = None) -> Callable[[np.ndarray], np.ndarray] | None:
    """Ground-truth AU regions for dataset indices, when the data can render them (SynthFACS, either style): at the
    rendered size, or with ``spec`` in the frame of the model's input and reconstruction windows (drawn at the
    rendered size, then ``spec``'s resize/crop, :func:`captum_fau.inputs.model_inputs.map_masks`)."""
    meta = getattr(faces, "meta", None) or {}
    if getattr(faces, "name", "") not in ("synthfacs", "synthfacs-photo") or "seed" not in meta:
        return None
    from captum_fau.inputs.model_inputs import map_masks
    from captum_fau.synthfacs import region_masks

    names = getattr(faces, "names", None)

    def masks_for(indices: np.ndarray) -> np.ndarray:
        global_idx = np.asarray(names)[indices].astype(np.int64) if names is not None else np.asarray(indices)
        global_idx = global_idx + int(meta.get("start", 0))
        masks = region_masks(meta["seed"], global_idx, size=meta["size"], mode=meta["mode"],
                             n_subjects=meta["n_subjects"], style=meta.get("style", "cartoon"))  # fmt: skip
        return masks if spec is None else map_masks(spec, masks)

    return masks_for


def run_probes(run: Any, labels: dict[str, np.ndarray], faukl: Any | None) -> ProbeFindings:
    """The probe steps the run asked for, timed in ``run.timings``; their notes join ``run.notes``."""
    started = time.perf_counter()
    findings = causal_step(run, faukl, masks_fn(run.faces))
    run.timings["causal"] = time.perf_counter() - started
    started = time.perf_counter()
    with np.load(run.out / "maxima.npz", allow_pickle=False) as z:
        order = z["indices"]
    importance_step(run, labels, order, findings)
    facs_step(run, findings, faukl)
    run.timings["importance"] = time.perf_counter() - started
    run.notes.extend(findings.notes)
    return findings


def _floor_note(result: Any) -> str | None:
    """A note when the faces are too few for the tests to reach q < alpha easily: the smallest two-sided sign-flip p
    (exact up to 16 faces) against the BH level a single pair needs."""
    p_min = max(2.0 / 2**result.n_faces, 1.0 / (1 + int(result.meta.get("options", {}).get("n_permutations", 2000))))
    tests = int(np.isfinite(result.p).sum())
    needed = int(np.ceil(p_min * tests / result.alpha))
    if needed <= max(1, tests // 20):
        return None
    return (
        f"AU probe: with {result.n_faces} faces the smallest sign-flip p is {p_min:.2g}, so over {tests} filter × AU "
        f"tests a pair reaches q < {result.alpha:g} only when at least {needed} pairs sit at that floor; "
        "'no causal AU' may mean too few faces (raise --probe-faces / ProbeOptions(n_faces=...))."
    )


def _sample(n: int, limit: int, seed: int) -> np.ndarray:
    if limit <= 0 or n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _occlusion_step(run: Any, masks_for: Any, notes: list[str]) -> Any | None:
    """AU-region occlusion on the run's own data when it carries ground-truth AU regions (SynthFACS)."""
    if masks_for is None:
        notes.append("AU-region occlusion skipped: the data carry no AU regions (SynthFACS renders them; real photos "
                     "need 68-point landmarks, see captum_fau.probes.landmark_regions and AUOcclusion).")  # fmt: skip
        return None
    from captum_fau.probes import AUOcclusion, OcclusionResult

    path = run.out / "occlusion.npz"
    rows = _sample(len(run.faces), OCCLUSION_IMAGES, run.config.seed)
    run.manifest.key("occlusion", model=run.manifest.fingerprint["model"], data=run.manifest.fingerprint["data"],
                     layer=run.layer, rows=rows.tolist(), fill="mean")  # fmt: skip
    if run.manifest.finished("occlusion", path):
        return OcclusionResult.load(path)
    try:
        occlusion = AUOcclusion(run.model, run.layer, run.spec)
    except LayerError as err:  # the layer sees the whole face: the result would not be local
        notes.append(f"AU-region occlusion skipped: {err}")
        return None
    from captum_fau.inputs.model_inputs import raw_item

    items = [raw_item(run.faces, int(i)) for i in rows]
    images = np.stack([_gray_uint8(item["image"]) for item in items])
    masks = masks_for(rows)
    labels = np.stack([np.asarray(item.get("aus"), dtype=np.float64) for item in items])
    au_ids = tuple(run.faces.au_ids)
    subjects = [item.get("subject") for item in items]
    # Batches of 16: every batch is padded to full size (bit-identical maxima), and an AU is present on few images.
    result = occlusion.run(images, masks, np.nan_to_num(labels) > 0, au_ids, batch_size=16,
                           units=None if None in subjects else np.asarray(subjects), progress=run.progress)  # fmt: skip
    result.meta["images"] = f"{len(rows)} of {len(run.faces)} images (seeded sample, seed {run.config.seed})"
    result.save(path)
    run.manifest.mark("occlusion", {"images": len(rows)})
    return result


def _gray_uint8(image: Any) -> np.ndarray:
    """A raw face crop ``[C, H, W]`` (uint8, or float in [0, 1]) as uint8 gray ``[H, W]`` (channels averaged)."""
    array = np.asarray(image)
    values = array.astype(np.float64).mean(0)
    return (values if array.dtype == np.uint8 else np.clip(values, 0, 1) * 255).round().astype(np.uint8)


def importance_step(run: Any, labels: dict[str, np.ndarray], order: np.ndarray, findings: ProbeFindings) -> None:
    """Filter ablation on the run's own model inputs (``importance.npz``); emotions mapped by the run's mapping."""
    if not run.config.importance:
        return
    emotions = labels.get("emotion")
    if emotions is None:
        findings.notes.append("Filter importance skipped: the data has no emotion labels.")
        return
    if run.mapping is None or not hasattr(run.dataset, "tensors"):
        findings.notes.append("Filter importance skipped: the data's emotions cannot be mapped to the model's classes "
                              "by name (see the class-mapping notes; pass --class-names).")  # fmt: skip
        return
    from captum_fau.probes import FilterImportance, ImportanceResult

    config = run.config
    path = run.out / "importance.npz"
    keep = _sample(len(order), config.importance_images, config.seed)
    units = labels.get("subject", labels.get("sequence"))
    from captum_fau._utils.fingerprint import hash_arrays

    run.manifest.key("importance", model=run.manifest.fingerprint["model"], data=run.manifest.fingerprint["data"],
                     layer=run.layer, labels=hash_arrays(emotions, units, order),
                     classes=list(run.mapping.model_classes), data_classes=list(run.mapping.data_classes),
                     rows=hash_arrays(keep))  # fmt: skip
    if run.manifest.finished("importance", path):
        findings.importance = ImportanceResult.load(path)
        return
    imp = FilterImportance(run.model, run.layer, class_names=run.mapping.model_classes)
    x = run.dataset.tensors(order[keep])
    findings.importance = imp.run(x, np.asarray(emotions)[keep].astype(np.int64), run.mapping.data_classes,
                                  units=None if units is None else np.asarray(units)[keep],
                                  batch_size=config.batch_size, progress=run.progress,
                                  cache_dir=run.out / "cache")  # fmt: skip
    findings.importance.meta["images"] = (f"{len(keep)} of {len(order)} images" + (
        f" (seeded sample, seed {config.seed}; importance_images={config.importance_images})"
        if len(keep) < len(order) else ""))  # fmt: skip
    findings.importance.save(path)
    run.manifest.mark("importance", {"images": int(len(keep))})


def facs_step(run: Any, findings: ProbeFindings, faukl: Any | None) -> None:
    """The EMFACS table (``facs.json``) from the importance ranking and the causal / associational AUs."""
    if findings.importance is None:
        if run.config.causal or run.config.importance:
            findings.notes.append(
                "FACS table skipped: it ranks each emotion's filters by their importance, which "
                "needs --importance (importance=True) on data with emotion labels the model's "
                "classes name."
            )
        return
    sources: dict[str, list[str | None]] = {}
    if findings.causal is not None:
        sources["causal"] = findings.causal.top_au
    if findings.association_top is not None:
        sources["association"] = findings.association_top
    elif faukl is not None:
        sources["association"] = faukl.top_aus(run.layer)
    if not sources:
        findings.notes.append("FACS table skipped: no filter has an AU (neither the AU probe, --causal, nor FAU-KL "
                              "on AU-labelled data ran).")  # fmt: skip
        return
    from captum_fau.probes import facs_table

    mode = "zero" if "zero" in findings.importance.modes else findings.importance.modes[0]
    findings.facs = facs_table(findings.importance.ranking(mode), sources, seed=run.config.seed)
    findings.facs.meta["ranking"] = f"{mode} ablation, drop in log p(true class)"
    findings.facs.save(run.out / "facs.json")


__all__ = [
    "OCCLUSION_IMAGES",
    "ProbeFindings",
    "causal_step",
    "check_probes",
    "facs_step",
    "importance_step",
    "masks_fn",
    "probe_options",
    "run_probes",
]
