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
from captum_fau._utils import shell
from captum_fau.errors import ConfigError, OutputError, WeightsError

_TENSORS = ("filters", "indices", "values", "positions", "patches", "image_patches", "boxes")
_SEARCH = ("filters", "indices", "values", "positions")


@dataclass
class TopNSearch:
    """What the scan found for filters whose reconstructions are not computed yet.

    Row ``r`` describes filter ``filters[r]``, as in :class:`TopNResult`.

    Attributes:
        filters (Tensor): ``[P]`` filter indices.
        indices (Tensor): ``[P, N]`` dataset index of each top image.
        values (Tensor): ``[P, N]`` the filter's maximum on that image.
        positions (Tensor): ``[P, N, 2]`` ``(h, w)`` of that maximum on the layer's map.
    """

    filters: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    positions: torch.Tensor

    def __len__(self) -> int:
        return int(self.filters.numel())

    def select(self, filters: Sequence[int]) -> "TopNSearch":
        """The rows of ``filters`` (those present), in the order of this search."""
        keep = torch.isin(self.filters, torch.as_tensor(list(filters), dtype=self.filters.dtype))
        return TopNSearch(*(getattr(self, name)[keep] for name in _SEARCH))

    def without(self, filters: Sequence[int]) -> "TopNSearch | None":
        """This search less ``filters``; None when nothing is left."""
        keep = ~torch.isin(self.filters, torch.as_tensor(list(filters), dtype=self.filters.dtype))
        return TopNSearch(*(getattr(self, name)[keep] for name in _SEARCH)) if bool(keep.any()) else None


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
        pending (TopNSearch or None): Filters the scan searched but whose reconstructions were
            not computed (a run that reconstructs the informative filters first); complete them
            with :meth:`~captum_fau.attr.TopNDeconv.complete` or ``captum-fau topn --filters``.
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
    pending: TopNSearch | None = None

    @property
    def n(self) -> int:
        return int(self.indices.shape[1])

    @property
    def pending_filters(self) -> list[int]:
        """Filters searched but not reconstructed yet (empty when the result is complete)."""
        return [] if self.pending is None else [int(f) for f in self.pending.filters.tolist()]

    def top_values(self) -> dict[int, float]:
        """Every searched filter's strongest response, reconstructed or pending."""
        values = {int(f): float(v) for f, v in zip(self.filters.tolist(), self.values[:, 0].tolist())}
        if self.pending is not None:
            pending = zip(self.pending.filters.tolist(), self.pending.values[:, 0].tolist())
            values.update({int(f): float(v) for f, v in pending})
        return dict(sorted(values.items()))

    def merged(self, other: "TopNResult") -> "TopNResult":
        """This result with ``other``'s reconstructed filters added (sorted by filter; ``other`` wins
        where both hold a filter); they leave :attr:`pending`."""
        if (other.layer, other.rule, other.n) != (self.layer, self.rule, self.n):
            raise ConfigError(
                f"Cannot merge top-N results of {other.layer!r}/{other.rule}/N={other.n} into "
                f"{self.layer!r}/{self.rule}/N={self.n}."
            )
        keep = ~torch.isin(self.filters, other.filters)
        order = torch.argsort(torch.cat([self.filters[keep], other.filters]))
        joined = {
            name: torch.cat([getattr(self, name)[keep].to(getattr(other, name).dtype), getattr(other, name)])[order]
            for name in _TENSORS
        }
        maps = None
        if self.full_maps is not None and other.full_maps is not None:
            maps = torch.cat([self.full_maps[keep], other.full_maps])[order]
        done = other.filters.tolist()
        dead = sorted({d for d in self.dead if d not in done} | set(other.dead))
        pending = None if self.pending is None else self.pending.without(done)
        meta = {**self.meta, "timings": {k: round(float(v) + float(other.meta.get("timings", {}).get(k, 0.0)), 4)
                                         for k, v in self.meta.get("timings", {}).items()}}  # fmt: skip
        if meta.get("relu_like_activations") is None and other.meta.get("relu_like_activations") is not None:
            meta["relu_like_activations"] = other.meta["relu_like_activations"]  # found by the later reconstruction
        return TopNResult(layer=self.layer, rule=self.rule, **joined, full_maps=maps, dead=dead, meta=meta,
                          pending=pending)  # fmt: skip

    def row(self, filter_index: int) -> int:
        """Row of ``filter_index`` in this result."""
        hits = (self.filters == int(filter_index)).nonzero().flatten()
        if hits.numel() == 0 and int(filter_index) in self.pending_filters:
            raise ConfigError(
                f"Filter {filter_index} was searched but not reconstructed in this result; complete it with "
                f"TopNDeconv.complete(result, data, filters=[{filter_index}]) (CLI: "
                f"{shell.captum_fau('topn', '--filters', str(filter_index), '--out', 'DIR')}, on the run's folder)."
            )
        if hits.numel() == 0:
            raise ConfigError(
                f"Filter {filter_index} is not in this result (it holds filters {self.filters.tolist()[:20]}...); "
                "rerun top_n with that filter included."
            )
        return int(hits[0])

    @property
    def relu_like(self) -> bool:
        """Whether the rule was applied to non-ReLU activations as if they were ReLUs (``relu_like=True``)."""
        from captum_fau.attr.rules import takes_relu_like

        return (bool(self.meta.get("relu_like")) and takes_relu_like(self.rule)
                and self.meta.get("relu_like_activations") != "")  # "": checked, the model has none  # fmt: skip

    @property
    def rule_label(self) -> str:
        """The rule as reports and figures name it, with ``relu_like`` said wherever the rule is named."""
        from captum_fau.attr.rules import display_name

        said = " applied to non-ReLU activations as if ReLUs (--relu-like / relu_like=True)"
        return display_name(self.rule) + (said if self.relu_like else "")

    @property
    def rule_caveat(self) -> str | None:
        """What the ``relu_like`` pictures are and how to read them (None without ``relu_like``)."""
        from captum_fau.attr.rules import relu_like_caveat

        return relu_like_caveat(self.rule, self.meta.get("relu_like_activations")) if self.relu_like else None

    def display_windows(self) -> torch.Tensor | None:
        """The input windows as the model saw them, in ``[0, 1]``: :attr:`image_patches` with the model's own
        normalisation undone (``x * std + mean``, mapped back from the pixel range), so that a gray face given
        to an RGB model with ImageNet's mean/std is gray again (a joint stretch of the normalised channels
        tints it blue). None when the result does not record the model's :class:`InputSpec`
        (``meta["input_spec"]``) or its local mean subtraction cannot be undone; then show each window
        stretched on its own."""
        spec = self.meta.get("input_spec") or {}
        if not spec or int(spec.get("local_mean", 0) or 0):
            return None
        channels = self.image_patches.shape[2] if self.image_patches.dim() == 5 else 0
        mean, std = list(spec.get("mean", [0.0])), list(spec.get("std", [1.0]))
        if len(mean) != channels or len(std) != channels:
            return None
        low, high = (float(v) for v in spec.get("pixel_range", (0.0, 1.0)))
        view = (1, 1, channels, 1, 1)
        x = self.image_patches.float() * torch.tensor(std).view(view) + torch.tensor(mean).view(view)
        return ((x - low) / ((high - low) or 1.0)).clamp(0, 1)

    # ------------------------------------------------------------------- io
    def save(self, path: str | os.PathLike[str], compact: bool = False) -> Path:
        """Write ``path/topn.safetensors`` and ``path/topn.json`` (atomically); returns the folder.

        Args:
            path (str or Path): The folder.
            compact (bool, optional): Store the reconstructions as float16 (each scaled to its largest
                |value|, the scale kept as float32) and the input windows
                as 8-bit (scaled to the result's pixel range), about a third of the size; what
                :meth:`load` returns then differs from this result by float16/8-bit rounding
                (``topn.json`` says so under ``storage``). Default: False (exact float32)
        """
        folder = Path(path)
        tensors = {name: getattr(self, name).contiguous() for name in _TENSORS}
        storage: dict[str, Any] = {"patches": "float32", "image_patches": "float32"}
        if compact:
            # Each reconstruction scaled to its own largest |value| first: float16 keeps 3 digits of every one.
            scale = torch.ones(self.patches.shape[:2])
            if self.patches.numel():
                scale = self.patches.abs().amax(dim=(2, 3, 4)).float().clamp_min(1e-30)
            tensors["patches"] = (self.patches / scale[:, :, None, None, None]).to(torch.float16).contiguous()
            tensors["patch_scale"] = scale.contiguous()
            windows = self.image_patches
            low, high = (float(windows.min()), float(windows.max())) if windows.numel() else (0.0, 1.0)
            step = (high - low) / 255 or 1.0
            tensors["image_patches"] = ((windows - low) / step).round().clamp(0, 255).to(torch.uint8).contiguous()
            storage = {"patches": "float16", "image_patches": "uint8", "image_low": low, "image_scale": step}
        if self.full_maps is not None:
            tensors["full_maps"] = self.full_maps.contiguous()
        if self.pending is not None:
            tensors.update({f"pending_{name}": getattr(self.pending, name).contiguous() for name in _SEARCH})
        info = {"layer": self.layer, "rule": self.rule, "dead": list(self.dead), "meta": self.meta, "format": 1,
                "storage": storage}  # fmt: skip
        try:
            atomic_safetensors(folder / "topn.safetensors", tensors, metadata={"format": "captum-fau-topn"})
            atomic_write_text(folder / "topn.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
        except OutputError:
            raise  # already names the folder and the fix (a full disk, a read-only folder)
        except OSError as err:
            raise OutputError(
                f"Cannot write the TopNResult into {folder} ({err}); choose a writable location."
            ) from err
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
        storage = info.get("storage", {})
        tensors["patches"] = tensors["patches"].float()
        if "patch_scale" in tensors:
            tensors["patches"] = tensors["patches"] * tensors.pop("patch_scale")[:, :, None, None, None]
        if storage.get("image_patches") == "uint8":
            tensors["image_patches"] = tensors["image_patches"].float() * storage["image_scale"] + storage["image_low"]
        pending = None
        if "pending_filters" in tensors:
            pending = TopNSearch(*(tensors[f"pending_{name}"] for name in _SEARCH))
        return cls(
            layer=info["layer"],
            rule=info["rule"],
            **{name: tensors[name] for name in _TENSORS},
            full_maps=tensors.get("full_maps"),
            dead=list(info.get("dead", [])),
            meta=dict(info.get("meta", {})),
            pending=pending,
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
        shown = self.display_windows()
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
                    elif shown is not None:  # the window as the model saw it (its normalisation undone)
                        seen = shown[row, col]
                        img = seen.permute(1, 2, 0).numpy() if seen.shape[0] == 3 else seen[0].numpy()
                    else:
                        low, high = float(patch.min()), float(patch.max())
                        img = (img - low) / ((high - low) or 1.0)
                    ax.imshow(img.clip(0, 1), cmap=None if patch.shape[0] == 3 else "gray", vmin=0, vmax=1)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if col == 0:
                        name = f"{int(self.filters[row])}" if labels is None else str(labels[r])
                        ax.set_ylabel(
                            name + ("" if len(kinds) == 1 else f"\n{kind[:5]}"),
                            rotation=0,
                            ha="right",
                            va="center",
                            fontsize=9,
                        )
        what = {"reconstruction": f"reconstructions ({self.rule_label})", "image": "input windows",
                "both": f"reconstructions ({self.rule_label}) and input windows"}[show]  # fmt: skip
        fig.suptitle(f"{self.layer}: top-{n} {what}", fontsize=10, wrap=True)
        fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.12 if labels else 0.08, right=0.99, bottom=0.01, top=0.92)
        if path is not None:
            save_figure(fig, path, dpi=150, bbox_inches=None)
        return fig

    def __repr__(self) -> str:
        pending = f", pending={len(self.pending)}" if self.pending is not None else ""
        return (
            f"TopNResult(layer={self.layer!r}, rule={self.rule!r}, filters={len(self.filters)}, n={self.n}, "
            f"patch={tuple(self.patches.shape[-2:])}, dead={len(self.dead)}{pending})"
        )


__all__ = ["TopNResult", "TopNSearch"]
