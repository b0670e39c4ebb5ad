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
SCORE_FIELDS = ("kl", "kl_plain", "kl_corrected", "kl_null_mean", "p", "p_kl", "p_auroc", "q", "auroc")
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
    ci = property(lambda self: self.stats().ci, doc="``[C, J, 2]`` bootstrap interval of the KL.")
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
                entry = {key: torch.from_numpy(np.ascontiguousarray(getattr(st, key)[:, j])) for key in SCORE_FIELDS}
                entry["ci"] = torch.from_numpy(np.ascontiguousarray(st.ci[:, j]))
                per_layer[name] = entry
            out[str(j)] = per_layer
        return out

    def _filter(self, filter: int, st: AssociationStatistics) -> int:
        n_filters = st.kl.shape[0]
        if not isinstance(filter, (int, np.integer)) or not 0 <= int(filter) < n_filters:
            raise ConfigError(f"filter {filter!r} is out of range; this layer has filters 0..{n_filters - 1}.")
        return int(filter)

    def top_au(self, filter: int, layer: str | None = None, by: str = "kl") -> str:
        """The AU with the largest score for ``filter`` (the paper's Table 4 entry).

        Args:
            filter (int): Filter (channel) index.
            layer (str, optional): Layer name (default: :attr:`layer`).
            by (str): ``"kl"`` (smoothed), ``"kl_plain"``, ``"kl_corrected"`` or ``"auroc"``.
                Default: ``"kl"``

        Returns:
            str: AU id such as ``"AU12"``.
        """
        st = self.stats(layer)
        f = self._filter(filter, st)
        if by not in ("kl", "kl_plain", "kl_corrected", "auroc"):
            raise ConfigError(f"by={by!r} is not known; use 'kl', 'kl_plain', 'kl_corrected' or 'auroc'.")
        values = np.where(st.testable_aus, getattr(st, by)[f], -np.inf)
        return self.au_ids[int(np.argmax(values))]

    def top_aus(self, layer: str | None = None, by: str = "kl") -> list[str]:
        """:meth:`top_au` of every filter of the layer."""
        st = self.stats(layer)
        return [self.top_au(f, layer, by) for f in range(st.kl.shape[0])]

    # ------------------------------------------------------------------ reports
    def table_rows(
        self, filters: Sequence[int] | None = None, layer: str | None = None, alpha: float = 0.05
    ) -> list[dict[str, Any]]:
        """One row per filter: the AU with the largest KL, its FACS name and its statistics."""
        st = self.stats(layer)
        chosen = range(st.kl.shape[0]) if filters is None else filters
        rows = []
        for f in chosen:
            f = self._filter(int(f), st)
            au = self.top_au(f, layer)
            j = self.au_ids.index(au)
            rows.append(
                {
                    "filter": f,
                    "au": au,
                    "name": au_name(au),
                    "kl": float(st.kl[f, j]),
                    "kl_corrected": float(st.kl_corrected[f, j]),
                    "ci_low": float(st.ci[f, j, 0]),
                    "ci_high": float(st.ci[f, j, 1]),
                    "auroc": float(st.auroc[f, j]),
                    "p": float(st.p[f, j]),
                    "q": float(st.q[f, j]),
                    "significant": bool(st.q[f, j] < alpha),
                    "dead": bool(st.dead_filters[f]),
                }
            )
        return rows

    def table(self, filters: Sequence[int] | None = None, layer: str | None = None, alpha: float = 0.05) -> str:
        """The paper's Table 4: filter number and the FAU with the largest KL divergence value.

        Columns: filter, ``AUxx: FACS name``, KL with its bootstrap interval, null-corrected KL,
        AUROC and the BH q-value (``*`` where ``q < alpha``; dead filters are marked).
        """
        rows = self.table_rows(filters, layer, alpha)
        header = ["Filter", "FAU with the largest KL divergence value", "KL [CI]", "KL-null", "AUROC", "q"]
        lines = []
        for r in rows:
            label = f"{r['au']}: {r['name']}" + (" (dead filter)" if r["dead"] else "")
            lines.append(
                [
                    str(r["filter"]),
                    label,
                    f"{r['kl']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
                    f"{r['kl_corrected']:.3f}",
                    f"{r['auroc']:.3f}",
                    f"{r['q']:.3g}{'*' if r['significant'] else ''}",
                ]
            )
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        out = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines]
        return "\n".join(out)

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

        The AU with the largest value is drawn in red, the others in grey; ``*`` above a bar marks
        a pair with ``q < alpha``.

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
            top = au_order.index(self.au_ids.index(self.top_au(f, layer, by=value if value != "kl_plain" else "kl")))
            colors = ["#b0b0b0"] * len(x)
            colors[top] = "#d62728"
            ax.bar(x, heights, color=colors, width=0.8)
            for j in np.flatnonzero(st.q[f][au_order] < alpha):
                ax.text(x[j], heights[j], "*", ha="center", va="bottom", fontsize=9)
            ax.set_title(f"Filter {f}: {self.au_ids[au_order[top]]}", fontsize=10)
            ax.set_xticks(x)
            ax.set_xticklabels(labels, fontsize=8, rotation=90)
            ax.tick_params(axis="y", labelsize=8)
            ax.set_xlabel("AU", fontsize=8)
            ax.set_ylabel("KL divergence" if value == "kl" else value, fontsize=8)
        for ax in axes.ravel()[len(filters) :]:
            ax.axis("off")
        fig.suptitle(f"FAU-KL per filter ({self.layer if layer is None else layer}); red: largest; * q < {alpha}", fontsize=9)
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
                    for key in SCORE_FIELDS:
                        row[key] = float(getattr(st, key)[f, j])
                    row["ci_low"], row["ci_high"] = float(st.ci[f, j, 0]), float(st.ci[f, j, 1])
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
            for key in AssociationStatistics.ARRAY_FIELDS:
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
            fields = {key: arrays[f"{i}.{key}"] for key in AssociationStatistics.ARRAY_FIELDS}
            layers[name] = AssociationStatistics(**fields, notes=list(lm["notes"]), config=dict(lm["config"]))
        return cls(layers=layers, au_ids=tuple(info["au_ids"]), n_images=int(info["n_images"]), meta=info["meta"])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {st.kl.shape[0]} filters" for n, st in self.layers.items())
        return f"FAUKLResult({len(self.au_ids)} AUs x [{shapes}], {self.n_images} images)"


__all__ = ["FAUKLResult", "SCORE_FIELDS"]
