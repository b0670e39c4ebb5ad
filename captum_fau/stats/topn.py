"""Streaming top-N per channel: the strongest responses of each filter over a dataset.

:class:`RunningTopN` keeps, for every channel, the ``N`` largest activations
seen so far together with the dataset index of the image and the spatial
position ``(h, w)`` where they occurred. Memory is ``O(C x N)`` whatever the
dataset size; states serialise to plain tensors and merge exactly, so shards
scanned by several processes combine into the single-process result.

Order is total and deterministic: larger value first, then smaller dataset
index, then smaller ``h``, then smaller ``w``. Two runs over the same data in
any batch order or sharding therefore give identical results.
"""

from __future__ import annotations

from typing import Any

import torch

from captum_fau._utils.validate import positive_int
from captum_fau.errors import ResumeError, StatisticsError

#: Sort key of an empty slot: after every real candidate.
_EMPTY_KEY = torch.iinfo(torch.int64).max


def _tie_key(indices: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Secondary sort key (index, h, w) packed into one int64 (index < 2**31, h, w < 2**16)."""
    key = (
        (indices.to(torch.int64) << 32) | (positions[..., 0].to(torch.int64) << 16) | positions[..., 1].to(torch.int64)
    )
    return torch.where(indices < 0, torch.full_like(key, _EMPTY_KEY), key)


class RunningTopN:
    r"""The ``n`` largest values per channel, with the image index and position of each.

    Args:
        num_channels (int): Number of channels ``C`` tracked.
        n (int): How many entries each channel keeps.
        distinct_images (bool, optional): Informational flag stored with the
            state: whether the candidates fed to :meth:`add` are one per image
            and channel (the spatial maximum), as in the paper. Two trackers
            merge only when it matches. Default: True

    Examples::

        >>> import torch
        >>> top = RunningTopN(num_channels=2, n=2)
        >>> top.add(torch.tensor([[1.0, 5.0], [3.0, 0.0]]), torch.tensor([10, 11]))
        >>> top.add(torch.tensor([[2.0, 4.0]]), torch.tensor([12]))
        >>> top.result()["indices"].tolist()
        [[11, 12], [10, 12]]
    """

    def __init__(self, num_channels: int, n: int, distinct_images: bool = True) -> None:
        self.num_channels = positive_int(num_channels, "RunningTopN num_channels", hint="track at least one channel.")
        self.n = positive_int(n, "RunningTopN n", hint="keep at least one entry per channel.")
        self.distinct_images = bool(distinct_images)
        self.values = torch.full((num_channels, n), float("-inf"), dtype=torch.float32)
        self.indices = torch.full((num_channels, n), -1, dtype=torch.int64)
        self.positions = torch.zeros((num_channels, n, 2), dtype=torch.int32)
        #: Number of images (rows) added so far.
        self.count = 0

    # ------------------------------------------------------------------ update
    def add(
        self,
        values: torch.Tensor,
        indices: torch.Tensor,
        positions: torch.Tensor | None = None,
    ) -> None:
        """Offer a batch of candidates.

        Args:
            values (Tensor): ``[B, C]`` (one candidate per image and channel) or
                ``[B, C, K]`` (``K`` candidates per image and channel).
            indices (Tensor): ``[B]`` dataset indices of the images (``>= 0``).
            positions (Tensor, optional): ``(h, w)`` of each candidate,
                ``[B, C, 2]`` or ``[B, C, K, 2]``. Default: zeros.
        """
        values = values.detach()
        if values.dim() == 2:
            values = values[..., None]
            if positions is not None:
                positions = positions[:, :, None]
        if values.dim() != 3 or values.shape[1] != self.num_channels:
            raise StatisticsError(
                f"RunningTopN.add expects values [B, {self.num_channels}] or [B, {self.num_channels}, K], "
                f"got {tuple(values.shape)}."
            )
        batch, channels, per_image = values.shape
        indices = torch.as_tensor(indices).detach().to("cpu", torch.int64).reshape(-1)
        if indices.numel() != batch:
            raise StatisticsError(f"RunningTopN.add got {batch} rows of values but {indices.numel()} indices.")
        if batch == 0:
            return
        if bool((indices < 0).any()):
            raise StatisticsError("RunningTopN.add needs non-negative dataset indices.")
        values = values.to("cpu", torch.float32)
        if bool(torch.isnan(values).any()):
            raise StatisticsError(
                "The activations contain NaN; check the model's weights and inputs (a NaN cannot be ranked)."
            )
        if positions is None:
            positions = torch.zeros((batch, channels, per_image, 2), dtype=torch.int32)
        positions = positions.detach().to("cpu", torch.int32)
        # Candidates as [C, B*K] next to the current state [C, N].
        cand_values = values.permute(1, 0, 2).reshape(channels, batch * per_image)
        cand_indices = indices[None, :, None].expand(channels, batch, per_image).reshape(channels, -1)
        cand_positions = positions.permute(1, 0, 2, 3).reshape(channels, batch * per_image, 2)
        if batch * per_image > self.n:
            # Cheap prefilter: only candidates at least as large as the n-th largest can enter.
            kth = cand_values.topk(self.n, dim=1).values[:, -1:]
            keep = (cand_values >= kth).any(dim=0)
            cand_values, cand_indices, cand_positions = (
                cand_values[:, keep],
                cand_indices[:, keep],
                cand_positions[:, keep],
            )
        self._select(
            torch.cat([self.values, cand_values], 1),
            torch.cat([self.indices, cand_indices], 1),
            torch.cat([self.positions, cand_positions], 1),
        )
        self.count += batch

    def _select(self, values: torch.Tensor, indices: torch.Tensor, positions: torch.Tensor) -> None:
        # Total order: value descending, then (index, h, w) ascending. Two stable sorts.
        key = _tie_key(indices, positions)
        order = torch.sort(key, dim=1, stable=True).indices
        values, indices, positions = (
            values.gather(1, order),
            indices.gather(1, order),
            positions.gather(1, order[..., None].expand(-1, -1, 2)),
        )
        order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, : self.n]
        self.values = values.gather(1, order).contiguous()
        self.indices = indices.gather(1, order).contiguous()
        self.positions = positions.gather(1, order[..., None].expand(-1, -1, 2)).contiguous()

    def merge(self, other: "RunningTopN") -> "RunningTopN":
        """Fold another tracker (e.g. another shard's) into this one; returns ``self``.

        The result equals that of one tracker that saw both inputs, in any order.
        """
        if not isinstance(other, RunningTopN):
            raise StatisticsError(f"RunningTopN.merge needs a RunningTopN, got {type(other).__name__}.")
        if (other.num_channels, other.n, other.distinct_images) != (self.num_channels, self.n, self.distinct_images):
            raise StatisticsError(
                f"Cannot merge top-N trackers of different shape: (C, N, distinct_images) = "
                f"{(self.num_channels, self.n, self.distinct_images)} vs "
                f"{(other.num_channels, other.n, other.distinct_images)}; scan every shard with the same settings."
            )
        self._select(
            torch.cat([self.values, other.values], 1),
            torch.cat([self.indices, other.indices], 1),
            torch.cat([self.positions, other.positions], 1),
        )
        self.count += other.count
        return self

    # ----------------------------------------------------------------- results
    @property
    def filled(self) -> int:
        """Entries per channel that hold a real candidate (``min(n, candidates seen)``)."""
        return int((self.indices[0] >= 0).sum()) if self.count else 0

    def result(self) -> dict[str, torch.Tensor]:
        """``{"values": [C, k], "indices": [C, k], "positions": [C, k, 2]}`` with ``k = filled``,
        each row sorted from the strongest response down."""
        k = self.filled
        return {
            "values": self.values[:, :k].clone(),
            "indices": self.indices[:, :k].clone(),
            "positions": self.positions[:, :k].clone(),
        }

    # ------------------------------------------------------------ serialising
    def state_dict(self) -> dict[str, Any]:
        """Tensors and settings that :meth:`load_state_dict` restores exactly."""
        return {
            "values": self.values.clone(),
            "indices": self.indices.clone(),
            "positions": self.positions.clone(),
            "count": torch.tensor(self.count, dtype=torch.int64),
            "n": torch.tensor(self.n, dtype=torch.int64),
            "distinct_images": torch.tensor(self.distinct_images),
        }

    def load_state_dict(self, state: dict[str, Any]) -> "RunningTopN":
        """Restore a state written by :meth:`state_dict`; returns ``self``."""
        try:
            values = torch.as_tensor(state["values"], dtype=torch.float32)
            indices = torch.as_tensor(state["indices"], dtype=torch.int64)
            positions = torch.as_tensor(state["positions"], dtype=torch.int32)
            n = int(state["n"])
            distinct = bool(state["distinct_images"])
            count = int(state["count"])
        except KeyError as err:
            raise ResumeError(f"RunningTopN state lacks the entry {err}; it was not written by state_dict().") from err
        if values.shape != (self.num_channels, self.n) or n != self.n or distinct != self.distinct_images:
            raise ResumeError(
                f"RunningTopN state has shape {tuple(values.shape)} (n={n}, distinct_images={distinct}) but this "
                f"tracker is ({self.num_channels}, {self.n}) with distinct_images={self.distinct_images}; "
                "resume with the settings of the original run."
            )
        self.values, self.indices, self.positions, self.count = (
            values.clone(),
            indices.clone(),
            positions.clone(),
            count,
        )
        return self

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "RunningTopN":
        """A new tracker holding ``state``."""
        values = torch.as_tensor(state["values"])
        tracker = cls(int(values.shape[0]), int(state["n"]), bool(state["distinct_images"]))
        return tracker.load_state_dict(state)

    def __repr__(self) -> str:
        return f"RunningTopN(channels={self.num_channels}, n={self.n}, seen={self.count})"


__all__ = ["RunningTopN"]
