"""16-bit and transparent images in a folder: refused before any face is cropped, naming files and the fix."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from captum_fau.data import folder as folder_module
from captum_fau.data.faces import check_image_files, image_format_problem, read_gray
from captum_fau.data.folder import load_folder
from captum_fau.errors import ImageFormatError


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _palette_png(path: Path, transparency: bytes) -> Path:
    """An 8-bit palette PNG (4 grey entries) whose tRNS chunk gives each entry an alpha."""
    index = (np.arange(64).reshape(8, 8) % 4).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in index)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 3, 0, 0, 0))
        + _png_chunk(b"PLTE", bytes([0, 0, 0, 80, 80, 80, 160, 160, 160, 255, 255, 255]))
        + _png_chunk(b"tRNS", transparency)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return path


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    face = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    made = {
        "gray8.png": face,
        "rgb.jpg": np.dstack([face] * 3),
        "opaque_rgba.png": np.dstack([face, face, face, np.full_like(face, 255)]),
        "see_through.png": np.dstack([face, face, face, np.where(face > 64, 255, 0).astype(np.uint8)]),
        "deep.png": face.astype(np.uint16) * 257,
        "deep.tif": face.astype(np.uint16) * 257,
        "deep.pgm": face.astype(np.uint16) * 257,
        "bgra.bmp": np.dstack([face, face, face, np.full_like(face, 7)]),
    }
    out = {}
    for name, pixels in made.items():
        out[name] = tmp_path / name
        assert cv2.imwrite(str(out[name]), pixels)
    out["palette_clear.png"] = _palette_png(tmp_path / "palette_clear.png", bytes([0, 255, 255, 255]))
    out["palette_opaque.png"] = _palette_png(tmp_path / "palette_opaque.png", bytes([255, 255, 255, 255]))
    return out


def test_each_format_is_classified_from_its_pixels(files: dict[str, Path]) -> None:
    expected = {
        "gray8.png": None,
        "rgb.jpg": None,
        "opaque_rgba.png": None,  # an alpha channel of 255 everywhere loses nothing
        "see_through.png": "transparent",
        "deep.png": "16-bit",
        "deep.tif": "16-bit",
        "deep.pgm": "16-bit",
        "bgra.bmp": "transparent",
        "palette_clear.png": "transparent",  # a palette entry with alpha 0 that pixels use
        "palette_opaque.png": None,
    }
    assert {name: image_format_problem(files[name]) for name in expected} == expected


def test_the_error_names_every_problem_its_files_and_the_fix(files: dict[str, Path]) -> None:
    paths = [files[n] for n in ("gray8.png", "deep.png", "deep.tif", "see_through.png", "rgb.jpg")]
    with pytest.raises(ImageFormatError) as info:
        check_image_files(paths, "folder faces/")
    message = str(info.value)
    assert message.startswith("folder faces/: ")
    assert "2 of 5 images are 16-bit" in message and "deep.png" in message and "deep.tif" in message
    assert "1 of 5 images have transparent pixels" in message and "see_through.png" in message
    assert "mogrify -depth 8" in message and "-alpha remove" in message
    assert "gray8.png" not in message and "rgb.jpg" not in message
    check_image_files([files["gray8.png"], files["rgb.jpg"], files["opaque_rgba.png"]], "folder")  # no error


def test_long_lists_are_shortened(files: dict[str, Path]) -> None:
    with pytest.raises(ImageFormatError, match=r"and 3 more"):
        check_image_files([files["deep.png"]] * 8, "folder", show=5)


def test_load_folder_refuses_before_cropping(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root = files["deep.png"].parent

    def no_cropping(*args: object, **kwargs: object) -> None:
        raise AssertionError("faces were cropped before the format check")

    monkeypatch.setattr(folder_module, "_face_items", no_cropping)
    with pytest.raises(ImageFormatError, match="deep.png"):
        load_folder(root, face_crop="none", cache=False, progress=False)


def test_a_folder_of_8_bit_and_opaque_images_loads(files: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "ok"
    root.mkdir()
    for name in ("gray8.png", "rgb.jpg", "opaque_rgba.png"):
        (root / name).write_bytes(files[name].read_bytes())
    faces = load_folder(root, face_crop="none", size=32, cache=False, progress=False)
    assert len(faces) == 3
    # The opaque RGBA file reads as the same grey image as the gray one.
    by_name = dict(zip(faces.names.tolist(), faces.images))
    assert np.array_equal(by_name["opaque_rgba.png"], by_name["gray8.png"])


def test_ck_plus_reading_keeps_the_reference_conversion(files: dict[str, Path]) -> None:
    """CK+ frames are read as the reference's cv2.imread did: the top 8 bits of 16-bit data, alpha dropped."""
    gray = read_gray(files["deep.png"])
    assert gray is not None and gray.dtype == np.uint8
    assert np.array_equal(gray, cv2.imread(str(files["deep.png"]), cv2.IMREAD_GRAYSCALE))
