"""TFD loader on .mat files written with scipy.io.savemat."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.real_formats import write_tfd_mat
from scipy.io import savemat

from captum_fau.data.folds import tfd_split
from captum_fau.data.tfd import TFD_CLASSES, load_tfd
from captum_fau.errors import ConfigError, DatasetLayoutError, LabelError


def test_labelled_images_labels_subjects_and_split_codes(tmp_path) -> None:
    contents = write_tfd_mat(tmp_path / "TFD_96x96.mat", count=40, unlabelled=10)
    faces = load_tfd(tmp_path / "TFD_96x96.mat")
    assert len(faces) == 40 and faces.images.shape == (40, 96, 96) and faces.images.dtype == np.uint8
    np.testing.assert_array_equal(faces.images, contents["images"][:40])
    np.testing.assert_array_equal(faces.emotions, contents["labs_ex"][:40, 0] - 1)
    np.testing.assert_array_equal(faces.subjects, contents["labs_id"][:40, 0])
    assert faces.folds.shape == (40, 5) and faces.class_names == TFD_CLASSES
    assert faces.class_names[0] == "anger" and faces.class_names[6] == "neutral"
    everything = load_tfd(tmp_path, labelled_only=False)  # a folder works too
    assert len(everything) == 50 and (everything.emotions[40:] == -1).all()


def test_fold_selection_and_tfd_split(tmp_path) -> None:
    contents = write_tfd_mat(tmp_path / "TFD_96x96.mat", count=30, unlabelled=0)
    faces = load_tfd(tmp_path / "TFD_96x96.mat", fold=2)
    train, valid, test = tfd_split(faces, 2)
    codes = contents["folds"][:, 2]
    assert (len(train), len(valid), len(test)) == tuple(int((codes == c).sum()) for c in (1, 2, 3))
    assert set(train) | set(valid) | set(test) == set(range(len(faces)))
    with pytest.raises(ConfigError, match="fold"):
        tfd_split(faces, 5)


def test_resize_to_48_and_hwn_storage(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (96, 96, 6), dtype=np.uint8)  # MATLAB-style (H, W, N)
    savemat(
        str(tmp_path / "TFD_96x96.mat"),
        {"images": images, "labs_ex": np.arange(1, 7.0)[:, None], "labs_id": np.ones((6, 1)), "folds": np.ones((6, 5))},
    )
    faces = load_tfd(tmp_path / "TFD_96x96.mat", size=48)
    assert faces.images.shape == (6, 48, 48)


def test_bad_files(tmp_path) -> None:
    with pytest.raises(DatasetLayoutError, match="TFD_96x96.mat"):
        load_tfd(tmp_path)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        load_tfd(tmp_path / "TFD_96x96.mat")
    (tmp_path / "junk.mat").write_bytes(b"garbage" * 10)
    with pytest.raises(DatasetLayoutError, match="not a readable"):
        load_tfd(tmp_path / "junk.mat")
    savemat(str(tmp_path / "partial.mat"), {"images": np.zeros((2, 96, 96), np.uint8), "labs_ex": np.ones((2, 1))})
    with pytest.raises(DatasetLayoutError, match="labs_id"):
        load_tfd(tmp_path / "partial.mat")
    savemat(
        str(tmp_path / "labels.mat"),
        {
            "images": np.zeros((2, 96, 96), np.uint8),
            "labs_ex": np.array([[1], [9]]),
            "labs_id": np.ones((2, 1)),
            "folds": np.ones((2, 5)),
        },
    )
    with pytest.raises(LabelError, match="labs_ex"):
        load_tfd(tmp_path / "labels.mat")
    savemat(
        str(tmp_path / "codes.mat"),
        {
            "images": np.zeros((2, 96, 96), np.uint8),
            "labs_ex": np.ones((2, 1)),
            "labs_id": np.ones((2, 1)),
            "folds": np.full((2, 5), 4),
        },
    )
    with pytest.raises(LabelError, match="split codes"):
        load_tfd(tmp_path / "codes.mat")
