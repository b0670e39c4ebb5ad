"""Face detection (real Haar cascade, reference parameters), cropping and skip reporting."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers.real_formats import draw_face, draw_no_face, write_png

from captum_fau.data.faces import (
    STATUS_NO_FACE,
    STATUS_OK,
    STATUS_UNREADABLE,
    HaarFaceDetector,
    centre_square,
    crop_resize,
    preprocess_faces,
    read_gray,
    warn_skipped,
)
from captum_fau.errors import ConfigError


@pytest.mark.parametrize("shape", [(120, 160), (490, 640), (96, 96)])
def test_haar_finds_a_drawn_face_with_reference_size_limits(shape) -> None:
    detector = HaarFaceDetector()
    box = detector(draw_face(*shape))
    assert box is not None
    x, y, w, h = box
    shorter = min(shape)
    assert 0.5 * shorter - 1 <= w <= 0.8 * shorter + 1
    # the box is centred on the drawn oval
    assert abs((x + w / 2) - shape[1] / 2) < 0.1 * shorter
    assert abs((y + h / 2) - shape[0] / 2) < 0.1 * shorter


def test_haar_finds_nothing_in_noise_and_retries_laxer() -> None:
    detector = HaarFaceDetector()
    assert detector(draw_no_face()) is None
    assert detector.retry_min_neighbors == (3,) and detector.min_neighbors == 5
    assert detector.scale_factor == 1.3
    assert "sf=1.3" in detector.cache_token and "mn=5" in detector.cache_token


def test_haar_bad_parameters_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="scale_factor"):
        HaarFaceDetector(scale_factor=1.0)
    with pytest.raises(ConfigError, match="fractions"):
        HaarFaceDetector(min_size_fraction=0.9, max_size_fraction=0.5)
    with pytest.raises(ConfigError, match="opencv-python-headless"):
        HaarFaceDetector(cascade="no_such_cascade.xml")


def test_crop_resize_and_centre_square() -> None:
    image = np.arange(100 * 200, dtype=np.uint32).reshape(100, 200).astype(np.uint8)
    assert centre_square(image.shape) == (50, 0, 100, 100)
    crop = crop_resize(image, (10, 20, 32, 32), 32)
    np.testing.assert_array_equal(crop, image[20:52, 10:42])
    assert crop_resize(image, (0, 0, 100, 100), 24).shape == (24, 24)
    assert crop_resize(image, (0, 0, 10, 10), 24).shape == (24, 24)  # enlarging works too


def test_read_gray_handles_colour_16bit_and_garbage(tmp_path) -> None:
    import cv2

    colour = np.zeros((10, 12, 3), np.uint8)
    colour[..., 2] = 255
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    cv2.imwrite(str(tmp_path / "d.png"), np.full((10, 12), 65535, np.uint16))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert read_gray(tmp_path / "c.png").shape == (10, 12)
    assert read_gray(tmp_path / "d.png").max() == 255
    assert read_gray(tmp_path / "bad.png") is None
    assert read_gray(tmp_path / "missing.png") is None


def test_preprocess_faces_reports_status_per_file(tmp_path) -> None:
    good = write_png(tmp_path / "face.png", draw_face())
    empty = write_png(tmp_path / "noise.png", draw_no_face())
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG truncated")
    crops = preprocess_faces([good, empty, bad], size=48, detector=HaarFaceDetector(), cache=False, progress=False)
    assert crops.status.tolist() == [STATUS_OK, STATUS_NO_FACE, STATUS_UNREADABLE]
    assert crops.reasons() == [None, "no face found", "unreadable image"]
    assert crops.images.shape == (3, 48, 48) and crops.images[0].std() > 10
    assert crops.boxes[1].tolist() == [-1, -1, -1, -1]


def test_preprocess_faces_validates_size(tmp_path) -> None:
    with pytest.raises(ConfigError, match="size"):
        preprocess_faces([], size=2, cache=False)
    with pytest.raises(ConfigError, match="interpolation"):
        preprocess_faces([], interpolation="magic", cache=False)


def test_warn_skipped_is_one_warning_that_counts_and_lists() -> None:
    skipped = [{"file": f"f{i}.png", "reason": "no face found"} for i in range(25)] + [
        {"file": "x.png", "reason": "unreadable image"}
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_skipped("demo", skipped, 100)
        warn_skipped("demo", [], 100)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 26 of 100" in message and "25 no face found" in message and "1 unreadable image" in message
    assert "f0.png" in message and "and 6 more" in message


def test_haar_detector_pickles_after_use() -> None:
    import pickle

    detector = HaarFaceDetector()
    assert detector(draw_face()) is not None
    clone = pickle.loads(pickle.dumps(detector))
    assert clone(draw_face()) == detector(draw_face())
