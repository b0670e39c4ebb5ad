"""What a dataset holds before you train on it (the ``captum-fau data describe`` summary).

Prints the image count and size, images per class, per action unit (present /
coded), per fold and per subject, and what the loader skipped (unreadable
files, faces not found, malformed labels).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from captum_fau.data.au import au_label
from captum_fau.data.base import FaceSet

_SPLIT_NAMES = {0: "unused", 1: "train", 2: "valid", 3: "test"}


def describe_faceset(faces: FaceSet) -> str:
    """A plain-text summary of ``faces``: counts per class, AU, fold and subject, and skipped files.

    Examples::

        >>> import numpy as np
        >>> fs = FaceSet(images=np.zeros((3, 8, 8), np.uint8), class_names=("a", "b"),
        ...              emotions=np.array([0, 1, 1]))
        >>> print(describe_faceset(fs).splitlines()[0])
        faces: 3 images 8x8
    """
    height, width = faces.image_size
    lines = [f"{faces.name}: {len(faces)} images {height}x{width}"]
    source = faces.meta.get("source")
    if source:
        lines.append(f"source: {source}")

    if faces.emotions is not None:
        counts = np.bincount(faces.emotions[faces.emotions >= 0], minlength=len(faces.class_names))
        lines.append(f"classes ({len(faces.class_names)}):")
        for index, name in enumerate(faces.class_names):
            lines.append(f"  {index:2d} {name:<12s} {int(counts[index]):7d}")
        unlabelled = int((faces.emotions < 0).sum())
        if unlabelled:
            lines.append(f"     {'unlabelled':<12s} {unlabelled:7d}")
    else:
        lines.append("classes: no emotion labels")

    if faces.aus is not None and faces.au_ids:
        coded = ~np.isnan(faces.aus)
        present = np.nan_to_num(faces.aus, nan=0.0) > 0
        lines.append(f"action units ({len(faces.au_ids)}; present / coded images):")
        for j, au in enumerate(faces.au_ids):
            lines.append(f"  {au_label(au):<40s} {int(present[:, j].sum()):7d} / {int(coded[:, j].sum())}")
    else:
        lines.append("action units: no AU labels")

    if faces.folds is not None:
        folds = np.asarray(faces.folds)
        if folds.ndim == 2:
            lines.append(f"splits ({folds.shape[1]} columns; images per split code):")
            for column in range(folds.shape[1]):
                codes = Counter(int(c) for c in folds[:, column])
                parts = ", ".join(f"{_SPLIT_NAMES.get(code, code)} {n}" for code, n in sorted(codes.items()))
                lines.append(f"  split {column}: {parts}")
        else:
            lines.append(f"folds ({len(np.unique(folds))}; images, subjects):")
            for fold in np.unique(folds):
                mask = folds == fold
                subjects = len(np.unique(faces.subjects[mask])) if faces.subjects is not None else "-"
                lines.append(f"  fold {int(fold):2d}: {int(mask.sum()):6d} images, {subjects} subjects")
    else:
        lines.append("folds: none (use captum_fau.data.folds.subject_kfold)")

    if faces.subjects is not None:
        per_subject = Counter(str(s) for s in faces.subjects)
        sizes = np.array(sorted(per_subject.values()))
        lines.append(
            f"subjects: {len(per_subject)} (images per subject min {sizes.min()}, "
            f"median {int(np.median(sizes))}, max {sizes.max()})"
        )
    if faces.sequences is not None:
        lines.append(f"sequences: {len(np.unique(faces.sequences))}")
    if "unlabelled_sequences" in faces.meta:
        lines.append(f"unlabelled sequences (no emotion file, left out): {len(faces.meta['unlabelled_sequences'])}")

    if isinstance(faces.meta.get("face_crop"), dict):
        from captum_fau.data.folder import face_crop_note

        lines.append(face_crop_note(faces.meta) or "")
    skipped = faces.meta.get("skipped", [])
    reasons = Counter(entry["reason"].split(" (")[0] for entry in skipped)
    summary = ", ".join(f"{reason}: {n}" for reason, n in sorted(reasons.items())) or "none"
    lines.append(f"skipped: {len(skipped)} ({summary})")
    for entry in skipped[:20]:
        lines.append(f"  {entry['file']}: {entry['reason']}")
    if len(skipped) > 20:
        lines.append(f"  ... and {len(skipped) - 20} more")
    return "\n".join(lines)


__all__ = ["describe_faceset"]
