"""CK+ loader on fabricated trees in the distributed layout: protocol counts, labels, AUs, folds, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers.real_formats import CKSequence, CountingDetector, make_ckplus_tree

from captum_fau.data.base import CKPLUS_CLASSES
from captum_fau.data.ckplus import CKPLUS6_CLASSES, landmarks_for, load_ckplus, read_emotion_file, read_facs_file
from captum_fau.errors import ConfigError, DatasetLayoutError, LabelError


def _load(root, **kwargs):
    kwargs.setdefault("detector", CountingDetector())
    kwargs.setdefault("cache_dir", root / ".cache")
    kwargs.setdefault("progress", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        faces = load_ckplus(root, **kwargs)
    return faces, [str(w.message) for w in caught]


def _twelve_subjects(root):
    sequences = [CKSequence(f"S{100 + i:03d}", "001", label=i % 8, frames=5 + i % 3) for i in range(12)]
    sequences.append(CKSequence("S100", "002", label=5, frames=7))
    sequences.append(CKSequence("S101", "003", label=None))  # no Emotion file: unlabelled, left out
    sequences.append(CKSequence("S200", "001", label=None))  # a subject with only unlabelled sequences
    return make_ckplus_tree(root, sequences)


def test_protocol_counts_labels_and_folds(tmp_path) -> None:
    _twelve_subjects(tmp_path)
    faces, messages = _load(tmp_path)
    assert len(faces) == 4 * 13 and faces.name == "ckplus"
    assert faces.class_names == CKPLUS_CLASSES and faces.images.shape[1:] == (96, 96)
    assert messages == []
    # first frame neutral, last three the sequence label
    seq = faces.sequences == "S104/001"  # 6 frames, label 4
    assert faces.emotions[seq].tolist() == [0, 4, 4, 4]
    assert [n.rsplit("_", 1)[1] for n in faces.names[seq]] == [
        "00000001.png",
        "00000004.png",
        "00000005.png",
        "00000006.png",
    ]
    # folds: the 12 labelled subjects sorted, index mod 10; S200 (unlabelled only) takes no index
    subjects = sorted(set(faces.subjects.tolist()))
    assert subjects == [f"S{100 + i:03d}" for i in range(12)]
    for index, subject in enumerate(subjects):
        assert set(faces.folds[faces.subjects == subject].tolist()) == {index % 10}
    assert faces.meta["unlabelled_sequences"] == ["S101/003", "S200/001"]


def test_au_labels_follow_the_facs_files(tmp_path) -> None:
    make_ckplus_tree(
        tmp_path,
        [
            CKSequence("S005", "001", label=5, facs=[(6.0, 3.0), (12.0, 0.0)]),
            CKSequence("S010", "002", label=1, facs=[(4.0, 4.0)]),
        ],
    )
    faces, _ = _load(tmp_path)
    assert faces.au_ids == ("AU4", "AU6", "AU12")
    happy = faces.sequences == "S005/001"
    np.testing.assert_array_equal(faces.aus[happy], [[0, 0, 0], [0, 3, 1], [0, 3, 1], [0, 3, 1]])  # 0 -> present (1)
    assert faces.aus[faces.sequences == "S010/002"][1:, 0].tolist() == [4, 4, 4]


def test_sequence_without_facs_gets_nan_peaks_and_a_warning(tmp_path) -> None:
    make_ckplus_tree(tmp_path, [CKSequence("S005", "001", label=5), CKSequence("S010", "001", label=7, facs=None)])
    faces, messages = _load(tmp_path)
    uncoded = faces.sequences == "S010/001"
    assert np.isnan(faces.aus[uncoded][1:]).all() and (faces.aus[uncoded][0] == 0).all()
    assert any("no FACS file" in m and "S010/001" in m for m in messages)
    assert faces.meta["sequences_without_facs"] == ["S010/001"]


def test_six_class_map_drops_neutral_and_contempt(tmp_path) -> None:
    make_ckplus_tree(tmp_path, [CKSequence(f"S{i:03d}", "001", label=i) for i in range(1, 8)])
    eight, _ = _load(tmp_path)
    six, _ = _load(tmp_path, num_classes=6)
    assert len(eight) == 28 and six.class_names == CKPLUS6_CLASSES and six.name == "ckplus6"
    assert len(six) == 6 * 3  # 7 sequences, contempt dropped, neutral frames dropped
    for code, name in [(1, "anger"), (3, "disgust"), (4, "fear"), (5, "happy"), (6, "sadness"), (7, "surprise")]:
        rows = six.subjects == f"S{code:03d}"
        assert [six.class_names[e] for e in six.emotions[rows]] == [name] * 3
        # the 6-class set keeps the 8-class folds
        assert set(six.folds[rows]) == set(eight.folds[eight.subjects == f"S{code:03d}"])


def test_undetected_and_corrupt_frames_are_skipped_with_one_warning(tmp_path) -> None:
    make_ckplus_tree(
        tmp_path,
        [
            CKSequence("S005", "001", label=5, frames=6, no_face_frames=[0], corrupt_frames=[5]),
            CKSequence("S010", "001", label=3),
        ],
    )
    from captum_fau.data.faces import HaarFaceDetector

    faces, messages = _load(tmp_path, detector=HaarFaceDetector())
    assert len(faces) == 8 - 2
    skipped = {entry["file"].rsplit("/", 1)[1]: entry["reason"] for entry in faces.meta["skipped"]}
    assert skipped == {"S005_001_00000001.png": "no face found", "S005_001_00000006.png": "unreadable image"}
    assert len(messages) == 1 and "skipped 2 of 8" in messages[0] and "S005_001_00000006.png" in messages[0]


def test_malformed_emotion_file_skips_the_sequence(tmp_path) -> None:
    make_ckplus_tree(
        tmp_path, [CKSequence("S005", "001", label=5, emotion_text="happy\n"), CKSequence("S010", "001", label=3)]
    )
    faces, messages = _load(tmp_path)
    assert set(faces.sequences) == {"S010/001"} and len(faces) == 4
    assert len(messages) == 1 and "malformed label" in messages[0] and "S005/001" in messages[0]


def test_landmarks_are_mapped_into_crop_pixels(tmp_path) -> None:
    make_ckplus_tree(tmp_path, [CKSequence("S005", "001", label=5, frames=4)], height=120, width=160)
    faces, _ = _load(tmp_path, size=48)
    points = landmarks_for(faces)
    assert points.shape == (4, 68, 2)
    # CountingDetector's box: side 60 at (50, 30); the first fabricated point is (40, 30)
    np.testing.assert_allclose(points[0, 0], [(40 - 50) * 48 / 60, (30 - 30) * 48 / 60], atol=1e-4)
    np.testing.assert_allclose(landmarks_for(faces.subset([2]))[0], points[2])


def test_second_load_reads_the_cache(tmp_path) -> None:
    make_ckplus_tree(tmp_path, [CKSequence("S005", "001", label=5)])
    detector = CountingDetector()
    first, _ = _load(tmp_path, detector=detector)
    calls = detector.calls
    second, _ = _load(tmp_path, detector=detector, num_classes=6)
    assert calls == 4 and detector.calls == calls and second.meta["from_cache"]
    np.testing.assert_array_equal(first.images[1:], second.images)


def test_missing_or_misnamed_folders_name_the_layout(tmp_path) -> None:
    with pytest.raises(DatasetLayoutError, match="cohn-kanade-images"):
        load_ckplus(tmp_path / "nowhere")
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetLayoutError, match="cohn-kanade-images/Sxxx/yyy"):
        load_ckplus(tmp_path)
    (tmp_path / "cohn-kanade-images" / "S005" / "001").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="Emotion"):
        load_ckplus(tmp_path)
    (tmp_path / "Emotion").mkdir()
    with pytest.raises(DatasetLayoutError, match="no labelled CK\\+ sequence"):
        load_ckplus(tmp_path, cache=False, progress=False)
    with pytest.raises(ConfigError, match="num_classes"):
        load_ckplus(tmp_path, num_classes=7)


def test_label_file_readers(tmp_path) -> None:
    (tmp_path / "e.txt").write_text("   7.0000000e+00\n")
    assert read_emotion_file(tmp_path / "e.txt") == 7
    (tmp_path / "bad.txt").write_text("   9.0000000e+00\n")
    with pytest.raises(LabelError, match="0..7"):
        read_emotion_file(tmp_path / "bad.txt")
    (tmp_path / "f.txt").write_text("   1.0000000e+00   2.0000000e+00\n\n   2.5000000e+01   0.0000000e+00\n")
    assert read_facs_file(tmp_path / "f.txt") == {"AU1": 2.0, "AU25": 1.0}
    (tmp_path / "g.txt").write_text("   1.0000000e+00\n")
    with pytest.raises(LabelError, match="g.txt:1"):
        read_facs_file(tmp_path / "g.txt")
