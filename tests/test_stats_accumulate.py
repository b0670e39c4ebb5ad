"""The scan's pieces: per-batch records, the running accumulator and its verbs, batched FaceSet reads."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from captum_fau.data.base import FaceSet
from captum_fau.stats.accumulate import LayerRecorder, ScanAccumulator, spatial_maxima
from captum_fau.stats.batching import MapSource, iter_batches
from captum_fau.stats.rows import RowStore


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 2)).eval()


def _accumulate(model: nn.Module, x: torch.Tensor, rows: range, batch: int = 4) -> ScanAccumulator:
    acc = ScanAccumulator(RowStore(), top_n=3, keep_inputs=True)
    with LayerRecorder(model, ["1"], torch.device("cpu")) as recorder:
        acc.start(recorder.start(x[:1]))
        for start in range(rows.start, rows.stop, batch):
            stop = min(start + batch, rows.stop)
            layers, inputs, outputs = recorder.record(x[start:stop])
            assert outputs is None  # stopped at the layer
            acc.add(torch.arange(start, stop), layers, inputs, {"target": torch.arange(start, stop) % 2})
    return acc


def test_spatial_maxima_candidates_follow_tie_order() -> None:
    out = torch.tensor([[[[1.0, 3.0], [3.0, 0.0]]]])
    rec = spatial_maxima(out, candidates=3)
    assert rec.positions.tolist() == [[[0, 1]]]  # first maximum on ties
    values, where = rec.candidates
    assert values.tolist() == [[[3.0, 3.0, 1.0]]] and where.tolist() == [[[[0, 1], [1, 0], [0, 0]]]]
    assert spatial_maxima(out, candidates=10).candidates[0].shape == (1, 1, 4)  # k <= H*W


def test_shard_accumulators_merge_into_the_single_pass() -> None:
    model, x = _net(), torch.randn(14, 1, 6, 6)
    whole = _accumulate(model, x, range(0, 14))
    merged = _accumulate(model, x, range(8, 14)).merge(_accumulate(model, x, range(0, 8)))
    assert torch.equal(merged.indices, torch.arange(14))
    for key in ("values", "indices", "positions"):
        assert torch.equal(merged.trackers["1"].result()[key], whole.trackers["1"].result()[key])
    assert torch.equal(merged.result()["1"].maxima, whole.result()["1"].maxima)
    assert sorted(merged.inputs) == sorted(whole.inputs) == sorted(whole.wanted())
    assert torch.equal(merged.labels(None)["target"], torch.arange(14) % 2)
    restored = ScanAccumulator(RowStore(), top_n=3)
    restored.start({"1": (3, 6, 6)})
    restored.load_state_dict(whole.state_dict())
    assert torch.equal(restored.trackers["1"].values, whole.trackers["1"].values) and len(restored.rows) == 14


def test_row_store_result_has_every_column() -> None:
    store = RowStore()
    store.add(torch.tensor([4, 5]), maxima=torch.ones(2, 3))
    result = store.result()
    assert list(result) == ["index", "maxima"] and result["index"].tolist() == [4, 5]


def test_face_sets_are_read_through_public_methods() -> None:
    rng = np.random.default_rng(0)
    faces = FaceSet(images=rng.integers(0, 255, (5, 8, 8), dtype=np.uint8), emotions=np.arange(5) % 3,
                    subjects=np.array(list("aabbc")), local_mean=0)  # fmt: skip
    labels = faces.labels([4, 0])
    assert labels["emotion"].tolist() == [1, 0] and labels["subject"].tolist() == ["c", "a"]
    inputs, extras, indices = MapSource(faces).read(np.array([4, 0]))
    assert torch.equal(inputs, faces.tensors([4, 0])) and extras["emotion"].tolist() == [1, 0]
    assert [b[2].tolist() for b in iter_batches(faces, 2)] == [[0, 1], [2, 3], [4]]
