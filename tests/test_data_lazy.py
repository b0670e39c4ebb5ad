"""Streamed folder/CK+ data (LazyFaceSet) equal the eager loaders item for item, in worker processes,
with a shared, lock-safe index cache; analyze on both gives the same results; TFD reads only kept rows."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.real_formats import CKSequence, make_ckplus_tree, write_labelled_folder, write_tfd_mat

from captum_fau.cli import build_parser
from captum_fau.data import lazy as lazy_module
from captum_fau.data.ckplus import load_ckplus
from captum_fau.data.faces import OneFace
from captum_fau.data.folder import face_crop_note, load_folder
from captum_fau.data.lazy import LazyFaceSet, index_faces
from captum_fau.data.spec import load_data_spec
from captum_fau.data.synthfacs import load_synthfacs
from captum_fau.data.tfd import load_tfd, mapped_images
from captum_fau.errors import DatasetError
from captum_fau.stats.batching import MapSource
from captum_fau.stats.scan import scan

LABEL_ARRAYS = ("emotions", "aus", "subjects", "sequences", "folds", "names")


def _canvas(height: int = 480, width: int = 640) -> np.ndarray:
    return np.clip(np.random.default_rng(0).normal(110, 6, (height, width)), 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, face: np.ndarray, x: int, y: int, side: int) -> None:
    canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Real-format photos: one small face, a pair (two items), a 96x96 crop, a frame and a crop without a
    face, an unreadable file; a labels CSV and a py-feat AU CSV."""
    synth = load_synthfacs(4, seed=2).images
    root = tmp_path_factory.mktemp("photos")
    small, pair = _canvas(), _canvas()
    _paste(small, synth[0], 300, 120, 110)
    _paste(pair, synth[1], 40, 150, 160)
    _paste(pair, synth[2], 400, 150, 160)
    for name, image in (("small.png", small), ("pair.jpg", pair), ("crop.png", synth[3]), ("blank.png", _canvas()),
                        ("blank_small.png", _canvas(96, 96))):  # fmt: skip
        cv2.imwrite(str(root / name), image)
    (root / "broken.png").write_bytes(b"\x89PNG truncated")
    (root / "labels.csv").write_text("file,emotion,subject,sequence\nsmall.png,happy,s1,a\npair.jpg,sad,s2,b\n"
                                     "crop.png,happy,s3,c\nblank.png,sad,s1,a\nblank_small.png,sad,s4,d\n")  # fmt: skip
    (root / "aus.csv").write_text("input,AU01,AU12\nsmall.png,0.9,0.1\npair.jpg,0.2,0.8\ncrop.png,0.7,0.7\n")
    return root


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


def assert_same_items(eager, streamed: LazyFaceSet) -> None:
    """Every item (pixels, labels, index) and label array of ``streamed`` equals ``eager``'s, in order."""
    assert isinstance(streamed, LazyFaceSet) and len(streamed) == len(eager)
    assert streamed.class_names == eager.class_names and streamed.au_ids == eager.au_ids
    for name in LABEL_ARRAYS:
        a, b = getattr(eager, name), getattr(streamed, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=name)
    for i in range(len(eager)):
        x, y = eager[i], streamed[i]
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], torch.Tensor):  # exact, NaN (AUs not coded) equal to NaN
                assert x[key].dtype == y[key].dtype and np.array_equal(x[key].numpy(), y[key].numpy(), equal_nan=True)
            else:
                assert x[key] == y[key] and type(x[key]) is type(y[key])
    assert np.array_equal(streamed.materialize(progress=False).images, eager.images)
    assert streamed.fingerprint()["labels"] == eager.fingerprint()["labels"]


@pytest.mark.parametrize("mode", ["auto", "haar", "none"])
def test_folder_streams_the_eager_items_in_every_face_crop_mode(photos: Path, tmp_path: Path, mode: str) -> None:
    kwargs = dict(face_crop=mode, au_csv=photos / "aus.csv", progress=False)
    eager, eager_warned = _quiet(load_folder, photos, cache=False, **kwargs)
    streamed, warned = _quiet(load_folder, photos, cache_dir=tmp_path, lazy=True, workers=2 if mode == "auto" else 0,
                              **kwargs)  # fmt: skip
    assert_same_items(eager, streamed)
    if mode != "none":  # the pair gives two items (AUs unknown per face); the blank frame is dropped
        assert {"pair.jpg#face1", "pair.jpg#face2"} <= set(streamed.names.tolist())
        assert "blank.png" not in streamed.names.tolist()
        assert np.isnan(streamed.aus[streamed.names.tolist().index("pair.jpg#face1")]).all()
    for key in ("skipped", "face_crop", "preprocessing", "aus_missing", "source"):
        assert streamed.meta[key] == eager.meta[key], key
    assert face_crop_note(streamed.meta) == face_crop_note(eager.meta)
    assert dict(zip(streamed.names.tolist(), streamed.boxes.tolist())) == eager.meta["boxes"]
    assert sorted(warned) == sorted(eager_warned)  # the same skip accounting, printed the same way
    assert streamed.meta["stream"]["items"] == len(eager) and streamed.meta["stream"]["files"] == 6
    again = load_folder(photos, cache_dir=tmp_path, lazy=True, workers=0, **{**kwargs, "au_csv": None})
    assert again.meta["from_cache"] and np.array_equal(again.digests, streamed.digests)
    assert len(list(tmp_path.glob("face-index-*.npz"))) == 1  # the chunk entries gave way to the whole index


def test_ckplus_streams_the_eager_protocol_items_with_the_reference_detector(tmp_path: Path) -> None:
    sequences = [CKSequence(f"S{100 + i:03d}", "001", label=1 + i % 7, frames=5) for i in range(3)]
    sequences += [CKSequence("S103", "001", label=5, frames=5, no_face_frames=(4,), corrupt_frames=(3,), facs=None),
                  CKSequence("S104", "002", label=None)]  # fmt: skip
    make_ckplus_tree(tmp_path / "ck", sequences)
    for classes in (8, 6):
        eager, eager_warned = _quiet(load_ckplus, tmp_path / "ck", num_classes=classes, cache=False, progress=False)
        streamed, warned = _quiet(load_ckplus, tmp_path / "ck", num_classes=classes, cache_dir=tmp_path / "cache",
                                  lazy=True, workers=0, progress=False)  # fmt: skip
        assert_same_items(eager, streamed)
        assert any("no face found" in s["reason"] for s in streamed.meta["skipped"])
        assert any("unreadable" in s["reason"] for s in streamed.meta["skipped"])
        for key in ("skipped", "boxes", "preprocessing", "unlabelled_sequences", "sequences_without_facs"):
            assert streamed.meta[key] == eager.meta[key], key
        assert streamed.meta["landmarks"].keys() == eager.meta["landmarks"].keys()
        assert all(np.array_equal(streamed.meta["landmarks"][k], v) for k, v in eager.meta["landmarks"].items())
        assert sorted(warned) == sorted(eager_warned)


def test_scan_reads_streamed_data_in_workers_and_equals_the_eager_scan(tmp_path: Path) -> None:
    synth = load_synthfacs(24, seed=5)
    root = write_labelled_folder(tmp_path / "faces", synth)
    eager = load_folder(root, au_csv=root / "aus.csv", face_crop="none", cache=False, progress=False)
    streamed = load_folder(root, au_csv=root / "aus.csv", face_crop="none", cache=False, lazy=True, workers=2,
                           progress=False)  # fmt: skip
    batches = list(MapSource(streamed).batches([(0, 5), (5, 24)]))  # two worker processes cut the crops
    assert torch.equal(torch.cat([b[0] for b in batches]), eager.tensors())
    for (_, extras, rows), (a, z) in zip(batches, [(0, 5), (5, 24)]):
        assert torch.equal(extras["emotion"], torch.from_numpy(eager.emotions[a:z])) and rows.tolist() == list(
            range(a, z)
        )
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 5)).eval()
    a = scan(model, "2", eager, top_n=3, batch_size=5, progress=False)
    b = scan(model, "2", streamed, top_n=3, batch_size=5, progress=False)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.layers["2"].maxima, b.layers["2"].maxima)
    assert torch.equal(a.layers["2"].positions, b.layers["2"].positions)
    assert np.array_equal(np.asarray(a.extras["subject"]), np.asarray(b.extras["subject"]))


def test_index_cache_is_locked_resumable_and_files_changed_later_are_refused(tmp_path: Path) -> None:
    paths = []
    for i in range(40):  # five chunks
        paths.append(tmp_path / "img" / f"{i:02d}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(paths[-1]), np.full((30, 40), 3 * i, np.uint8))
    cache = tmp_path / "cache"
    finder = OneFace(None)
    holder = index_faces(
        paths[:16], finder, size=16, cache_dir=cache, workers=0, progress=False
    )  # chunks 0 and 1 alone
    assert not holder.from_cache
    from filelock import FileLock

    from captum_fau.data.cache import ArrayCache, cache_key, file_fingerprints

    key = cache_key({"size": 16, "interpolation": "area", "finder": finder.cache_token, "index": 1,
                     "files": file_fingerprints([str(p) for p in paths])})  # fmt: skip
    lock = FileLock(str(cache / f".face-index-{key}.lock"))
    lock.acquire()
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(index=index_faces(
        paths, finder, size=16, cache_dir=cache, workers=0, progress=False)))  # fmt: skip
    worker.start()
    time.sleep(0.5)
    assert worker.is_alive() and not ArrayCache(cache, prefix="face-index").path(key).exists()  # it waits
    lock.release()
    worker.join(20)
    index = result["index"]
    assert len(index.owner) == 40 and index.status.tolist() == [0] * 40
    assert index.boxes[0].tolist() == [5, 0, 30, 30]
    again = index_faces(paths, finder, size=16, cache_dir=cache, workers=0, progress=False)
    assert again.from_cache and np.array_equal(again.digests, index.digests)
    ArrayCache(cache, prefix="face-index").path(key).write_bytes(b"PK damaged")  # an interrupted copy
    assert not index_faces(paths, finder, size=16, cache_dir=cache, workers=0, progress=False).from_cache

    faces = load_folder(tmp_path / "img", face_crop="none", size=16, cache=False, lazy=True, workers=0, progress=False)
    before = faces.fingerprint()["hash"]
    cv2.imwrite(str(paths[7]), np.full((30, 40), 200, np.uint8))  # changed after indexing
    with pytest.raises(DatasetError, match="changed or became unreadable since it was indexed"):
        faces[7]
    reloaded = load_folder(
        tmp_path / "img", face_crop="none", size=16, cache=False, lazy=True, workers=0, progress=False
    )
    assert reloaded.fingerprint()["hash"] != before and int(reloaded[7]["index"]) == 7


def test_spec_threshold_cli_options_and_tfd_rows(tmp_path: Path, photos: Path, monkeypatch) -> None:
    monkeypatch.setattr(lazy_module, "STREAM_THRESHOLD", 3)
    streamed, _ = _quiet(load_data_spec, f"folder:{photos}", face_crop="none", cache=False, progress=False, workers=0)
    assert isinstance(streamed, LazyFaceSet) and "threshold" in streamed.meta["stream"]["why"]
    kept, _ = _quiet(load_data_spec, f"folder:{photos}", face_crop="none", cache=False, progress=False, lazy=False)
    assert not isinstance(kept, LazyFaceSet)
    parser = build_parser()
    for command in ("analyze", "topn", "fau-kl", "evaluate"):
        args = parser.parse_args([command, "--model", "m", "--data", "folder:x", "--stream", "--workers", "3",
                                  *(["--out", "o"] if command != "evaluate" else [])])  # fmt: skip
        assert args.stream is True and args.workers == 3, command
    assert parser.parse_args(["topn", "--model", "m", "--data", "d", "--out", "o", "--no-stream"]).stream is False

    plain, packed = tmp_path / "plain" / "TFD_96x96.mat", tmp_path / "packed" / "TFD_96x96.mat"
    for path, compressed in ((plain, False), (packed, True)):
        path.parent.mkdir()
        contents = write_tfd_mat(path, count=30, unlabelled=6)
        if compressed:
            from scipy.io import savemat

            savemat(str(path), contents, do_compression=True)
    assert mapped_images(plain) is not None and mapped_images(packed) is None
    with pytest.raises(DatasetError, match="applies to ckplus: and folder: data"):
        load_data_spec(f"tfd:{plain}", lazy=True)
    for fold in (None, 2):
        a = load_tfd(plain, fold=fold, labelled_only=fold is None)
        b = load_tfd(packed, fold=fold, labelled_only=fold is None)
        assert np.array_equal(a.images, b.images) and a.names.tolist() == b.names.tolist()
        assert a.images.flags.c_contiguous and not isinstance(a.images, np.memmap)
