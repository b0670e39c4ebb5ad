"""analyze on streamed folder data (a LazyFaceSet read in worker processes) equals analyze on the FaceSet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from helpers.real_formats import write_labelled_folder

from captum_fau import ZeroBiasCNN
from captum_fau.analyze import analyze
from captum_fau.data.folder import load_folder
from captum_fau.data.synthfacs import load_synthfacs


def test_scan_and_analyze_on_streamed_data_equal_the_eager_results(tmp_path: Path) -> None:
    synth = load_synthfacs(24, seed=5)
    root = write_labelled_folder(tmp_path / "faces", synth)
    eager = load_folder(root, au_csv=root / "aus.csv", face_crop="none", cache=False, progress=False)
    streamed = load_folder(root, au_csv=root / "aus.csv", face_crop="none", cache=False, lazy=True, workers=2,
                           progress=False)  # fmt: skip
    torch.manual_seed(0)
    model = ZeroBiasCNN(num_classes=8).eval()
    fast = dict(layer="conv1", n=2, permutations=20, bootstrap=0, progress=False, n_featured=4,
                class_names=synth.class_names)  # fmt: skip
    a = analyze(model, eager, out=tmp_path / "eager", **fast)
    b = analyze(model, streamed, out=tmp_path / "streamed", **fast)
    assert torch.equal(a.topn.indices, b.topn.indices) and torch.equal(a.topn.values, b.topn.values)
    assert torch.equal(a.topn.patches, b.topn.patches)
    assert np.array_equal(a.faukl.layers["conv1"].kl, b.faukl.layers["conv1"].kl, equal_nan=True)
    assert np.array_equal(a.faukl.layers["conv1"].p, b.faukl.layers["conv1"].p, equal_nan=True)
    assert a.accuracy == b.accuracy and a.featured == b.featured
    assert [n for n in b.notes if not n.startswith("Streamed")] == a.notes
    assert any(n.startswith("Streamed data: 24 face items cut from 24 files") for n in b.notes)
    written = [(tmp_path / name / "results.json").read_text() for name in ("eager", "streamed")]
    assert all("Face crop (none): 24 faces from 24 images" in text for text in written)  # skip accounting reaches both
    assert "Streamed data: 24 face items" in written[1] and "Streamed data" not in written[0]
