"""SynthFACS: determinism, shapes, AU locality, prototypes, datasets, CLI, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from captum_fau.cli import main as cli_main
from captum_fau.data.au import parse_au
from captum_fau.data.base import CKPLUS_CLASSES, FaceSet
from captum_fau.data.synthfacs import (
    IMAGES_PER_SUBJECT,
    PROTOTYPES,
    SYNTHFACS_AUS,
    SynthFACS,
    load_synthfacs,
    nearest_prototype,
    region_masks,
    render,
    render_with_aus,
)
from captum_fau.errors import CaptumFAUError, ConfigError

REQUIRED = (
    "AU1",
    "AU2",
    "AU4",
    "AU5",
    "AU6",
    "AU7",
    "AU9",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU17",
    "AU20",
    "AU23",
    "AU24",
    "AU25",
    "AU26",
    "AU27",
    "R12",
    "R14",
)
J = len(SYNTHFACS_AUS)


def test_au_ids_are_normalised_and_complete():
    assert set(REQUIRED) <= set(SYNTHFACS_AUS)
    assert all(parse_au(au) == au for au in SYNTHFACS_AUS)


def test_shapes_and_dtypes():
    b = render(6, seed=1, masks=True)
    assert b.images.shape == (6, 96, 96) and b.images.dtype == np.uint8
    assert b.emotions.shape == (6,) and b.emotions.dtype == np.int64
    assert b.aus.shape == (6, J) and b.aus.dtype == np.float32
    assert b.subjects.dtype == np.int64
    assert b.masks.shape == (6, J, 96, 96) and b.masks.dtype == bool
    assert ((b.aus >= 0) & (b.aus <= 5)).all()
    assert render(2, size=48).images.shape == (2, 48, 48)
    assert render(2).masks is None


def test_determinism_start_and_seeds():
    a, b = render(12, seed=7), render(12, seed=7)
    assert a.images.tobytes() == b.images.tobytes()
    part = render(4, seed=7, start=8)
    for field in ("images", "emotions", "aus", "subjects"):
        np.testing.assert_array_equal(getattr(a, field)[8:], getattr(part, field))
    assert not np.array_equal(render(4, seed=8).images, a.images[:4])
    # an explicit subject count is shard-consistent too
    whole = render(10, seed=2, n_subjects=3)
    np.testing.assert_array_equal(whole.images[6:], render(4, seed=2, n_subjects=3, start=6).images)


def test_subjects_are_deterministic_and_share_identity():
    b = render(2 * IMAGES_PER_SUBJECT + 1, seed=0)
    np.testing.assert_array_equal(b.subjects, np.arange(len(b.subjects)) // IMAGES_PER_SUBJECT)
    assert set(render(9, seed=0, n_subjects=4).subjects.tolist()) == {0, 1, 2, 3}
    # the same subject with the same AUs looks alike; different subjects differ more
    zero = np.zeros(J, np.float32)
    same = [render_with_aus(0, i, zero)[0].astype(float) for i in (0, 1)]
    other = render_with_aus(0, IMAGES_PER_SUBJECT, zero)[0].astype(float)
    assert np.abs(same[0] - same[1]).mean() < np.abs(same[0] - other).mean()


def test_region_masks_recomputed_and_only_for_present_aus():
    b = render(8, seed=3, masks=True)
    np.testing.assert_array_equal(region_masks(3, range(8)), b.masks)
    np.testing.assert_array_equal(region_masks(3, [5, 2]), b.masks[[5, 2]])
    present = b.masks.any(axis=(2, 3))
    np.testing.assert_array_equal(present, b.aus > 0)


@pytest.mark.parametrize("au", SYNTHFACS_AUS)
def test_each_au_changes_pixels_mainly_inside_its_own_mask(au):
    j = SYNTHFACS_AUS.index(au)
    zero = np.zeros(J, np.float32)
    for index in (0, 37, 81):
        plain, _ = render_with_aus(0, index, zero)
        for intensity, min_energy in ((5.0, 2000.0), (2.0, 200.0)):
            vector = zero.copy()
            vector[j] = intensity
            moved, masks = render_with_aus(0, index, vector)
            energy = (plain.astype(np.float64) - moved) ** 2
            assert energy.sum() > min_energy, f"{au} at {intensity} barely changes the image"
            inside = energy[masks[j]].sum() / energy.sum()
            assert inside > 0.8, f"{au}: only {inside:.2f} of the change lies inside its region"
            assert masks[j].mean() < 0.25 and not np.delete(masks, j, axis=0).any()


def test_intensity_scales_the_effect():
    j = SYNTHFACS_AUS.index("AU12")
    zero = np.zeros(J, np.float32)
    plain = render_with_aus(0, 5, zero)[0].astype(float)
    energies = []
    for level in (1.0, 3.0, 5.0):
        v = zero.copy()
        v[j] = level
        energies.append(((render_with_aus(0, 5, v)[0] - plain) ** 2).sum())
    assert energies[0] < energies[1] < energies[2]


def test_prototype_mode_gives_the_prototype_aus():
    b = render(400, seed=11)
    assert set(np.unique(b.emotions).tolist()) == set(range(8))
    col = {au: SYNTHFACS_AUS.index(au) for au in SYNTHFACS_AUS}
    for code, proto in PROTOTYPES.items():
        rows = b.aus[b.emotions == code]
        for au in proto.core:
            assert (rows[:, col[au]] > 0).all(), f"{CKPLUS_CLASSES[code]} lacks {au}"
        for group in proto.one_of:
            assert (rows[:, [col[a] for a in group]] > 0).any(axis=1).all()
    assert (b.aus[b.emotions == 0] == 0).all()
    happy = b.emotions == 5
    assert (b.aus[happy][:, col["AU12"]] >= 1.5).all() and (b.aus[~happy][:, col["AU12"]] == 0).all()


def test_independent_mode_decorrelates_au6_and_au12():
    b = render(600, seed=5, mode="independent")
    p6 = b.aus[:, SYNTHFACS_AUS.index("AU6")] > 0
    p12 = b.aus[:, SYNTHFACS_AUS.index("AU12")] > 0
    assert abs(np.corrcoef(p6, p12)[0, 1]) < 0.15
    assert 0.1 < p6.mean() < 0.3
    proto = render(600, seed=5)
    q6 = proto.aus[:, SYNTHFACS_AUS.index("AU6")] > 0
    q12 = proto.aus[:, SYNTHFACS_AUS.index("AU12")] > 0
    assert np.corrcoef(q6, q12)[0, 1] > 0.6
    expected = [nearest_prototype(row) for row in b.aus]
    np.testing.assert_array_equal(b.emotions, expected)
    assert nearest_prototype(np.zeros(J)) == 0


def test_load_synthfacs_faceset_with_dataloader():
    fs = load_synthfacs(n=24, seed=4)
    assert isinstance(fs, FaceSet) and fs.name == "synthfacs"
    assert fs.class_names == CKPLUS_CLASSES and fs.au_ids == SYNTHFACS_AUS
    assert fs.meta["seed"] == 4 and fs.meta["size"] == 96 and fs.meta["mode"] == "prototype"
    masks = region_masks(
        fs.meta["seed"], [3], size=fs.meta["size"], mode=fs.meta["mode"], n_subjects=fs.meta["n_subjects"]
    )
    np.testing.assert_array_equal(masks[0].any(axis=(1, 2)), fs.aus[3] > 0)
    batch = next(iter(DataLoader(fs, batch_size=8, shuffle=False)))
    assert batch["image"].shape == (8, 1, 96, 96) and batch["aus"].shape == (8, J)


def test_lazy_dataset_matches_render():
    ds = SynthFACS(n=10_000_000, seed=6, masks=True)
    assert len(ds) == 10_000_000
    b = render(3, seed=6, start=9_999_997, masks=True)
    item = ds[9_999_998]
    expected = FaceSet(images=b.images, aus=b.aus, au_ids=SYNTHFACS_AUS)[1]["image"]
    torch.testing.assert_close(item["image"], expected)
    assert item["emotion"] == int(b.emotions[1]) and item["subject"] == int(b.subjects[1])
    np.testing.assert_array_equal(item["masks"].numpy(), b.masks[1])
    batch = next(iter(DataLoader(SynthFACS(n=16), batch_size=4)))
    assert batch["image"].shape == (4, 1, 96, 96) and batch["emotion"].dtype == torch.int64
    with pytest.raises(IndexError):
        SynthFACS(n=3)[3]


def test_cli_writes_npz_and_contact_sheet(tmp_path, capsys):
    out = tmp_path / "set"
    assert cli_main(["data", "synthfacs", "--n", "70", "--out", str(out), "--seed", "2", "--masks", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "70 images" in printed and "images/s" in printed
    with np.load(out / "synthfacs.npz", allow_pickle=False) as data:
        ref = render(70, seed=2, masks=True)
        np.testing.assert_array_equal(data["images"], ref.images)
        np.testing.assert_array_equal(data["masks"], ref.masks)
        assert tuple(data["au_ids"].tolist()) == SYNTHFACS_AUS and int(data["seed"]) == 2
        assert str(data["mode"]) == "prototype" and data["emotions"].dtype == np.int64
    import cv2

    sheet = cv2.imread(str(out / "contact_sheet.png"), cv2.IMREAD_GRAYSCALE)
    assert sheet is not None and sheet.shape[1] == 8 * 96 and sheet.shape[0] > 8 * 96
    assert not list(out.glob("*.tmp"))
    assert cli_main(["data", "synthfacs", "--n", "5", "--out", str(tmp_path / "b"), "-q"]) == 0
    with np.load(tmp_path / "b" / "synthfacs.npz", allow_pickle=False) as data:
        assert "masks" not in data.files


def test_cli_bad_input_exit_codes(tmp_path, capsys):
    assert cli_main(["data", "synthfacs", "--n", "3", "--out", str(tmp_path), "--size", "8", "-q"]) == 2
    assert "size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["data", "synthfacs", "--n", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        cli_main(["data", "synthfacs", "--n", "3", "--out", str(tmp_path), "--mode", "weird"])


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"n": 0}, "n must be >= 1"),
        ({"n": -3}, "n must be >= 1"),
        ({"n": 2.5}, "n must be an integer"),
        ({"n": 2, "mode": "random"}, "Unknown SynthFACS mode"),
        ({"n": 2, "size": 0}, "size must be >= 32"),
        ({"n": 2, "size": 16}, "size must be >= 32"),
        ({"n": 2, "size": 4096}, "above 1024"),
        ({"n": 2, "seed": -1}, "seed must be >= 0"),
        ({"n": 2, "seed": "x"}, "seed must be an integer"),
        ({"n": 2, "n_subjects": 0}, "n_subjects must be >= 1"),
        ({"n": 2, "start": -1}, "start must be >= 0"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        render(**kwargs)


def test_bad_input_other_entry_points():
    with pytest.raises(CaptumFAUError, match="mode"):
        SynthFACS(n=5, mode="x")
    with pytest.raises(CaptumFAUError, match="n must be"):
        load_synthfacs(n=0)
    with pytest.raises(CaptumFAUError, match="non-negative"):
        region_masks(0, [-1])
    with pytest.raises(CaptumFAUError, match="intensities in 0..5"):
        render_with_aus(0, 0, np.full(J, 7.0))


def test_console_entry_point_lists_command():
    out = subprocess.run([sys.executable, "-m", "captum_fau.cli", "data", "--help"], capture_output=True, text=True)
    assert "synthfacs" in out.stdout


def test_layout_names_stay_importable_from_geometry():
    """The cartoon drawing keeps the layout's names (public and those the photo style uses) under its old path."""
    from captum_fau.synthfacs import geometry, layout

    names = ["AU_INDEX", "SYNTHFACS_AUS", "Identity", "Nuisance", "pose_matrix", "sample_identity", "sample_nuisance",
             "_AUs", "_Layout", "_face_outline", "_jaw_region", "_mouth_shape", "_region_ellipses"]  # fmt: skip
    assert [getattr(geometry, n) is getattr(layout, n) for n in names] == [True] * len(names)
    assert set(geometry.__all__) >= {"draw_face", "draw_regions", *layout.__all__}
