"""LazyFaceSet: per-item decode + crop equals the eager loaders, in worker processes, with a shared cache."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from helpers.real_formats import CKSequence, CountingDetector, draw_face, make_ckplus_tree, write_png

from captum_fau.data.ckplus import load_ckplus
from captum_fau.data.faces import STATUS_NO_FACE, STATUS_OK, HaarFaceDetector
from captum_fau.data.folder import load_folder
from captum_fau.data.lazy import LazyFaceSet, _ItemCache
from captum_fau.data.spec import load_data_spec
from captum_fau.errors import LabelError
from captum_fau.stats.batching import MapSource
from captum_fau.stats.scan import scan


def _folder(root, count=10, dark=(3,)):
    """Class subfolders of drawn faces; the ``dark`` indices are black (the stub detector finds nothing)."""
    for i in range(count):
        image = np.zeros((90, 120), np.uint8) if i in dark else draw_face(90, 120, shift=(i % 5) - 2, skin=150 + 9 * i)
        write_png(root / ("happy" if i % 2 else "sad") / f"{i:02d}.png", image)
    return root


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_lazy_folder_items_equal_the_eager_faceset(tmp_path) -> None:
    root = _folder(tmp_path / "faces")
    eager = _quiet(load_folder, root, detector=CountingDetector(), cache=False, progress=False)
    lazy = load_folder(root, detector=CountingDetector(), cache_dir=tmp_path / "cache", lazy=True, workers=0,
                       progress=False)  # fmt: skip
    assert isinstance(lazy, LazyFaceSet) and len(lazy) == 10 and len(eager) == 9  # the dark image is dropped eagerly
    kept = [i for i, name in enumerate(lazy.names) if name != "happy/03.png"]
    assert lazy.names[kept].tolist() == eager.names.tolist()
    assert torch.equal(lazy.tensors(kept), eager.tensors())
    assert lazy.class_names == eager.class_names
    np.testing.assert_array_equal(lazy.emotions[kept], eager.emotions)
    items = [lazy[i] for i in range(10)]
    assert [it["face_found"] for it in items] == [i in kept for i in range(10)]
    assert torch.equal(items[kept[5]]["image"], eager[5]["image"]) and items[kept[5]]["emotion"] == int(eager.emotions[5])
    assert lazy.skipped() == [{"file": "happy/03.png", "reason": "no face found"}]
    again = lazy.materialize(progress=False)
    assert np.array_equal(again.images, eager.images) and again.meta["skipped"][0]["file"] == "happy/03.png"


def test_workers_and_cache_give_the_same_batches_and_the_second_pass_detects_nothing(tmp_path) -> None:
    root = _folder(tmp_path / "faces", count=12, dark=())
    detector = CountingDetector()
    lazy = load_folder(root, detector=detector, cache_dir=tmp_path / "cache", lazy=True, workers=2, progress=False)
    ranges = [(0, 5), (5, 10), (10, 12)]
    first = list(MapSource(lazy).batches(ranges))  # two worker processes crop and write the cache
    assert detector.calls == 0  # the detections ran in the workers, on their copies
    assert len(list((tmp_path / "cache").rglob("face-*.npz"))) == 12
    assert not list((tmp_path / "cache").rglob(".face-*"))  # no temporary file left behind
    serial = load_folder(root, detector=detector, cache_dir=tmp_path / "cache", lazy=True, workers=0, progress=False)
    second = list(MapSource(serial).batches(ranges))
    assert detector.calls == 0  # every crop came from the cache the workers wrote
    for (x1, e1, i1), (x2, e2, i2) in zip(first, second):
        assert torch.equal(x1, x2) and torch.equal(i1, i2) and torch.equal(e1["emotion"], e2["emotion"])
    fresh = load_folder(root, detector=CountingDetector(), cache=False, lazy=True, workers=0, progress=False)
    assert torch.equal(torch.cat([b[0] for b in first]), fresh.tensors())


def test_a_damaged_cache_entry_is_recomputed(tmp_path) -> None:
    root = _folder(tmp_path / "faces", count=2, dark=())
    lazy = load_folder(root, detector=CountingDetector(), cache_dir=tmp_path / "cache", lazy=True, workers=0,
                       progress=False)  # fmt: skip
    good = lazy[0]["image"]
    entry = _ItemCache(tmp_path / "cache", prefix="face").path(lazy._key(0))
    entry.write_bytes(entry.read_bytes()[:40])  # a truncated file, as an interrupted copy leaves
    assert torch.equal(lazy[0]["image"], good)
    assert lazy.cached_status(0) == STATUS_OK


def test_scan_over_a_lazy_set_with_workers_equals_the_eager_scan(tmp_path) -> None:
    root = _folder(tmp_path / "faces", count=12, dark=())
    eager = load_folder(root, detector=CountingDetector(), cache=False, progress=False)
    lazy = load_folder(root, detector=CountingDetector(), cache=False, lazy=True, workers=2, progress=False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 5)).eval()
    a = scan(model, "2", eager, top_n=3, batch_size=5, progress=False)
    b = scan(model, "2", lazy, top_n=3, batch_size=5, progress=False)
    assert torch.equal(a.indices, b.indices)
    assert torch.allclose(a.layers["2"].maxima, b.layers["2"].maxima)
    assert torch.equal(a.layers["2"].positions, b.layers["2"].positions)
    assert bool(torch.as_tensor(b.extras["face_found"]).all())  # the per-image flag reaches the result


def test_lazy_ckplus_keeps_the_protocol_labels(tmp_path) -> None:
    make_ckplus_tree(tmp_path, [CKSequence(f"S{100 + i:03d}", "001", label=i % 8, frames=5) for i in range(4)])
    eager = _quiet(load_ckplus, tmp_path, detector=CountingDetector(), cache=False, progress=False)
    lazy = _quiet(load_ckplus, tmp_path, detector=CountingDetector(), cache=False, progress=False, lazy=True,
                  workers=0)  # fmt: skip
    assert isinstance(lazy, LazyFaceSet) and len(lazy) == len(eager)
    np.testing.assert_array_equal(lazy.emotions, eager.emotions)
    np.testing.assert_array_equal(lazy.subjects, eager.subjects)
    np.testing.assert_array_equal(lazy.folds, eager.folds)
    assert torch.equal(lazy.tensors(), eager.tensors())


def test_spec_stream_and_haar_detection_on_a_larger_frame(tmp_path) -> None:
    write_png(tmp_path / "a.png", draw_face(240, 320))
    write_png(tmp_path / "b.png", np.zeros((240, 320), np.uint8))
    lazy = _quiet(load_data_spec, f"folder:{tmp_path}", lazy=True, workers=0, progress=False,
                  cache_dir=tmp_path / ".cache")  # fmt: skip
    assert isinstance(lazy, LazyFaceSet) and isinstance(lazy.detector, HaarFaceDetector)
    image, status, box = lazy.crop(0)
    assert status == STATUS_OK and box[2] >= 120 and image.shape == (96, 96)
    assert lazy.crop(1)[1] == STATUS_NO_FACE and lazy[1]["face_found"] is False


def test_label_arrays_must_match_the_files(tmp_path) -> None:
    with pytest.raises(LabelError, match="emotions has 1 entries"):
        LazyFaceSet(["a.png", "b.png"], emotions=np.array([0]), cache=False)
