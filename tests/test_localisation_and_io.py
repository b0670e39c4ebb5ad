"""Region-energy localisation and atomic output: results and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captum_fau._utils.io import atomic_path, atomic_write_text
from captum_fau.concept.localisation import localisation_agreement, region_energy
from captum_fau.errors import ConfigError, OutputError


def test_region_energy_and_agreement() -> None:
    patches = torch.zeros(2, 1, 1, 2, 2)
    patches[0, 0, 0, 0, 0] = 2.0  # all of filter 0's energy at pixel (0, 0)
    patches[1, 0, 0, 1, 1] = 1.0  # all of filter 1's energy at pixel (3, 3) (box offset 2)
    boxes = torch.tensor([[[0, 0, 2, 2]], [[2, 2, 4, 4]]])
    masks = np.zeros((1, 2, 4, 4), bool)
    masks[0, 0, 0, 0] = True
    masks[0, 1, 3, 3] = True
    energy = region_energy(patches, boxes, torch.zeros(2, 1, dtype=torch.long), lambda idx: masks[idx])
    np.testing.assert_allclose(energy, [[1.0, 0.0], [0.0, 1.0]])
    out = localisation_agreement(energy, ["AU1", "AU1"], ["AU1", "AU12"], [5, 9])
    assert out["rate"] == 0.5 and [r["agree"] for r in out["per_filter"]] == [True, False]


def test_region_energy_rejects_misaligned_inputs() -> None:
    with pytest.raises(ConfigError, match="must agree"):
        region_energy(torch.zeros(2, 3, 1, 2, 2), torch.zeros(2, 2, 4), torch.zeros(2, 3), lambda idx: None)


def test_atomic_write_is_all_or_nothing(tmp_path) -> None:
    target = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    assert (target.stat().st_mode & 0o777) != 0o600  # usual permissions, not mkstemp's


def test_unwritable_location_is_an_output_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="writable"):
        atomic_write_text(blocker / "sub" / "x.txt", "x")
