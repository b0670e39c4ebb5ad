"""Image-folder loader: labels CSV, class folders, OpenFace 2.0 and py-feat AU CSVs, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers.real_formats import CountingDetector, draw_face, draw_no_face, write_png

from captum_fau.data.faces import HaarFaceDetector
from captum_fau.data.folder import load_folder, read_au_csv
from captum_fau.errors import DatasetLayoutError, LabelError

OPENFACE_HEADER = "frame, face_id, timestamp, confidence, success, AU01_r, AU12_r, AU01_c, AU12_c, AU28_c"


def _images(root, names=("a.png", "b.png", "sub/c.jpg")):
    for i, name in enumerate(names):
        write_png(root / name, draw_face(shift=i))
    return root


def _load(root, *args, **kwargs):
    kwargs.setdefault("detector", CountingDetector())
    kwargs.setdefault("cache_dir", root.parent / "cache")
    kwargs.setdefault("progress", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        faces = load_folder(root, *args, **kwargs)
    return faces, [str(w.message) for w in caught]


def test_labels_csv_by_name_path_and_stem(tmp_path) -> None:
    root = _images(tmp_path / "img")
    (tmp_path / "labels.csv").write_text(
        "file,emotion,subject,fold\na.png,happy,p1,0\nsub/c.jpg,sadness,p2,1\nb,happy,p1,\n"
    )
    faces, messages = _load(root, tmp_path / "labels.csv")
    assert faces.names.tolist() == ["a.png", "b.png", "sub/c.jpg"] and messages == []
    assert faces.folds.tolist() == [0, -1, 1]
    assert faces.class_names == ("happy", "sadness") and faces.emotions.tolist() == [0, 0, 1]
    assert faces.subjects.tolist() == ["p1", "p1", "p2"]
    explicit, _ = _load(root, tmp_path / "labels.csv", class_names=("neutral", "happy", "sadness"))
    assert explicit.emotions.tolist() == [1, 1, 2]


def test_integer_labels_class_folders_and_default_labels_csv(tmp_path) -> None:
    root = _images(tmp_path / "img", ("x.png", "y.png"))
    (root / "labels.csv").write_text("image,label\nx.png,2\n")
    faces, _ = _load(root)
    assert faces.class_names == ("0", "1", "2") and faces.emotions.tolist() == [2, -1]
    folders = _images(tmp_path / "cls", ("happy/1.png", "happy/2.png", "anger/3.png"))
    faces, _ = _load(folders)
    assert faces.class_names == ("anger", "happy") and faces.emotions.tolist() == [0, 1, 1]


def test_real_haar_detection_and_undetected_faces(tmp_path) -> None:
    root = _images(tmp_path / "img", ("a.png",))
    write_png(root / "empty.png", draw_no_face())
    (root / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    faces, messages = _load(root, detector=HaarFaceDetector())
    assert faces.names.tolist() == ["a.png"]
    assert len(messages) == 1 and "skipped 2 of 3" in messages[0] and "empty.png" in messages[0]
    assert {e["reason"] for e in faces.meta["skipped"]} == {"no face found", "unreadable image"}
    uncropped, _ = _load(root, detect_faces=False, size=32)
    assert len(uncropped) == 2 and uncropped.images.shape[1:] == (32, 32)


def test_openface_single_csv(tmp_path) -> None:
    root = _images(tmp_path / "img")
    (tmp_path / "of.csv").write_text(
        "file, " + OPENFACE_HEADER + "\n"
        "a.png, 1, 0, 0, 0.98, 1, 2.5, 0.3, 1, 0, 1\n"
        "a.png, 1, 1, 0, 0.50, 1, 0.0, 4.0, 0, 1, 0\n"  # a second, less confident face
        "b.png, 1, 0, 0, 0.90, 1, 0.2, 0.0, 1, 0, 0\n"
        "sub/c.jpg, 1, 0, 0, 0.00, 0, 3.0, 3.0, 1, 1, 1\n"  # OpenFace failure: ignored
    )
    faces, messages = _load(root, au_csv=tmp_path / "of.csv")
    assert faces.au_ids == ("AU1", "AU12", "AU28")
    np.testing.assert_array_equal(faces.aus[:2], [[2.5, 0, 1], [1.0, 0, 0]])  # present -> at least A (1)
    assert np.isnan(faces.aus[2]).all() and any("no AU row" in m for m in messages)
    assert faces.meta["aus_missing"] == ["sub/c.jpg"]


def test_openface_per_image_folder(tmp_path) -> None:
    root = _images(tmp_path / "img", ("a.png", "b.png"))
    out = tmp_path / "processed"
    out.mkdir()
    (out / "a.csv").write_text(OPENFACE_HEADER + "\n1, 0, 0, 0.9, 1, 1.5, 2.0, 1, 1, 0\n")
    (out / "b.csv").write_text(OPENFACE_HEADER + "\n1, 0, 0, 0.9, 1, 0.0, 0.0, 0, 0, 1\n")
    faces, _ = _load(root, au_csv=out, au_format="openface")
    np.testing.assert_array_equal(faces.aus, [[1.5, 2.0, 0], [0, 0, 1]])
    (out / "b.csv").write_text("frame, success, AU01_r, AU01_c\n1, 1, 0.0, 0\n")
    with pytest.raises(LabelError, match="AU12"):
        _load(root, au_csv=out)


def test_pyfeat_csv(tmp_path) -> None:
    root = _images(tmp_path / "img", ("a.png", "b.png"))
    (tmp_path / "feat.csv").write_text(
        "input,FaceScore,AU01,AU04,AU12\n"
        f"{root / 'a.png'},0.99,0.8,0.1,0.6\n"
        "b.png,0.95,0.2,,0.9\n"
        "b.png,0.40,0.9,0.9,0.9\n"
    )
    faces, _ = _load(root, au_csv=tmp_path / "feat.csv")
    assert faces.au_ids == ("AU1", "AU4", "AU12")
    np.testing.assert_array_equal(faces.aus[0], [1, 0, 1])
    assert faces.aus[1, 0] == 0 and np.isnan(faces.aus[1, 1]) and faces.aus[1, 2] == 1
    assert read_au_csv(tmp_path / "feat.csv", threshold=0.95).values[0].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "text, column",
    [
        ("input,AU01,AU01_r\na.png,1,1\n", "AU01"),  # py-feat and OpenFace columns mixed
        ("input,AU01,AU1\na.png,1,1\n", "AU1"),  # the same AU twice
        ("input,AU01,AU99\na.png,1,1\n", "AU99"),  # not a FACS AU
        ("input,AU01,AU12\na.png,1,high\n", "AU12"),  # not a number
        ("input,AU01,AU12\na.png,1,-2\n", "AU12"),  # negative
        ("input,AU01,AU12\na.png,1,7\n", "AU12"),  # beyond E
        ("file,AU01_r,AU01_c\na.png,1,0.5\n", "AU01_c"),  # presence not 0/1
    ],
)
def test_inconsistent_au_columns_name_the_column(tmp_path, text, column) -> None:
    (tmp_path / "aus.csv").write_text(text)
    with pytest.raises(LabelError, match=column):
        read_au_csv(tmp_path / "aus.csv")


def test_bad_folder_input(tmp_path) -> None:
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        load_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no images"):
        load_folder(tmp_path / "empty")
    root = _images(tmp_path / "img", ("a.png", "x/a.png"))
    (tmp_path / "nofile.csv").write_text("emotion\nhappy\n")
    with pytest.raises(LabelError, match="file column"):
        _load(root, tmp_path / "nofile.csv")
    (tmp_path / "ambiguous.csv").write_text("file,emotion\na.png,happy\nx/a.png,sad\n")
    faces, _ = _load(root, tmp_path / "ambiguous.csv")  # exact relative paths win
    assert faces.emotions.tolist() == [0, 1]
    (tmp_path / "stem.csv").write_text("file,emotion\na,happy\n")
    with pytest.raises(LabelError, match="relative"):
        _load(root, tmp_path / "stem.csv")
    (tmp_path / "unknown.csv").write_text("file,emotion\na.png,happy\nx/a.png,sad\n")
    with pytest.raises(LabelError, match="class"):
        _load(root, tmp_path / "unknown.csv", class_names=("happy",))
    (tmp_path / "orphans.csv").write_text("file,emotion\na.png,happy\nmissing.png,sad\n")
    faces, messages = _load(root, tmp_path / "orphans.csv")
    assert len(faces) == 2 and "missing.png" in messages[0]
    with pytest.raises(LabelError, match="no AU columns"):
        _load(root, au_csv=tmp_path / "orphans.csv")
