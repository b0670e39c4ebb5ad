"""The streaming scan: exact maxima/top-N, stops at the layer, restores mode, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_fau import ZeroBiasCNN
from captum_fau.data.base import FaceSet
from captum_fau.errors import DatasetError, LayerError
from captum_fau.stats.scan import iter_batches, scan


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.head = nn.Linear(6 * 8 * 8, 3)
        self.head_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.pool(self.relu(self.conv1(x))))
        self.head_calls += 1
        return self.head(x.flatten(1))


@pytest.fixture()
def tiny() -> Tiny:
    torch.manual_seed(0)
    return Tiny().eval()


def _maps(model: Tiny, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.conv2(model.pool(model.relu(model.conv1(x))))


def test_maxima_positions_topn_match_brute_force(tiny: Tiny) -> None:
    x = torch.randn(37, 1, 16, 16)
    res = scan(tiny, "conv2", x, top_n=5, batch_size=8, progress=False)
    layer = res.layers["conv2"]
    maps = _maps(tiny, x)
    values, where = maps.flatten(2).max(2)
    assert torch.allclose(layer.maxima, values) and layer.map_size == (8, 8)
    assert torch.equal(layer.positions[..., 0].long() * 8 + layer.positions[..., 1].long(), where)
    assert torch.equal(layer.topn.result()["indices"], values.topk(5, dim=0).indices.T)
    assert torch.equal(res.indices, torch.arange(37))
    assert tiny.head_calls == 1  # only the probe ran the head: the scan stops at conv2


def test_non_distinct_topn_ranks_all_positions(tiny: Tiny) -> None:
    x = torch.randn(9, 1, 16, 16)
    res = scan(tiny, tiny.conv2, x, top_n=4, distinct_images=False, batch_size=4, progress=False)
    flat = _maps(tiny, x).permute(1, 0, 2, 3).reshape(6, -1)
    assert torch.allclose(res.layers["conv2"].topn.result()["values"], flat.topk(4, dim=1).values)


def test_sources_agree_and_extras_gathered(tiny: Tiny) -> None:
    rng = np.random.default_rng(0)
    faces = FaceSet(
        images=rng.integers(0, 255, (10, 16, 16), dtype=np.uint8),
        class_names=("a", "b"),
        emotions=np.arange(10) % 2,
        aus=rng.random((10, 3)).astype(np.float32),
        au_ids=("AU1", "AU2", "AU12"),
        subjects=np.array([f"S{i // 3}" for i in range(10)]),
    )
    direct = scan(tiny, ["conv1", "conv2"], faces, top_n=2, batch_size=4, progress=False)
    via_loader = scan(tiny, ["conv1", "conv2"], DataLoader(faces, batch_size=3), batch_size=4, progress=False)
    tensor = scan(tiny, "conv2", faces.tensors(), progress=False)
    assert torch.allclose(direct.layers["conv2"].maxima, via_loader.layers["conv2"].maxima, atol=1e-6)
    assert torch.allclose(direct.layers["conv2"].maxima, tensor.layers["conv2"].maxima, atol=1e-6)
    for res in (direct, via_loader):
        assert res.extras["aus"].dtype == torch.float32 and res.extras["aus"].shape == (10, 3)
        assert res.extras["emotion"].dtype == torch.int64
        assert list(res.extras["subject"]) == list(faces.subjects)
    tuples = scan(
        tiny, "conv2", DataLoader(TensorDataset(faces.tensors(), torch.arange(10)), batch_size=4), progress=False
    )
    assert torch.equal(tuples.extras["target"], torch.arange(10))
    assert sum(b[0].shape[0] for b in iter_batches(faces.tensors(), 3)) == 10


def test_training_mode_restored_with_warning(tiny: Tiny) -> None:
    tiny.train()
    tiny.pool.eval()  # a submodule's own mode survives too
    with pytest.warns(UserWarning, match="eval mode"):
        scan(tiny, "conv2", torch.randn(2, 1, 16, 16), progress=False)
    assert tiny.training and tiny.conv1.training and not tiny.pool.training


def test_keep_inputs_holds_exactly_the_topn_images(tiny: Tiny) -> None:
    x = torch.randn(30, 1, 16, 16)
    res = scan(tiny, "conv2", x, top_n=2, keep_inputs=True, batch_size=7, progress=False)
    wanted = set(res.layers["conv2"].topn.result()["indices"].reshape(-1).tolist())
    assert set(res.inputs) == wanted
    for index, image in res.inputs.items():
        assert torch.equal(image, x[index])


def test_bad_layers_and_data(tiny: Tiny) -> None:
    x = torch.randn(3, 1, 16, 16)
    with pytest.raises(LayerError, match="conv1"):
        scan(tiny, "conv9", x, progress=False)
    with pytest.raises(LayerError, match="not a \\[B, C, H, W\\]"):
        scan(tiny, "head", x, progress=False)
    with pytest.raises(LayerError, match="not a submodule"):
        scan(tiny, nn.Conv2d(1, 1, 1), x, progress=False)
    reused = nn.Sequential().eval()
    relu = nn.ReLU()
    reused.add_module("a", nn.Conv2d(1, 2, 3))
    reused.add_module("r", relu)
    reused.add_module("b", nn.Conv2d(2, 2, 3))
    reused.add_module("r2", relu)
    with pytest.raises(LayerError, match="called 2 times"):
        scan(reused, relu, x, progress=False)
    with pytest.raises(DatasetError, match="empty"):
        scan(tiny, "conv2", torch.zeros(0, 1, 16, 16), progress=False)


def test_zerobias_scan_matches_forward() -> None:
    torch.manual_seed(0)
    model = ZeroBiasCNN().eval()
    x = torch.randn(5, 1, 96, 96)
    res = scan(model, "relu3", x, top_n=2, progress=False)
    with torch.no_grad():
        h = model.pool2(model.relu2(model.conv2(model.pool1(model.relu1(model.conv1(x))))))
        ref = model.relu3(model.conv3(h)).flatten(2).max(2).values
    assert torch.allclose(res.layers["relu3"].maxima, ref)


def test_keep_outputs_gives_the_model_outputs_from_the_same_pass() -> None:
    from captum_fau import ZeroBiasCNN
    from captum_fau.stats.scan import scan as run_scan

    torch.manual_seed(0)
    model = ZeroBiasCNN(num_classes=5).eval()
    images = torch.randn(7, 1, 96, 96)
    result = run_scan(model, "conv3", images, batch_size=3, keep_outputs=True, progress=False)
    with torch.no_grad():
        expected = model(images)
    torch.testing.assert_close(result.outputs, expected)
    assert run_scan(model, "conv3", images, progress=False).outputs is None
