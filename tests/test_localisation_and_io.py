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
    out = localisation_agreement(st, ["AU12"], ["AU12", "AU26"], [7], rule="pointing")
    raw = localisation_agreement(st, ["AU12"], ["AU12", "AU26"], [7], rule="energy")
    default = localisation_agreement(st, ["AU12"], ["AU12", "AU26"], [7])
    # pointing game: both maxima lie in AU12's mask, hence in AU26's too; the smaller wins the tie
    assert (
        out["per_filter"][0]["region_au"] == "AU12"
        and out["rate"] == 1.0
        and out["per_filter"][0]["region_hits"] == 1.0
    )
    assert raw["per_filter"][0]["region_au"] == "AU26" and raw["rate"] == 0.0 and out["rate_energy"] == 0.0
    assert "biased to large masks" in raw["rule_label"]
    assert out["comparison"]["energy"] == (raw["rule_label"], 0.0) and out["rate_lift"] == 1.0
    # the default: AU12 holds a quarter of AU26's energy, so most of the energy is spread over the large region
    assert default["rule"] == "nested" and default["per_filter"][0]["region_au"] == "AU26"
    assert "most specific region" in default["rule_description"] and default["rate_pointing"] == 1.0
    patches[0, :, 0, 5:20, :] = 0.03  # now the small region holds most of it: the default descends into it
    patches[0, :, 0, 10:13, 10:13] = 1.0
    st = region_stats(patches, boxes, torch.zeros(1, 2, dtype=torch.long), lambda idx: masks[idx])
    assert localisation_agreement(st, ["AU12"], ["AU12", "AU26"], [7])["rate"] == 1.0


def test_a_few_pixels_fool_the_lift_but_not_the_default_rule() -> None:
    """AU5's energy sits in its 100-px mask; 4 px of AU2's mask at the window's edge catch a little edge
    energy: a large lift from almost nothing."""
    patches = torch.full((1, 3, 1, 20, 20), 0.05)
    patches[0, :, 0, 5:15, 5:15] = 1.0  # the AU5 drawing
    patches[0, :, 0, 0:2, 0:2] = 1.2  # an edge in AU2's corner
    for k in range(3):
        patches[0, k, 0, 8 + k, 9] = 1.5  # each reconstruction's maximum inside AU5's mask
    masks = np.zeros((1, 2, 20, 20), bool)
    masks[0, 0, 0:2, 0:2] = True  # AU2, 4 px
    masks[0, 1, 5:15, 5:15] = True  # AU5, 100 px
    boxes = torch.tensor([[[0, 0, 20, 20]] * 3])
    st = region_stats(patches, boxes, torch.zeros(1, 3, dtype=torch.long), lambda idx: masks[idx])
    assert st.lift[0, 0] > st.lift[0, 1]  # the ratio prefers the 4 px
    out = localisation_agreement(st, ["AU5"], ["AU2", "AU5"], [0], min_area=0.005)
    assert out["per_filter"][0]["region_au"] == "AU5" and out["rate_lift"] == 0.0
    assert out["rate_pointing"] == out["rate_concentration"] == out["rate_excess"] == 1.0


def test_pairwise_overlaps_and_scores_match_direct_computations() -> None:
    from scipy.stats import entropy

    from captum_fau.concept.localisation import nested_choice

    rng = np.random.default_rng(3)
    patches = torch.from_numpy(rng.normal(size=(2, 3, 1, 8, 8)))
    boxes = torch.tensor([[[0, 0, 8, 8], [2, 2, 10, 10], [4, 0, 12, 8]]] * 2)
    masks = rng.random((4, 3, 12, 12)) < 0.4
    indices = torch.tensor([[0, 1, 2], [3, 2, 1]])
    st = region_stats(patches, boxes, indices, lambda idx: masks[idx])
    for f in range(2):
        energy = np.zeros((3, 3))
        total = 0.0
        for n in range(3):
            y0, x0, y1, x1 = boxes[f, n].tolist()
            e = patches[f, n, 0].numpy() ** 2
            m = masks[int(indices[f, n]), :, y0:y1, x0:x1]
            total += e.sum()
            for j in range(3):
                for k in range(3):
                    energy[j, k] += e[m[j] & m[k]].sum()
        np.testing.assert_allclose(st.pair_energy[f], energy / total, rtol=1e-10)
        np.testing.assert_allclose(np.diag(st.pair_energy[f]), st.energy[f])
        for j in range(3):
            e, a = st.energy[f, j], st.area[f, j]
            kl = entropy([e, 1 - e], [a, 1 - a])
            assert st.concentration[f, j] == pytest.approx(np.sign(e - a) * kl, abs=1e-12)
            assert st.excess[f, j] == pytest.approx(e - a)
        assert 0 <= nested_choice(st, f) < 3


def test_nested_rule_descends_only_into_a_region_holding_most_of_the_energy() -> None:
    from captum_fau.concept.localisation import RegionStats, nested_choice

    energy, area = np.array([[1.0, 0.7, 0.1]]), np.array([[1.0, 0.2, 0.1]])
    pair_energy, pair_area = np.diag(energy[0])[None].copy(), np.diag(area[0])[None].copy()
    for j in (1, 2):  # regions 1 and 2 lie inside region 0
        pair_energy[0, 0, j] = pair_energy[0, j, 0] = energy[0, j]
        pair_area[0, 0, j] = pair_area[0, j, 0] = area[0, j]
    st = RegionStats(energy, area, np.zeros((1, 3)), pair_energy, pair_area)
    assert nested_choice(st, 0) == 1  # 70% of the parent's energy on 20% of its area
    st.energy[0, 1] = st.pair_energy[0, 1, 1] = st.pair_energy[0, 0, 1] = st.pair_energy[0, 1, 0] = 0.4
    assert nested_choice(st, 0) == 0  # a minority of the energy: stay with the parent


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
