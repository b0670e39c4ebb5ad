"""The silent cases of the robustness review: each answer is either right or says why it cannot be.

Phone photos are read upright (EXIF orientation), a Hub folder's ``preprocessor_config.json`` wins over
timm's defaults, random timm weights are announced, a rerun with another AU table leaves no stale labels,
the localisation wording follows the energy share, constant AU columns are named and never listed as
associations, and the checks that used to come after the scan come before it.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from captum_fau.errors import AttributionError

ZOO_MODEL = "zerobias-synthfacs-8class"


# --- EXIF orientation -----------------------------------------------------------------------------------------


def _exif_block(orientation: int) -> bytes:
    """A big-endian TIFF block with one IFD entry: Orientation (0x0112, SHORT) = ``orientation``."""
    return (
        b"MM\x00\x2a"
        + struct.pack(">I", 8)
        + struct.pack(">H", 1)
        + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
        + b"\x00" * 4
    )


def _jpeg_with_orientation(image: np.ndarray, orientation: int) -> bytes:
    """``image`` as a JPEG whose APP1 segment carries the EXIF orientation tag (as a phone writes it)."""
    plain = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    payload = b"Exif\x00\x00" + _exif_block(orientation)
    return plain[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + plain[2:]


def _png_with_orientation(image: np.ndarray, orientation: int) -> bytes:
    """``image`` as a PNG with an ``eXIf`` chunk before the image data."""
    plain = cv2.imencode(".png", image)[1].tobytes()
    body = _exif_block(orientation)
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    at = plain.index(b"IDAT") - 4
    return plain[:at] + chunk + plain[at:]


def _portrait() -> np.ndarray:
    """A colour picture with a different corner everywhere: any wrong turn or flip changes it."""
    yy, xx = np.mgrid[0:60, 0:80]
    return np.dstack([(xx * 3) % 256, (yy * 4) % 256, (xx + 2 * yy) % 256]).astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_opencv_colour_mode_does(tmp_path: Path, orientation: int) -> None:
    from captum_fau.data.faces import read_gray

    path = tmp_path / "phone.jpg"
    path.write_bytes(_jpeg_with_orientation(_portrait(), orientation))
    # cv2's colour mode applies the tag; IMREAD_UNCHANGED (which read_gray needs for 16-bit and alpha) does not
    upright = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
    got = read_gray(path)
    assert got is not None and got.shape == upright.shape
    np.testing.assert_array_equal(got, upright)
    if orientation in (5, 6, 7, 8):
        assert got.shape == (80, 60)


def test_png_exif_orientation_and_untagged_files(tmp_path: Path) -> None:
    from captum_fau.data.exif import exif_orientation
    from captum_fau.data.faces import read_gray

    gray = cv2.cvtColor(_portrait(), cv2.COLOR_BGR2GRAY)
    (tmp_path / "turned.png").write_bytes(_png_with_orientation(gray, 6))
    np.testing.assert_array_equal(read_gray(tmp_path / "turned.png"), np.rot90(gray, -1))
    cv2.imwrite(str(tmp_path / "plain.png"), gray)
    np.testing.assert_array_equal(read_gray(tmp_path / "plain.png"), gray)
    assert exif_orientation(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00") == 1 and exif_orientation(b"") == 1


def test_folder_loaders_read_phone_photos_upright(tmp_path: Path) -> None:
    """The in-memory and the streamed folder path both crop the upright image; the cache key changed with it."""
    from captum_fau.data.cache import CACHE_FORMAT_VERSION
    from captum_fau.data.folder import load_folder

    face = np.zeros((96, 96, 3), np.uint8)
    face[:48] = 255  # a horizontal edge as stored; the tag turns it 90 degrees clockwise: a vertical edge
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "phone.jpg").write_bytes(_jpeg_with_orientation(face, 6))
    for lazy in (False, True):
        faces = load_folder(tmp_path / "imgs", face_crop="none", lazy=lazy, cache_dir=tmp_path / "cache",
                            progress=False, workers=0)  # fmt: skip
        image = faces[0]["image"][0].numpy()  # preprocessed (local mean subtracted): only the edge shows
        across, down = np.abs(np.diff(image, axis=1)).sum(), np.abs(np.diff(image, axis=0)).sum()
        assert across > 3 * down, f"lazy={lazy}: the edge is not vertical, the photo was not turned upright"
    assert CACHE_FORMAT_VERSION >= 2  # crops cached before orientation was applied are not reused


# --- model inputs and weights -------------------------------------------------------------------------------


def test_hub_folder_preprocessor_config_wins_over_timm_defaults(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    from captum_fau.inputs.sources import declared_input_spec
    from captum_fau.zoo.resolve import load_model_spec

    folder = tmp_path / "my-fer-model"
    folder.mkdir()
    model = timm.create_model("resnet18", num_classes=7)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"architecture": "resnet18", "num_classes": 7}))
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"size": {"height": 112, "width": 112}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    )
    spec = declared_input_spec(load_model_spec(str(folder)))
    assert spec.size == (112, 112) and spec.mean == (0.5, 0.5, 0.5)
    assert spec.sources["size"] == "preprocessor_config.json" and spec.sources["mean"] == "preprocessor_config.json"
    assert "from preprocessor_config.json" in spec.describe()


def test_timm_without_checkpoint_is_announced_as_random(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from captum_fau import preflight
    from captum_fau.analysis_config import AnalysisConfig
    from captum_fau.zoo.resolve import load_model_spec

    load_model_spec("timm:resnet18")
    assert "random weights" in capsys.readouterr().err
    config = AnalysisConfig(layer="layer1", out=tmp_path / "out", progress=False)
    ready = preflight.prepare("timm:resnet18", "synthfacs:24", config, torch.device("cpu"), progress=False)
    assert any("timm:resnet18 has random weights" in note and "--checkpoint" in note for note in ready.notes)


# --- checks before the first batch -------------------------------------------------------------------------


def test_relu_rule_on_gelu_model_is_refused_before_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from captum_fau.analyze import analyze

    scan_module = importlib.import_module("captum_fau.stats.scan")

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("the scan ran before the rule was checked")

    monkeypatch.setattr(scan_module, "scan", no_scan)
    with pytest.raises(AttributionError, match="relu_like=True"):
        analyze("timm:convnext_atto", "synthfacs:24", out=tmp_path / "out", layer="stages.1", rule="guided",
                progress=False)  # fmt: skip


def test_workers_are_bounded_by_the_cores_with_a_note() -> None:
    from captum_fau._utils.notes import routed
    from captum_fau.data.lazy import check_workers, usable_cores

    said: list[str] = []
    with routed(said.append):
        assert check_workers(10_000) == usable_cores()
        assert check_workers(1) == 1
    assert len(said) == 1 and "workers=10000 (--workers)" in said[0] and f"{usable_cores()} usable" in said[0]


def test_layer_suggestions_list_only_feature_maps() -> None:
    import timm

    from captum_fau import zoo
    from captum_fau._utils.modules import conv_like_layers

    assert conv_like_layers(zoo.load(ZOO_MODEL)) == ["conv1", "conv2", "conv3"]  # no ReLUs, pools, fc4's ReLU
    assert conv_like_layers(timm.create_model("vit_tiny_patch16_224")) == ["patch_embed.proj"]  # no token layers
    resnet = conv_like_layers(timm.create_model("resnet18"))
    assert resnet[:5] == ["conv1", "layer1", "layer2", "layer3", "layer4"]
    assert not {"act1", "bn1", "maxpool", "global_pool", "fc"} & set(resnet)


# --- labels, reruns and wording -----------------------------------------------------------------------------


def test_rerun_with_another_au_table_leaves_no_stale_labels(tmp_path: Path) -> None:
    from captum_fau.analyze import analyze
    from helpers.real_formats import draw_face, write_png

    for i in range(24):
        write_png(tmp_path / "imgs" / f"f{i}.png", draw_face(shift=i % 7))
    rows = "".join(f"f{i}.png,{i % 2},{i % 3 == 0:d}\n" for i in range(24))
    (tmp_path / "a.csv").write_text("input,AU01,AU12\n" + rows)
    (tmp_path / "b.csv").write_text("input,AU04\n" + "".join(f"f{i}.png,{i % 4 == 0:d}\n" for i in range(24)))
    options = {"out": tmp_path / "out", "face_crop": "none", "permutations": 0, "n": 2, "sanity_check": False,
               "progress": False, "cache": False, "topn_budget_mb": 1}  # fmt: skip
    data = f"folder:{tmp_path / 'imgs'}"
    analyze(ZOO_MODEL, data, au_csv=tmp_path / "a.csv", **options)
    with np.load(tmp_path / "out" / "maxima.npz") as z:
        assert z["label_aus"].shape == (24, 2)
    result = analyze(ZOO_MODEL, data, au_csv=tmp_path / "b.csv", **options)
    with np.load(tmp_path / "out" / "maxima.npz") as z:
        assert z["label_aus"].shape == (24, 1)
    assert result.faukl is not None and result.faukl.au_ids == ("AU4",)
    analyze(ZOO_MODEL, data, **options)
    with np.load(tmp_path / "out" / "maxima.npz") as z:
        assert "label_aus" not in z.files


def test_localisation_wording_follows_the_energy_share() -> None:
    from captum_fau.viz.filter_browser import AGREE_MIN_SHARE, _stats_html, localisation_verdict

    weak = localisation_verdict({"agree": True, "share": 0.08, "region_au": "AU12"})
    assert "agrees" not in weak and "8%" in weak and f"{AGREE_MIN_SHARE:.0%}" in weak
    strong = localisation_verdict({"agree": True, "share": 0.6, "region_au": "AU12"})
    assert strong.startswith("agrees with the chosen AU") and "60%" in strong
    assert localisation_verdict({"agree": False, "share": 0.4, "region_au": "AU4"}).startswith("differs")
    row = {"au": "AU12", "name": "Lip Corner Puller", "rule": "auroc", "kl": 0.1, "kl_corrected": 0.0, "kl_z": 0.0,
           "p_kl": 0.5, "q_kl": 1.0, "auroc": 0.6, "auroc_ci_low": 0.5, "auroc_ci_high": 0.7, "p_auroc": 0.4,
           "q_auroc": 1.0}  # fmt: skip
    page = _stats_html(row, {"agree": True, "share": 0.08, "region_au": "AU12"})
    assert "agrees" not in page and "only 8%" in page


def test_constant_au_columns_are_named_and_never_listed(tmp_path: Path) -> None:
    """A py-feat table with AU1 in every image and AU2 in none: read as such, not tested, named in the notes."""
    from captum_fau import zoo
    from captum_fau.concept import FAUKL
    from captum_fau.data.folder import read_au_csv

    rng = np.random.default_rng(0)
    present = rng.random(60) < 0.5
    (tmp_path / "pyfeat.csv").write_text(
        "input,AU01,AU02,AU12\n" + "".join(f"f{i}.png,0.93,0.04,{0.8 if p else 0.2}\n" for i, p in enumerate(present))
    )
    table = read_au_csv(tmp_path / "pyfeat.csv")
    assert table.au_ids == ("AU1", "AU2", "AU12")
    assert (table.values[:, 0] == 1).all() and (table.values[:, 1] == 0).all()
    maxima = rng.random((60, 8)) + present[:, None] * np.arange(8) * 0.3
    fau = FAUKL(zoo.load(ZOO_MODEL), "conv3", n_permutations=20, n_bootstrap=0, progress=False)
    result = fau.interpret_activations({"conv3": maxima}, table.values, au_ids=table.au_ids)
    assert {result.top_au(f) for f in range(8)} <= {"AU12", None}
    notes = " ".join(result.stats().notes)
    assert "AU1 (Inner Brow Raiser) is not tested" in notes and "AU2 (Outer Brow Raiser) is not tested" in notes
    assert "AU column" not in notes
