"""FAUKLResult: FAU-KL scores of every (filter, AU) pair, with tables, bar charts and persistence."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from captum_fau.data.au import au_name, parse_au
from captum_fau.concept.statistics import AssociationStatistics
from captum_fau.errors import ConfigError, LayerError, OutputError, WeightsError
from captum_fau._utils.io import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: Per-pair statistics exposed in :attr:`FAUKLResult.scores` and the CSV export.
SCORE_FIELDS = ("kl", "kl_plain", "kl_corrected", "kl_null_mean", "kl_null_sd", "kl_z", "p", "p_kl", "p_auroc", "q",
                "q_kl", "q_auroc", "auroc", "auroc_se")  # fmt: skip
#: Scores present only when the statistics were stratified.
STRATIFIED_FIELDS = ("p_kl_within", "p_auroc_within", "q_kl_within", "q_auroc_within")

#: How :meth:`FAUKLResult.top_au` can rank the AUs of a filter, and what each rule is.
TOP_AU_RULES = {
    "z": "null-standardised KL, (KL - null mean) / null SD",
    "p": "KL permutation p-value, ties broken by the null-standardised KL",
    "kl": "paper's rule (argmax KL)",
    "kl_plain": "argmax of the paper's unsmoothed KL",
    "kl_corrected": "argmax of KL - null mean",
    "auroc": "argmax AUROC",
}
#: The default rule: significance-consistent (under no association every AU is equally likely to be
#: a filter's top AU, whatever its prevalence; ``scripts/bench_faukl.py`` measures it).
DEFAULT_TOP_AU = "z"
_FORMAT = "captum-fau/faukl-result/1"


@dataclass
class FAUKLResult:
    """FAU-KL association of the filters of one or more layers with a set of AUs.

    ``layers[name]`` holds the :class:`~captum_fau.concept.statistics.AssociationStatistics` of
    a layer (``[C, J]`` arrays). The convenience properties (:attr:`kl`, :attr:`p`, ...) read the
    default layer: the only one, or the first one given.

    Args:
        layers (dict): Layer name -> statistics.
        au_ids (sequence of str): The ``J`` AU ids, in column order.
        n_images (int): Images the statistics were computed from.
        meta (dict): Provenance (model, dataset, settings).

    Examples::

        >>> result = fau.interpret(faces)                       # doctest: +SKIP
        >>> result.top_au(3), result.kl.shape                   # doctest: +SKIP
        ('AU12', (256, 20))
        >>> print(result.table(filters=range(10)))              # doctest: +SKIP
        >>> result.scores["11"]["conv3"]["kl"]                  # TCAV layout  # doctest: +SKIP
    """

    layers: dict[str, AssociationStatistics]
    au_ids: tuple[str, ...]
    n_images: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.au_ids = tuple(parse_au(a) for a in self.au_ids)
        if not self.layers:
            raise ConfigError("FAUKLResult needs at least one layer.")

    # ------------------------------------------------------------------ access
    @property
    def layer(self) -> str:
        """The default layer (the only or first one)."""
        return next(iter(self.layers))

    def stats(self, layer: str | None = None) -> AssociationStatistics:
        """The statistics of ``layer`` (default: :attr:`layer`)."""
        name = self.layer if layer is None else layer
        if name not in self.layers:
            raise LayerError(f"Layer {name!r} is not in this result; it has {list(self.layers)}.")
        return self.layers[name]

    kl = property(lambda self: self.stats().kl, doc="``[C, J]`` smoothed KL of the default layer.")
    kl_plain = property(lambda self: self.stats().kl_plain, doc="``[C, J]`` the paper's plain KL.")
    kl_corrected = property(lambda self: self.stats().kl_corrected, doc="``[C, J]`` null-corrected KL.")
    p = property(lambda self: self.stats().p, doc="``[C, J]`` permutation p-values.")
    q = property(lambda self: self.stats().q, doc="``[C, J]`` Benjamini-Hochberg q-values.")
    ci = property(lambda self: self.stats().auroc_ci, doc="``[C, J, 2]`` interval of the AUROC (the KL has none).")
    auroc_ci = property(lambda self: self.stats().auroc_ci, doc="``[C, J, 2]`` cluster-robust interval of the AUROC.")
    kl_z = property(lambda self: self.stats().kl_z, doc="``[C, J]`` null-standardised KL.")
    q_kl = property(lambda self: self.stats().q_kl, doc="``[C, J]`` BH q-values of the KL permutation test.")
    q_auroc = property(lambda self: self.stats().q_auroc, doc="``[C, J]`` BH q-values of the AUROC permutation test.")
    auroc = property(lambda self: self.stats().auroc, doc="``[C, J]`` AUROC, AU present vs absent.")

    def concept_key(self, au: str | int) -> str:
        """The TCAV-style concept key (the concept id as a string) of an AU id."""
        au_id = parse_au(au)
        if au_id not in self.au_ids:
            raise ConfigError(f"{au_id} is not one of the analysed AUs {list(self.au_ids)}.")
        return str(self.au_ids.index(au_id))

    @property
    def scores(self) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
        """Scores in the layout of Captum's TCAV: ``scores[concept_key][layer][stat]`` -> ``[C]`` tensor.

        ``concept_key`` is the concept id (the AU's column index) as a string, as
        Captum's ``concepts_to_str`` writes it for a single concept; the
        concept names are the AU ids (see :meth:`concept_key`). ``stat`` is one of
        :data:`SCORE_FIELDS` or ``"ci"`` (``[C, 2]``).
        """
        out: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
        for j in range(len(self.au_ids)):
            per_layer: dict[str, dict[str, torch.Tensor]] = {}
            for name, st in self.layers.items():
                keys = SCORE_FIELDS + (STRATIFIED_FIELDS if st.stratified else ())
                entry = {key: torch.from_numpy(np.ascontiguousarray(getattr(st, key)[:, j])) for key in keys}
                entry["ci"] = torch.from_numpy(np.ascontiguousarray(st.auroc_ci[:, j]))
                per_layer[name] = entry
            out[str(j)] = per_layer
        return out

    def _filter(self, filter: int, st: AssociationStatistics) -> int:
        n_filters = st.kl.shape[0]
        if not isinstance(filter, (int, np.integer)) or not 0 <= int(filter) < n_filters:
            raise ConfigError(f"filter {filter!r} is out of range; this layer has filters 0..{n_filters - 1}.")
        return int(filter)

    def _ranking(self, st: AssociationStatistics, f: int, by: str) -> np.ndarray:
        """AU indices of filter ``f`` from strongest to weakest under rule ``by``; untestable AUs last."""
        ok = st.testable_aus.copy()
        if by in ("z", "p") and st.config.get("n_permutations", 1) == 0:
            # no permutation null: the Mann-Whitney z of the AUROC is the significance-consistent score
            n_pos = st.n_present.astype(np.float64)
            n_neg = float(st.config.get("n_images", self.n_images)) - n_pos
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.abs(st.auroc[f] - 0.5) / np.sqrt((n_pos + n_neg + 1) / (12 * n_pos * n_neg))
            return np.lexsort((np.arange(len(ok)), -np.where(ok & np.isfinite(score), score, -np.inf)))
        if by == "p":
            z = np.where(ok & np.isfinite(st.kl_z[f]), st.kl_z[f], -np.inf)
            return np.lexsort((-z, np.where(ok, st.p_kl[f], np.inf)))
        values = st.kl_z[f] if by == "z" else getattr(st, by)[f]
        values = np.where(ok & ~np.isnan(values), values, -np.inf)
        return np.argsort(-values, kind="stable")

    def top_au(self, filter: int, layer: str | None = None, by: str = DEFAULT_TOP_AU) -> str:
        """The AU most strongly associated with ``filter`` under the rule ``by``.

        Untestable AUs (no image with, or none without it) are never chosen while a testable one
        exists.

        Args:
            filter (int): Filter (channel) index.
            layer (str, optional): Layer name (default: :attr:`layer`).
            by (str): ``"z"`` (the default: the null-standardised KL ``(KL - null mean) / null
                SD``, comparable across AU prevalences), ``"p"`` (the KL permutation p, ties by
                ``z``), ``"kl"`` (the paper's rule, argmax KL, which favours rare AUs: their KL is
                larger and noisier), ``"kl_plain"``, ``"kl_corrected"`` or ``"auroc"``. Without
                permutations ``"z"`` and ``"p"`` rank by the AUROC's Mann-Whitney z.
                Default: ``"z"``

        Returns:
            str: AU id such as ``"AU12"``.
        """
        st = self.stats(layer)
        f = self._filter(filter, st)
        if by not in TOP_AU_RULES:
            raise ConfigError(f"by={by!r} is not known; use one of {sorted(TOP_AU_RULES)}.")
        return self.au_ids[int(self._ranking(st, f, by)[0])]

    def top_aus(self, layer: str | None = None, by: str = DEFAULT_TOP_AU) -> list[str]:
        """:meth:`top_au` of every filter of the layer."""
        st = self.stats(layer)
        return [self.top_au(f, layer, by) for f in range(st.kl.shape[0])]

    # ------------------------------------------------------------------ reports
    def table_rows(
        self,
        filters: Sequence[int] | None = None,
        layer: str | None = None,
        alpha: float = 0.05,
        by: str = DEFAULT_TOP_AU,
    ) -> list[dict[str, Any]]:
        """One row per filter: its top AU under rule ``by``, the AU's FACS name and both tests.

        Each row carries the KL with its own permutation test (``p_kl``, ``q_kl``), the AUROC with
        its interval and its own test (``p_auroc``, ``q_auroc``), the within-strata tests when
        computed, ``p``/``q`` of the result's main ``test_statistic`` (named in ``"test"``) and the
        rule (``"rule"``).
        """
        st = self.stats(layer)
        if by not in TOP_AU_RULES:
            raise ConfigError(f"by={by!r} is not known; use one of {sorted(TOP_AU_RULES)}.")
        chosen = range(st.kl.shape[0]) if filters is None else filters
        rows = []
        for f in chosen:
            f = self._filter(int(f), st)
            au = self.top_au(f, layer, by)
            j = self.au_ids.index(au)
            row: dict[str, Any] = {
                "filter": f, "au": au, "name": au_name(au), "rule": TOP_AU_RULES[by],
                "kl": float(st.kl[f, j]), "kl_corrected": float(st.kl_corrected[f, j]), "kl_z": float(st.kl_z[f, j]),
                "p_kl": float(st.p_kl[f, j]), "q_kl": float(st.q_kl[f, j]),
                "auroc": float(st.auroc[f, j]), "auroc_ci_low": float(st.auroc_ci[f, j, 0]),
                "auroc_ci_high": float(st.auroc_ci[f, j, 1]),
                "p_auroc": float(st.p_auroc[f, j]), "q_auroc": float(st.q_auroc[f, j]),
                "test": st.config.get("test_statistic", "auroc"), "p": float(st.p[f, j]), "q": float(st.q[f, j]),
                "significant": bool(st.q[f, j] < alpha),
                "testable": bool(st.testable_aus[j] and not st.dead_filters[f]), "dead": bool(st.dead_filters[f]),
            }  # fmt: skip
            if st.stratified:
                for key in STRATIFIED_FIELDS:
                    row[key] = float(getattr(st, key)[f, j])
            rows.append(row)
        return rows

    def table(
        self, filters: Sequence[int] | None = None, layer: str | None = None, alpha: float = 0.05, by: str = DEFAULT_TOP_AU
    ) -> str:
        """The paper's Table 4 (filter and its FAU), with both tests beside their statistics.

        The AU is chosen by ``by`` (default: the null-standardised KL; ``by="kl"`` is the paper's
        rule, argmax KL). Columns: filter, ``AUxx: FACS name``, KL, its null-standardised value z
        and its permutation q-value, the AUROC with its interval and its own q-value (``*`` where
        ``q < alpha``), and the within-strata q-values when the result is stratified.
        """
        rows = self.table_rows(filters, layer, alpha, by)
        stratified = self.stats(layer).stratified
        header = ["Filter", f"FAU ({TOP_AU_RULES[by]})", "KL", "KL z", "q (KL)", "AUROC [CI]", "q (AUROC)"]
        if stratified:
            header += ["q (KL, within strata)", "q (AUROC, within strata)"]
        star = lambda q: f"{q:.3g}{'*' if q < alpha else ''}"  # noqa: E731
        lines = []
        for r in rows:
            label = f"{r['au']}: {r['name']}" + (" (dead filter)" if r["dead"] else "")
            line = [
                str(r["filter"]), label, f"{r['kl']:.3f}", f"{r['kl_z']:.2f}", star(r["q_kl"]),
                f"{r['auroc']:.3f} [{r['auroc_ci_low']:.3f}, {r['auroc_ci_high']:.3f}]", star(r["q_auroc"]),
            ]  # fmt: skip
            if stratified:
                line += [star(r["q_kl_within"]), star(r["q_auroc_within"])]
            lines.append(line)
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        out = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines]
        notes = [n for n in self.stats(layer).notes if n.startswith("WARNING")]
        return "\n".join(out + notes)

    def plot_bars(
        self,
        filters: Sequence[int],
        layer: str | None = None,
        *,
        alpha: float = 0.05,
        ncols: int = 5,
        value: str = "kl",
        figsize_per_panel: tuple[float, float] = (3.2, 2.4),
    ) -> "Figure":
        """Bar charts of the KL of every AU for each filter, in the layout of the paper's Figure 5.

        The filter's top AU (:meth:`top_au`'s default rule, the null-standardised KL) is drawn in
        red, the others in grey; ``*`` above a bar marks a pair whose KL test has ``q_kl < alpha``.

        Args:
            filters (sequence of int): Filters to draw, one panel each.
            layer (str, optional): Layer (default: :attr:`layer`).
            alpha (float): Significance level for the marks. Default: 0.05
            ncols (int): Panels per row. Default: 5
            value (str): ``"kl"``, ``"kl_plain"`` or ``"kl_corrected"``. Default: ``"kl"``
            figsize_per_panel (tuple): Inches per panel. Default: (3.2, 2.4)

        Returns:
            matplotlib.figure.Figure: The figure, displayed by notebooks (save it with
            ``fig.savefig(path)``); made without pyplot, so the backend stays as it is.
        """
        from captum_fau.viz.figures import new_figure

        st = self.stats(layer)
        filters = [self._filter(int(f), st) for f in filters]
        if not filters:
            raise ConfigError("plot_bars needs at least one filter.")
        if value not in ("kl", "kl_plain", "kl_corrected"):
            raise ConfigError(f"value={value!r} is not known; use 'kl', 'kl_plain' or 'kl_corrected'.")
        ncols = max(1, min(ncols, len(filters)))
        nrows = -(-len(filters) // ncols)
        fig = new_figure((figsize_per_panel[0] * ncols, figsize_per_panel[1] * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        # AUs in numeric order (AU2 before AU15), whatever order the data listed them in.
        digits = [int("".join(c for c in au if c.isdigit()) or 10**9) for au in self.au_ids]
        au_order = sorted(range(len(self.au_ids)), key=lambda j: (digits[j], self.au_ids[j]))
        labels = [self.au_ids[j].replace("AU", "") for j in au_order]
        x = np.arange(len(self.au_ids))
        for ax, f in zip(axes.ravel(), filters):
            heights = np.nan_to_num(getattr(st, value)[f][au_order], posinf=np.nan)
            finite_max = np.nanmax(heights) if np.isfinite(heights).any() else 1.0
            heights = np.where(np.isnan(heights), finite_max, heights)
            top = au_order.index(self.au_ids.index(self.top_au(f, layer)))
            colors = ["#b0b0b0"] * len(x)
            colors[top] = "#d62728"
            ax.bar(x, heights, color=colors, width=0.8)
            for j in np.flatnonzero(st.q_kl[f][au_order] < alpha):
                ax.text(x[j], heights[j], "*", ha="center", va="bottom", fontsize=9)
            ax.set_title(f"Filter {f}: {self.au_ids[au_order[top]]}", fontsize=10)
            ax.set_xticks(x)
            ax.set_xticklabels(labels, fontsize=8, rotation=90)
            ax.tick_params(axis="y", labelsize=8)
            ax.set_xlabel("AU", fontsize=8)
            ax.set_ylabel("KL divergence" if value == "kl" else value, fontsize=8)
        for ax in axes.ravel()[len(filters) :]:
            ax.axis("off")
        fig.suptitle(f"FAU-KL per filter ({self.layer if layer is None else layer}); red: top AU by {TOP_AU_RULES[DEFAULT_TOP_AU]}; * q (KL) < {alpha}", fontsize=9)
        fig.tight_layout()
        return fig

    # ------------------------------------------------------------------ export
    def long_rows(self) -> list[dict[str, Any]]:
        """Every (layer, filter, AU) pair as a flat record (the CSV/JSON export format)."""
        rows = []
        for name, st in self.layers.items():
            n_filters = st.kl.shape[0]
            for f in range(n_filters):
                for j, au in enumerate(self.au_ids):
                    row: dict[str, Any] = {"layer": name, "filter": f, "au": au, "name": au_name(au)}
                    for key in SCORE_FIELDS + (STRATIFIED_FIELDS if st.stratified else ()):
                        row[key] = float(getattr(st, key)[f, j])
                    row["auroc_ci_low"], row["auroc_ci_high"] = float(st.auroc_ci[f, j, 0]), float(st.auroc_ci[f, j, 1])
                    row["n_present"] = int(st.n_present[j])
                    row["testable"] = bool(st.testable_aus[j] and not st.dead_filters[f])
                    rows.append(row)
        return rows

    def to_csv(self, path: str | Path) -> Path:
        """Write every pair's statistics as CSV (one row per layer, filter, AU); atomic."""
        rows = self.long_rows()
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))

    def to_json(self, path: str | Path) -> Path:
        """Write metadata, notes and every pair's statistics as JSON (``inf`` as ``"inf"``); atomic."""
        clean = lambda v: ("inf" if v > 0 else "-inf") if isinstance(v, float) and np.isinf(v) else v  # noqa: E731
        payload = {
            "format": _FORMAT,
            "au_ids": list(self.au_ids),
            "n_images": self.n_images,
            "meta": self.meta,
            "layers": {n: {"config": st.config, "notes": st.notes} for n, st in self.layers.items()},
            "pairs": [{k: clean(v) for k, v in row.items()} for row in self.long_rows()],
        }
        return atomic_write_text(path, json.dumps(payload, indent=1))

    def save(self, path: str | Path) -> Path:
        """Save to one ``.safetensors`` file (arrays; metadata as JSON in its header); atomic."""
        from safetensors.numpy import save

        tensors: dict[str, np.ndarray] = {}
        layer_meta = {}
        for i, (name, st) in enumerate(self.layers.items()):
            for key in AssociationStatistics.ARRAY_FIELDS + AssociationStatistics.OPTIONAL_FIELDS:
                if getattr(st, key) is not None:
                    tensors[f"{i}.{key}"] = np.ascontiguousarray(getattr(st, key))
            layer_meta[name] = {"index": i, "notes": st.notes, "config": st.config}
        header = {
            "format": _FORMAT,
            "json": json.dumps(
                {"au_ids": list(self.au_ids), "n_images": self.n_images, "meta": self.meta, "layers": layer_meta}
            ),
        }
        return atomic_write_bytes(path, save(tensors, metadata=header))

    @classmethod
    def load(cls, path: str | Path) -> "FAUKLResult":
        """Load a result written by :meth:`save`."""
        from safetensors import safe_open
        from safetensors.numpy import load_file

        path = Path(path)
        if not path.is_file():
            raise OutputError(f"No FAU-KL result at {path}; write one with FAUKLResult.save(path).")
        try:
            with safe_open(str(path), framework="numpy") as handle:
                header = handle.metadata() or {}
            arrays = load_file(str(path))
        except Exception as err:  # safetensors raises its own error types
            raise WeightsError(f"{path} is not a readable safetensors file: {err}") from err
        if header.get("format") != _FORMAT:
            raise WeightsError(f"{path} is not a FAU-KL result (format {header.get('format')!r}, expected {_FORMAT!r}).")
        info = json.loads(header["json"])
        layers = {}
        for name, lm in info["layers"].items():
            i = lm["index"]
            missing = [key for key in AssociationStatistics.ARRAY_FIELDS if f"{i}.{key}" not in arrays]
            if missing:
                raise WeightsError(f"{path} lacks the arrays {missing}; it was written by an older version: recompute it.")
            fields = {key: arrays[f"{i}.{key}"] for key in AssociationStatistics.ARRAY_FIELDS}
            fields.update({k: arrays[f"{i}.{k}"] for k in AssociationStatistics.OPTIONAL_FIELDS if f"{i}.{k}" in arrays})
            layers[name] = AssociationStatistics(**fields, notes=list(lm["notes"]), config=dict(lm["config"]))
        return cls(layers=layers, au_ids=tuple(info["au_ids"]), n_images=int(info["n_images"]), meta=info["meta"])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {st.kl.shape[0]} filters" for n, st in self.layers.items())
        return f"FAUKLResult({len(self.au_ids)} AUs x [{shapes}], {self.n_images} images)"


__all__ = ["DEFAULT_TOP_AU", "FAUKLResult", "SCORE_FIELDS", "STRATIFIED_FIELDS", "TOP_AU_RULES"]
