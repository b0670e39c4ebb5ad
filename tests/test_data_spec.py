"""Dataset specs and `captum-fau data describe`."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from helpers.real_formats import (
    CKSequence,
    fer_pixels,
    make_ckplus_tree,
    write_fer_csv,
    write_png,
    write_tfd_mat,
    draw_face,
)

from captum_fau.cli import main
from captum_fau.data.base import FaceSet
from captum_fau.data.describe import describe_faceset
from captum_fau.data.spec import SPEC_FORMS, load_data_spec, parse_data_spec
from captum_fau.errors import DatasetError, DatasetLayoutError


@pytest.fixture
def fake_synthfacs(monkeypatch):
    calls = []

    def load_synthfacs(n=1308, seed=0, *, size=96, progress=False):
        calls.append((n, seed, size))
        return FaceSet(images=np.zeros((n, size, size), np.uint8), emotions=np.zeros(n, np.int64), name="synthfacs")

    module = types.ModuleType("captum_fau.data.synthfacs")
    module.load_synthfacs = load_synthfacs
    monkeypatch.setitem(sys.modules, "captum_fau.data.synthfacs", module)
    return calls


def test_parse_forms() -> None:
    assert parse_data_spec("synthfacs") == ("synthfacs", "")
    assert parse_data_spec("CKPLUS6:/a:b") == ("ckplus6", "/a:b")
    for bad in ("", "imagenet:/x", "ckplus", "tfd:"):
        with pytest.raises(DatasetError) as info:
            parse_data_spec(bad)
        assert all(form in str(info.value) for form in SPEC_FORMS)


def test_synthfacs_specs(fake_synthfacs) -> None:
    assert len(load_data_spec("synthfacs:12", seed=3)) == 12
    load_data_spec("synthfacs", size=48)
    assert fake_synthfacs == [(12, 3, 96), (1308, 0, 48)]
    with pytest.raises(DatasetError, match="positive integer"):
        load_data_spec("synthfacs:many")


def test_synthfacs_spec_renders() -> None:
    pytest.importorskip("captum_fau.data.synthfacs")
    faces = load_data_spec("synthfacs:16", seed=2, size=48, progress=False)
    assert len(faces) == 16 and faces.images.shape[1:] == (48, 48) and faces.aus is not None


def test_real_dataset_specs(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CAPTUM_FAU_CACHE", str(tmp_path / "cache"))
    make_ckplus_tree(tmp_path / "ck", [CKSequence("S005", "001", label=5), CKSequence("S010", "001", label=2)])
    assert len(load_data_spec(f"ckplus:{tmp_path / 'ck'}", progress=False)) == 8
    six = load_data_spec(f"ckplus6:{tmp_path / 'ck'}", progress=False, size=48)
    assert len(six) == 3 and six.images.shape[1:] == (48, 48)
    write_tfd_mat(tmp_path / "TFD_96x96.mat", count=20, unlabelled=0)
    assert load_data_spec(f"tfd:{tmp_path}#1").folds.shape == (20, 5)
    write_fer_csv(tmp_path / "fer2013.csv", [("3", fer_pixels(0), "Training")])
    assert load_data_spec(f"fer2013:{tmp_path / 'fer2013.csv'}", progress=False).images.shape == (1, 48, 48)
    write_png(tmp_path / "imgs" / "a.png", draw_face())
    (tmp_path / "aus.csv").write_text("input,AU12\na.png,0.9\n")
    folder = load_data_spec(f"folder:{tmp_path / 'imgs'}", au_csv=tmp_path / "aus.csv", progress=False)
    assert folder.aus.tolist() == [[1.0]]
    with pytest.raises(DatasetError, match="au_csv="):
        load_data_spec(f"tfd:{tmp_path}", au_csv=tmp_path / "aus.csv")
    with pytest.raises(DatasetLayoutError):
        load_data_spec(f"ckplus:{tmp_path / 'missing'}")


def test_describe_text() -> None:
    faces = FaceSet(
        images=np.zeros((6, 8, 8), np.uint8),
        class_names=("neutral", "happy"),
        emotions=np.array([0, 1, 1, 1, -1, 0]),
        aus=np.array([[0, 1], [2, 0], [np.nan, np.nan], [1, 1], [0, 0], [0, 0]], np.float32),
        au_ids=("AU6", "AU12"),
        subjects=np.array(["a", "a", "b", "b", "c", "c"]),
        folds=np.array([0, 0, 1, 1, 0, 0]),
        name="toy",
        meta={"skipped": [{"file": "x.png", "reason": "no face found"}]},
    )
    text = describe_faceset(faces)
    assert "toy: 6 images 8x8" in text
    assert "happy" in text and "unlabelled" in text
    assert "AU6: Cheek Raiser" in text and "2 / 5" in text
    assert "fold  0:      4 images, 2 subjects" in text
    assert "subjects: 3" in text and "skipped: 1 (no face found: 1)" in text


def test_describe_command(tmp_path, capsys) -> None:
    write_tfd_mat(tmp_path / "TFD_96x96.mat", count=20, unlabelled=0)
    assert main(["data", "describe", f"tfd:{tmp_path / 'TFD_96x96.mat'}", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "tfd: 20 images 96x96" in out and "split 4: train" in out and "anger" in out
    assert main(["data", "describe", "nonsense:/x"]) == 2
    assert "Accepted forms" in capsys.readouterr().err
