"""The main job: analyze / demo on SynthFACS, other models (timm, module:factory), resume, bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from captum_fau import ZeroBiasCNN
from captum_fau.analyze import analyze
from captum_fau.cli import main
from captum_fau.errors import LayerError, OutputError, UnknownModelError

FAST = dict(n=3, permutations=50, bootstrap=10, progress=False, n_featured=4, sanity_check=False)


@pytest.fixture(scope="module")
def faces(synthfacs):
    return synthfacs(48, seed=3)


@pytest.fixture(scope="module")
def model(zerobias) -> ZeroBiasCNN:
    return zerobias(num_classes=8, seed=0)


def test_analyze_writes_the_full_report(tmp_path: Path, faces, model) -> None:
    result = analyze(
        model, faces, layer="conv2", out=tmp_path, class_names=faces.class_names, **{**FAST, "sanity_check": True}
    )  # the default: on
    for name in (
        "sanity.json",
        "index.html",
        "results.json",
        "topn.safetensors",
        "topn.json",
        "fau_kl.csv",
        "fau_kl.safetensors",
        "topn_grid.png",
        "kl_bars.png",
        "au_heatmap.png",
        "confusion.png",
        "maxima.npz",
        "analysis.json",
    ):
        assert (tmp_path / name).is_file(), name
    assert result.topn.indices.shape == (128, 3)
    assert result.faukl.kl.shape == (128, len(faces.au_ids))
    assert result.accuracy is not None and result.accuracy["n"] == 48
    assert np.asarray(result.accuracy["confusion"]).sum() == 48
    assert result.localisation is not None and result.report == tmp_path / "index.html"
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["featured_filters"] == result.featured and len(result.featured) == 4
    html = (tmp_path / "index.html").read_text()
    assert "paper Table 4" in html and 'src="topn_grid.png"' in html and 'loading="lazy"' in html
    assert all(f'id="filter-{k}"' in html for k in range(128))
    assert "Sanity check: reconstructions with randomised weights" in html
    assert results["sanity_check"] and (tmp_path / "sanity.json").is_file()
    # the one scan gave both analyses: the FAU-KL maxima are the scan's maxima
    with np.load(tmp_path / "maxima.npz") as z:
        assert z["maxima"].shape == (48, 128)


def test_rerun_reuses_finished_steps(tmp_path: Path, faces, model, monkeypatch) -> None:
    analyze(model, faces, layer="conv2", out=tmp_path, **FAST)
    import importlib

    scan_module = importlib.import_module("captum_fau.stats.scan")

    def no_scan(*args, **kwargs):
        raise AssertionError("the scan should have been reused")

    monkeypatch.setattr(scan_module, "scan", no_scan)
    again = analyze(model, faces, layer="conv2", out=tmp_path, **FAST)
    assert again.timings["scan"] < 1.0 and again.faukl is not None
    # different parameters: the scan runs again (and meets the monkeypatched function)
    with pytest.raises(AssertionError, match="reused"):
        analyze(model, faces, layer="conv2", out=tmp_path, **{**FAST, "n": 2})


def test_data_without_au_labels_skips_fau_kl(tmp_path: Path, faces, model) -> None:
    plain = faces.subset(np.arange(20))
    plain.aus, plain.au_ids = None, ()
    result = analyze(model, plain, layer="conv2", out=tmp_path, **FAST)
    assert result.faukl is None and any("FAU-KL skipped" in note for note in result.notes)
    assert "FAU-KL skipped" in (tmp_path / "index.html").read_text()


def test_timm_model_fed_through_its_pretrained_cfg(tmp_path: Path, faces) -> None:
    pytest.importorskip("timm")
    faces16 = faces.subset(np.arange(24))
    result = analyze("timm:resnet18", faces16, layer="layer1", out=tmp_path, **{**FAST, "n": 2})
    assert any("repeated to 3 channels" in note for note in result.notes)
    assert any("centre-cropped to 224x224" in note for note in result.notes)
    assert any("mean 0.485,0.456,0.406" in note and "from timm pretrained_cfg" in note for note in result.notes)
    assert result.accuracy is None  # 1000 ImageNet outputs vs 8 expression classes
    assert result.topn.indices.shape == (64, 2)


def test_module_factory_model(tmp_path: Path, faces) -> None:
    source = tmp_path / "expr_model.py"
    source.write_text(
        textwrap.dedent("""
        import torch
        from torch import nn
        import torch.nn.functional as F

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(1, 8, 5, padding=2)
                self.head = nn.Linear(8, 8)
            def forward(self, x):
                x = F.relu(self.conv(x))
                return self.head(x.amax(dim=(2, 3)))

        def build():
            torch.manual_seed(0)
            return Net()
    """)
    )
    result = analyze(f"{source}:build", faces, layer="conv", out=tmp_path / "out", **FAST)
    assert result.faukl.kl.shape == (8, len(faces.au_ids))
    # a plain module declares no class names: accuracy is skipped with a note, never computed by index
    assert result.accuracy is None and any("declares no class names" in note for note in result.notes)
    named = analyze(f"{source}:build", faces, layer="conv", out=tmp_path / "named", class_names=",".join(faces.class_names),
                    **FAST)  # fmt: skip
    assert named.accuracy is not None and named.accuracy["mapping"]["model_classes"] == list(faces.class_names)


def test_bad_input(tmp_path: Path, faces, model) -> None:
    with pytest.raises(LayerError, match="conv1"):
        analyze(model, faces, layer="conv9", out=tmp_path, **FAST)
    with pytest.raises(UnknownModelError):
        analyze("no-such-model", faces, out=tmp_path, **FAST)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="writable"):
        analyze(model, faces, out=blocker / "sub", **FAST)


def test_cli_analyze_exit_codes(tmp_path: Path, capsys) -> None:
    code = main(["analyze", "--model", "nowhere_xyz:build", "--data", "synthfacs:8", "--out", str(tmp_path), "-q"])
    assert code == 2 and "Cannot import module" in capsys.readouterr().err
    code = main(
        ["analyze", "--model", "zerobias-synthfacs-8class", "--data", "mystery:1", "--out", str(tmp_path), "-q"]
    )
    assert code == 2 and "synthfacs" in capsys.readouterr().err


def test_unknown_device_is_bad_input(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "analyze",
            "--model",
            "zerobias-synthfacs-8class",
            "--data",
            "synthfacs:8",
            "--out",
            str(tmp_path),
            "--device",
            "gpu0",
            "-q",
        ]
    )
    assert code == 2 and "Unknown device" in capsys.readouterr().err
