"""The result of a top-N deconvolution: what each filter responds to most, and where."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file

from captum_fau._utils.io import atomic_safetensors, atomic_write_text
from captum_fau.errors import ConfigError, OutputError, WeightsError

_TENSORS = ("filters", "indices", "values", "positions", "patches", "image_patches", "boxes")


@dataclass
class TopNResult:
    """Top-N images per filter and their back-projections.

    Row ``r`` describes filter ``filters[r]``; column ``k`` its ``k``-th strongest image.

    Attributes:
        layer (str): Dotted name of the layer.
        rule (str): ``"guided"``, ``"deconv"`` or ``"gradient"``.
        filters (Tensor): ``[F]`` filter indices.
        indices (Tensor): ``[F, N]`` dataset index of each image.
        values (Tensor): ``[F, N]`` the filter's maximum on that image (where the back-projection starts).
        positions (Tensor): ``[F, N, 2]`` ``(h, w)`` of that maximum on the layer's map.
        patches (Tensor): ``[F, N, C, R_h, R_w]`` reconstructions inside each unit's receptive field.
        image_patches (Tensor): ``[F, N, C, R_h, R_w]`` the input pixels of the same windows.
        boxes (Tensor): ``[F, N, 4]`` ``(y0, x0, y1, x1)`` of each window in the image (end exclusive).
        full_maps (Tensor or None): ``[F, N, C, H, W]`` full-size reconstructions, when requested.
        dead (list of int): Filters whose strongest response is <= 0 (never active).
        meta (dict): Input shape, map size, dataset size, receptive field, stride, ...
    """

    layer: str
    rule: str
    filters: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    positions: torch.Tensor
    patches: torch.Tensor
    image_patches: torch.Tensor
    boxes: torch.Tensor
    full_maps: torch.Tensor | None = None
    dead: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.indices.shape[1])

    def row(self, filter_index: int) -> int:
        """Row of ``filter_index`` in this result."""
        hits = (self.filters == int(filter_index)).nonzero().flatten()
        if hits.numel() == 0:
            raise ConfigError(
                f"Filter {filter_index} is not in this result (it holds filters {self.filters.tolist()[:20]}...); "
                "rerun top_n with that filter included."
            )
        return int(hits[0])

    # ------------------------------------------------------------------- io
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path/topn.safetensors`` and ``path/topn.json`` (atomically); returns the folder."""
        folder = Path(path)
        tensors = {name: getattr(self, name).contiguous() for name in _TENSORS}
        if self.full_maps is not None:
            tensors["full_maps"] = self.full_maps.contiguous()
        info = {"layer": self.layer, "rule": self.rule, "dead": list(self.dead), "meta": self.meta, "format": 1}
        try:
            atomic_safetensors(folder / "topn.safetensors", tensors, metadata={"format": "captum-fau-topn"})
            atomic_write_text(folder / "topn.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
        except OutputError:
            raise  # already names the folder and the fix (a full disk, a read-only folder)
        except OSError as err:
            raise OutputError(f"Cannot write the TopNResult into {folder} ({err}); choose a writable location.") from err
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "TopNResult":
        """Read a result written by :meth:`save`."""
        folder = Path(path)
        tensors_file, info_file = folder / "topn.safetensors", folder / "topn.json"
        if not tensors_file.is_file() or not info_file.is_file():
            raise WeightsError(f"{folder} does not hold a saved TopNResult (topn.safetensors + topn.json).")
        try:
            tensors = load_file(str(tensors_file))
            info = json.loads(info_file.read_text())
        except Exception as err:
            raise WeightsError(f"Cannot read the TopNResult in {folder} ({err}).") from err
        missing = [name for name in _TENSORS if name not in tensors]
        if missing:
            raise WeightsError(f"The TopNResult in {folder} lacks tensors {missing}; it is incomplete.")
        return cls(
            layer=info["layer"],
            rule=info["rule"],
            **{name: tensors[name] for name in _TENSORS},
            full_maps=tensors.get("full_maps"),
            dead=list(info.get("dead", [])),
            meta=dict(info.get("meta", {})),
        )

    # ------------------------------------------------------------------ plot
    def plot(
        self,
        filters: Sequence[int] | None = None,
        n: int | None = None,
        show: str = "reconstruction",
        path: str | os.PathLike[str] | None = None,
        patch_inches: float = 0.9,
        labels: Sequence[str] | None = None,
    ) -> Any:
        """A grid in the layout of the paper's Figures 1, 3 and 4: one row per filter,
        its top-``n`` patches left to right (strongest first).

        Args:
            filters (sequence of int, optional): Filters to show. Default: all in the result
            n (int, optional): Patches per row. Default: all
            show (str, optional): ``"reconstruction"``, ``"image"`` or ``"both"``
                (each filter's reconstructions above its image patches). Default: ``"reconstruction"``
            path (str or Path, optional): Also save the figure there.
            patch_inches (float, optional): Size of one patch in the figure. Default: 0.9
            labels (sequence of str, optional): Row labels, one per filter (e.g. filter, AU and q).
                Default: the filter numbers

        Returns:
            matplotlib.figure.Figure: Displayed by notebooks; made without pyplot, so the
            backend stays as it is.
        """
        from captum_fau.viz.figures import new_figure, save_figure

        if show not in ("reconstruction", "image", "both"):
            raise ConfigError(f"show must be 'reconstruction', 'image' or 'both', got {show!r}.")
        rows = [self.row(f) for f in (self.filters.tolist() if filters is None else filters)]
        if labels is not None and len(labels) != len(rows):
            raise ConfigError(f"labels has {len(labels)} entries for {len(rows)} filters; give one label per filter.")
        n = self.n if n is None else max(1, min(int(n), self.n))
        kinds = ["reconstruction", "image"] if show == "both" else [show]
        fig = new_figure((n * patch_inches + 0.8, len(rows) * len(kinds) * patch_inches))
        axes = fig.subplots(len(rows) * len(kinds), n, squeeze=False)
        for r, row in enumerate(rows):
            for k, kind in enumerate(kinds):
                line = r * len(kinds) + k
                for col in range(n):
                    ax = axes[line][col]
                    source = self.patches if kind == "reconstruction" else self.image_patches
                    patch = source[row, col].float()
                    img = patch.permute(1, 2, 0).numpy() if patch.shape[0] == 3 else patch[0].numpy()
                    if kind == "reconstruction":
                        # Centre on zero and stretch symmetrically, as deconvnet figures do.
                        scale = float(patch.abs().max()) or 1.0
                        img = 0.5 + 0.5 * img / scale
                    else:
                        low, high = float(patch.min()), float(patch.max())
                        img = (img - low) / ((high - low) or 1.0)
                    ax.imshow(img.clip(0, 1), cmap=None if patch.shape[0] == 3 else "gray", vmin=0, vmax=1)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if col == 0:
                        name = f"{int(self.filters[row])}" if labels is None else str(labels[r])
                        ax.set_ylabel(name + ("" if len(kinds) == 1 else f"\n{kind[:5]}"),
                                      rotation=0, ha="right", va="center", fontsize=9)
        what = {"reconstruction": f"reconstructions ({self.rule})", "image": "input windows",
                "both": f"reconstructions ({self.rule}) and input windows"}[show]  # fmt: skip
        fig.suptitle(f"{self.layer}: top-{n} {what}", fontsize=10)
        fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.12 if labels else 0.08, right=0.99, bottom=0.01, top=0.92)
        if path is not None:
            save_figure(fig, path, dpi=150, bbox_inches=None)
        return fig

    def __repr__(self) -> str:
        return (f"TopNResult(layer={self.layer!r}, rule={self.rule!r}, filters={len(self.filters)}, n={self.n}, "
                f"patch={tuple(self.patches.shape[-2:])}, dead={len(self.dead)})")


__all__ = ["TopNResult"]
