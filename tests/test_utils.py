"""Private plumbing: argument checks, devices, atomic files, layer lookup and stop-at-layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from captum_fau._utils.device import input_device, model_device, resolve_device
from captum_fau._utils.io import atomic_npz, atomic_open, atomic_safetensors
from captum_fau._utils.modules import forward_with_args, layer_name, resolve_layers, stop_at_layer
from captum_fau._utils.validate import int_at_least, non_negative_int, one_of, optional_positive_int, positive_int
from captum_fau.errors import ConfigError, DatasetError, DeviceError, LayerError


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(2 * 4 * 4, 3)
        self.head_calls = 0

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        x = self.relu(self.conv(x)) * scale
        self.head_calls += 1
        return self.head(x.flatten(1))


def test_integer_checks_name_the_argument_and_the_fix() -> None:
    assert positive_int(np.int64(3), "batch_size") == 3 and non_negative_int(0, "seed") == 0
    assert optional_positive_int(None, "top_n") is None and int_at_least(8, "size", 8) == 8
    with pytest.raises(ConfigError, match=r"batch_size must be >= 1 \(a positive integer\), got 0; pass 64"):
        positive_int(0, "batch_size", hint="pass 64.")
    with pytest.raises(DatasetError, match="top_n must be an integer >= 1, got 2.5 .float."):
        optional_positive_int(2.5, "top_n", error=DatasetError)
    with pytest.raises(ConfigError, match="must be an integer"):
        positive_int(True, "n")  # a bool is not a count
    with pytest.raises(ConfigError, match="seed must be >= 0"):
        non_negative_int(-1, "seed")
    with pytest.raises(ConfigError, match="bins must be >= 2, got 1"):
        int_at_least(1, "bins", 2)


def test_one_of_lists_the_choices() -> None:
    assert one_of("rank0", "gather", ("all", "rank0")) == "rank0"
    with pytest.raises(ConfigError, match="gather must be 'all' or 'rank0', got 'x'"):
        one_of("x", "gather", ("all", "rank0"))
    with pytest.raises(ConfigError, match="rule must be one of 'a', 'b', 'c'"):
        one_of("d", "rule", ("a", "b", "c"))


def test_devices_one_function_per_question() -> None:
    model = Net()
    assert resolve_device("cpu") == torch.device("cpu") and model_device(model) == torch.device("cpu")
    assert input_device(model, None) == input_device(model, "cpu") == torch.device("cpu")
    assert model_device(nn.ReLU()) == torch.device("cpu")  # no parameters: CPU
    with pytest.raises(DeviceError, match="Unknown device"):
        resolve_device("gpu0")
    with pytest.raises(DeviceError, match="Unknown device"):
        input_device(model, "gpu0")
    with pytest.raises(DeviceError, match="model lives on cpu"):
        input_device(model, "meta")


def test_atomic_writers_leave_complete_files_only(tmp_path: Path) -> None:
    atomic_npz(tmp_path / "a.npz", x=np.arange(3), y=[1.5])
    with np.load(tmp_path / "a.npz") as z:
        assert z["x"].tolist() == [0, 1, 2] and z["y"].tolist() == [1.5]
    atomic_npz(tmp_path / "b.npz", compressed=True, x=np.zeros(1000))
    assert (tmp_path / "b.npz").stat().st_size < (tmp_path / "a.npz").stat().st_size + 8000
    atomic_safetensors(tmp_path / "w.safetensors", {"w": torch.ones(2, requires_grad=True)}, {"format": "pt"})
    assert load_file(tmp_path / "w.safetensors")["w"].tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(tmp_path / "c.csv") as handle:
            handle.write("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.npz", "w.safetensors"]


def test_layer_lookup_has_one_message() -> None:
    model = Net()
    assert layer_name(model, model.relu) == "relu" and resolve_layers(model, ["conv", model.conv, "relu"]) == [
        "conv",
        "relu",
    ]
    for bad in ("conv9", ""):
        with pytest.raises(LayerError, match=r"\[B, C, H, W\] output \(convolutions and blocks of them\): conv\.$"):
            layer_name(model, bad)
    with pytest.raises(LayerError, match="not a submodule"):
        layer_name(model, nn.ReLU())


def test_stop_at_layer_runs_only_what_is_needed() -> None:
    model = Net().eval()
    x = torch.randn(2, 1, 4, 4)
    out = stop_at_layer(model, model.relu, 2.0)(x)
    assert torch.equal(out, torch.relu(model.conv(x))) and model.head_calls == 0
    assert torch.equal(stop_at_layer(model, model.relu, capture="input")(x), model.conv(x))
    assert forward_with_args(model, x, (2.0,)).shape == (2, 3) and model.head_calls == 1
    with pytest.raises(LayerError, match="not reached"):
        stop_at_layer(model, nn.ReLU())(x)
