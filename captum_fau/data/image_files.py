"""Image files as pixels: reading a file as 8-bit grayscale, and refusing 16-bit or transparent files up front.

:func:`read_gray` decodes any file OpenCV reads (EXIF orientation applied); :func:`image_format_problem` and
:func:`check_image_files` find the files whose conversion to 8-bit opaque gray would be a choice (16 bits, alpha)
and name the conversion to make. Re-exported by :mod:`captum_fau.data.faces`.
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from captum_fau._utils import shell
from captum_fau.errors import ImageFormatError


def read_gray(path: str | os.PathLike[str]) -> np.ndarray | None:
    """A file as a uint8 grayscale ``[H, W]`` array, or ``None`` when it is missing or unreadable.

    16-bit images keep their top 8 bits and an alpha channel is dropped, as the CK+
    reference's ``cv2.imread`` did; colour images are converted with OpenCV's luma
    weights. Folders of your own images refuse 16-bit and transparent files before
    loading instead (:func:`check_image_files`), since either conversion is a choice.
    An EXIF orientation tag (phone photos, JPEG or PNG) is applied (:func:`captum_fau.data.exif.exif_orientation`),
    as image viewers and ``cv2.imread``'s colour mode do, so faces are upright for the detector.
    """
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
        elif image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        else:
            image = image[:, :, 0]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    from captum_fau.data.exif import apply_orientation, exif_orientation

    return apply_orientation(np.ascontiguousarray(image), exif_orientation(data))


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


def _decoded_problem(path: str | os.PathLike[str]) -> str | None:
    """``"16-bit"``, ``"transparent"`` or None for a file decoded as stored (None when unreadable)."""
    try:
        image = cv2.imdecode(np.fromfile(os.fspath(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except (OSError, cv2.error):
        return None
    if image is None or image.size == 0:
        return None
    if image.dtype != np.uint8:
        return "16-bit" if image.dtype == np.uint16 else f"{image.dtype} pixels"
    if image.ndim == 3 and image.shape[2] in (2, 4) and int(image[..., -1].min()) < 255:
        return "transparent"
    return None


def image_format_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a file's pixels cannot be read as 8-bit opaque faces without a choice, or None.

    JPEG files are 8-bit and opaque; a PNG header tells its bit depth and whether it
    may hold transparency (an alpha channel that is 255 everywhere is fine); other
    formats (and palette PNGs, whose palette may be transparent) are decoded to find
    out. Unreadable files are None here: the loaders
    drop and report them.

    Args:
        path (str or Path): An image file.

    Returns:
        str or None: ``"16-bit"``, ``"transparent"``, another pixel type, or None.

    Examples::

        >>> import os, tempfile, cv2, numpy as np
        >>> folder = tempfile.mkdtemp()
        >>> _ = cv2.imwrite(os.path.join(folder, "deep.png"), np.full((8, 8), 4000, np.uint16))
        >>> _ = cv2.imwrite(os.path.join(folder, "flat.png"), np.full((8, 8, 4), 255, np.uint8))
        >>> image_format_problem(os.path.join(folder, "deep.png")), image_format_problem(os.path.join(folder, "flat.png"))
        ('16-bit', None)
    """
    try:
        with open(os.fspath(path), "rb") as handle:
            head = handle.read(33)
    except OSError:
        return None
    if head.startswith(_JPEG_MAGIC):
        return None
    if head.startswith(_PNG_MAGIC) and len(head) >= 26:
        depth, colour = head[24], head[25]
        if depth == 16:
            return "16-bit"
        if colour in (0, 2):  # 8-bit gray or RGB: a tRNS colour key leaves every pixel value defined
            return None
    return _decoded_problem(path)


#: problem -> (what to do, the ImageMagick ``mogrify`` options that do it in place)
_FORMAT_FIXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "16-bit": (
        "are 16-bit: how 16 bits map to 256 grey levels (full range, 12-bit data, a window) is your choice, "
        "so they are not converted silently. Convert them to 8 bits first (cv2.normalize(..., 0, 255, "
        "cv2.NORM_MINMAX).astype('uint8'), or ImageMagick in place, on a copy)",
        ("-depth", "8", "-auto-level"),
    ),
    "transparent": (
        "have transparent pixels (alpha below 255): the colour under them is undefined. Flatten them onto a "
        "background first (ImageMagick, in place, on a copy)",
        ("-background", "white", "-alpha", "remove", "-alpha", "off"),
    ),
}


def check_image_files(paths: Sequence[str | os.PathLike[str]], where: str, *, show: int = 5) -> None:
    """Raise :class:`~captum_fau.errors.ImageFormatError` before any decoding work if a file is 16-bit or transparent.

    Args:
        paths (sequence of path): The image files of a dataset.
        where (str): The dataset, for the message.
        show (int, optional): Files named per problem. Default: 5

    Raises:
        ImageFormatError: naming the files of each problem and the conversion to make.

    Examples::

        >>> import os, tempfile, cv2, numpy as np
        >>> folder = tempfile.mkdtemp()
        >>> path = os.path.join(folder, "a.png")
        >>> _ = cv2.imwrite(path, np.zeros((8, 8, 4), np.uint8))
        >>> check_image_files([path], "folder")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        captum_fau.errors.ImageFormatError: folder: 1 of 1 images have transparent pixels ...
    """
    found: dict[str, list[str]] = {}
    for path in tqdm(paths, desc="checking image formats", unit="img", disable=len(paths) < 2000, leave=False):
        problem = image_format_problem(path)
        if problem is not None:
            found.setdefault(problem, []).append(os.fspath(path))
    if not found:
        return
    parts = []
    for problem, files in sorted(found.items()):
        named = ", ".join(files[:show]) + (f" and {len(files) - show} more" if len(files) > show else "")
        if problem in _FORMAT_FIXES:
            fix, options = _FORMAT_FIXES[problem]
            fix += f" (the first {show} below, and {len(files) - show} more)" if len(files) > show else ""
            parts.append(f"{len(files)} of {len(paths)} images {fix}:\n  {shell.mogrify(options, files[:show])}")
        else:
            parts.append(
                f"{len(files)} of {len(paths)} images hold {problem}: save them as 8-bit gray or RGB images ({named})."
            )
    raise ImageFormatError(f"{where}: " + "\n".join(parts))


__all__ = ["check_image_files", "image_format_problem", "read_gray"]
