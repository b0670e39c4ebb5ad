"""RunningTopN: exact streaming top-N, deterministic ties, mergeable and serialisable."""

from __future__ import annotations

import pytest
import torch

from captum_fau.errors import ConfigError, ResumeError, StatisticsError
from captum_fau.stats.topn import RunningTopN


def _reference(values: torch.Tensor, n: int) -> torch.Tensor:
    """Brute force: per channel, indices sorted by (value desc, index asc)."""
    out = []
    for c in range(values.shape[1]):
        order = sorted(range(values.shape[0]), key=lambda i: (-float(values[i, c]), i))
        out.append(order[:n])
    return torch.tensor(out)


def test_streaming_equals_brute_force_with_ties() -> None:
    torch.manual_seed(0)
    values = torch.randint(0, 5, (97, 6)).float()  # many ties
    top = RunningTopN(6, 7)
    for start in range(0, 97, 10):
        top.add(values[start : start + 10], torch.arange(start, min(start + 10, 97)))
    res = top.result()
    assert torch.equal(res["indices"], _reference(values, 7))
    assert torch.equal(res["values"], values.gather(0, res["indices"].T).T)
    assert top.count == 97


def test_merge_any_order_equals_single_pass() -> None:
    torch.manual_seed(1)
    values = torch.randint(0, 4, (60, 3)).float()
    positions = torch.randint(0, 9, (60, 3, 2), dtype=torch.int32)
    single = RunningTopN(3, 5)
    single.add(values, torch.arange(60), positions)
    shards = [RunningTopN(3, 5) for _ in range(3)]
    perm = torch.randperm(60)
    for k, shard in enumerate(shards):
        rows = perm[k::3]
        shard.add(values[rows], rows, positions[rows])
    merged = shards[2].merge(shards[0]).merge(shards[1])
    for key in ("values", "indices", "positions"):
        assert torch.equal(merged.result()[key], single.result()[key])
    assert merged.count == 60


def test_multiple_candidates_per_image_and_positions() -> None:
    top = RunningTopN(1, 3, distinct_images=False)
    values = torch.tensor([[[5.0, 5.0, 1.0]], [[5.0, 0.0, 0.0]]])
    pos = torch.tensor([[[[0, 1], [0, 0], [2, 2]]], [[[1, 1], [0, 0], [0, 1]]]], dtype=torch.int32)
    top.add(values, torch.tensor([4, 3]), pos)
    res = top.result()
    assert res["indices"].tolist() == [[3, 4, 4]]
    assert res["positions"].tolist() == [[[1, 1], [0, 0], [0, 1]]]


def test_state_dict_roundtrip_and_partial_fill() -> None:
    top = RunningTopN(2, 4)
    top.add(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([0, 1]))
    assert top.filled == 2 and top.result()["indices"].shape == (2, 2)
    clone = RunningTopN.from_state_dict(top.state_dict())
    assert torch.equal(clone.result()["indices"], top.result()["indices"]) and clone.count == 2
    with pytest.raises(ResumeError):
        RunningTopN(3, 4).load_state_dict(top.state_dict())
    with pytest.raises(StatisticsError):
        top.merge(RunningTopN(2, 5))


def test_bad_input() -> None:
    with pytest.raises(ConfigError):
        RunningTopN(2, 0)
    top = RunningTopN(2, 2)
    with pytest.raises(StatisticsError, match="NaN"):
        top.add(torch.tensor([[float("nan"), 1.0]]), torch.tensor([0]))
    with pytest.raises(StatisticsError):
        top.add(torch.zeros(3, 5), torch.arange(3))
    with pytest.raises(StatisticsError):
        top.add(torch.zeros(3, 2), torch.arange(2))
