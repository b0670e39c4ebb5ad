"""FAUKLResult: FAU-KL scores of every (filter, AU) pair, with tables, bar charts and persistence."""

from __future__ import annotations

import csv
import io
import json
import re
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
                "q_kl", "q_auroc", "auroc", "auroc_se", "auroc_z", "permutations_used")  # fmt: skip
#: Scores present only when the statistics were stratified.
STRATIFIED_FIELDS = ("p_kl_within", "p_auroc_within", "q_kl_within", "q_auroc_within")

#: How :meth:`FAUKLResult.top_au` can rank the AUs of a filter, and what each rule is.
TOP_AU_RULES = {
    "test": "smallest p of the main test, ties by |AUROC z|",
    "z": "null-standardised KL, (KL - null mean) / null SD",
    "p": "KL permutation p-value, ties broken by the null-standardised KL",
    "kl": "paper's rule (argmax KL)",
    "kl_plain": "argmax of the paper's unsmoothed KL",
    "kl_corrected": "argmax of KL - null mean",
    "auroc": "argmax AUROC",
}
#: The default rule: the AU of the filter's smallest p of the main (AUROC, rank-based) test, so that the AU
#: shown, its statistic, its q, the significance flag, the grid label and the localisation check are
#: one test; under no association every AU is about equally likely, whatever its prevalence
#: (``scripts/bench_faukl.py`` measures it per design).
DEFAULT_TOP_AU = "test"
#: A second AU whose effect ``|AUROC - 1/2|`` is at least this share of the top AU's, and significant too,
#: is named beside it ("nearly as strong": AU6 beside AU12).
NEARLY_AS_STRONG = 0.8
_FORMAT = "captum-fau/faukl-result/1"


#: The statistics' note on an AU that is present in every image or in none (:func:`_coverage_notes`).
_AU_COLUMN = re.compile(r"AU column (\d+) is untestable")


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
        for st in self.layers.values():  # the statistics count AU columns; a reader wants the AU's name
            st.notes = [_AU_COLUMN.sub(self._au_of_column, note) for note in st.notes]

    def _au_of_column(self, match: "re.Match[str]") -> str:
        j = int(match.group(1))
        if not 0 <= j < len(self.au_ids):
            return match.group(0)
        return f"{self.au_ids[j]} ({au_name(self.au_ids[j])}) is not tested"

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
        """Candidate AU indices of filter ``f`` from strongest to weakest under rule ``by``.

        Dead filters have no candidate; untestable AUs are never candidates, nor (for the test-based
        rules) AUs the design left untested.
        """
        if st.dead_filters[f]:
            return np.zeros(0, np.int64)
        ok = st.testable_aus.copy()
        if by in ("test", "p", "z"):
            ok &= np.asarray(st.tested_aus, bool)
        if by == "test" or (by in ("z", "p") and st.config.get("n_permutations", 1) == 0):
            order = np.lexsort((np.arange(len(ok)), -self._strength(st, f), np.where(np.isnan(st.p[f]), 2.0, st.p[f])))
        elif by == "p":
            z = np.where(np.isfinite(st.kl_z[f]), st.kl_z[f], -np.inf)
            order = np.lexsort((-z, np.where(np.isnan(st.p_kl[f]), 2.0, st.p_kl[f])))
        else:
            values = getattr(st, "kl_z" if by == "z" else by)[f]
            order = np.argsort(-np.where(np.isnan(values), -np.inf, values), kind="stable")
        return order[ok[order]]

    def _strength(self, st: AssociationStatistics, f: int) -> np.ndarray:
        """``[J]`` the size of the AUROC effect in null-SD units: ``|auroc_z|``, or the Mann-Whitney z
        without permutations (both prevalence-neutral under no association)."""
        z = np.abs(np.asarray(st.auroc_z)[f])
        n_pos = st.n_present.astype(np.float64)
        n_neg = float(st.config.get("n_images", self.n_images)) - n_pos
        with np.errstate(divide="ignore", invalid="ignore"):
            mw = np.abs(st.auroc[f] - 0.5) / np.sqrt((n_pos + n_neg + 1) / (12 * n_pos * n_neg))
        return np.nan_to_num(np.where(np.isfinite(z), z, mw), nan=-1.0)

    def top_au(self, filter: int, layer: str | None = None, by: str = DEFAULT_TOP_AU) -> str | None:
        """The AU most strongly associated with ``filter`` under the rule ``by``; None if it has none.

        A dead (constant) filter has no AU, and neither has a filter without a testable AU (the
        result never names AU1 with KL 0 for lack of a choice).

        Args:
            filter (int): Filter (channel) index.
            layer (str, optional): Layer name (default: :attr:`layer`).
            by (str): ``"test"`` (the default: the smallest p of the main test, ``p``/``q``, ties
                broken by ``|auroc_z|``, so the AU shown and its q belong to one test), ``"z"``
                (the null-standardised KL), ``"p"`` (the KL permutation p, ties by ``z``), ``"kl"``
                (the paper's rule, argmax KL, which favours rare AUs: their KL is larger and
                noisier; its equal-width bins also let one outlying activation move it),
                ``"kl_plain"``, ``"kl_corrected"`` or ``"auroc"``. Default: ``"test"``

        Returns:
            str or None: AU id such as ``"AU12"``.
        """
        st = self.stats(layer)
        f = self._filter(filter, st)
        if by not in TOP_AU_RULES:
            raise ConfigError(f"by={by!r} is not known; use one of {sorted(TOP_AU_RULES)}.")
        order = self._ranking(st, f, by)
        return self.au_ids[int(order[0])] if len(order) else None

    def top_aus(self, layer: str | None = None, by: str = DEFAULT_TOP_AU) -> list[str | None]:
        """:meth:`top_au` of every filter of the layer."""
        st = self.stats(layer)
        return [self.top_au(f, layer, by) for f in range(st.kl.shape[0])]

    def nearly_as_strong(self, filter: int, layer: str | None = None, alpha: float = 0.05) -> list[str]:
        """Other AUs significant for ``filter`` whose effect is at least 80% of its top AU's (co-occurring AUs).

        Where AU6 nearly always comes with AU12, a filter for one shows both; the table names them.
        """
        st = self.stats(layer)
        f = self._filter(filter, st)
        order = self._ranking(st, f, DEFAULT_TOP_AU)
        if not len(order):
            return []
        effect = np.abs(st.auroc[f] - 0.5)
        top = int(order[0])
        with np.errstate(invalid="ignore"):
            close = (st.q[f] < alpha) & (effect >= NEARLY_AS_STRONG * effect[top])
        return [self.au_ids[int(j)] for j in order[1:] if close[j]]

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
        rows = [self._row(st, self._filter(int(f), st), layer, alpha, by) for f in chosen]
        return rows

    def _row(self, st: AssociationStatistics, f: int, layer: str | None, alpha: float, by: str) -> dict[str, Any]:
        """One :meth:`table_rows` row; a filter without an AU gets NaN statistics and ``au = None``."""
        au = self.top_au(f, layer, by)
        row: dict[str, Any] = {"filter": f, "au": au, "name": au_name(au) if au else "", "rule": TOP_AU_RULES[by],
                               "dead": bool(st.dead_filters[f])}  # fmt: skip
        if au is None:
            nan = float("nan")
            row.update({k: nan for k in ("kl", "kl_corrected", "kl_z", "p_kl", "q_kl", "auroc", "auroc_ci_low",
                                         "auroc_ci_high", "p_auroc", "q_auroc", "p", "q")})  # fmt: skip
            row.update(test=st.config.get("test_statistic", "auroc"), significant=False, testable=False, tested=False,
                       also=[], ci_approximate=False, ci_subjects=0)  # fmt: skip
            return row
        j = self.au_ids.index(au)
        q = float(st.q[f, j])
        row.update({
            "kl": float(st.kl[f, j]), "kl_corrected": float(st.kl_corrected[f, j]), "kl_z": float(st.kl_z[f, j]),
            "p_kl": float(st.p_kl[f, j]), "q_kl": float(st.q_kl[f, j]),
            "auroc": float(st.auroc[f, j]), "auroc_ci_low": float(st.auroc_ci[f, j, 0]),
            "auroc_ci_high": float(st.auroc_ci[f, j, 1]),
            "p_auroc": float(st.p_auroc[f, j]), "q_auroc": float(st.q_auroc[f, j]),
            "test": st.config.get("test_statistic", "auroc"), "p": float(st.p[f, j]), "q": q,
            "significant": bool(q < alpha), "testable": bool(st.testable[f, j]), "tested": bool(st.tested[f, j]),
            "also": self.nearly_as_strong(f, layer, alpha) if by == DEFAULT_TOP_AU else [],
            "ci_approximate": bool(st.ci_approximate[f, j]), "ci_subjects": int(st.ci_clusters[f, j]),
        })  # fmt: skip
        if st.stratified:
            for key in STRATIFIED_FIELDS:
                row[key] = float(getattr(st, key)[f, j])
        return row

    def table(
        self,
        filters: Sequence[int] | None = None,
        layer: str | None = None,
        alpha: float = 0.05,
        by: str = DEFAULT_TOP_AU,
    ) -> str:
        """The paper's Table 4 (filter and its FAU), with both tests beside their statistics.

        The AU is chosen by ``by`` (default: the null-standardised KL; ``by="kl"`` is the paper's
        rule, argmax KL). Columns: filter, ``AUxx: FACS name``, KL, its null-standardised value z
        and its permutation q-value, the AUROC with its interval and its own q-value (``*`` where
        ``q < alpha``), and the within-strata q-values when the result is stratified.
        """
        rows = self.table_rows(filters, layer, alpha, by)
        st = self.stats(layer)
        header = ["Filter", f"FAU ({TOP_AU_RULES[by]})", "KL", "KL z", "q (KL)", "AUROC [CI]", "q (AUROC)"]
        if st.stratified:
            header += ["q (KL, within strata)", "q (AUROC, within strata)"]
        header.append("Nearly as strong")

        def star(q: float) -> str:
            return "untested" if np.isnan(q) else f"{q:.3g}{'*' if q < alpha else ''}"

        lines = []
        for r in rows:
            if r["au"] is None:
                why = "dead filter" if r["dead"] else "no testable AU"
                lines.append([str(r["filter"]), f"- ({why})"] + [""] * (len(header) - 2))
                continue
            ci = f"[{r['auroc_ci_low']:.3f}, {r['auroc_ci_high']:.3f}]"
            if r["ci_approximate"]:
                ci += f" approx. ({r['ci_subjects']} subjects)"
            line = [str(r["filter"]), f"{r['au']}: {r['name']}", f"{r['kl']:.3f}", f"{r['kl_z']:.2f}",
                    star(r["q_kl"]), f"{r['auroc']:.3f} {ci}", star(r["q_auroc"])]  # fmt: skip
            if st.stratified:
                line += [star(r["q_kl_within"]), star(r["q_auroc_within"])]
            lines.append(line + [", ".join(r["also"])])
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        out = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines]
        notes = [n for n in st.notes if n.startswith("WARNING")]
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
            top_id = self.top_au(f, layer)
            top = au_order.index(self.au_ids.index(top_id)) if top_id else -1
            colors = ["#b0b0b0"] * len(x)
            if top >= 0:
                colors[top] = "#d62728"
            ax.bar(x, heights, color=colors, width=0.8)
            for j in np.flatnonzero(st.q_kl[f][au_order] < alpha):
                ax.text(x[j], heights[j], "*", ha="center", va="bottom", fontsize=9)
            ax.set_title(f"Filter {f}: {top_id or 'no AU'}", fontsize=10)
            ax.set_xticks(x)
            ax.set_xticklabels(labels, fontsize=8, rotation=90)
            ax.tick_params(axis="y", labelsize=8)
            ax.set_xlabel("AU", fontsize=8)
            ax.set_ylabel("KL divergence" if value == "kl" else value, fontsize=8)
        for ax in axes.ravel()[len(filters) :]:
            ax.axis("off")
        fig.suptitle(
            f"FAU-KL per filter ({self.layer if layer is None else layer}); red: top AU by {TOP_AU_RULES[DEFAULT_TOP_AU]}; * q (KL) < {alpha}",
            fontsize=9,
        )
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
                    row["tested"] = bool(st.tested[f, j])
                    row["ci_approximate"] = bool(st.ci_approximate[f, j])
                    row["ci_subjects"] = int(st.ci_clusters[f, j])
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
        """Write metadata, notes and every pair's statistics as JSON (``inf`` as ``"inf"``, NaN as null); atomic."""

        def clean(v: Any) -> Any:  # inf as a string, NaN (an untested pair) as null
            if isinstance(v, float) and np.isinf(v):
                return "inf" if v > 0 else "-inf"
            return None if isinstance(v, float) and np.isnan(v) else v

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
            raise WeightsError(
                f"{path} is not a FAU-KL result (format {header.get('format')!r}, expected {_FORMAT!r})."
            )
        info = json.loads(header["json"])
        layers = {}
        for name, lm in info["layers"].items():
            i = lm["index"]
            missing = [key for key in AssociationStatistics.ARRAY_FIELDS if f"{i}.{key}" not in arrays]
            if missing:
                raise WeightsError(
                    f"{path} lacks the arrays {missing}; it was written by an older version: recompute it."
                )
            fields = {key: arrays[f"{i}.{key}"] for key in AssociationStatistics.ARRAY_FIELDS}
            fields.update(
                {k: arrays[f"{i}.{k}"] for k in AssociationStatistics.OPTIONAL_FIELDS if f"{i}.{k}" in arrays}
            )
            layers[name] = AssociationStatistics(**fields, notes=list(lm["notes"]), config=dict(lm["config"]))
        return cls(layers=layers, au_ids=tuple(info["au_ids"]), n_images=int(info["n_images"]), meta=info["meta"])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {st.kl.shape[0]} filters" for n, st in self.layers.items())
        return f"FAUKLResult({len(self.au_ids)} AUs x [{shapes}], {self.n_images} images)"


__all__ = ["DEFAULT_TOP_AU", "FAUKLResult", "SCORE_FIELDS", "STRATIFIED_FIELDS", "TOP_AU_RULES"]
