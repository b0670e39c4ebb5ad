"""The paper's evaluation protocols and ablations.

* **CK+ 8-class**: 10 subject folds (subjects sorted by id, fold = index mod 10).
* **CK+ 6-class**: the same folds without the neutral and contempt images.
* **TFD**: its 5 predefined train / valid / test splits.
* **SynthFACS**: k subject-independent folds of the built-in renderer's faces.

Each round trains on the training folds, selects a checkpoint on a
*validation* fold and reports accuracy on the held-out *test* fold. For
CK+ and SynthFACS the validation fold is the fold after the test fold
(``(test + 1) % k``); TFD brings its own. ``selection="test"`` reproduces the
reference code instead (train on every non-test fold, pick the checkpoint
with the best test accuracy); its results are labelled as that optimistic
comparison in every table.

Ablations are the paper's table rows: ``plain`` (no augmentation, no
dropout), ``+D`` (dropout), ``+A`` (augmentation), ``+AD`` (both).

Every (variant, fold) run trains from its own seed, :func:`run_seed`: the
reference drew its initialisation scale ``k ~ U[0.2, 1.2)`` afresh for each
run, so runs sharing one seed would share ``k``, the initial weights and the
batch order, and the spread over folds would understate the run-to-run
variation. A run's seed depends only on the base seed, the variant and the
fold (not on which runs are selected), so a fold rerun alone trains exactly
as it did in the full table; each fold's result records its seed and ``k``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from captum_fau.data.base import FaceSet
from captum_fau.data.folds import ckplus_folds, subject_kfold, tfd_split, train_valid_test
from captum_fau.errors import ConfigError, DatasetError, LabelError
from captum_fau.train.evaluate import ResultsTable, evaluate_model
from captum_fau.train.trainer import TrainConfig, train

#: The paper's ablation rows: variant -> (augment, dropout probability).
ABLATIONS: dict[str, tuple[bool, float]] = {
    "plain": (False, 0.0),
    "+D": (False, 0.5),
    "+A": (True, 0.0),
    "+AD": (True, 0.5),
}

#: Protocol names understood by :func:`make_splits` and :func:`run_protocol`.
PROTOCOLS: dict[str, str] = {
    "ckplus8": "CK+ 8-class, 10 subject-independent folds",
    "ckplus6": "CK+ 6-class, 10 subject-independent folds",
    "tfd": "TFD 7-class, 5 train/valid/test splits",
    "synthfacs": "SynthFACS 8-class, subject-independent folds",
}

#: The 6 CK+ classes of the paper's second protocol, in CK+ code order.
CKPLUS6_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sadness", "surprise")


@dataclass
class Split:
    """One round of a protocol.

    Attributes:
        fold: Index of the test fold (or TFD split).
        train: Training images.
        valid: Validation images (``None`` under ``selection="test"``).
        test: Held-out images.
    """

    fold: int
    train: FaceSet
    valid: FaceSet | None
    test: FaceSet


def run_seed(seed: int, variant: str, fold: int) -> int:
    """The training seed of one (variant, fold) run of a protocol.

    Derived with :class:`numpy.random.SeedSequence` from ``seed`` and the
    run's position (variant index in :data:`ABLATIONS`, fold), so that runs
    get distinct, reproducible seeds whatever subset of runs is trained.

    Args:
        seed (int): The base seed of the protocol (``TrainConfig.seed``).
        variant (str): ``plain``, ``+D``, ``+A`` or ``+AD``.
        fold (int): Test fold (or TFD split) index.

    Returns:
        int: A seed in ``[0, 2**32)``.

    Examples::

        >>> run_seed(0, "+AD", 0) == run_seed(0, "+AD", 0) != run_seed(0, "+AD", 1)
        True
    """
    if variant not in ABLATIONS:
        raise ConfigError(f"Unknown variant {variant!r}; choose from {list(ABLATIONS)}.")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"The base seed must be a non-negative integer, got {seed!r}.")
    sequence = np.random.SeedSequence(int(seed), spawn_key=(list(ABLATIONS).index(variant), int(fold)))
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def variant_config(base: TrainConfig, variant: str) -> TrainConfig:
    """``base`` with the augmentation/dropout of an ablation row (``plain``, ``+D``, ``+A``, ``+AD``)."""
    if variant not in ABLATIONS:
        raise ConfigError(f"Unknown variant {variant!r}; choose from {list(ABLATIONS)}.")
    augment, dropout = ABLATIONS[variant]
    return dataclasses.replace(base, augment=augment, dropout=dropout)


def to_ckplus6(data: FaceSet) -> FaceSet:
    """Drop neutral and contempt images of an 8-class CK+ set and relabel to the 6 basic emotions."""
    if data.emotions is None:
        raise LabelError(f"{data.name!r} has no emotion labels; the 6-class protocol needs CK+ labels.")
    if tuple(data.class_names) == CKPLUS6_CLASSES:
        return data
    names = list(data.class_names)
    if not set(CKPLUS6_CLASSES) <= set(names):
        raise LabelError(
            f"{data.name!r} has classes {data.class_names}; the 6-class protocol needs the CK+ classes "
            f"{CKPLUS6_CLASSES} (load CK+ with num_classes=8 or 6)."
        )
    keep_names = set(CKPLUS6_CLASSES)
    old_to_new = {names.index(n): i for i, n in enumerate(CKPLUS6_CLASSES)}
    keep = np.array([e >= 0 and names[e] in keep_names for e in data.emotions])
    subset = data.subset(np.flatnonzero(keep))
    emotions = np.array([old_to_new[int(e)] for e in subset.emotions], np.int64)
    return dataclasses.replace(subset, class_names=CKPLUS6_CLASSES, emotions=emotions)


def _check_subjects(data: FaceSet, protocol: str) -> np.ndarray:
    if data.subjects is None:
        raise LabelError(
            f"{data.name!r} has no subject ids; the {protocol} protocol needs them for subject-independent folds."
        )
    return data.subjects


def make_splits(
    protocol: str,
    data: FaceSet,
    *,
    n_folds: int | None = None,
    folds: Sequence[int] | None = None,
    selection: str = "valid",
    seed: int = 0,
) -> Iterator[Split]:
    """Yield the train/valid/test rounds of ``protocol`` on ``data``.

    Args:
        protocol (str): ``"ckplus8"``, ``"ckplus6"``, ``"tfd"`` or ``"synthfacs"``.
        data (FaceSet): The dataset (an 8-class CK+ set also serves ``"ckplus6"``).
        n_folds (int, optional): Number of folds (10 for CK+, 5 for SynthFACS by default;
            TFD has its 5 splits).
        folds (sequence of int, optional): Run only these test folds. Default: all.
        selection (str, optional): ``"valid"`` / ``"last"`` hold out a validation fold;
            ``"test"`` trains on all non-test folds (the reference's protocol). Default: ``"valid"``
        seed (int, optional): Shuffles SynthFACS subjects into folds. Default: 0

    Yields:
        Split: one round per test fold.

    Raises:
        ConfigError: unknown protocol or fold.
        LabelError: a training split lacks a class (the message names the fold and classes).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"Unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}.")
    if protocol == "ckplus6":
        data = to_ckplus6(data)
    if protocol == "tfd":
        if data.folds is None or np.ndim(data.folds) != 2:
            raise DatasetError(f"{data.name!r} has no TFD split codes; load it with captum_fau.data.tfd.load_tfd.")
        k = data.folds.shape[1]
    else:
        subjects = _check_subjects(data, protocol)
        k = n_folds or (10 if protocol.startswith("ckplus") else 5)
        fold_ids = ckplus_folds(subjects, k) if protocol.startswith("ckplus") else subject_kfold(subjects, k, seed=seed)
    chosen = list(range(k)) if folds is None else [int(f) for f in folds]
    bad = [f for f in chosen if not 0 <= f < k]
    if bad:
        raise ConfigError(f"Folds {bad} do not exist; {protocol} has folds 0..{k - 1}.")
    for fold in chosen:
        if protocol == "tfd":
            train_idx, valid_idx, test_idx = tfd_split(data, fold)
            if selection == "test":
                valid_idx = np.zeros(0, np.int64)
        elif selection == "test":
            test_idx = np.flatnonzero(fold_ids == fold)
            train_idx = np.flatnonzero(fold_ids != fold)
            valid_idx = np.zeros(0, np.int64)
        else:
            train_idx, valid_idx, test_idx = train_valid_test(fold_ids, fold)
        train_set = data.subset(train_idx)
        present = np.unique(train_set.emotions[train_set.emotions >= 0]) if train_set.emotions is not None else []
        missing = [
            data.class_names[c] for c in range(len(data.class_names)) if c not in set(np.asarray(present).tolist())
        ]
        if missing:
            raise LabelError(
                f"Fold {fold} of {protocol}: the training split has no image of class(es) {missing}. "
                "Use fewer folds, a different fold seed, or more subjects so that every class is trained."
            )
        if len(test_idx) == 0:
            raise DatasetError(f"Fold {fold} of {protocol} has no test image; use fewer folds.")
        valid_set = data.subset(valid_idx) if len(valid_idx) else None
        if selection == "valid" and valid_set is None:
            raise DatasetError(f"Fold {fold} of {protocol} has no validation image; use selection='last' or 'test'.")
        yield Split(fold=fold, train=train_set, valid=valid_set, test=data.subset(test_idx))


def run_protocol(
    protocol: str,
    data: FaceSet,
    config: TrainConfig | None = None,
    *,
    variants: Sequence[str] = ("plain", "+D", "+A", "+AD"),
    n_folds: int | None = None,
    folds: Sequence[int] | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> ResultsTable:
    """Train and evaluate every (variant, fold) of a protocol: one of the paper's tables.

    Args:
        protocol (str): See :data:`PROTOCOLS`.
        data (FaceSet): The dataset.
        config (TrainConfig, optional): Base recipe; each variant overrides augmentation/dropout,
            and each run trains from its own seed, :func:`run_seed` of ``config.seed`` (which also
            shuffles SynthFACS subjects into folds).
        variants (sequence of str, optional): Ablation rows to run. Default: all four.
        n_folds (int, optional): Number of folds (see :func:`make_splits`).
        folds (sequence of int, optional): Only these test folds. Default: all.
        out_dir (str or Path, optional): One run folder per ``variant/fold_N`` (checkpoints,
            ``training_log.jsonl``; interrupted runs resume) plus ``results.json``.
        progress (bool, optional): Show progress bars. Default: True

    Returns:
        ResultsTable: per-fold results; ``to_markdown()`` renders the paper's layout.

    Examples::

        >>> import numpy as np
        >>> from captum_fau.data.base import FaceSet
        >>> rng = np.random.default_rng(0)
        >>> fs = FaceSet(images=rng.integers(0, 255, (24, 32, 32), dtype=np.uint8), class_names=("a", "b"),
        ...              emotions=np.arange(24) % 2, subjects=np.arange(24) // 4)
        >>> cfg = TrainConfig(iterations=2, batch_size=4, checkpoint_every=1)
        >>> table = run_protocol("synthfacs", fs, cfg, variants=["+AD"], n_folds=3, progress=False)
        >>> len(table.folds)
        3
    """
    config = config or TrainConfig()
    for variant in variants:
        variant_config(config, variant)  # validate names before any training
    splits = list(
        make_splits(protocol, data, n_folds=n_folds, folds=folds, selection=config.selection, seed=config.seed)
    )
    class_names = splits[0].test.class_names
    table = ResultsTable(
        title=PROTOCOLS[protocol],
        class_names=class_names,
        meta={
            "protocol": protocol,
            "dataset": data.name,
            "n_images": len(data),
            "recipe": config.to_dict(),
            "run_seeds": "numpy SeedSequence(recipe seed, spawn_key=(variant index in plain,+D,+A,+AD; fold)); "
            "each fold's extra holds its seed and init_k",
        },
    )
    root = Path(out_dir) if out_dir is not None else None
    for variant in variants:
        for split in splits:
            cfg = dataclasses.replace(variant_config(config, variant), seed=run_seed(config.seed, variant, split.fold))
            run_dir = root / variant.replace("+", "plus_") / f"fold_{split.fold}" if root is not None else None
            result = train(
                split.train,
                cfg,
                valid_set=split.valid,
                test_set=split.test if cfg.selection == "test" else None,
                out_dir=run_dir,
                progress=progress,
            )
            fold_result = evaluate_model(
                result.model,
                split.test,
                fold=split.fold,
                variant=variant,
                selected_iteration=result.selected_iteration,
                selection=cfg.selection,
                device=cfg.device,
                batch_size=cfg.eval_batch_size,
            )
            fold_result.extra = {
                "n_train": len(split.train),
                "n_valid": 0 if split.valid is None else len(split.valid),
                "wall_time_s": round(result.wall_time_s, 2),
                "images_per_s": round(result.images_per_s, 2),
                "seed": cfg.seed,
                "init_k": float(result.model.init_k),
            }
            if run_dir is not None:
                result.model.cpu().save_pretrained(run_dir / "model")
                result.model.to(cfg.device)
            table.folds.append(fold_result)
            if root is not None:
                table.save(root / "results.json")
    return table


__all__ = [
    "ABLATIONS",
    "CKPLUS6_CLASSES",
    "PROTOCOLS",
    "Split",
    "make_splits",
    "run_protocol",
    "run_seed",
    "to_ckplus6",
    "variant_config",
]
