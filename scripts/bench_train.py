#!/usr/bin/env python
"""Training throughput: captum-fau's trainer vs a plain PyTorch loop.

Both sides train the same ZeroBiasCNN with the same recipe (SGD lr 0.01,
momentum 0.9, weight decay 1e-5, batch 64 drawn with replacement, dropout
0.5) and the same augmentation ranges, in the same process, on the same data:

* **baseline** - what one would otherwise write: a ``Dataset`` whose
  ``__getitem__`` augments one image at a time on the CPU with
  ``torchvision.transforms.v2`` (RandomAffine for rotation/scale/translation,
  with translation up to 15%, the recipe's largest ``|1 - s| / 2``, since
  RandomAffine cannot tie it to the drawn scale; RandomHorizontalFlip; a
  per-image gamma curve, min-max, x2, local 5x5 mean),
  a ``DataLoader`` batching them in ``--workers`` worker processes (default: the
  usable cores; pinned memory on CUDA), then the SGD step on the device with the
  model and batches in the same channels-last layout ours uses;
* **ours** - :func:`captum_fau.train.train`: images resident on the device,
  batch sampling and augmentation as batched ``affine_grid``/``grid_sample``
  tensor ops, channels-last convolutions.

Both sides run once untimed (warm-up), then alternate for ``--repeats`` rounds;
prints images/s for each (median, min, max), the per-round ratio (median, min,
max), and peak memory (CUDA: max allocated; CPU: peak RSS of the process and of
the loader's workers). Example::

    python scripts/bench_train.py --iterations 20 --device cpu --json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import _bench  # noqa: E402

from captum_fau.data.base import FaceSet  # noqa: E402
from captum_fau.data.transforms import local_mean_subtract  # noqa: E402
from captum_fau.models.zerobias import ZeroBiasCNN  # noqa: E402
from captum_fau.train.trainer import TrainConfig, resolve_device, train  # noqa: E402


class PerImageAugmented(torch.utils.data.Dataset):
    """The baseline: torchvision v2 transforms applied one image at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int) -> None:
        from torchvision.transforms import v2

        self.images = torch.from_numpy(images)[:, None]
        self.labels = torch.from_numpy(labels)
        self.geometry = v2.Compose(
            [
                v2.RandomAffine(degrees=5.0, translate=(0.15, 0.15), scale=(0.7, 1.4)),
                v2.RandomHorizontalFlip(0.5),
            ]
        )
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.geometry(self.images[index]).float() / 255.0
        x = x.pow(float(self.rng.uniform(0.25, 4.0)))
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8) * 2.0
        return local_mean_subtract(x[None], 5)[0], self.labels[index]


def baseline(data: FaceSet, iterations: int, device: torch.device, seed: int, workers: int) -> float:
    torch.manual_seed(seed)
    dataset = PerImageAugmented(data.images, data.emotions, seed)
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=iterations * 64)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, sampler=sampler, num_workers=workers,
                                         pin_memory=device.type == "cuda", worker_init_fn=_seed_worker)  # fmt: skip
    model = ZeroBiasCNN(num_classes=len(data.class_names)).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-5)
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return iterations * 64 / (time.perf_counter() - start)


def ours(data: FaceSet, iterations: int, device: torch.device, seed: int, bf16: bool) -> float:
    cfg = TrainConfig(
        iterations=iterations, checkpoint_every=iterations, selection="last", seed=seed, device=str(device), bf16=bf16
    )
    result = train(data, cfg, progress=False)
    return result.images_per_s


def _seed_worker(worker_id: int) -> None:
    """Each loader worker draws its own gamma curves (the dataset's generator is copied into every worker)."""
    dataset = torch.utils.data.get_worker_info().dataset
    dataset.rng = np.random.default_rng([int(torch.initial_seed()) % 2**32, worker_id])
    torch.set_num_threads(1)


def peak_memory(device: torch.device) -> dict[str, float]:
    if device.type == "cuda":
        return {"peak_cuda_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}
    return {"peak_rss_mb": round(_bench.max_rss_mb(), 1), "workers_peak_rss_mb": round(_bench.max_rss_mb(True), 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=20, help="timed SGD steps per side and round (default: 20)")
    p.add_argument("--images", type=int, default=1024, help="training images (default: 1024)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (default: 5)")
    p.add_argument("--workers", type=int, default=None, help="baseline DataLoader workers (default: usable cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for ours")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()
    device = resolve_device(args.device)
    workers = len(os.sched_getaffinity(0)) if args.workers is None else args.workers

    rng = np.random.default_rng(args.seed)
    data = FaceSet(
        images=rng.integers(0, 256, (args.images, 96, 96), dtype=np.uint8),
        emotions=np.arange(args.images) % 8,
        name="bench",
    )
    base_ips: list[float] = []
    ours_ips: list[float] = []
    baseline(data, 2, device, args.seed, workers)  # warm-up (oneDNN / cuDNN kernel selection, worker start)
    ours(data, 2, device, args.seed, args.bf16)
    for round_ in range(args.repeats):
        base_ips.append(baseline(data, args.iterations, device, args.seed + round_, workers))
        ours_ips.append(ours(data, args.iterations, device, args.seed + round_, args.bf16))
    ratio = _bench.ratios(ours_ips, base_ips)
    env = _bench.environment(device)
    report = {
        "repeats": args.repeats, "iterations": args.iterations, "batch": 64, "baseline_workers": workers,
        "baseline_images_per_s": round(statistics.median(base_ips), 2), **_bench.flat("baseline_images_per_s", base_ips, 2),
        "ours_images_per_s": round(statistics.median(ours_ips), 2), **_bench.flat("ours_images_per_s", ours_ips, 2),
        "ratio": round(statistics.median(ratio), 3), **_bench.flat("ratio", ratio),
        **peak_memory(device), **env,
    }  # fmt: skip
    print(f"{_bench.describe(env)}; {args.iterations} iterations of batch 64 per side, {args.repeats} rounds")
    print(
        _bench.line(
            f"  baseline (per-image torchvision v2, DataLoader with {workers} workers)", base_ips, " images/s", digits=1
        )
    )
    print(_bench.line("  captum-fau train (batched augmentation)", ours_ips, " images/s", digits=1))
    print(_bench.line("  ratio ours / baseline", ratio, "x"))
    print(f"  peak memory {peak_memory(device)}")
    if args.json:
        _bench.emit(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
