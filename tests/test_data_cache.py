"""The preprocessed-array cache: keys follow inputs and parameters; the second run does no detection."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers.real_formats import CountingDetector, draw_face, write_png

from captum_fau.data.cache import ArrayCache, cache_key, default_cache_dir, file_fingerprints
from captum_fau.data.faces import preprocess_faces
from captum_fau.errors import OutputError


def test_save_load_roundtrip_without_pickle(tmp_path) -> None:
    cache = ArrayCache(tmp_path / "c")
    key = cache_key({"a": 1})
    assert cache.load(key) is None
    arrays = {"images": np.arange(12, dtype=np.uint8).reshape(3, 2, 2), "names": np.array(["x", "y", "z"])}
    path = cache.save(key, arrays)
    assert path.parent == tmp_path / "c" and path.suffix == ".npz"
    loaded = cache.load(key)
    np.testing.assert_array_equal(loaded["images"], arrays["images"])
    assert loaded["names"].tolist() == ["x", "y", "z"]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers


def test_object_arrays_are_refused_and_damaged_entries_count_as_absent(tmp_path) -> None:
    cache = ArrayCache(tmp_path)
    key = cache_key({"b": 2})
    cache.path(key).write_bytes(b"half a zip")
    assert cache.load(key) is None
    cache.save(key, {"obj": np.array([{"a": 1}], dtype=object)})
    assert cache.load(key) is None  # allow_pickle=False: never unpickled


def test_keys_change_with_parameters_and_file_content(tmp_path) -> None:
    path = write_png(tmp_path / "a.png", draw_face())
    first = cache_key({"size": 96, "files": file_fingerprints([path])})
    assert first == cache_key({"size": 96, "files": file_fingerprints([path])})
    assert first != cache_key({"size": 48, "files": file_fingerprints([path])})
    write_png(path, draw_face(shift=5))
    os.utime(path, ns=(1, 1))
    assert first != cache_key({"size": 96, "files": file_fingerprints([path])})
    assert file_fingerprints([tmp_path / "gone.png"])[0][1:] == [-1, -1]


def test_second_preprocess_does_no_detection_work(tmp_path) -> None:
    paths = [write_png(tmp_path / f"{i}.png", draw_face(shift=i)) for i in range(4)]
    detector = CountingDetector()
    first = preprocess_faces(paths, size=32, detector=detector, cache_dir=tmp_path / "cache", progress=False)
    assert detector.calls == 4 and not first.from_cache
    second = preprocess_faces(paths, size=32, detector=detector, cache_dir=tmp_path / "cache", progress=False)
    assert detector.calls == 4 and second.from_cache
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.boxes, second.boxes)
    preprocess_faces(paths, size=40, detector=detector, cache_dir=tmp_path / "cache", progress=False)
    assert detector.calls == 8  # other parameters, other entry


def test_default_dir_honours_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CAPTUM_FAU_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"


def test_unwritable_cache_raises_output_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cache_dir"):
        ArrayCache(blocker / "sub").save("k", {"a": np.zeros(1)})


def test_detectors_without_cache_token_are_not_cached(tmp_path) -> None:
    paths = [write_png(tmp_path / "a.png", draw_face())]
    calls = []

    def detect(gray):
        calls.append(1)
        return (0, 0, 10, 10)

    for _ in range(2):
        preprocess_faces(paths, size=16, detector=detect, cache_dir=tmp_path / "cache", progress=False)
    assert len(calls) == 2 and not (tmp_path / "cache").exists()
