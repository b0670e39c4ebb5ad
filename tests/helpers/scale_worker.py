"""Processes started by tests/test_scale.py: distributed scans under torchrun, and a scan to be killed.

``python tests/helpers/scale_worker.py dist OUT`` (under ``torchrun --nproc_per_node 2``)
runs the distributed scenarios and writes ``OUT/rank{R}.safetensors`` and
``OUT/rank{R}.json``; ``python tests/helpers/scale_worker.py slow CKPT`` runs a slow
checkpointed scan meant to be killed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

FACES_N = 90
BATCH = 16
TOP_N = 5


def faces() -> Any:
    from captum_fau.data.synthfacs import load_synthfacs

    return load_synthfacs(n=FACES_N, seed=3)


def model() -> torch.nn.Module:
    from captum_fau import zoo

    return zoo.load("zerobias-synthfacs-8class")


class SlowSynth(Dataset):
    """Lazy SynthFACS items, optionally slowed down, optionally failing at one index."""

    def __init__(self, n: int, delay: float = 0.0, fail_at: int | None = None, length: int | None = None) -> None:
        from captum_fau.data.synthfacs import SynthFACS

        self.base = SynthFACS(n=n, seed=5)
        self.delay, self.fail_at, self.length = delay, fail_at, length

    def __len__(self) -> int:
        return self.length if self.length is not None else len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index == self.fail_at:
            raise OSError(f"cannot read image {index} (simulated damaged file)")
        if self.delay:
            time.sleep(self.delay)
        return self.base[index]


def summary(result: Any, layer: str = "conv3") -> dict[str, torch.Tensor]:
    """The comparable tensors of a ScanResult."""
    top = result.layers[layer].topn.result()
    kept = sorted(result.inputs)
    out = {
        "maxima": result.layers[layer].maxima.clone(),
        "positions": result.layers[layer].positions.clone(),
        "indices": result.indices.clone(),
        "top_values": top["values"],
        "top_indices": top["indices"],
        "top_positions": top["positions"],
        "kept": torch.tensor(kept, dtype=torch.int64),
        "kept_inputs": torch.stack([result.inputs[i] for i in kept]) if kept else torch.zeros(0),
    }
    if result.outputs is not None:
        out["outputs"] = result.outputs.clone()
    for key, value in result.extras.items():
        if isinstance(value, torch.Tensor):
            out[f"extra_{key}"] = value.clone()
    return out


def _expect_error(fn: Any) -> str:
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - the type is reported to the test
        return f"{type(err).__name__}: {err}"
    return "no error"


def run_distributed(out: Path) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file

    from captum_fau.stats.scan import scan

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    net = model()
    data = faces()
    tensors: dict[str, torch.Tensor] = {}
    report: dict[str, Any] = {"rank": rank, "world_size": dist.get_world_size()}

    everyone = scan(net, "conv3", data, top_n=TOP_N, batch_size=BATCH, keep_inputs=True, keep_outputs=True,
                    progress=False, gather="all")  # fmt: skip
    tensors.update({f"all_{k}": v.contiguous() for k, v in summary(everyone).items()})
    report["all_num_images"] = everyone.num_images

    from captum_fau.attr import TopNDeconv

    top = TopNDeconv(net, "conv3").top_n(data, n=3, filters=list(range(0, 256, 8)), batch_size=BATCH, progress=False)
    tensors.update(
        {f"topn_{k}": getattr(top, k).contiguous() for k in ("filters", "indices", "patches", "image_patches")}
    )
    report["topn_processes"] = top.meta.get("processes")

    lazy = SlowSynth(70)
    rank0 = scan(net, "conv3", lazy, top_n=TOP_N, batch_size=BATCH, keep_inputs=True, progress=False,
                 gather="rank0", checkpoint=out / "ckpt", checkpoint_every_s=0, spill_bytes=0)  # fmt: skip
    tensors.update({f"rank0_{k}": v.contiguous() for k, v in summary(rank0).items()})
    report["rank0_rows_here"] = rank0.rows_here
    report["rank0_num_images"] = rank0.num_images

    fail_at = 50 if rank == 1 else None
    report["failure"] = _expect_error(
        lambda: scan(net, "conv3", SlowSynth(70, fail_at=fail_at), top_n=2, batch_size=BATCH, progress=False)
    )
    report["length"] = _expect_error(
        lambda: scan(net, "conv3", SlowSynth(70, length=70 + rank), batch_size=BATCH, progress=False)
    )
    report["world_mismatch"] = _expect_error(
        lambda: scan(
            net, "conv3", SlowSynth(70), top_n=TOP_N, batch_size=BATCH, progress=False, checkpoint=out / "single-ckpt"
        )  # fmt: skip
    )
    report["iterable"] = _expect_error(lambda: scan(net, "conv3", [torch.zeros(2, 1, 96, 96)], progress=False))
    save_file(tensors, str(out / f"rank{rank}.safetensors"))
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


def run_slow(checkpoint: Path) -> None:
    from captum_fau.stats.scan import scan

    torch.set_num_threads(1)
    scan(model(), "conv3", SlowSynth(160, delay=0.01), top_n=TOP_N, batch_size=8, keep_inputs=True,
         progress=False, checkpoint=checkpoint, checkpoint_every_s=0, spill_bytes=0)  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    what, where = sys.argv[1], Path(sys.argv[2])
    if what == "dist":
        run_distributed(where)
    elif what == "slow":
        run_slow(where)
    else:
        raise SystemExit(f"unknown scenario {what!r}")
    os._exit(0)
