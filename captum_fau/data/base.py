"""The in-memory face dataset every loader returns.

A :class:`FaceSet` holds aligned face crops as uint8 arrays plus whatever
labels the source has: emotion classes, action-unit intensities, subject and
sequence ids, fold assignments. It is a ``torch.utils.data.Dataset`` whose
items are dicts, so one object feeds training (``"image"``, ``"emotion"``),
top-N scans (``"image"``) and FAU-KL (``"image"``, ``"aus"``, ``"subject"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from captum_fau.data.transforms import check_local_mean_padding, model_input
from captum_fau.errors import DatasetError, LabelError

#: CK+ emotion codes 0..7, the library's canonical 8-class order.
CKPLUS_CLASSES: tuple[str, ...] = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


class LabelledRows:
    """What a face set in memory (:class:`FaceSet`) and a streamed one
    (:class:`~captum_fau.data.lazy.LazyFaceSet`) share: items and labels by row.

    A subclass has ``emotions``, ``aus``, ``subjects``, ``sequences`` (arrays or None),
    ``class_names``, ``au_ids``, ``name``, ``local_mean``, ``local_mean_padding`` and
    implements ``raw_item``.
    """

    emotions: np.ndarray | None
    aus: np.ndarray | None
    subjects: np.ndarray | None
    sequences: np.ndarray | None
    class_names: tuple[str, ...]
    au_ids: tuple[str, ...]
    name: str
    local_mean: int
    local_mean_padding: str

    def raw_item(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.raw_item(index)
        item["image"] = model_input(item["image"][None], self.local_mean, self.local_mean_padding)[0]
        return item

    def _with_labels(self, item: dict[str, Any], index: int) -> dict[str, Any]:
        """``item`` with row ``index``'s emotion, AUs and subject, where known."""
        if self.emotions is not None:
            item["emotion"] = int(self.emotions[index])
        if self.aus is not None:
            item["aus"] = torch.from_numpy(self.aus[index])
        if self.subjects is not None:
            subject = self.subjects[index]
            item["subject"] = subject.item() if isinstance(subject, np.generic) else subject
        return item

    def labels(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """The labels of rows ``indices`` without reading any image: ``"emotion"`` ``[n]`` int64
        tensor, ``"aus"`` ``[n, J]`` float32 tensor, ``"subject"`` ndarray, each where known."""
        rows = np.asarray(indices)
        out: dict[str, Any] = {}
        if self.emotions is not None:
            out["emotion"] = torch.from_numpy(np.asarray(self.emotions)[rows])
        if self.aus is not None:
            out["aus"] = torch.from_numpy(np.asarray(self.aus)[rows])
        if self.subjects is not None:
            out["subject"] = np.asarray(self.subjects)[rows]
        return out

    @property
    def au_presence(self) -> np.ndarray:
        """``[N, J]`` bool: AU present (intensity > 0)."""
        if self.aus is None:
            raise LabelError(f"Dataset {self.name!r} has no AU labels.")
        return self.aus > 0

    def _label_hash(self) -> str:
        """The hash of every label array, class name and AU id (the ``"labels"`` of a fingerprint)."""
        from captum_fau._utils.fingerprint import hash_arrays

        return hash_arrays(*[getattr(self, a) for a in ("emotions", "aus", "subjects", "sequences")],
                           list(self.class_names), list(self.au_ids))  # fmt: skip

    def _label_summary(self) -> list[str]:
        """``["8 classes", "17 AUs", "12 subjects"]``, for ``__repr__``."""
        parts = []
        if self.emotions is not None:
            parts.append(f"{len(self.class_names)} classes")
        if self.aus is not None:
            parts.append(f"{len(self.au_ids)} AUs")
        if self.subjects is not None:
            parts.append(f"{len(np.unique(self.subjects))} subjects")
        return parts


@dataclass
class FaceSet(LabelledRows, Dataset):
    """Aligned grayscale faces with optional labels.

    Args:
        images (np.ndarray): ``[N, H, W]`` uint8 face crops.
        class_names (sequence of str): Emotion class names in label order.
        emotions (np.ndarray, optional): ``[N]`` int64 class indices; -1 marks unlabelled images.
        aus (np.ndarray, optional): ``[N, J]`` float32 AU intensities (0 = absent, 1..5 = A..E;
            sources that only say "present" use 1).
        au_ids (sequence of str, optional): The ``J`` AU identifiers (``"AU12"``, ``"R12"``),
            normalised by :func:`captum_fau.data.au.parse_au`.
        subjects (np.ndarray, optional): ``[N]`` subject ids (str or int), for subject-independent folds.
        sequences (np.ndarray, optional): ``[N]`` sequence ids; frames of one sequence share labels.
        folds (np.ndarray, optional): ``[N]`` int fold index, or ``[N, K]`` split codes (TFD: 0 unused,
            1 train, 2 valid, 3 test per column).
        names (np.ndarray, optional): ``[N]`` source file names or ids, for reports.
        name (str): What the set is, e.g. ``"synthfacs"`` or ``"ckplus"``.
        meta (dict): Anything else worth keeping (preprocessing parameters, skipped files).
        local_mean (int): Box size of the local mean subtraction applied by
            :meth:`__getitem__` and :meth:`tensors` (0 disables it). Default: 5
        local_mean_padding (str): Border handling of that local mean, ``"zeros"``
            (the reference) or ``"replicate"``. Default: ``"zeros"``

    Each item is a dict with ``"image"`` (float32 ``[1, H, W]``, preprocessed
    as the zero-bias reference: ``x / 255 * 2`` minus the local mean; the analysis reads the
    raw crops instead, :meth:`raw_item` / :meth:`raw_images`, through the model's
    :class:`~captum_fau.inputs.spec.InputSpec`),
    ``"index"``, and, where available, ``"emotion"``, ``"aus"``, ``"subject"``.

    Examples::

        >>> import numpy as np
        >>> fs = FaceSet(images=np.zeros((4, 96, 96), np.uint8), class_names=("a", "b"),
        ...              emotions=np.array([0, 1, 0, 1]))
        >>> fs[1]["image"].shape, int(fs[1]["emotion"])
        (torch.Size([1, 96, 96]), 1)
    """

    images: np.ndarray
    class_names: tuple[str, ...] = CKPLUS_CLASSES
    emotions: np.ndarray | None = None
    aus: np.ndarray | None = None
    au_ids: tuple[str, ...] = ()
    subjects: np.ndarray | None = None
    sequences: np.ndarray | None = None
    folds: np.ndarray | None = None
    names: np.ndarray | None = None
    name: str = "faces"
    meta: dict[str, Any] = field(default_factory=dict)
    local_mean: int = 5
    local_mean_padding: str = "zeros"

    def __post_init__(self) -> None:
        check_local_mean_padding(self.local_mean_padding)
        self.images = np.asarray(self.images)
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise DatasetError(
                f"FaceSet.images must be a uint8 array [N, H, W], got {self.images.dtype} {self.images.shape}."
            )
        n = len(self.images)
        self.class_names = tuple(self.class_names)
        self.au_ids = tuple(self.au_ids)
        for attr in ("emotions", "aus", "subjects", "sequences", "folds", "names"):
            value = getattr(self, attr)
            if value is None:
                continue
            value = np.asarray(value)
            if len(value) != n:
                raise LabelError(f"FaceSet.{attr} has {len(value)} entries but there are {n} images.")
            setattr(self, attr, value)
        if self.emotions is not None:
            self.emotions = self.emotions.astype(np.int64)
            bad = (self.emotions < -1) | (self.emotions >= len(self.class_names))
            if bad.any():
                raise LabelError(
                    f"FaceSet.emotions holds labels outside -1..{len(self.class_names) - 1} "
                    f"(e.g. {self.emotions[bad][:5].tolist()}) for classes {self.class_names}."
                )
        if self.aus is not None:
            self.aus = self.aus.astype(np.float32)
            if self.aus.ndim != 2 or self.aus.shape[1] != len(self.au_ids):
                raise LabelError(
                    f"FaceSet.aus has shape {self.aus.shape} but {len(self.au_ids)} au_ids were given; "
                    "they must be [N, len(au_ids)]."
                )

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.images)

    def raw_item(self, index: int) -> dict[str, Any]:
        """Item ``index`` with the raw face crop: ``"image"`` is uint8 ``[1, H, W]`` (0..255),
        what :class:`~captum_fau.inputs.model_inputs.ModelInputs` turns into a model's input."""
        item = {"image": torch.from_numpy(self.images[index][None].copy()), "index": int(index)}
        return self._with_labels(item, index)

    def tensors(self, indices: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
        """Preprocessed images ``[n, 1, H, W]`` float32 (the zero-bias reference), in one batched operation."""
        return model_input(self.raw_images(indices), self.local_mean, self.local_mean_padding)

    def raw_images(self, indices: Sequence[int] | np.ndarray | None = None) -> torch.Tensor:
        """The raw face crops ``[n, 1, H, W]`` uint8, for an :class:`~captum_fau.inputs.spec.InputSpec`."""
        images = self.images if indices is None else self.images[np.asarray(indices)]
        return torch.from_numpy(np.ascontiguousarray(images))[:, None]

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, indices: Sequence[int] | np.ndarray) -> "FaceSet":
        """A new FaceSet with the rows ``indices`` (labels follow; ``meta`` is shared)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return replace(
            self,
            images=self.images[idx],
            emotions=pick(self.emotions),
            aus=pick(self.aus),
            subjects=pick(self.subjects),
            sequences=pick(self.sequences),
            folds=pick(self.folds),
            names=pick(self.names),
        )

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this set's contents: ``"hash"`` of every pixel and of the preprocessing, and
        ``"labels"`` of every label array (see :mod:`captum_fau._utils.fingerprint`).

        Examples::

            >>> fs = FaceSet(images=np.zeros((2, 8, 8), np.uint8), class_names=("a",))
            >>> other = FaceSet(images=np.ones((2, 8, 8), np.uint8), class_names=("a",))
            >>> fs.fingerprint()["hash"] == other.fingerprint()["hash"]
            False
        """
        from captum_fau._utils.fingerprint import hash_arrays

        pixels = hash_arrays(
            self.images, self.names, self.local_mean, self.local_mean_padding, self.emotions is not None
        )
        return {"method": "every pixel and label", "type": "FaceSet", "name": self.name, "n": len(self),
                "hash": pixels, "labels": self._label_hash()}  # fmt: skip

    def __repr__(self) -> str:
        parts = [f"{len(self)} images {self.images.shape[1]}x{self.images.shape[2]}", *self._label_summary()]
        return f"FaceSet({self.name!r}: {', '.join(parts)})"


__all__ = ["CKPLUS_CLASSES", "FaceSet", "LabelledRows"]
