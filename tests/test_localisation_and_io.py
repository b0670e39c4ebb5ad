"""Region-energy localisation and atomic output: results and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captum_fau._utils.io import atomic_path, atomic_write_text
from captum_fau.concept.localisation import localisation_agreement, region_energy, region_stats
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
    out = localisation_agreement(energy, ["AU1", "AU1"], ["AU1", "AU12"], [5, 9], rule="energy")
    assert out["rate"] == 0.5 and [r["agree"] for r in out["per_filter"]] == [True, False]
    with pytest.raises(ConfigError, match="region_stats"):  # the default rule needs the area shares
        localisation_agreement(energy, ["AU1", "AU1"], ["AU1", "AU12"], [5, 9])


def _planted_regions() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """One filter, two 20x20 reconstructions; AU12 a 3x3 mask holding concentrated energy,
    AU26 a 15x20 mask (containing AU12's, as the jaw contains the lip corners) holding more raw
    energy spread thinly."""
    patches = torch.full((1, 2, 1, 20, 20), 0.0)
    patches[0, :, 0, 5:20, :] = 0.3  # diffuse energy over the large region
    patches[0, :, 0, 10:13, 10:13] = 1.0  # concentrated in the small one
    boxes = torch.tensor([[[0, 0, 20, 20], [0, 0, 20, 20]]])
    masks = np.zeros((1, 2, 20, 20), bool)
    masks[0, 0, 10:13, 10:13] = True  # AU12, 9 px
    masks[0, 1, 5:20, :] = True  # AU26, 300 px
    return patches, boxes, masks


def test_normalised_rule_picks_the_small_concentrated_region() -> None:
    patches, boxes, masks = _planted_regions()
    st = region_stats(patches, boxes, torch.zeros(1, 2, dtype=torch.long), lambda idx: masks[idx])
    energy_small, energy_large = 9 * 1.0, 9 * 1.0 + (300 - 9) * 0.09
    total = energy_large
    np.testing.assert_allclose(st.energy[0], [energy_small / total, energy_large / total])
    np.testing.assert_allclose(st.area[0], [9 / 400, 300 / 400])
    np.testing.assert_allclose(st.lift[0], [energy_small / total / (9 / 400), energy_large / total / (300 / 400)])
    assert st.energy[0, 1] > st.energy[0, 0] and st.lift[0, 0] > st.lift[0, 1]
    out = localisation_agreement(st, ["AU12"], ["AU12", "AU26"], [7])
    raw = localisation_agreement(st, ["AU12"], ["AU12", "AU26"], [7], rule="energy")
    assert out["rule"] == "lift" and out["per_filter"][0]["region_au"] == "AU12" and out["rate"] == 1.0
    assert raw["per_filter"][0]["region_au"] == "AU26" and raw["rate"] == 0.0 and out["rate_energy"] == 0.0
    assert "biased to large masks" in raw["rule_label"]


def test_pointing_game_on_constructed_maps() -> None:
    patches = torch.zeros(1, 4, 1, 10, 10)
    peaks = [(1, 1), (1, 2), (8, 8), (5, 5)]  # three inside AU1's mask (rows 0-2), one in AU2's
    for k, (y, x) in enumerate(peaks):
        patches[0, k, 0] = 0.1
        patches[0, k, 0, y, x] = -3.0  # the maximum of the squared map, whatever its sign
    masks = np.zeros((1, 2, 10, 10), bool)
    masks[0, 0, :3] = True
    masks[0, 1, 8:, 8:] = True
    boxes = torch.tensor([[[0, 0, 10, 10]] * 4])
    st = region_stats(patches, boxes, torch.zeros(1, 4, dtype=torch.long), lambda idx: masks[idx])
    np.testing.assert_allclose(st.pointing[0], [0.5, 0.25])  # (1,1), (1,2) in AU1; (8,8) in AU2; (5,5) in none
    out = localisation_agreement(st, ["AU2"], ["AU1", "AU2"], [0], rule="pointing")
    assert out["per_filter"][0]["region_au"] == "AU1" and out["pointing_hit"] == 0.25
    assert out["pointing_chance"] == pytest.approx(4 / 100)
    with pytest.raises(ConfigError, match="Unknown localisation rule"):
        localisation_agreement(st, ["AU2"], ["AU1", "AU2"], [0], rule="largest")


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
