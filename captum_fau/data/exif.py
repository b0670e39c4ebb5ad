"""EXIF orientation of image files: phone photos are stored as the sensor saw them, with the turn that shows
them upright in a tag; :func:`~captum_fau.data.faces.read_gray` applies it, as viewers do.

Examples::

    >>> import numpy as np
    >>> apply_orientation(np.arange(6).reshape(2, 3), 6).tolist()  # 6: turn 90 degrees clockwise
    [[3, 0], [4, 1], [5, 2]]
"""

from __future__ import annotations

import numpy as np


def exif_orientation(data: bytes | np.ndarray) -> int:
    r"""The EXIF orientation (1..8) a JPEG (APP1 ``Exif``) or PNG (``eXIf`` chunk) file declares; 1 when none.

    Phones store photos as the sensor saw them and record the rotation in this tag (6: turn 90 degrees
    clockwise to view). Only the header is read.

    Examples::

        >>> exif_orientation(b"\xff\xd8\xff\xe1\x00\x22Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01"
        ...                  b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00")
        6
    """
    head = bytes(data[:65536])
    tiff = None
    if head.startswith(b"\xff\xd8"):
        at = 2
        while at + 4 <= len(head) and head[at] == 0xFF:
            marker, length = head[at + 1], int.from_bytes(head[at + 2 : at + 4], "big")
            if marker == 0xE1 and head[at + 4 : at + 10] == b"Exif\x00\x00":
                tiff = head[at + 10 : at + 2 + length]
                break
            if marker in (0xDA, 0xD9):  # image data starts: no EXIF before it
                break
            at += 2 + length
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        at = head.find(b"eXIf")
        if at >= 4:
            tiff = head[at + 4 : at + 4 + int.from_bytes(head[at - 4 : at], "big")]
    return _tiff_orientation(tiff) if tiff else 1


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of the first IFD of a TIFF block (1 when absent or malformed)."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)  # type: ignore[arg-type]
    if ifd + 2 > len(tiff):
        return 1
    for entry in range(int.from_bytes(tiff[ifd : ifd + 2], order)):  # type: ignore[arg-type]
        at = ifd + 2 + 12 * entry
        if at + 12 > len(tiff):
            break
        if int.from_bytes(tiff[at : at + 2], order) == 0x0112:  # type: ignore[arg-type]
            value = int.from_bytes(tiff[at + 8 : at + 10], order)  # type: ignore[arg-type]
            return value if 1 <= value <= 8 else 1
    return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` ``[H, W, ...]`` turned as EXIF ``orientation`` says, so that it shows upright (as viewers do)."""
    turned = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)  # fmt: skip
    return image if turned is None else np.ascontiguousarray(turned(image))


__all__ = ["apply_orientation", "exif_orientation"]
