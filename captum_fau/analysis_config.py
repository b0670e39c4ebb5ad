"""The settings and the result of :func:`captum_fau.analyze.analyze`: :class:`AnalysisConfig`, :class:`AnalysisResult`.

The settings group into the options objects the steps take: :attr:`AnalysisConfig.scan_options`
(:class:`~captum_fau.stats.options.ScanOptions`) and :attr:`AnalysisConfig.read_options`
(:class:`~captum_fau.data.options.ReadOptions`).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from captum_fau.errors import ConfigError, LayerError

if TYPE_CHECKING:  # pragma: no cover
    from captum_fau.concept.options import StatisticsOptions

#: The steps of an analysis, in order.
STEPS = ("scan", "faukl", "accuracy", "sanity", "causal", "occlusion", "importance", "report")


@dataclass
class AnalysisResult:
    """What :func:`analyze` produced (``None`` for skipped parts).

    Attributes:
        out (Path): The output folder.
        topn: :class:`~captum_fau.attr.TopNResult` of the layer's filters.
        faukl: :class:`~captum_fau.concept.FAUKLResult`, or None without AU labels.
        accuracy (dict or None): ``accuracy``, ``confusion``, ``class_names``, ``n``.
        localisation (dict or None): Agreement of FAU-KL with AU regions (SynthFACS).
        featured (list of int): The filters shown in the figures.
        notes (list of str): What was adapted or skipped, and why.
        report (Path or None): ``index.html``.
        timings (dict): Seconds per step (0 for reused steps).
        sanity: :class:`~captum_fau.attr.sanity.SanityCheckResult` of the model-randomisation
            check, or None when it was switched off (``sanity_check=False``).
        probes: :class:`~captum_fau.probe_steps.ProbeFindings` of the causal probes (``causal``,
            ``agreement``, ``occlusion``, ``importance``, ``facs``; None where not run).
    """

    out: Path
    topn: Any
    faukl: Any | None
    accuracy: dict[str, Any] | None
    localisation: dict[str, Any] | None
    featured: list[int]
    notes: list[str] = field(default_factory=list)
    report: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    sanity: Any | None = None
    probes: Any | None = None


@dataclass
class AnalysisConfig:
    """Everything :func:`analyze` needs besides the model and the data, checked on construction.

    Invalid values raise a :mod:`captum_fau.errors` exception here, before any model is loaded
    or any image is read.

    Attributes:
        layer (str): Dotted name of the analysed layer. Default: ``"conv3"``
        out (Path): Output folder (a string is converted). Default: ``"captum-fau-report"``
        n (int): Top images per filter, the paper's N. Default: 10
        rule (str): ``"guided"``, ``"deconv"`` or ``"gradient"``. Default: ``"guided"``
        relu_like (bool): Apply ``deconv``/``guided`` to non-ReLU activations (GELU, SiLU, clamp, ...)
            as if they were ReLUs; without it such models are refused for those rules (see
            :class:`~captum_fau.attr.TopNDeconv`). Default: False
        checkpoint (str or Path, optional): Safetensors weights for ``timm:``/``module:`` model
            specs (or to replace a zoo model's). Default: None
        au_csv (str or Path, optional): AU labels (OpenFace / py-feat csv) for ``folder:`` data.
        cache (bool): Cache the face crops of ``ckplus:``/``folder:`` data in
            :func:`~captum_fau.data.cache.default_cache_dir`; False writes nothing outside ``out``. Default: True
        n_featured (int): Filters shown in the figures. Default: 10
        statistics (StatisticsOptions, optional): Every FAU-KL statistics setting
            (:class:`~captum_fau.concept.options.StatisticsOptions`: bins, permutations and their
            adaptive refinement ``max_permutations``, intervals, test statistic, ``stratify``, ...).
            Default: None (``StatisticsOptions(seed=seed)``)
        permutations (int, optional): Kept one release: sets ``statistics.n_permutations``. Default: None
        bootstrap (int, optional): Kept one release: 0 sets ``statistics.intervals=False``. Default: None
        stratify (str, optional): Kept one release: sets ``statistics.stratify`` (a per-image label such
            as ``"emotion"`` whose levels become strata of extra FAU-KL tests). Default: None
        batch_size (int): Images per forward pass. Default: 64
        device (str or torch.device): Default: ``"cpu"``
        seed (int): Seeds data rendering and the statistics. Default: 0
        progress (bool): Progress bars. Default: True
        resume (bool): Reuse finished steps found in ``out``; an interrupted scan continues
            from its last checkpoint. Default: True
        title (str, optional): Report title. Default: None
        checkpoint_every_s (float): Seconds between scan checkpoints (in ``out/scan-checkpoint``,
            removed once the scan's results are written); the scan also checkpoints when it ends,
            and every other step records its result when it finishes. Default: 60
        sanity_check (bool): Run the model-randomisation check of the reconstructions
            (:meth:`~captum_fau.attr.TopNDeconv.sanity_check` on the top 3 images of
            ``sanity_filters`` filters), written to ``out/sanity.json`` and shown in the report;
            False skips it, with a note that the pictures are unchecked. Default: True
        topn_budget_mb (float): Size budget of the reconstructions kept (``topn.safetensors``, stored as
            float16 with 8-bit input windows): the featured filters are always reconstructed, then the
            significant ones and the others by strength while they fit; the rest stay pending (their
            top-N images are found, not back-projected), as the report and ``results.json`` say, and
            ``captum-fau topn --out OUT --filters ...`` completes them. 0 reconstructs every filter. Default: 48
        sanity_filters (int): Filters the sanity check looks at: the featured ones first, then a
            sample of the other live filters seeded by ``seed`` (the choice is stated in the report
            and ``results.json``); 0 checks every filter. Default: 32
        class_names (str or tuple of str, optional): The model's class names in output order
            (``"angry,disgust,fear,happy,sad,surprise,neutral"`` or a sequence), matched to the
            data's emotions by name. Default: None (the model's ``class_names`` / ``id2label`` /
            ``label_names``; without names accuracy is skipped with a note)
        face_crop (str): Faces in ``folder:`` data: ``"auto"``, ``"haar"`` or ``"none"``
            (see :func:`captum_fau.data.folder.load_folder`). Default: ``"auto"``
        stream (bool, optional): ``ckplus:`` / ``folder:`` specs as streamed data
            (:class:`~captum_fau.data.lazy.LazyFaceSet`: the same items, cut per read in worker
            processes); ``None`` streams sources of 20,000 files or more. Default: None
        workers (int, optional): Worker processes of streamed data. Default: the usable cores, at most 8
        input_spec (InputSpec or dict, optional): How raw face crops become the model's input
            (:class:`~captum_fau.inputs.spec.InputSpec`, or a dict of its fields such as
            ``{"size": 48, "mean": 0.5, "std": 0.5}``). Given fields win over what the model
            declares, with a note; the rest is discovered (:func:`captum_fau.inputs.resolve.model_inputs`).
            Default: None (all discovered)
        input_spec_sources (dict, optional): Field -> how it was given (the CLI passes its flag
            names, :data:`~captum_fau.inputs.spec.CLI_FLAGS`). Default: None (``"explicit"``)
        causal (bool): Run the counterfactual AU probe (:class:`~captum_fau.probes.AUProbe`: SynthFACS faces
            rendered at the run's input spec, each AU swept 0..5) and, on data with ground-truth AU regions,
            the AU-region occlusion; ``causal.npz`` and ``results.json["causal"]``. Default: False
        importance (bool): Ablate every filter of the layer (:class:`~captum_fau.probes.FilterImportance`) on
            the data's model inputs, emotions mapped to the model's classes by name, units = subjects; then
            the EMFACS table. ``importance.npz``, ``facs.json``, ``results.json["importance"]`` and
            ``["facs"]``. Default: False
        probe_options (ProbeOptions, optional): Faces, intensities, precision and tests of the AU probe.
            Default: None (``ProbeOptions(seed=seed)``: 64 faces)
        importance_images (int): Images the ablation reads at most (a sample seeded by ``seed``); 0: all.
            Default: 2000

    Examples::

        >>> config = AnalysisConfig(layer="conv2", n=5, progress=False)
        >>> config.out
        PosixPath('captum-fau-report')
        >>> AnalysisConfig(n=0)
        Traceback (most recent call last):
        ...
        captum_fau.errors.ConfigError: AnalysisConfig.n must be an integer >= 1, got 0; ...
    """

    layer: str = "conv3"
    out: Path = Path("captum-fau-report")
    n: int = 10
    rule: str = "guided"
    relu_like: bool = False
    checkpoint: str | Path | None = None
    au_csv: str | Path | None = None
    cache: bool = True
    n_featured: int = 10
    statistics: StatisticsOptions | None = None
    permutations: int | None = None
    bootstrap: int | None = None
    stratify: str | None = None
    batch_size: int = 64
    device: str | torch.device = "cpu"
    seed: int = 0
    progress: bool = True
    resume: bool = True
    title: str | None = None
    checkpoint_every_s: float = 60.0
    sanity_check: bool = True
    sanity_filters: int = 32
    topn_budget_mb: float = 48.0
    class_names: str | tuple[str, ...] | None = None
    face_crop: str = "auto"
    stream: bool | None = None
    workers: int | None = None
    input_spec: Any = None
    input_spec_sources: dict[str, str] | None = None
    causal: bool = False
    importance: bool = False
    probe_options: Any = None
    importance_images: int = 2000

    @property
    def read_options(self) -> Any:
        """The :class:`~captum_fau.data.options.ReadOptions` of ``data`` given as a spec: ``face_crop``,
        ``cache``, ``stream`` (``lazy``), ``workers``, ``progress``."""
        from captum_fau.data.options import ReadOptions

        return ReadOptions(face_crop=self.face_crop, cache=self.cache, lazy=self.stream, workers=self.workers,
                           progress=self.progress)  # fmt: skip

    @property
    def scan_options(self) -> Any:
        """The :class:`~captum_fau.stats.options.ScanOptions` of the analysis' one pass over the data: top-``n``
        per filter with the images kept for reconstruction, ``batch_size``, ``device``, ``progress``, checkpoints
        every ``checkpoint_every_s``, rows gathered on rank 0."""
        from captum_fau.stats.options import ScanOptions

        return ScanOptions(top_n=self.n, batch_size=self.batch_size, device=self.device, progress=self.progress,
                           keep_inputs=True, checkpoint_every_s=self.checkpoint_every_s, gather="rank0")  # fmt: skip

    def __post_init__(self) -> None:
        from captum_fau.attr.rules import check_rule
        from captum_fau.inputs.classes import parse_class_names
        from captum_fau.data.folder import check_face_crop
        from captum_fau.inputs.spec import InputSpec

        if self.class_names is not None:
            self.class_names = parse_class_names(self.class_names)
        check_face_crop(self.face_crop)
        if self.input_spec is not None and not isinstance(self.input_spec, (InputSpec, dict)):
            raise ConfigError(
                f"AnalysisConfig.input_spec must be an InputSpec or a dict of its fields, got "
                f"{type(self.input_spec).__name__}; e.g. input_spec={{'size': 48, 'mean': 0.5, 'std': 0.5}}."
            )

        if not isinstance(self.relu_like, bool):
            raise ConfigError(f"AnalysisConfig.relu_like must be True or False, got {self.relu_like!r}.")
        if not isinstance(self.layer, str) or not self.layer.strip():
            raise LayerError(f"AnalysisConfig.layer must be a dotted module name such as 'conv3', got {self.layer!r}.")
        if not isinstance(self.out, (str, os.PathLike)):
            raise ConfigError(f"AnalysisConfig.out must be a folder path, got {type(self.out).__name__}.")
        if not str(self.out).strip():
            raise ConfigError("AnalysisConfig.out is empty; name a folder for the report, e.g. out='my-report' "
                              "(out='.' for the current folder).")  # fmt: skip
        self.out = Path(self.out)
        for name in ("checkpoint", "au_csv"):
            if not isinstance(getattr(self, name), (str, os.PathLike, type(None))):
                raise ConfigError(
                    f"AnalysisConfig.{name} must be a file path, got {type(getattr(self, name)).__name__}."
                )
        for name in ("n", "n_featured", "batch_size"):
            _check_count(name, getattr(self, name), 1)
        budget = self.topn_budget_mb
        if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)) or not budget >= 0:
            raise ConfigError(
                f"AnalysisConfig.topn_budget_mb must be a number of megabytes >= 0 (0: every filter), got {budget!r}; "
                "pass e.g. topn_budget_mb=48."
            )
        every = self.checkpoint_every_s
        if isinstance(every, bool) or not isinstance(every, (int, float, np.integer, np.floating)) or not every >= 0:
            raise ConfigError(
                f"AnalysisConfig.checkpoint_every_s must be a number of seconds >= 0, got {every!r}; "
                "pass e.g. checkpoint_every_s=60."
            )
        for name in ("permutations", "bootstrap", "seed", "sanity_filters"):
            if getattr(self, name) is not None or name in ("seed", "sanity_filters"):
                _check_count(name, getattr(self, name), 0)
        self.statistics = _statistics_options(self)
        if self.workers is not None:
            _check_count("workers", self.workers, 0)
        check_rule(self.rule)
        if not isinstance(self.sanity_check, bool):
            raise ConfigError(f"AnalysisConfig.sanity_check must be True or False, got {self.sanity_check!r}.")
        _check_probe_settings(self)


def _check_probe_settings(config: AnalysisConfig) -> None:
    from captum_fau.probes import ProbeOptions

    for name in ("causal", "importance"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(f"AnalysisConfig.{name} must be True or False, got {getattr(config, name)!r}.")
    if config.probe_options is not None and not isinstance(config.probe_options, ProbeOptions):
        raise ConfigError(
            f"AnalysisConfig.probe_options must be a ProbeOptions, got {type(config.probe_options).__name__}; pass "
            "probe_options=ProbeOptions(n_faces=16) (from captum_fau.probes)."
        )
    _check_count("importance_images", config.importance_images, 0)


def _statistics_options(config: AnalysisConfig) -> Any:
    """``config.statistics`` with the fields of earlier releases (``permutations``, ``bootstrap``, ``stratify``)
    mapped onto it; those fields are then cleared, so that ``replace(config, permutations=...)`` maps again."""
    from captum_fau.concept.options import StatisticsOptions

    options = config.statistics
    if options is None:
        options = StatisticsOptions(seed=config.seed)
    elif not isinstance(options, StatisticsOptions):
        raise ConfigError(
            f"AnalysisConfig.statistics must be a StatisticsOptions, got {type(options).__name__}; "
            "pass e.g. statistics=StatisticsOptions(n_permutations=2000)."
        )
    old = {"n_permutations": config.permutations, "stratify": config.stratify,
           "intervals": None if config.bootstrap is None else config.bootstrap > 0}  # fmt: skip
    changes = {key: value for key, value in old.items() if value is not None}
    config.permutations = config.bootstrap = config.stratify = None
    return options.replace(**changes) if changes else options


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"AnalysisConfig.{name} must be an integer >= {minimum}, got {value!r}; pass e.g. {name}={max(minimum, 1)}."
        )


def _resolve_config(config: AnalysisConfig | None, overrides: dict[str, Any]) -> AnalysisConfig:
    """``config`` with keyword ``overrides`` applied (and validated again)."""
    if config is not None and not isinstance(config, AnalysisConfig):
        raise ConfigError(
            f"analyze's third argument is an AnalysisConfig, got {type(config).__name__}; "
            "pass the layer and the output folder by keyword (layer='conv3', out='report')."
        )
    known = {f.name for f in fields(AnalysisConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        hints = [
            f"{key} (did you mean {', '.join(difflib.get_close_matches(key, known, 1)) or '?'})" for key in unknown
        ]
        raise ConfigError(f"analyze got unknown options {', '.join(hints)}; it accepts {', '.join(sorted(known))}.")
    if config is None:
        return AnalysisConfig(**overrides)
    return replace(config, **overrides) if overrides else config


__all__ = ["STEPS", "AnalysisConfig", "AnalysisResult"]
