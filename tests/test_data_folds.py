"""Subject-independent folds and the CK+/TFD protocol helpers."""

from __future__ import annotations

import numpy as np
import pytest

from captum_fau.data.base import FaceSet
from captum_fau.data.folds import ckplus_folds, subject_kfold, tfd_split, train_valid_test
from captum_fau.errors import ConfigError, DatasetError, LabelError


def _subjects(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([f"S{s:03d}" for s in rng.integers(0, 37, 400)])


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_subjects_never_split_and_deterministic(seed) -> None:
    subjects = _subjects()
    folds = subject_kfold(subjects, 5, seed=seed)
    for subject in np.unique(subjects):
        assert len(set(folds[subjects == subject])) == 1
    np.testing.assert_array_equal(folds, subject_kfold(subjects, 5, seed=seed))
    assert set(folds.tolist()) == set(range(5))


def test_seeds_differ_and_none_is_the_sorted_rule() -> None:
    subjects = _subjects()
    assert not np.array_equal(subject_kfold(subjects, 5, seed=0), subject_kfold(subjects, 5, seed=1))
    np.testing.assert_array_equal(subject_kfold(subjects, 10), ckplus_folds(subjects))


def test_ckplus_folds_are_sorted_index_mod_10() -> None:
    subjects = np.array(["S130", "S005", "S011", "S010", "S005"] + [f"S2{i:02d}" for i in range(10)])
    folds = ckplus_folds(subjects)
    order = sorted(set(subjects.tolist()))
    assert folds.tolist() == [order.index(s) % 10 for s in subjects]


def test_train_valid_test_reference_rotation() -> None:
    fold_ids = np.repeat(np.arange(10), 3)
    train, valid, test = train_valid_test(fold_ids, 9)
    assert set(fold_ids[test]) == {9} and set(fold_ids[valid]) == {0}
    assert len(train) == 24 and not (set(train) & (set(valid) | set(test)))
    _, valid, _ = train_valid_test(fold_ids, 3, valid_fold=7)
    assert set(fold_ids[valid]) == {7}


def test_bad_fold_requests() -> None:
    fold_ids = np.repeat(np.arange(4), 2)
    with pytest.raises(ConfigError, match="test fold"):
        train_valid_test(fold_ids, 1, valid_fold=1)
    with pytest.raises(ConfigError, match="test_fold"):
        train_valid_test(fold_ids, 4)
    with pytest.raises(LabelError, match="tfd_split"):
        train_valid_test(np.zeros((4, 5)), 0)
    with pytest.raises(ConfigError, match="number of subjects"):
        subject_kfold(np.array(["a", "b"]), 3)
    with pytest.raises(LabelError):
        subject_kfold(np.array([]), 2)
    plain = FaceSet(images=np.zeros((2, 4, 4), np.uint8), folds=np.array([0, 1]))
    with pytest.raises(DatasetError, match="split codes"):
        tfd_split(plain, 0)
