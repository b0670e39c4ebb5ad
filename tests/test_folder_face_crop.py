"""--face-crop for folder: data: pre-cropped faces kept, small faces in photos found, one item per face."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from captum_fau.data.faces import HaarFaceDetector
from captum_fau.data.folder import face_crop_note, load_folder
from captum_fau.data.spec import load_data_spec
from captum_fau.data.synthfacs import load_synthfacs
from captum_fau.errors import ConfigError, DatasetError, DatasetLayoutError


@pytest.fixture(scope="module")
def synth() -> np.ndarray:
    return load_synthfacs(4, seed=2).images


def _canvas(height: int = 480, width: int = 640) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(110, 6, (height, width)), 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, face: np.ndarray, x: int, y: int, side: int) -> None:
    canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, synth) -> Path:
    """small.png: one 110 px face in a 640x480 frame; pair.png: two faces; crop.png: a 96x96 pre-cropped face;
    blank.png: a 640x480 frame without a face; blank_small.png: a 96x96 image without a face."""
    root = tmp_path_factory.mktemp("photos")
    small = _canvas()
    _paste(small, synth[0], 300, 120, 110)
    pair = _canvas()
    _paste(pair, synth[1], 40, 150, 160)
    _paste(pair, synth[2], 400, 150, 160)
    for name, image in (("small.png", small), ("pair.png", pair), ("crop.png", synth[3]), ("blank.png", _canvas()),
                        ("blank_small.png", _canvas(96, 96))):  # fmt: skip
        cv2.imwrite(str(root / name), image)
    return root


def _load(root: Path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        faces = load_folder(root, cache_dir=root.parent / "cache", progress=False, **kwargs)
    return faces, " ".join(str(w.message) for w in caught)


def test_auto_finds_small_and_several_faces_and_keeps_face_crops_whole(photos: Path) -> None:
    faces, warned = _load(photos)
    assert faces.names.tolist() == ["blank_small.png", "crop.png", "pair.png#face1", "pair.png#face2", "small.png"]
    boxes = faces.meta["boxes"]
    assert boxes["crop.png"] == [0, 0, 96, 96] and boxes["blank_small.png"] == [0, 0, 96, 96]  # kept whole
    x, y, w, h = boxes["small.png"]
    assert abs(x + w / 2 - 355) < 15 and abs(y + h / 2 - 175) < 15 and 70 < w < 150  # the 110 px face
    assert boxes["pair.png#face1"][0] < 200 < 400 <= boxes["pair.png#face2"][0] + 40  # left to right
    info = faces.meta["face_crop"]
    assert (info["files"], info["items"], info["files_with_several_faces"], info["kept_whole"]) == (5, 5, 1, 2)
    assert info["dropped"] == {"no face found": 1} and "blank.png (no face found)" in warned
    assert face_crop_note(faces.meta) == (
        "Face crop (auto): 5 faces from 5 images; 1 image(s) with several faces gave one item per face; "
        "2 image(s) kept whole as face crops; 1 image(s) dropped (1 no face found)."
    )
    again, _ = _load(photos)  # from the cache: the same items
    assert again.meta["from_cache"] and again.names.tolist() == faces.names.tolist()
    assert np.array_equal(again.images, faces.images)


def test_haar_detects_everywhere_and_none_keeps_every_image(photos: Path) -> None:
    haar, warned = _load(photos, face_crop="haar")
    assert "blank.png" not in haar.names.tolist() and "blank_small.png" not in haar.names.tolist()
    assert {"small.png", "pair.png#face1", "pair.png#face2", "crop.png"} == set(haar.names.tolist())
    assert haar.meta["face_crop"]["n_dropped"] == 2 and "2 no face found" in warned
    assert haar.meta["boxes"]["crop.png"] != [0, 0, 96, 96]  # detected inside the crop
    none, warned = _load(photos, face_crop="none")
    assert len(none) == 5 and warned == "" and none.meta["face_crop"]["n_dropped"] == 0
    assert none.meta["boxes"]["small.png"] == [80, 0, 480, 480]  # the centred square
    assert _load(photos, detect_faces=False)[0].names.tolist() == none.names.tolist()
    # the CK+ reference settings (face 50-80% of the frame) miss the small face that general settings find
    gray = cv2.imread(str(photos / "small.png"), cv2.IMREAD_GRAYSCALE)
    assert HaarFaceDetector()(gray) is None and len(HaarFaceDetector.general().detect_many(gray)) == 1


def test_face_crop_options_are_checked(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="face_crop must be one of"):
        load_folder(photos, face_crop="dlib")
    with pytest.raises(DatasetError, match="face_crop= applies to folder: specs only"):
        load_data_spec("synthfacs:4", face_crop="none")
    only_blank = tmp_path / "blank"
    only_blank.mkdir()
    cv2.imwrite(str(only_blank / "x.png"), _canvas())
    with pytest.raises(DatasetLayoutError, match="--face-crop none"):
        _load(only_blank, face_crop="haar")
