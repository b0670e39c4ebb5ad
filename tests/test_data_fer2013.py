"""FER2013 loader on CSVs in the Kaggle format."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers.real_formats import fer_pixels, write_fer_csv

from captum_fau.data.fer2013 import FER2013_CLASSES, load_fer2013
from captum_fau.data.folds import tfd_split
from captum_fau.errors import DatasetError, DatasetLayoutError


def test_rows_labels_and_usage(tmp_path) -> None:
    rows = [
        (str(i % 7), fer_pixels(i), usage)
        for i, usage in enumerate(["Training"] * 5 + ["PublicTest"] * 2 + ["PrivateTest"] * 3)
    ]
    write_fer_csv(tmp_path / "fer2013.csv", rows)
    faces = load_fer2013(tmp_path, progress=False)
    assert len(faces) == 10 and faces.images.shape == (10, 48, 48) and faces.class_names == FER2013_CLASSES
    assert faces.emotions.tolist() == [i % 7 for i in range(10)]
    np.testing.assert_array_equal(faces.images[3].reshape(-1), np.array(fer_pixels(3).split(), dtype=np.uint8))
    train, valid, test = tfd_split(faces, 0)
    assert (len(train), len(valid), len(test)) == (5, 2, 3)
    assert faces.meta["usage"][5] == "PublicTest"
    assert load_fer2013(tmp_path / "fer2013.csv", size=96, progress=False).images.shape == (10, 96, 96)


def test_spaced_header_and_missing_columns(tmp_path) -> None:
    write_fer_csv(tmp_path / "a.csv", [("3", " Training", fer_pixels(0))], header="emotion, Usage, pixels")
    faces = load_fer2013(tmp_path / "a.csv", progress=False)
    assert faces.emotions.tolist() == [3] and faces.folds.tolist() == [[1]]
    (tmp_path / "test.csv").write_text("pixels\n" + fer_pixels(1) + "\n")
    unlabelled = load_fer2013(tmp_path / "test.csv", progress=False)
    assert unlabelled.emotions is None and unlabelled.folds is None


def test_malformed_rows_are_skipped_with_one_warning(tmp_path) -> None:
    rows = [
        ("0", fer_pixels(0), "Training"),
        ("9", fer_pixels(1), "Training"),
        ("1", fer_pixels(2, count=100), "Training"),
        ("2", "1 2 x", "Training"),
        ("3", fer_pixels(3), "Validation"),
        ("4", fer_pixels(4), "PrivateTest"),
    ]
    write_fer_csv(tmp_path / "fer2013.csv", rows)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        faces = load_fer2013(tmp_path / "fer2013.csv", progress=False)
    assert faces.emotions.tolist() == [0, 4]
    assert len(caught) == 1 and "skipped 4 of 6" in str(caught[0].message)
    assert [e["file"] for e in faces.meta["skipped"]] == [f"fer2013.csv:{n}" for n in (3, 4, 5, 6)]


def test_bad_files(tmp_path) -> None:
    with pytest.raises(DatasetLayoutError, match="emotion, pixels, Usage"):
        load_fer2013(tmp_path / "nope.csv")
    (tmp_path / "x.csv").write_text("emotion,image\n1,2\n")
    with pytest.raises(DatasetLayoutError, match="pixels"):
        load_fer2013(tmp_path / "x.csv")
    write_fer_csv(tmp_path / "y.csv", [("8", fer_pixels(0), "Training")])
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="no readable"):
        load_fer2013(tmp_path / "y.csv", progress=False)
