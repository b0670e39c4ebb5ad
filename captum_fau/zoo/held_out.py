"""Faces a zoo model never saw: SynthFACS subjects outside its training and validation pool.

A SynthFACS subject's identity is a function of ``(seed, subject)`` and image ``i``'s random
stream one of ``(seed, i)`` (:mod:`captum_fau.data.synthfacs`). A zoo model trained on SynthFACS
records the set it was drawn from in ``metrics.json`` (``data``: ``n``, ``seed``, ``mode``); its
training, validation and test folds are all subjects of the first ``n`` images. Images from
index ``(last subject of that pool + 1) * 11`` on show subjects with larger ids, rendered from
image streams the training never drew, so they are held out from every fold.

Examples::

    >>> from captum_fau.zoo.held_out import held_out_synthfacs
    >>> faces, provenance = held_out_synthfacs("zerobias-synthfacs-8class", 22)
    >>> provenance["held_out"], provenance["subjects"]
    (True, [219, 220])
    >>> int(faces.subjects.min()) > max(provenance["training_subjects"])
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from captum_fau.data.synthfacs import IMAGES_PER_SUBJECT, SynthFACS


def synthfacs_training_pool(name: str) -> dict[str, Any] | None:
    """The SynthFACS set zoo entry ``name`` was trained, validated and tested on, or None.

    Args:
        name (str): A zoo name.

    Returns:
        dict or None: ``seed``, ``n`` (images), ``mode`` and ``subjects`` (sorted subject ids of
        all folds: training, validation and test), or None when the entry is not in the zoo or
        was not trained on SynthFACS.
    """
    from captum_fau.zoo.registry import info, names

    if name not in names():
        return None
    data = (info(name).metrics or {}).get("data") or {}
    if str(data.get("dataset", "")).lower() != "synthfacs" or "n" not in data or "seed" not in data:
        return None
    n_subjects = data.get("n_subjects")
    pool = SynthFACS(n=int(data["n"]), seed=int(data["seed"]), mode=str(data.get("mode", "prototype")))
    subjects = np.unique(pool.subjects)
    # An explicit n_subjects in training gives ids 0..n_subjects-1: covered by the same bound.
    if n_subjects is not None:
        subjects = np.union1d(subjects, np.arange(int(n_subjects)))
    return {"seed": int(data["seed"]), "n": int(data["n"]), "mode": pool.mode, "subjects": subjects.tolist()}


def held_out_synthfacs(name: str, n: int, seed: int | None = None, **kwargs: Any) -> tuple[SynthFACS, dict[str, Any]]:
    """``n`` SynthFACS faces whose subjects zoo model ``name`` never saw, and where they come from.

    Args:
        name (str): A zoo name trained on SynthFACS.
        n (int): Images.
        seed (int, optional): The set's seed. Default: the training set's seed (the images then
            start after every subject of the training pool).
        **kwargs: Further :class:`~captum_fau.data.synthfacs.SynthFACS` arguments.

    Returns:
        tuple: The lazy dataset and a provenance dict: ``held_out`` (bool), ``reason``,
        ``seed``, ``start`` (first image index), ``subjects`` (first and last subject id),
        ``training_seed`` and ``training_subjects`` (first and last id of the training pool).
    """
    pool = synthfacs_training_pool(name)
    if pool is None:
        faces = SynthFACS(n=n, seed=0 if seed is None else seed, **kwargs)
        return faces, {"held_out": False, "seed": faces.seed, "start": 0,
                       "reason": f"{name!r} records no SynthFACS training set, so its subjects cannot be excluded"}  # fmt: skip
    seed = pool["seed"] if seed is None else int(seed)
    start = (max(pool["subjects"]) + 1) * IMAGES_PER_SUBJECT
    faces = SynthFACS(n=n, seed=seed, start=start, **kwargs)
    ids = faces.subjects
    overlap = np.intersect1d(ids, pool["subjects"]) if seed == pool["seed"] else np.empty(0)
    provenance = {
        "held_out": bool(overlap.size == 0),
        "seed": seed,
        "start": start,
        "subjects": [int(ids.min()), int(ids.max())],
        "n_subjects": int(len(np.unique(ids))),
        "training_seed": pool["seed"],
        "training_subjects": [int(min(pool["subjects"])), int(max(pool["subjects"]))],
        "reason": (
            f"SynthFACS seed {seed}, images {start}..{start + n - 1}, subjects {int(ids.min())}..{int(ids.max())}; "
            f"{name} was trained, validated and tested on subjects {min(pool['subjects'])}..{max(pool['subjects'])} "
            f"of seed {pool['seed']} (images 0..{pool['n'] - 1}), so none of these faces was seen in training or validation"
        ),
    }
    return faces, provenance


__all__ = ["held_out_synthfacs", "synthfacs_training_pool"]
