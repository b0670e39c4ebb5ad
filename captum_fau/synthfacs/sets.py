"""SynthFACS: procedurally rendered grayscale faces with known facial action units.

The embedded default dataset of captum-fau: nothing is downloaded, every
image is drawn with OpenCV from a seed, and every image comes with the ground
truth a FAU analysis needs: the emotion label (CK+ codes 0..7), the intensity
(0..5 = none, A..E) of each action unit in :data:`SYNTHFACS_AUS`, the subject
id, and per-AU region masks saying where on the image each AU acts.

Determinism. Image ``i`` is a function of ``(seed, i)`` and the render
parameters alone: its random stream is ``SeedSequence([seed, i])``, so any
range of indices renders the same pixels whether it is rendered alone
(``start=``), inside a bigger batch, in another process, or lazily by
:class:`SynthFACS`. Region masks are recomputed from the same stream instead
of being stored. A subject's identity (face shape, feature sizes and
positions, tones, hairline, background) is a function of ``(seed, subject)``.

Subjects. With ``n_subjects=None`` consecutive blocks of
:data:`IMAGES_PER_SUBJECT` images share a subject (``subject = i // 11``),
so a set of ``n`` images has ``ceil(n / 11)`` subjects (CK+: 1308 images of
123 subjects) and the assignment does not depend on ``n``. With an explicit
``n_subjects`` image ``i`` shows subject ``i % n_subjects``.

Modes. ``"prototype"``: the emotion is drawn uniformly from the 8 CK+
classes and its EMFACS prototype AUs get random intensities, plus optional
prototype AUs and, sometimes, one weak extra AU. ``"independent"``: every AU
is present with probability 0.2 independently of the others (so AU6 and
AU12, which co-occur in happiness, decorrelate); the emotion label is then
the prototype with the highest Jaccard overlap with the present AUs
(neutral when none is present, -1 = unlabelled when no prototype shares an
AU).

Examples::

    >>> from captum_fau.synthfacs import render, SYNTHFACS_AUS
    >>> batch = render(4, seed=0, masks=True)
    >>> batch.images.shape, batch.aus.shape, batch.masks.shape
    ((4, 96, 96), (4, 20), (4, 20, 96, 96))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from captum_fau._utils.validate import int_at_least
from captum_fau.data.base import CKPLUS_CLASSES, FaceSet
from captum_fau.synthfacs.geometry import (
    SYNTHFACS_AUS,
    Identity,
    Nuisance,
    draw_face,
    draw_regions,
    sample_identity,
    sample_nuisance,
)
from captum_fau.data.transforms import check_local_mean_padding, model_input
from captum_fau.errors import ConfigError, DatasetError
from captum_fau.synthfacs.labels import (  # noqa: F401 - PROTOTYPES, Prototype: re-exported here
    INDEPENDENT_AU_PROBABILITY,
    PROTOTYPES,
    Prototype,
    _sample_independent,
    _sample_prototype,
    nearest_prototype,
)
from captum_fau.synthfacs.photo import (
    PhotoIdentity,
    PhotoNuisance,
    draw_photo,
    photo_regions,
    sample_photo_identity,
    sample_photo_nuisance,
)

#: Render modes: EMFACS prototypes per emotion, or AUs independent of emotion.
MODES: tuple[str, ...] = ("prototype", "independent")
#: Rendering styles: flat OpenCV drawings, or shaded photo-like faces in a CK+-style detector crop or a
#: FER2013-style tight crop (see :mod:`captum_fau.synthfacs.photo`).
STYLES: tuple[str, ...] = ("cartoon", "photo", "photo-tight")
#: Images per subject when ``n_subjects`` is not given (CK+: 1308 / 123 = 10.6).
IMAGES_PER_SUBJECT: int = 11
#: Smallest image side that still resolves eyelids and lip gaps.
MIN_SIZE: int = 32
#: Largest accepted image side.
MAX_SIZE: int = 1024


@dataclass
class SynthBatch:
    """A rendered batch.

    Attributes:
        images (np.ndarray): uint8 ``[n, size, size]``.
        emotions (np.ndarray): int64 ``[n]`` CK+ codes 0..7 (-1: unlabelled, independent mode only).
        aus (np.ndarray): float32 ``[n, J]`` intensities 0..5 in :data:`SYNTHFACS_AUS` order.
        subjects (np.ndarray): int64 ``[n]``.
        masks (np.ndarray or None): bool ``[n, J, size, size]`` region masks, when requested.
        indices (np.ndarray): int64 ``[n]`` global image indices (``start .. start + n - 1``).
    """

    images: np.ndarray
    emotions: np.ndarray
    aus: np.ndarray
    subjects: np.ndarray
    masks: np.ndarray | None
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


# ----------------------------------------------------------------------------- validation


def _check_int(value: Any, name: str, minimum: int, fix: str) -> int:
    return int_at_least(value, f"SynthFACS {name}", minimum, hint=fix)


def _check_style(style: Any) -> str:
    if style not in STYLES:
        raise ConfigError(f"Unknown SynthFACS style {style!r}; use one of {', '.join(STYLES)}.")
    return str(style)


def _check_params(seed: Any, size: Any, mode: Any, n_subjects: Any) -> tuple[int, int, str, int | None]:
    seed = _check_int(seed, "seed", 0, "pass a non-negative integer seed, e.g. seed=0.")
    size = _check_int(size, "size", MIN_SIZE, f"pass size between {MIN_SIZE} and {MAX_SIZE} pixels (default 96).")
    if size > MAX_SIZE:
        raise ConfigError(f"SynthFACS size {size} is above {MAX_SIZE}; render at most {MAX_SIZE} pixels and resize.")
    if mode not in MODES:
        raise ConfigError(f"Unknown SynthFACS mode {mode!r}; use one of {', '.join(MODES)}.")
    if n_subjects is not None:
        n_subjects = _check_int(
            n_subjects, "n_subjects", 1, "pass a positive number of subjects, or None for ~11 images per subject."
        )
    return seed, size, mode, n_subjects


def default_n_subjects(n: int) -> int:
    """Number of subjects in an ``n``-image set rendered with ``n_subjects=None``: ``ceil(n / 11)``."""
    return max(1, math.ceil(n / IMAGES_PER_SUBJECT))


def subject_of(index: int, n_subjects: int | None) -> int:
    """The subject shown by image ``index``."""
    return index // IMAGES_PER_SUBJECT if n_subjects is None else index % n_subjects


# ----------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class _ImageParams:
    subject: int
    identity: Identity
    nuisance: Nuisance
    emotion: int
    aus: np.ndarray
    rng: np.random.Generator  # positioned after the labels (and the photo camera): the noise comes next
    photo: tuple[PhotoIdentity, PhotoNuisance] | None = None

    def draw(self, aus: np.ndarray, size: int) -> np.ndarray:
        """The image with ``aus``; consumes the noise draws of the generator (call once per image)."""
        noise = _noise(self.rng, size)
        if self.photo is None:
            return draw_face(self.identity, self.nuisance, aus, size, noise)
        return draw_photo(self.identity, self.photo[0], self.photo[1], aus, size, noise)

    def regions(self, aus: np.ndarray, size: int) -> np.ndarray:
        if self.photo is None:
            return draw_regions(self.identity, self.nuisance, aus, size)
        return photo_regions(self.identity, self.photo[0], self.photo[1], aus, size)


def _image_params(seed: int, index: int, mode: str, n_subjects: int | None, style: str = "cartoon") -> _ImageParams:
    # the same (seed, index) has the same subject, emotion and AUs in every style
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    nuisance = sample_nuisance(rng)
    emotion, aus = _sample_prototype(rng) if mode == "prototype" else _sample_independent(rng)
    subject = subject_of(index, n_subjects)
    photo = None
    if style != "cartoon":
        crop = "tight" if style == "photo-tight" else "detector"
        photo = (sample_photo_identity(seed, subject), sample_photo_nuisance(rng, crop))
    return _ImageParams(subject, sample_identity(seed, subject), nuisance, emotion, aus, rng, photo)


@lru_cache(maxsize=8)
def _noise_bank(size: int) -> np.ndarray:
    # One fixed field of white noise, twice the image side; images take seeded crops of it
    # (drawing fresh normals per image costs as much as drawing the face).
    return np.random.default_rng(0x0A15E).standard_normal((2 * size, 2 * size), dtype=np.float32)


def _noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit sensor noise for one image: a crop of the noise bank at a seeded offset, seeded flip."""
    oy, ox, flip = rng.integers(0, size, size=3).tolist()
    crop = _noise_bank(size)[oy : oy + size, ox : ox + size]
    return crop[:, ::-1] if flip % 2 else crop


def render_with_aus(
    seed: int,
    index: int,
    aus: np.ndarray | Sequence[float],
    *,
    size: int = 96,
    mode: str = "prototype",
    n_subjects: int | None = None,
    style: str = "cartoon",
) -> tuple[np.ndarray, np.ndarray]:
    """Image ``index`` of a set, with its AU vector replaced by ``aus`` (same subject, pose, light, noise).

    Used to measure what one AU changes: render the same face with and without it. Works for every
    style (``style=`` as given to :func:`render`).

    Returns:
        tuple: uint8 image ``[size, size]`` and bool region masks ``[J, size, size]`` for ``aus``.
    """
    seed, size, mode, n_subjects = _check_params(seed, size, mode, n_subjects)
    vector = np.asarray(aus, dtype=np.float32)
    if vector.shape != (len(SYNTHFACS_AUS),) or not np.all((vector >= 0) & (vector <= 5)):
        raise ConfigError(
            f"aus must be {len(SYNTHFACS_AUS)} intensities in 0..5 in SYNTHFACS_AUS order, got {vector!r}."
        )
    p = _image_params(seed, index, mode, n_subjects, _check_style(style))
    return p.draw(vector, size), p.regions(vector, size)


# ----------------------------------------------------------------------------- public API


def render(
    n: int,
    seed: int = 0,
    *,
    size: int = 96,
    mode: str = "prototype",
    n_subjects: int | None = None,
    start: int = 0,
    masks: bool = False,
    progress: bool = False,
    style: str = "cartoon",
) -> SynthBatch:
    """Render images ``start .. start + n - 1`` of the SynthFACS set given by ``seed`` and the parameters.

    Args:
        n (int): Number of images (>= 1).
        seed (int, optional): Non-negative seed of the whole set. Default: 0
        size (int, optional): Image side in pixels, 32..1024. Default: 96
        mode (str, optional): ``"prototype"`` (AUs from the emotion's EMFACS prototype) or
            ``"independent"`` (AUs independent of emotion). Default: ``"prototype"``
        n_subjects (int, optional): Number of subjects; ``None`` gives 11 consecutive images per
            subject. Default: None
        start (int, optional): Index of the first image; a shard renders exactly the pixels the
            same indices have in a bigger render. Default: 0
        masks (bool, optional): Also return the per-AU region masks. Default: False
        progress (bool, optional): Show a progress bar. Default: False
        style (str, optional): ``"cartoon"`` (flat drawings; the packaged zoo model's data),
            ``"photo"`` (shaded photo-like faces, CK+-style detector crop) or ``"photo-tight"`` (the
            same, FER2013-style tight crop; render it at ``size=48``). Labels and subjects do not
            depend on the style. Default: ``"cartoon"``

    Returns:
        SynthBatch: images, emotions, aus, subjects, masks (or None) and indices.

    Examples::

        >>> from captum_fau.synthfacs import render
        >>> whole = render(8, seed=3)
        >>> part = render(3, seed=3, start=5)
        >>> bool((whole.images[5:] == part.images).all())
        True
    """
    n = _check_int(n, "n", 1, "ask for at least one image.")
    start = _check_int(start, "start", 0, "pass the non-negative index of the first image.")
    seed, size, mode, n_subjects = _check_params(seed, size, mode, n_subjects)
    style = _check_style(style)
    images = np.empty((n, size, size), dtype=np.uint8)
    emotions = np.empty(n, dtype=np.int64)
    aus = np.empty((n, len(SYNTHFACS_AUS)), dtype=np.float32)
    subjects = np.empty(n, dtype=np.int64)
    region = np.zeros((n, len(SYNTHFACS_AUS), size, size), dtype=bool) if masks else None
    for k in tqdm(range(n), desc="SynthFACS", unit="img", disable=not progress, leave=False):
        p = _image_params(seed, start + k, mode, n_subjects, style)
        images[k] = p.draw(p.aus, size)
        emotions[k] = p.emotion
        aus[k] = p.aus
        subjects[k] = p.subject
        if region is not None:
            region[k] = p.regions(p.aus, size)
    return SynthBatch(images, emotions, aus, subjects, region, np.arange(start, start + n, dtype=np.int64))


def region_masks(
    seed: int,
    indices: Iterable[int] | np.ndarray,
    *,
    size: int = 96,
    mode: str = "prototype",
    n_subjects: int | None = None,
    style: str = "cartoon",
) -> np.ndarray:
    """Recompute where each AU acts on the given images (without drawing them).

    Args:
        seed (int): The seed the images were rendered with.
        indices (iterable of int): Global image indices.
        size, mode, n_subjects, style: As given to :func:`render` (``FaceSet.meta`` of
            :func:`load_synthfacs` holds them).

    Returns:
        np.ndarray: bool ``[len(indices), J, size, size]``; all False for absent AUs.

    Examples::

        >>> from captum_fau.synthfacs import region_masks, render
        >>> m = region_masks(0, [0, 1])
        >>> bool((m == render(2, seed=0, masks=True).masks).all())
        True
    """
    seed, size, mode, n_subjects = _check_params(seed, size, mode, n_subjects)
    style = _check_style(style)
    idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ConfigError(f"region_masks indices must be a 1-D sequence of integers, got {idx.dtype} {idx.shape}.")
    if idx.size and idx.min() < 0:
        raise ConfigError(f"region_masks indices must be non-negative, got {int(idx.min())}.")
    out = np.zeros((len(idx), len(SYNTHFACS_AUS), size, size), dtype=bool)
    for k, index in enumerate(idx.tolist()):
        p = _image_params(seed, index, mode, n_subjects, style)
        out[k] = p.regions(p.aus, size)
    return out


def load_synthfacs(
    n: int = 1308,
    seed: int = 0,
    *,
    size: int = 96,
    mode: str = "prototype",
    n_subjects: int | None = None,
    progress: bool = False,
    style: str = "cartoon",
) -> FaceSet:
    """Render a SynthFACS set into memory as a :class:`~captum_fau.data.base.FaceSet`.

    The default size matches CK+ under the paper's protocol (1308 images, ~120 subjects).

    Args:
        n (int, optional): Number of images. Default: 1308
        seed (int, optional): Seed. Default: 0
        size (int, optional): Image side. Default: 96
        mode (str, optional): ``"prototype"`` or ``"independent"``. Default: ``"prototype"``
        n_subjects (int, optional): Subjects; ``None`` gives 11 images per subject. Default: None
        progress (bool, optional): Show a progress bar. Default: False
        style (str, optional): See :func:`render`. Default: ``"cartoon"``

    Returns:
        FaceSet: ``name="synthfacs"``, CK+ class names, ``au_ids=SYNTHFACS_AUS``, subject ids,
        and ``meta`` with ``seed``, ``size``, ``mode``, ``n_subjects`` for :func:`region_masks`.

    Examples::

        >>> from captum_fau.synthfacs import load_synthfacs
        >>> faces = load_synthfacs(n=22)
        >>> faces
        FaceSet('synthfacs': 22 images 96x96, 8 classes, 20 AUs, 2 subjects)
    """
    batch = render(n, seed, size=size, mode=mode, n_subjects=n_subjects, progress=progress, style=style)
    return FaceSet(
        images=batch.images,
        class_names=CKPLUS_CLASSES,
        emotions=batch.emotions,
        aus=batch.aus,
        au_ids=SYNTHFACS_AUS,
        subjects=batch.subjects,
        names=batch.indices,
        name="synthfacs" if style == "cartoon" else f"synthfacs-{style}",
        meta={
            "seed": int(seed),
            "size": int(size),
            "mode": mode,
            "n_subjects": n_subjects,
            "source": "synthfacs",
            **({} if style == "cartoon" else {"style": style}),
        },
    )


class SynthFACS(Dataset):
    """A SynthFACS set rendered lazily, one item per access: no size limit, no memory cost.

    Item ``i`` has exactly the pixels of ``render(..., start=i)``; items are dicts like
    :class:`~captum_fau.data.base.FaceSet` items.

    Args:
        n (int, optional): Number of images. Default: 1308
        seed (int, optional): Seed. Default: 0
        size (int, optional): Image side. Default: 96
        mode (str, optional): ``"prototype"`` or ``"independent"``. Default: ``"prototype"``
        n_subjects (int, optional): Subjects; ``None`` gives 11 images per subject. Default: None
        local_mean (int, optional): Box size of the local mean subtraction in ``"image"``
            (0 disables it). Default: 5
        local_mean_padding (str, optional): Border handling of that local mean, ``"zeros"``
            (the reference) or ``"replicate"``. Default: ``"zeros"``
        masks (bool, optional): Add ``"masks"`` (bool ``[J, size, size]`` tensor) to each item. Default: False
        start (int, optional): Item ``i`` is image ``start + i`` of the seeded set, so a set can
            begin past the images (and subjects) another set used, e.g. a model's training
            pool. Default: 0
        style (str, optional): See :func:`render`. Default: ``"cartoon"``

    Examples::

        >>> from torch.utils.data import DataLoader
        >>> from captum_fau.synthfacs import SynthFACS
        >>> ds = SynthFACS(n=1_000_000)
        >>> batch = next(iter(DataLoader(ds, batch_size=4)))
        >>> batch["image"].shape, batch["aus"].shape
        (torch.Size([4, 1, 96, 96]), torch.Size([4, 20]))
    """

    class_names: tuple[str, ...] = CKPLUS_CLASSES
    au_ids: tuple[str, ...] = SYNTHFACS_AUS
    name: str = "synthfacs"

    def __init__(
        self,
        n: int = 1308,
        seed: int = 0,
        *,
        size: int = 96,
        mode: str = "prototype",
        n_subjects: int | None = None,
        local_mean: int = 5,
        local_mean_padding: str = "zeros",
        masks: bool = False,
        start: int = 0,
        style: str = "cartoon",
    ) -> None:
        self.n = _check_int(n, "n", 1, "ask for at least one image.")
        self.start = _check_int(start, "start", 0, "pass the index of the first image, 0 or more.")
        self.seed, self.size, self.mode, self.n_subjects = _check_params(seed, size, mode, n_subjects)
        self.local_mean = _check_int(local_mean, "local_mean", 0, "pass 0 (off) or an odd box size such as 5.")
        self.local_mean_padding = check_local_mean_padding(local_mean_padding)
        self.masks = bool(masks)
        self.style = _check_style(style)
        if self.style != "cartoon":  # callers that render cartoon masks from meta must not take it for one
            self.name = f"synthfacs-{self.style}"
        self.meta = {"seed": self.seed, "size": self.size, "mode": self.mode, "n_subjects": self.n_subjects,
                     "source": "synthfacs", "start": self.start}  # fmt: skip
        if self.style != "cartoon":
            self.meta["style"] = self.style

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.raw_item(index)
        item["image"] = model_input(item["image"][None], self.local_mean, self.local_mean_padding)[0]
        return item

    def raw_item(self, index: int) -> dict[str, Any]:
        """Item ``index`` with the raw rendered face: ``"image"`` is uint8 ``[1, size, size]``."""
        if isinstance(index, torch.Tensor):
            index = int(index)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise DatasetError(f"SynthFACS indices are integers, got {index!r}.")
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(f"SynthFACS index {index} out of range for a set of {self.n} images.")
        p = _image_params(self.seed, self.start + int(index), self.mode, self.n_subjects, self.style)
        image = p.draw(p.aus, self.size)
        item: dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(image))[None],
            "index": int(index),
            "emotion": int(p.emotion),
            "aus": torch.from_numpy(p.aus.copy()),
            "subject": int(p.subject),
        }
        if self.masks:
            item["masks"] = torch.from_numpy(p.regions(p.aus, self.size))
        return item

    @property
    def subjects(self) -> np.ndarray:
        """``[n]`` int64 subject ids (cheap: no rendering)."""
        idx = np.arange(self.start, self.start + self.n, dtype=np.int64)
        return idx // IMAGES_PER_SUBJECT if self.n_subjects is None else idx % self.n_subjects

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this set's contents: its rendering parameters, plus the first and last item
        hashed in full (so a change of the renderer is seen too; see :mod:`captum_fau._utils.fingerprint`)."""
        from captum_fau._utils.fingerprint import sampled_items_fingerprint

        params = {"n": self.n, "seed": self.seed, "size": self.size, "mode": self.mode, "n_subjects": self.n_subjects,
                  "local_mean": self.local_mean, "local_mean_padding": self.local_mean_padding}  # fmt: skip
        if self.style != "cartoon":
            params["style"] = self.style
        sample = sampled_items_fingerprint(self, count=2)["hash"]
        return {"method": "rendering parameters + first and last item", "type": "SynthFACS", **params, "hash": sample}

    def __repr__(self) -> str:
        n_subj = len(np.unique(self.subjects))
        first = f", start={self.start}" if self.start else ""
        look = f", style={self.style!r}" if self.style != "cartoon" else ""
        return (f"SynthFACS(n={self.n}, seed={self.seed}{first}, size={self.size}, mode={self.mode!r}{look}, "
                f"subjects={n_subj})")  # fmt: skip


__all__ = [
    "IMAGES_PER_SUBJECT",
    "MODES",
    "PROTOTYPES",
    "Prototype",
    "STYLES",
    "SYNTHFACS_AUS",
    "SynthBatch",
    "SynthFACS",
    "default_n_subjects",
    "load_synthfacs",
    "nearest_prototype",
    "region_masks",
    "render",
    "render_with_aus",
    "subject_of",
]
