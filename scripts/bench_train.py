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
  a ``DataLoader`` batching them, then the SGD step on the device;
* **ours** - :func:`captum_fau.train.train`: images resident on the device,
  batch sampling and augmentation as batched ``affine_grid``/``grid_sample``
  tensor ops, channels-last convolutions.

Prints images/s for each, the ratio, and peak memory (CUDA: max allocated;
CPU: peak RSS of the process). Example::

    python scripts/bench_train.py --iterations 20 --device cpu
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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


def baseline(data: FaceSet, iterations: int, device: torch.device, seed: int) -> float:
    torch.manual_seed(seed)
    dataset = PerImageAugmented(data.images, data.emotions, seed)
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=iterations * 64)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, sampler=sampler)
    model = ZeroBiasCNN(num_classes=len(data.class_names)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-5)
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
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


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (CUDA max allocated)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process peak RSS)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=20, help="timed SGD steps per side (default: 20)")
    p.add_argument("--images", type=int, default=1024, help="training images (default: 1024)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for ours")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()
    device = resolve_device(args.device)

    rng = np.random.default_rng(args.seed)
    data = FaceSet(
        images=rng.integers(0, 256, (args.images, 96, 96), dtype=np.uint8),
        emotions=np.arange(args.images) % 8,
        name="bench",
    )
    # Warm-up both paths (oneDNN / cuDNN kernel selection) before timing.
    baseline(data, 2, device, args.seed)
    ours(data, 2, device, args.seed, args.bf16)
    base_ips = baseline(data, args.iterations, device, args.seed)
    ours_ips = ours(data, args.iterations, device, args.seed, args.bf16)
    report = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "iterations": args.iterations,
        "batch": 64,
        "baseline_images_per_s": round(base_ips, 2),
        "ours_images_per_s": round(ours_ips, 2),
        "ratio": round(ours_ips / base_ips, 3),
        "peak_memory": peak_memory(device),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"device {report['device']} ({report['threads']} threads), {args.iterations} iterations of batch 64")
        print(f"  baseline (per-image torchvision v2 + DataLoader): {base_ips:8.1f} images/s")
        print(f"  captum-fau train (batched augmentation):          {ours_ips:8.1f} images/s")
        print(f"  ratio ours / baseline: {report['ratio']:.2f}x   peak memory {report['peak_memory']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
