"""LRP-ε (``rule="lrp"``) against zennit's epsilon rules on a BN + strided-conv + max-pool model.

zennit (not a dependency of captum-fau) is the reference: its ``SequentialMergeBatchNorm`` canonizer,
``Epsilon`` on every ``Conv2d``/``Linear``, the plain gradient through ReLU and max pooling. For every
image and filter, both back-propagate the layer's strongest unit, at its value, to the pixels; the script
prints the largest absolute and relative difference over all pairs, for ``TopNDeconv.attribute`` on
receptive-field crops (the default) and on the full image.

Usage::

    python -m pip install --no-deps --target /tmp/zennit-site zennit
    PYTHONPATH=$PWD:/tmp/zennit-site python scripts/check_lrp_zennit.py [--seed 0] [--images 4]
"""

from __future__ import annotations

import argparse
import copy
import json

import torch
from torch import nn


def bn_strided_model(seed: int = 0, bn_eps: float = 1e-5) -> nn.Sequential:
    """Conv (stride 2) + BN + ReLU + max pool + conv + BN + ReLU, BN statistics and affine made non-trivial."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8, eps=bn_eps), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16, eps=bn_eps), nn.ReLU(),
    )  # fmt: skip
    for module in model:
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    return model.eval()


def zennit_relevance(model: nn.Sequential, images: torch.Tensor, filters: list[int]) -> torch.Tensor:
    """zennit's relevance ``[B, F, C, H, W]`` of each filter's strongest unit of the model's output."""
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import LayerMapComposite
    from zennit.rules import Epsilon

    model = copy.deepcopy(model)
    composite = LayerMapComposite(layer_map=[(nn.Conv2d, Epsilon(1e-6)), (nn.Linear, Epsilon(1e-6))],
                                  canonizers=[SequentialMergeBatchNorm()])  # fmt: skip
    out = []
    with composite.context(model) as modified:
        for image in images:
            x = image[None].clone().requires_grad_(True)
            y = modified(x)
            per_filter = []
            for f in filters:
                grad = torch.zeros_like(y)
                where = int(y[0, f].flatten().argmax())
                grad[0, f].view(-1)[where] = y[0, f].flatten()[where].detach()
                (relevance,) = torch.autograd.grad(y, x, grad, retain_graph=True)
                per_filter.append(relevance[0])
            out.append(torch.stack(per_filter))
    return torch.stack(out)


def compare(seed: int = 0, images: int = 4, bn_eps: float = 1e-5) -> dict[str, float]:
    """Largest |ours - zennit| (absolute, and relative to max |zennit|) on crops and on the full image.

    zennit's canonizer leaves each merged batch norm as ``x / sqrt(1 + eps)`` rather than the identity, so
    its relevance differs from the exact merge by a constant factor near ``1 + eps`` per batch norm
    (2e-5 for two batch norms at PyTorch's eps 1e-5); ``bn_eps=1e-12`` removes that and leaves float32
    rounding.
    """
    from captum_fau.attr import TopNDeconv

    model = bn_strided_model(seed, bn_eps)
    x = torch.rand(images, 3, 32, 32, generator=torch.Generator().manual_seed(seed + 1))
    filters = list(range(16))
    reference = zennit_relevance(model, x, filters)
    topn = TopNDeconv(model, model[6], rule="lrp")
    result: dict[str, float] = {"max_abs_reference": float(reference.abs().max())}
    for label, full in (("crops", False), ("full_image", True)):
        ours = topn.attribute(x, filters=filters, full_image=full)
        error = float((ours - reference).abs().max())
        result[f"max_abs_error_{label}"] = error
        result[f"max_rel_error_{label}"] = error / result["max_abs_reference"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=4)
    args = parser.parse_args()
    for bn_eps in (1e-5, 1e-12):
        print(f"batch norm eps {bn_eps:g}:", json.dumps(compare(args.seed, args.images, bn_eps), indent=2))


if __name__ == "__main__":
    main()
