"""FAUKL: the FAU-filter association (Khorrami et al. 2015, §4.4) as a Captum concept interpreter."""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from captum.concept import Concept, ConceptInterpreter
from torch import nn

from captum_fau._utils.modules import layer_name
from captum_fau.data.au import parse_au
from captum_fau.concept.result import FAUKLResult
from captum_fau.concept.options import Design, StatisticsOptions
from captum_fau.concept.statistics import fau_kl_statistics
from captum_fau.errors import ConfigError, LabelError, LayerError


def _underlying_dataset(data: Any) -> Any:
    return data.dataset if isinstance(data, torch.utils.data.DataLoader) else data


def _label_columns(dataset: Any, extras: dict[str, Any], order: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image label columns in scan order: the dataset's label arrays (``subjects``,
    ``sequences``, ``emotions``, ...), else the label entries of the items the scan read."""
    labels: dict[str, np.ndarray] = {}
    for key, attribute in (("subject", "subjects"), ("sequence", "sequences"), ("emotion", "emotions")):
        value = getattr(dataset, attribute, None)
        if value is not None:
            labels[key] = np.asarray(value)[order]
    for key, value in extras.items():
        if key not in labels:
            arr = np.asarray(torch.as_tensor(value).numpy() if isinstance(value, torch.Tensor) else value)
            if arr.ndim == 1 and len(arr) == len(order):
                labels[key] = arr
    return labels


def _resolve_groups(groups: Any, labels: dict[str, np.ndarray], order: np.ndarray) -> np.ndarray | str | None:
    """Permutation units in scan order: ``"auto"`` (kept for :func:`design_from_labels`), None, or the given ids."""
    if isinstance(groups, str):
        if groups != "auto":
            raise ConfigError(f"groups={groups!r} is not known; use 'auto', None or an array of ids.")
        return groups
    if groups is None:
        return None
    ids = np.asarray(groups)
    if ids.ndim != 1 or (len(order) and int(order.max()) >= len(ids)):
        raise LabelError(
            f"groups has shape {ids.shape} but the data has {len(order)} images; "
            "give one group id per image in dataset order."
        )
    return ids[order]


def design_from_labels(labels: Mapping[str, np.ndarray], stratify: str | None = None,
                       groups: np.ndarray | str | None = "auto") -> Design:  # fmt: skip
    """The study design the tests act on, from per-image label columns (``"subject"``, ``"sequence"``, ...).

    ``groups="auto"`` makes subjects the permutation units where known (AUs cluster by subject), else
    sequences; the interval clusters are the subjects, and sequences nested in subjects give the
    within-unit structure the permutations keep. Given ``[M]`` ids are the units as they are.

    Args:
        labels (mapping): Label name -> ``[M]`` ids in image order (``"aus"`` is ignored).
        stratify (str, optional): The label whose levels become strata. Default: None
        groups: ``"auto"``, ``None`` (images independent) or ``[M]`` unit ids. Default: ``"auto"``

    Returns:
        Design

    Raises:
        LabelError: ``stratify`` names a label the data does not have.

    Examples::

        >>> d = design_from_labels({"subject": np.array([0, 0, 1]), "sequence": np.array([0, 1, 2])})
        >>> d.unit, d.sequences.tolist()
        ('subject', [0, 1, 2])
    """
    subjects, sequences = labels.get("subject"), labels.get("sequence")
    auto = isinstance(groups, str)
    group_ids = (subjects if subjects is not None else sequences) if auto else groups
    unit = "group"
    if group_ids is not None and subjects is not None and np.array_equal(group_ids, subjects):
        unit = "subject"
    elif group_ids is not None and sequences is not None and np.array_equal(group_ids, sequences):
        unit = "sequence"
    strata = None
    if stratify is not None:
        if stratify not in labels:
            raise LabelError(
                f"stratify={stratify!r}: the data has no such per-image label; it has "
                f"{sorted(k for k in labels if k != 'aus')}. Use one of those or load the labels."
            )
        strata = labels[stratify]
    nested = sequences if unit != "sequence" else None
    return Design(group_ids, nested, subjects if auto else None, strata, unit)


class FAUKL(ConceptInterpreter):
    r"""Which action unit does each filter respond to?

    For filter ``i`` of a layer and AU ``j``, compares the histogram ``Q_ij`` of the filter's
    per-image maximum activation over the images that show AU ``j`` with the histogram ``R_ij``
    over the images that do not, scoring the pair with ``D_KL(Q_ij || R_ij)`` (the paper's
    Table 4 and Figure 5), and adds what the paper lacked: permutation p-values of the KL and of the
    AUROC (subject-level when subject ids exist, else sequence-level; a warning without ids),
    Benjamini-Hochberg q-values, a null-standardised KL (the default rule for a filter's top AU),
    cluster-robust AUROC intervals and, with ``stratify``, tests within the levels of a label such as
    the emotion (see :mod:`captum_fau.concept.statistics`).

    Each AU is a :class:`captum.concept.Concept` (id = its column, name = its AU id); layers are
    given by name as in Captum's ``TCAV``; the dataset is read once for all concepts and layers
    by the shared scan engine (:func:`captum_fau.stats.scan.scan`).

    Args:
        model (nn.Module): Any model whose analysed layers output ``[B, C, H, W]``.
        layers (str or sequence of str): Layer names, e.g. ``"conv3"`` or ``["conv2", "conv3"]``.
        options (StatisticsOptions, optional): Every statistics setting (bins, permutations and
            their adaptive refinement, intervals, test statistic, seed, ``stratify``: a per-image
            label such as ``"emotion"`` whose levels become permutation strata). Default:
            ``StatisticsOptions()``
        batch_size (int): Images per forward pass. Default: 64
        device (str or torch.device, optional): Device of the scan (default: the model's).
        progress (bool): tqdm progress bars. Default: True
        **keywords: The statistics keywords of earlier releases (``bins=``, ``n_permutations=``,
            ``n_bootstrap=``, ``stratify=``, ...), mapped onto ``options``; kept for one release.

    Examples::

        >>> from captum_fau import zoo
        >>> from captum_fau.concept import FAUKL, StatisticsOptions
        >>> from captum_fau.data.synthfacs import load_synthfacs
        >>> model = zoo.load("zerobias-synthfacs-8class")           # doctest: +SKIP
        >>> fau = FAUKL(model, ["conv3"], StatisticsOptions(n_permutations=2000))  # doctest: +SKIP
        >>> result = fau.interpret(load_synthfacs(1308, mode="independent"))  # doctest: +SKIP
        >>> print(result.table(filters=range(10)))                   # doctest: +SKIP
        >>> result.scores["0"]["conv3"]["kl"].shape                  # doctest: +SKIP
        torch.Size([256])
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Sequence[str],
        options: StatisticsOptions | None = None,
        *,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        progress: bool = True,
        **keywords: Any,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"FAUKL needs a torch.nn.Module, got {type(model).__name__}.")
        if options is not None and not isinstance(options, StatisticsOptions):
            raise ConfigError(f"options must be a StatisticsOptions, got {type(options).__name__}.")
        super().__init__(model)
        names = [layers] if isinstance(layers, str) else list(layers)
        if not names or not all(isinstance(n, str) for n in names):
            raise LayerError(
                f"layers must be a layer name or a list of names (as in TCAV), got {layers!r}; e.g. layers=['conv3']."
            )
        for name in names:
            layer_name(model, name)
        self.layers: list[str] = names
        self.statistics_options = StatisticsOptions.from_keywords(options, **keywords)  # checked now, not after a scan
        self.stratify = self.statistics_options.stratify
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.concepts: list[Concept] = []

    @property
    def options(self) -> dict[str, Any]:
        """The statistics options as a dict (the form of earlier releases)."""
        from dataclasses import asdict

        return asdict(self.statistics_options)

    @staticmethod
    def make_concepts(au_ids: Sequence[str]) -> list[Concept]:
        """One :class:`captum.concept.Concept` per AU: id = its column index, name = its AU id.

        The concepts carry no data iterator: an AU's examples are the labelled images of the
        one dataset given to :meth:`interpret`.
        """
        return [Concept(id=j, name=parse_au(au), data_iter=None) for j, au in enumerate(au_ids)]

    def interpret(
        self,
        data: Any,
        *,
        au_ids: Sequence[str] | None = None,
        groups: str | np.ndarray | Sequence[Any] | None = "auto",
        additional_forward_args: Any = None,
    ) -> FAUKLResult:
        r"""Score every (filter, AU) pair of the layers over one labelled dataset.

        Args:
            data (Dataset or DataLoader): Items are dicts with ``"image"`` and ``"aus"`` (``[J]``
                intensities, ``> 0`` = present) and optionally ``"subject"`` -- e.g. a
                :class:`~captum_fau.data.base.FaceSet`. Read once.
            au_ids (sequence of str, optional): The ``J`` AU ids of the ``"aus"`` columns; taken
                from ``data.au_ids`` (FaceSet) when omitted.
            groups: ``"auto"`` (subject ids where known, else sequence ids, else none with a
                warning), ``None`` (images independent), or ``[M]`` ids in dataset order. Label
                permutations act on whole groups; AUROC intervals cluster on subjects.
            additional_forward_args: Passed to the model after the images.

        Returns:
            FAUKLResult: Statistics per layer; ``result.scores[concept_key][layer]`` as in TCAV.

        Raises:
            LabelError: the data carries no AU labels, the AU ids do not match the label
                columns, or groups are misaligned.
            LayerError: a layer's output is not ``[B, C, H, W]``.
            StatisticsError: too few images for the bins.
        """
        from captum_fau.stats.scan import scan

        dataset = _underlying_dataset(data)
        if au_ids is None:
            au_ids = getattr(dataset, "au_ids", None)
            if not au_ids:
                raise LabelError(
                    "The data has no AU labels (no au_ids), and FAU-KL needs them. Load data with AU labels: "
                    "load_data_spec('folder:PATH', au_csv='openface_or_pyfeat.csv'), 'ckplus:PATH' (its FACS "
                    "folder) or 'synthfacs:N'; if your items carry an 'aus' entry, name its columns with "
                    "au_ids=['AU1', 'AU2', ...]."
                )
        au_ids = tuple(parse_au(a) for a in au_ids)
        result = scan(
            self.model, self.layers, data, batch_size=self.batch_size, device=self.device,
            progress=self.progress, additional_forward_args=additional_forward_args,
        )  # fmt: skip
        if "aus" not in result.extras:
            raise LabelError(
                "The data has no AU labels: items must be dicts with an 'aus' entry ([J] intensities), "
                "e.g. a FaceSet loaded with AU labels (CK+ FACS files, an AU CSV, or SynthFACS)."
            )
        aus = np.asarray(torch.as_tensor(result.extras["aus"]).float().numpy())
        order = result.indices.numpy()
        labels = _label_columns(dataset, result.extras, order)
        design = design_from_labels(labels, self.stratify, _resolve_groups(groups, labels, order))
        maxima = {name: layer.maxima.float().numpy() for name, layer in result.layers.items()}
        meta = {"model": type(self.model).__name__, "dataset": repr(dataset)[:200]}
        return self.interpret_activations(maxima, aus, au_ids=au_ids, design=design, meta=meta)

    def interpret_activations(
        self,
        maxima: dict[str, np.ndarray] | np.ndarray,
        aus: np.ndarray,
        *,
        au_ids: Sequence[str],
        design: Design | None = None,
        meta: dict[str, Any] | None = None,
        **ids: Any,
    ) -> FAUKLResult:
        """The statistics from per-image maxima already computed (e.g. a saved scan).

        Args:
            maxima (dict or np.ndarray): Layer name -> ``[M, C]`` per-image channel maxima (an
                array is taken as the first layer's).
            aus (np.ndarray): ``[M, J]`` AU labels aligned with the rows of ``maxima``.
            au_ids (sequence of str): The ``J`` AU ids.
            design (Design, optional): ``[M]`` permutation units (subjects, else sequences),
                sequence ids, interval clusters (subjects) and strata.
            meta (dict, optional): Provenance stored with the result.
            **ids: The keywords of earlier releases: ``groups``, ``sequences``,
                ``bootstrap_groups`` (the interval clusters), ``strata``, ``unit``.

        Returns:
            FAUKLResult
        """
        design = _design(design, ids)
        if not isinstance(maxima, dict):
            maxima = {self.layers[0]: np.asarray(maxima)}
        au_ids = tuple(parse_au(a) for a in au_ids)
        aus = np.asarray(aus)
        if aus.ndim != 2 or aus.shape[1] != len(au_ids):
            raise LabelError(
                f"AU labels have shape {aus.shape} but {len(au_ids)} au_ids were given; "
                "they must be [n_images, len(au_ids)]."
            )
        self.concepts = self.make_concepts(au_ids)
        meta = dict(meta or {})
        for name, acts in maxima.items():
            if len(acts) != len(aus):
                raise LabelError(
                    f"Layer {name!r} has activations for {len(acts)} images but there are {len(aus)} AU label "
                    "rows; labels must be aligned with the images."
                )
        # Loaders mark images whose AUs were never coded (e.g. a CK+ sequence without a FACS
        # file) with NaN rows: "unknown" is neither present nor absent, so those images leave
        # the analysis, and the result says how many did.
        coded = ~np.isnan(aus.astype(np.float64)).any(axis=1) if aus.dtype != bool else np.ones(len(aus), bool)
        if not coded.all():
            n_uncoded = int((~coded).sum())
            warnings.warn(f"FAU-KL: {n_uncoded} image(s) without AU coding (NaN labels) are left out.", stacklevel=2)
            meta["images_without_au_coding"] = n_uncoded
            aus = aus[coded]
            maxima = {name: np.asarray(acts)[coded] for name, acts in maxima.items()}
            design = design.subset(coded)
        if design.strata is not None and len(np.asarray(design.strata)) != len(aus):
            raise LabelError(f"strata have {len(np.asarray(design.strata))} entries but there are {len(aus)} images.")
        if design.groups is None and self.statistics_options.n_permutations > 0:
            from captum_fau.concept.statistics import NO_GROUPS_NOTE

            warnings.warn(f"FAU-KL: {NO_GROUPS_NOTE}", UserWarning, stacklevel=2)
        stats = {}
        n_images = 0
        for name, acts in maxima.items():
            acts = np.asarray(acts)
            n_images = len(acts)
            stats[name] = fau_kl_statistics(acts, aus, self.statistics_options, design, progress=self.progress)
        return FAUKLResult(layers=stats, au_ids=au_ids, n_images=n_images, meta=meta)


def _design(design: Design | None, ids: dict[str, Any]) -> Design:
    """The design from a :class:`Design` and/or the id keywords of earlier releases."""
    names = {"groups": "groups", "sequences": "sequences", "bootstrap_groups": "clusters", "strata": "strata",
             "unit": "unit"}  # fmt: skip
    unknown = sorted(set(ids) - set(names))
    if unknown:
        raise ConfigError(f"interpret_activations got unknown keywords {unknown}; use design=Design(...).")
    design = Design() if design is None else Design(**vars(design))
    for old, new in names.items():
        if ids.get(old) is not None:
            setattr(design, new, ids[old])
    if design.groups is not None and design.unit == "group" and design.clusters is not None:
        design.unit = "subject" if np.array_equal(np.asarray(design.groups), np.asarray(design.clusters)) else "group"
    return design


__all__ = ["FAUKL", "design_from_labels"]
