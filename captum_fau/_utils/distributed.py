"""Sharding work over the processes of a ``torch.distributed`` group (a scan, an analysis).

Everything here is a no-op for a single process. Under an initialised process
group (``torchrun`` or ``torch.distributed.init_process_group``), a scan gives
each rank a contiguous block of whole batches, so every rank forms exactly
the batches a single process would (bit-identical activations). Afterwards
the ranks agree that all of them succeeded, the top-N trackers are exchanged
and merged in rank order (the result is the single-process one), and the
per-image rows travel to rank 0 (or to every rank) in bounded chunks.

Only tensors cross process boundaries (no pickled objects): error messages
are sent as UTF-8 bytes in a fixed-size tensor. The backend is the group's:
``gloo`` on CPU, ``nccl`` on GPUs (tensors then travel through the rank's
current CUDA device).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator, Sequence

import numpy as np
import torch

from captum_fau.errors import DistributedError

#: Bytes of an error message sent between ranks.
_MESSAGE_BYTES = 2048

#: Rows sent per message when rows travel to rank 0.
CHUNK_ROWS = 4096


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _comm_device() -> torch.device:
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def batch_ranges(num_rows: int, batch_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the batches a single process reads, in order."""
    return [(start, min(start + batch_size, num_rows)) for start in range(0, num_rows, batch_size)]


def shard(batches: Sequence[tuple[int, int]], rank: int, world_size: int) -> list[tuple[int, int]]:
    """The contiguous block of whole batches that ``rank`` of ``world_size`` reads.

    Blocks differ in size by at most one batch; concatenated in rank order they
    are ``batches`` exactly (no image twice, none left out).

    Examples::

        >>> shard(batch_ranges(10, 3), 0, 2), shard(batch_ranges(10, 3), 1, 2)
        ([(0, 3), (3, 6)], [(6, 9), (9, 10)])
    """
    per, extra = divmod(len(batches), world_size)
    start = rank * per + min(rank, extra)
    return list(batches[start : start + per + (1 if rank < extra else 0)])


def all_gather_ints(values: Sequence[int]) -> np.ndarray:
    """``[world_size, len(values)]`` int64: every rank's ``values``."""
    import torch.distributed as dist

    device = _comm_device()
    mine = torch.tensor(list(values), dtype=torch.int64, device=device)
    parts = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, mine)
    return torch.stack(parts).cpu().numpy()


def check_same(what: str, value: int, fix: str) -> None:
    """Raise :class:`DistributedError` on every rank unless all ranks have the same ``value``."""
    rank, size = world()
    if size == 1:
        return
    values = all_gather_ints([value])[:, 0]
    if (values != values[0]).any():
        listing = ", ".join(f"rank {r}: {int(v)}" for r, v in enumerate(values))
        raise DistributedError(f"The ranks disagree on {what} ({listing}); {fix}")


def agree(error: BaseException | None) -> None:
    """Collective: every rank reports whether its part succeeded; if any failed, all raise.

    A failing rank re-raises as :class:`DistributedError` chained to its own
    error; the others raise a :class:`DistributedError` naming the failed
    ranks and their messages, so no rank goes on with partial results.
    """
    import torch.distributed as dist

    rank, size = world()
    if size == 1:
        if error is not None:
            raise error
        return
    message = b"" if error is None else f"{type(error).__name__}: {error}".encode("utf-8", "replace")
    payload = torch.zeros(_MESSAGE_BYTES + 1, dtype=torch.uint8)
    payload[0] = 1 if error is not None else 0
    clipped = message[:_MESSAGE_BYTES]
    if clipped:
        payload[1 : 1 + len(clipped)] = torch.frombuffer(bytearray(clipped), dtype=torch.uint8)
    device = _comm_device()
    parts = [torch.empty_like(payload, device=device) for _ in range(size)]
    dist.all_gather(parts, payload.to(device))
    failed = [
        (r, bytes(p[1:].cpu().numpy()).rstrip(b"\0").decode("utf-8", "replace"))
        for r, p in enumerate(parts)
        if int(p[0])
    ]
    if not failed:
        return
    summary = "; ".join(f"rank {r}: {m}" for r, m in failed)
    raise DistributedError(
        f"{len(failed)} of {size} ranks failed, so the run stops without results ({summary})."
    ) from error


def all_gather_tensor(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (same shape and dtype on all ranks), on CPU, in rank order."""
    import torch.distributed as dist

    device = _comm_device()
    mine = tensor.contiguous().to(device)
    parts = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, mine)
    return [p.cpu() for p in parts]


def _deliver(buffer: torch.Tensor, src: int, everyone: bool) -> None:
    """Fill ``buffer`` with rank ``src``'s content on every rank (``everyone``) or on rank 0 only."""
    import torch.distributed as dist

    rank = dist.get_rank()
    if everyone:
        dist.broadcast(buffer, src=src)
    elif src != 0 and rank == src:
        dist.send(buffer, dst=0)
    elif src != 0 and rank == 0:
        dist.recv(buffer, src=src)


def gather_rows_to(
    chunks: Iterator[dict[str, np.ndarray]] | None,
    num_rows: int,
    layout: dict[str, tuple[tuple[int, ...], np.dtype]],
    everyone: bool,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[dict[str, np.ndarray]]:
    """Stream every rank's rows, rank by rank, to rank 0 (``everyone=False``) or to all ranks.

    Args:
        chunks: This rank's rows as ``{column: array}`` chunks of ``chunk_rows``
            rows (the last one shorter), e.g. from :meth:`RowStore.iter_chunks`.
        num_rows (int): How many rows this rank holds.
        layout (dict): Column -> ``(per-row shape, dtype)``, the same on every rank.
        everyone (bool): Deliver to every rank instead of rank 0 only.
        chunk_rows (int, optional): Rows per message. Default: 4096

    Yields:
        On receiving ranks, ``{column: array}`` chunks of all ranks' rows in rank
        order; nothing on the others.
    """
    rank, size = world()
    counts = all_gather_ints([num_rows])[:, 0]
    device = _comm_device()
    receives = everyone or rank == 0
    own = iter(chunks) if chunks is not None else iter(())
    for src in range(size):
        total = int(counts[src])
        for start in range(0, total, chunk_rows):
            rows = min(chunk_rows, total - start)
            piece = next(own) if src == rank else None
            if piece is not None and len(next(iter(piece.values()))) != rows:
                raise DistributedError("Internal error: row chunks do not match the announced sizes.")
            out: dict[str, np.ndarray] = {}
            for name, (shape, dtype) in layout.items():
                wire = np.dtype(np.uint8) if dtype == np.bool_ else dtype  # gloo has no bool
                if src == rank:
                    array = np.ascontiguousarray(piece[name]).astype(wire, copy=False)  # type: ignore[index]
                    buffer = torch.from_numpy(array).to(device)
                else:
                    buffer = torch.empty((rows, *shape), dtype=torch.from_numpy(np.zeros(0, wire)).dtype, device=device)
                _deliver(buffer, src, everyone)
                if receives:
                    out[name] = buffer.cpu().numpy().astype(dtype, copy=False)
            if receives:
                yield out


def gather_tensors(tensors: dict[str, torch.Tensor], everyone: bool = False) -> list[dict[str, torch.Tensor]] | None:
    """Collect each rank's named tensors (shapes may differ between ranks, dtypes and names may not).

    Args:
        tensors (dict): This rank's tensors.
        everyone (bool, optional): Deliver to every rank, not only rank 0. Default: False

    Returns:
        One dict per rank, in rank order, on receiving ranks; ``None`` on the others.
    """
    rank, size = world()
    device = _comm_device()
    gathered: list[dict[str, torch.Tensor]] = [dict() for _ in range(size)]
    for name in sorted(tensors):
        mine = tensors[name].contiguous()
        dims = all_gather_ints([mine.dim()])[:, 0]
        if (dims != dims[0]).any():
            raise DistributedError(f"Ranks hold {name!r} with different numbers of dimensions: {dims.tolist()}.")
        shapes = all_gather_ints(list(mine.shape))
        for src in range(size):
            shape = tuple(int(s) for s in shapes[src])
            if src == rank:
                gathered[src][name] = mine.cpu()
                buffer = mine.to(device)
            else:
                buffer = torch.empty(shape, dtype=mine.dtype, device=device)
            _deliver(buffer, src, everyone)
            if src != rank and (everyone or rank == 0):
                gathered[src][name] = buffer.cpu()
    return gathered if everyone or rank == 0 else None


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank."""
    import torch.distributed as dist

    if world()[1] == 1:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_comm_device())
    dist.broadcast(value, src=0)
    return bool(value.item())


def barrier() -> None:
    import torch.distributed as dist

    if world()[1] > 1:
        dist.barrier()


@contextmanager
def process_group_from_env(device: torch.device) -> Iterator[torch.device]:
    """Join the process group ``torchrun`` describes in the environment, for the block.

    Does nothing for a single process or when a group is already initialised
    (the caller's own). With ``WORLD_SIZE > 1`` in the environment it starts
    the default group (``nccl`` for CUDA devices, ``gloo`` otherwise), moves a
    CUDA device to ``cuda:LOCAL_RANK``, and destroys the group afterwards.

    Yields:
        The device this rank should use.
    """
    import torch.distributed as dist

    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        yield device
        return
    if not dist.is_available():
        raise DistributedError("WORLD_SIZE > 1 is set but this PyTorch build has no torch.distributed support.")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE={size} is set but {', '.join(missing)} is not; start the run with "
            "`torchrun --nproc_per_node K -m captum_fau.cli ...`, which sets them."
        )
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise DistributedError(
                f"LOCAL_RANK={local} but this host has {torch.cuda.device_count()} CUDA devices; "
                "use --nproc_per_node <= the number of GPUs per host."
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    timeout = timedelta(seconds=float(os.environ.get("CAPTUM_FAU_DIST_TIMEOUT", "1800")))
    dist.init_process_group(backend=backend, timeout=timeout)
    try:
        yield device
    finally:
        dist.destroy_process_group()


__all__ = [
    "agree",
    "all_gather_ints",
    "all_gather_tensor",
    "barrier",
    "batch_ranges",
    "CHUNK_ROWS",
    "broadcast_flag",
    "check_same",
    "gather_rows_to",
    "process_group_from_env",
    "gather_tensors",
    "shard",
    "world",
]
