"""Subject-independent folds and the CK+ / TFD split protocols.

Expression datasets hold many images of each person; a model tested on a
person it saw in training looks better than it is. Every fold helper here
keeps all images of one subject in one fold.

* :func:`subject_kfold` - k folds for any dataset with subject ids.
* :func:`ckplus_folds` - the reference CK+ protocol: subjects sorted by folder
  name, fold = index mod 10.
* :func:`train_valid_test` - train / validation / test indices of a k-fold
  protocol; the validation fold defaults to ``(test + 1) mod k`` as in the
  reference and is never the test fold.
* :func:`tfd_split` - the indices of one of TFD's five train/valid/test splits.

Examples::

    >>> import numpy as np
    >>> subjects = np.array(["S010", "S005", "S005", "S022", "S010"])
    >>> ckplus_folds(subjects, k=3).tolist()
    [1, 0, 0, 2, 1]
    >>> train, valid, test = train_valid_test(np.array([0, 1, 2, 0, 1, 2]), test_fold=2)
    >>> train.tolist(), valid.tolist(), test.tolist()
    ([1, 4], [0, 3], [2, 5])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from captum_fau.errors import ConfigError, DatasetError, LabelError

if TYPE_CHECKING:
    from captum_fau.data.base import FaceSet

#: TFD split codes in ``folds[:, k]``.
TFD_UNUSED, TFD_TRAIN, TFD_VALID, TFD_TEST = 0, 1, 2, 3


def _subject_array(subjects: np.ndarray) -> np.ndarray:
    subjects = np.asarray(subjects)
    if subjects.ndim != 1 or len(subjects) == 0:
        raise LabelError(f"subjects must be a non-empty 1-D array of ids, got shape {subjects.shape}.")
    return subjects


def ckplus_folds(subjects: np.ndarray, k: int = 10) -> np.ndarray:
    """The reference CK+ folds: unique subjects sorted, fold = subject index mod ``k``.

    Args:
        subjects (np.ndarray): ``[N]`` subject id per image (CK+ folder names ``"S005"``...).
        k (int, optional): Number of folds. Default: 10

    Returns:
        np.ndarray: ``[N]`` int64 fold index per image.
    """
    subjects = _subject_array(subjects)
    if k < 2:
        raise ConfigError(f"k must be at least 2 folds, got {k}.")
    _, subject_index = np.unique(subjects, return_inverse=True)
    return (subject_index.reshape(-1) % k).astype(np.int64)


def subject_kfold(subjects: np.ndarray, k: int, *, seed: int | None = None) -> np.ndarray:
    """Subject-independent k-fold assignment.

    Args:
        subjects (np.ndarray): ``[N]`` subject id per image.
        k (int): Number of folds (at most the number of subjects).
        seed (int, optional): ``None`` orders subjects by sorted id (fold = index mod ``k``,
            the CK+ rule); an integer shuffles the subjects with that seed first.
            Default: None

    Returns:
        np.ndarray: ``[N]`` int64 fold index per image; every subject's images share one fold.

    Raises:
        ConfigError: ``k < 2`` or more folds than subjects.

    Examples::

        >>> import numpy as np
        >>> folds = subject_kfold(np.repeat(np.arange(6), 3), k=3, seed=0)
        >>> sorted(np.bincount(folds).tolist())
        [6, 6, 6]
    """
    subjects = _subject_array(subjects)
    unique, subject_index = np.unique(subjects, return_inverse=True)
    if k < 2 or k > len(unique):
        raise ConfigError(
            f"k must be between 2 and the number of subjects ({len(unique)}), got {k}; "
            "use fewer folds or a dataset with more subjects."
        )
    order = np.arange(len(unique))
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_subject = np.empty(len(unique), np.int64)
    fold_of_subject[order] = np.arange(len(unique)) % k
    return fold_of_subject[subject_index.reshape(-1)]


def train_valid_test(
    fold_ids: np.ndarray, test_fold: int, valid_fold: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test indices of one round of a k-fold protocol.

    Args:
        fold_ids (np.ndarray): ``[N]`` fold index per image (0..k-1).
        test_fold (int): The held-out fold.
        valid_fold (int, optional): The fold used for model selection. Default:
            ``(test_fold + 1) % k``, the reference's choice.

    Returns:
        tuple of np.ndarray: ``(train_idx, valid_idx, test_idx)``, int64, disjoint.

    Raises:
        ConfigError: a fold is out of range, or ``valid_fold == test_fold``.
    """
    fold_ids = np.asarray(fold_ids)
    if fold_ids.ndim != 1 or len(fold_ids) == 0:
        raise LabelError(
            f"fold_ids must be a 1-D fold index per image, got shape {fold_ids.shape}; "
            "for TFD's [N, 5] split codes use tfd_split."
        )
    k = int(fold_ids.max()) + 1
    if not 0 <= test_fold < k:
        raise ConfigError(f"test_fold must be in 0..{k - 1}, got {test_fold}.")
    if valid_fold is None:
        valid_fold = (test_fold + 1) % k
    if not 0 <= valid_fold < k:
        raise ConfigError(f"valid_fold must be in 0..{k - 1}, got {valid_fold}.")
    if valid_fold == test_fold:
        raise ConfigError(
            f"valid_fold and test_fold are both {test_fold}; model selection on the test fold "
            "overstates accuracy. Pick another validation fold."
        )
    test = np.flatnonzero(fold_ids == test_fold)
    valid = np.flatnonzero(fold_ids == valid_fold)
    train = np.flatnonzero((fold_ids != test_fold) & (fold_ids != valid_fold))
    return train, valid, test


def tfd_split(faceset: "FaceSet", fold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test indices of TFD split ``fold`` (or any ``[N, K]`` split codes).

    Args:
        faceset (FaceSet): A set whose ``folds`` are ``[N, K]`` codes (0 unused, 1 train,
            2 valid, 3 test), as :func:`~captum_fau.data.tfd.load_tfd` and
            :func:`~captum_fau.data.fer2013.load_fer2013` return.
        fold (int): Column 0..K-1.

    Returns:
        tuple of np.ndarray: ``(train_idx, valid_idx, test_idx)``, int64.
    """
    codes = faceset.folds
    if codes is None or np.ndim(codes) != 2:
        raise DatasetError(
            f"{faceset.name!r} has no [N, K] split codes (folds={None if codes is None else np.shape(codes)}); "
            "tfd_split needs a set loaded by load_tfd or load_fer2013. For per-image fold indices use "
            "train_valid_test."
        )
    if not 0 <= fold < codes.shape[1]:
        raise ConfigError(f"fold must be in 0..{codes.shape[1] - 1} for {faceset.name!r}, got {fold}.")
    column = codes[:, fold]
    return (
        np.flatnonzero(column == TFD_TRAIN),
        np.flatnonzero(column == TFD_VALID),
        np.flatnonzero(column == TFD_TEST),
    )


__all__ = [
    "TFD_TEST",
    "TFD_TRAIN",
    "TFD_UNUSED",
    "TFD_VALID",
    "ckplus_folds",
    "subject_kfold",
    "tfd_split",
    "train_valid_test",
]
