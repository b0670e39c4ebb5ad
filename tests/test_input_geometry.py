"""Models at their own input size (issue 29): AU region masks, reconstruction windows and reconstructions
share the model's input frame at 48 px (gray, [-1, 1]), 96 px and 224 px (a timm RGB model, centre crop)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captum_fau.probe_steps import masks_fn as _masks_fn
from captum_fau.concept.localisation import localisation_agreement, region_stats
from captum_fau.errors import ConfigError
from captum_fau.inputs.model_inputs import map_masks
from captum_fau.inputs.spec import InputSpec
from captum_fau.synthfacs import SYNTHFACS_AUS, SynthFACS, region_masks, render, render_with_aus

GRAY_48 = InputSpec(size=48, pixel_range=(-1, 1))


def _timm_spec() -> InputSpec:
    timm = pytest.importorskip("timm")
    from captum_fau.inputs.sources import declared_input_spec

    spec = declared_input_spec(timm.create_model("resnet18", pretrained=False, num_classes=7))
    assert spec is not None and spec.size == (224, 224) and spec.channels == 3 and spec.crop_pct < 1
    return spec


@pytest.mark.parametrize(
    "spec", [GRAY_48, InputSpec(size=(64, 80)), InputSpec(size=224, crop_pct=0.875)], ids=["48", "64x80", "224-crop"]
)
def test_masks_follow_the_images_through_resize_and_crop(spec):
    masks = np.zeros((1, 1, 96, 96), bool)
    masks[0, 0, 60:80, 30:70] = True  # a mouth-sized block
    image = torch.from_numpy(masks[:, :1].astype(np.float32))
    seen = InputSpec(size=spec.size, crop_pct=spec.crop_pct, interpolation=spec.interpolation).apply(image)[0, 0]
    mapped = map_masks(spec, masks)[0, 0]
    assert mapped.shape == tuple(seen.shape) == spec.size
    np.testing.assert_array_equal(mapped, seen.numpy() >= 0.5)  # the images' own transform, thresholded
    ys, xs = np.nonzero(mapped)
    h, w = spec.size
    s = 1 / spec.crop_pct
    centre = lambda c, side: (c / 96 * side * s - (side * s - side) / 2) / side  # noqa: E731
    assert abs(ys.mean() / h - centre(70, h)) < 0.03 and abs(xs.mean() / w - centre(50, w)) < 0.03


@pytest.mark.parametrize("style", ["cartoon", "photo"])
def test_masks_fn_renders_the_style_in_the_model_frame(style):
    faces = SynthFACS(n=12, seed=3, style=style)
    spec = GRAY_48
    masks_for = _masks_fn(faces, spec)
    assert masks_for is not None
    got = masks_for(np.array([2, 5]))
    raw = region_masks(3, [2, 5], style=style)
    assert got.shape == (2, len(SYNTHFACS_AUS), 48, 48)
    np.testing.assert_array_equal(got, map_masks(spec, raw))
    if style == "photo":
        assert not np.array_equal(raw, region_masks(3, [2, 5]))  # the photo masks are the photo face's own


def _planted_mouth(spec: InputSpec, au: str = "AU25", n_top: int = 6) -> tuple[SynthFACS, dict]:
    """A filter planted on a mouth AU: its reconstructions are the AU's own drawing as the model sees it."""
    faces = SynthFACS(n=80, seed=5)
    k = SYNTHFACS_AUS.index(au)
    batch = render(80, seed=5)
    rows = np.flatnonzero(batch.aus[:, k] > 0)[:n_top]
    assert len(rows) == n_top
    side = spec.size[0]
    window = int(round(32 * side / 96))
    patches = torch.zeros(1, n_top, spec.channels, window, window)
    boxes = torch.zeros(1, n_top, 4, dtype=torch.int64)
    for n, i in enumerate(rows):
        vec = batch.aus[i].astype(np.float32)
        image, _ = render_with_aus(5, int(i), vec)
        vec[k] = 0
        without, _ = render_with_aus(5, int(i), vec)
        pair = torch.from_numpy(np.stack([image, without])[:, None].astype(np.float32) / 255.0)
        seen = spec.apply(pair)
        drawing = (seen[0] - seen[1]).pow(2).sum(0)
        cy, cx = np.unravel_index(int(drawing.argmax()), drawing.shape)
        y0, x0 = (int(np.clip(c - window // 2, 0, side - window)) for c in (cy, cx))
        patches[0, n] = (seen[0] - seen[1])[:, y0 : y0 + window, x0 : x0 + window]
        boxes[0, n] = torch.tensor([y0, x0, y0 + window, x0 + window])
    return faces, {"patches": patches, "boxes": boxes, "indices": torch.from_numpy(rows)[None]}


@pytest.mark.parametrize("which", ["48-gray", "224-timm"])
def test_a_planted_mouth_filter_is_localised_to_the_mouth(which):
    spec = GRAY_48 if which == "48-gray" else _timm_spec()
    faces, planted = _planted_mouth(spec)
    regions = region_stats(planted["patches"], planted["boxes"], planted["indices"], _masks_fn(faces, spec))
    out = localisation_agreement(regions, ["AU25"], faces.au_ids, [0])
    assert out["per_filter"][0]["region_au"] == "AU25" and out["rate"] == 1.0
    assert out["per_filter"][0]["share"] > 0.5
    unmapped = _masks_fn(faces)  # the masks at the rendered 96 px: not the model's frame
    if which == "224-timm":
        with pytest.raises(ConfigError, match="model's input frame"):
            region_stats(planted["patches"], planted["boxes"], planted["indices"], unmapped)
    else:
        wrong = region_stats(planted["patches"], planted["boxes"], planted["indices"], unmapped)
        assert localisation_agreement(wrong, ["AU25"], faces.au_ids, [0])["rate"] != 1.0


@pytest.mark.slow
def test_localisation_recovery_is_the_same_at_48_96_224():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "scripts/bench_localisation_sizes.py", "--quick", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["spread"] <= 0.05, report
    assert min(r["nested"] for r in report["recovery"].values()) > 0.8


# ---------------------------------------------------------------- item 6: windows as the model saw them
def _gray_faces(n: int = 4) -> torch.Tensor:
    return torch.from_numpy(render(n, seed=2).images[:, None].astype(np.float32) / 255.0)


def test_gray_faces_in_a_timm_rgb_model_windows_stay_gray(tmp_path):
    timm = pytest.importorskip("timm")
    from captum_fau.attr import TopNDeconv
    from captum_fau.attr.topn_result import TopNResult
    from captum_fau.data.base import FaceSet
    from captum_fau.inputs.model_inputs import ModelInputs
    from captum_fau.inputs.sources import declared_input_spec
    from captum_fau.viz.filter_browser import write_strips

    model = timm.create_model("resnet18", pretrained=False, num_classes=7).eval()
    spec = declared_input_spec(model)
    raw = _gray_faces(3)
    faces = FaceSet(
        images=(raw[:, 0].numpy() * 255).round().astype(np.uint8), class_names=("a",), emotions=np.zeros(3, np.int64)
    )
    result = TopNDeconv(model, "layer1", rule="guided").top_n(
        ModelInputs(faces, spec), n=2, filters=[0, 1], progress=False
    )
    windows = result.image_patches
    assert windows.shape[2] == 3
    assert float((windows[:, :, 2] - windows[:, :, 0]).abs().mean()) > 0.1  # normalised: blue above red
    shown = result.display_windows()
    assert shown is not None and float(shown.min()) >= 0 and float(shown.max()) <= 1
    assert float((shown[:, :, 2] - shown[:, :, 0]).abs().max()) < 1e-5  # gray again: R = G = B
    seen = spec.apply(raw)  # the window equals the model input, de-normalised
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    y0, x0, y1, x1 = result.boxes[0, 0].tolist()
    expect = (seen[int(result.indices[0, 0])] * std[0] + mean[0])[:, y0:y1, x0:x1].clamp(0, 1)
    torch.testing.assert_close(shown[0, 0], expect, atol=1e-5, rtol=0)
    result.save(tmp_path, compact=True)
    again = TopNResult.load(tmp_path)
    strips = write_strips(tmp_path, again)
    import cv2

    strip = cv2.imread(str(tmp_path / strips[0][0]))
    bottom = strip[strip.shape[0] // 2 + 4 :].astype(int)
    assert np.abs(bottom[..., 0] - bottom[..., 2]).max() <= 2  # no tint in the filter browser either


def test_a_48_px_model_in_minus_one_to_one_shows_its_windows_in_the_unit_range():
    from torch import nn

    from captum_fau.attr import TopNDeconv
    from captum_fau.data.base import FaceSet
    from captum_fau.inputs.model_inputs import ModelInputs

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
    ).eval()
    raw = _gray_faces(3)
    faces = FaceSet(
        images=(raw[:, 0].numpy() * 255).round().astype(np.uint8), class_names=("a",), emotions=np.zeros(3, np.int64)
    )
    result = TopNDeconv(model, "3", rule="guided").top_n(ModelInputs(faces, GRAY_48), n=2, progress=False)
    assert float(result.image_patches.min()) < 0  # the model's own [-1, 1]
    shown = result.display_windows()
    resized = InputSpec(size=48).apply(raw)
    y0, x0, y1, x1 = result.boxes[0, 0].tolist()
    torch.testing.assert_close(shown[0, 0], resized[int(result.indices[0, 0])][:, y0:y1, x0:x1], atol=1e-5, rtol=0)


# ---------------------------------------------------------------- item 3: guessed input fields are named
def _fully_convolutional() -> torch.nn.Module:
    """A 64x64 [-1, 1] network that runs at any size: nothing in it says 64 or [-1, 1]."""
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 8),
    ).eval()


def test_a_fully_convolutional_model_without_flags_names_every_guessed_field(tmp_path, synthfacs):
    import json

    from captum_fau.analyze import analyze

    faces = synthfacs(48, seed=3)
    result = analyze(
        _fully_convolutional(),
        faces,
        layer="3",
        out=tmp_path,
        n=2,
        permutations=50,
        bootstrap=10,
        progress=False,
        n_featured=2,
        sanity_check=False,
        class_names=faces.class_names,
    )
    note = next(n for n in result.notes if n.startswith("UNVERIFIED input"))
    for text in (
        "size 96x96 (probe)",
        "mean 0 (default)",
        "std 1 (default)",
        "pixel range 0-1 (default)",
        "--input-size",
        "--mean",
        "--std",
        "--pixel-range",
        "input_spec={'size': ...",
    ):
        assert text in note, (text, note)
    assert "channels" not in note  # the first convolution's weights declare 1 channel
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["params"]["input_unverified"]) == {"size", "pixel_range", "mean", "std"}
    assert saved["params"]["input_unverified"]["size"]["flag"] == "--input-size"
    assert any(n.startswith("UNVERIFIED input") for n in saved["notes"])
    page = (tmp_path / "index.html").read_text()
    assert "Unverified input" in page and "size 96x96 (probe)" in page


@pytest.mark.parametrize("which", ["64-fcn-given", "48-gray-given", "224-timm"])
def test_declared_or_given_fields_are_not_called_unverified(which, synthfacs):
    from captum_fau.inputs.resolve import model_inputs

    faces = synthfacs(48, seed=3).subset(np.arange(4))
    if which == "224-timm":
        timm = pytest.importorskip("timm")
        model, explicit = timm.create_model("resnet18", pretrained=False, num_classes=8).eval(), None
    elif which == "64-fcn-given":
        model = _fully_convolutional()
        explicit = {"size": 64, "channels": 1, "pixel_range": (-1, 1), "mean": 0, "std": 1}
    else:
        from captum_fau import ZeroBiasCNN

        model = ZeroBiasCNN(img_size=48, num_classes=8)  # its config declares 48 px
        explicit = {"pixel_range": (-1, 1), "mean": 0, "std": 1, "local_mean": 0}
    _, spec, notes = model_inputs(model, faces, explicit)
    assert not any("UNVERIFIED" in n for n in notes), notes
    _, _, partial = model_inputs(_fully_convolutional(), faces, {"size": 64})
    guessed = next(n for n in partial if n.startswith("UNVERIFIED"))
    assert "--input-size" not in guessed and "size 64" not in guessed and "mean 0 (default)" in guessed


def test_channels_taken_from_the_data_are_unverified_too():
    from captum_fau.inputs.fields import unverified_fields, unverified_note

    spec = InputSpec.resolve(None, None, data_shape=(3, 64, 64))
    assert spec.sources["channels"] == "data"
    out = unverified_fields(spec.to_dict(), spec.sources)
    assert out["channels"] == {
        "value": "3",
        "source": "the data's",
        "flag": "--channels",
        "python": "input_spec={'channels': ...}",
    }
    assert "channels 3 (the data's)" in unverified_note(out) and "--channels" in unverified_note(out)


# ---------------------------------------------------------------- item 4: --relu-like said wherever the rule is
def _gelu_fcn() -> torch.nn.Module:
    from torch import nn

    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.GELU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 8),
    ).eval()


def test_relu_like_is_said_in_notes_report_results_and_browser(tmp_path, synthfacs):
    import json

    from captum_fau.analyze import analyze

    faces = synthfacs(48, seed=3)
    result = analyze(
        _gelu_fcn(),
        faces,
        layer="3",
        out=tmp_path,
        n=2,
        permutations=50,
        bootstrap=10,
        progress=False,
        n_featured=2,
        sanity_check=False,
        class_names=faces.class_names,
        relu_like=True,
        input_spec={"size": 64, "pixel_range": (-1, 1)},
    )
    assert result.topn.relu_like and "as if ReLUs" in result.topn.rule_label
    warning = next(n for n in result.notes if n.startswith("WARNING: With relu_like=True"))
    assert "as if they were ReLUs" in warning and "GELU" in warning and "rule='gradient'" in warning
    from captum_fau.cli._say import speak

    assert "With --relu-like the guided" in speak(warning) and "--rule gradient" in speak(warning)
    saved = json.loads((tmp_path / "results.json").read_text())
    status = next(v for v in saved.values() if isinstance(v, dict) and "rule_label" in v)
    assert status["relu_like"] is True and "as if ReLUs" in status["rule_label"] and "GELU" in status["rule_caveat"]
    page = (tmp_path / "index.html").read_text()
    assert page.count("as if ReLUs") >= 3  # the layer line, the top-N text, every browser caption
    assert (
        "guided backpropagation applied to non-ReLU activations as if ReLUs (--relu-like / relu_like=True) rule" in page
    )


def test_relu_like_on_a_48_px_tanh_model_names_itself_in_the_figure_title():
    from torch import nn

    from captum_fau.attr import TopNDeconv

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()).eval()
    images = GRAY_48.apply(_gray_faces(3))
    guided = TopNDeconv(model, "2", rule="deconv", relu_like=True).top_n(images, n=2, progress=False)
    assert guided.rule_caveat is not None and "Tanh" in guided.rule_caveat and "deconvnet" in guided.rule_caveat
    fig = guided.plot(show="both")
    assert "as if ReLUs" in fig._suptitle.get_text()
    plain = TopNDeconv(nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU()).eval(), "1", rule="guided")
    result = plain.top_n(images, n=2, progress=False)
    assert not result.relu_like and result.rule_caveat is None and result.rule_label == "guided backpropagation"


def test_relu_like_on_a_relu_only_model_is_not_claimed():
    from torch import nn

    from captum_fau.attr import TopNDeconv

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU()).eval()
    with pytest.warns(UserWarning, match="changes nothing"):
        result = TopNDeconv(model, "1", rule="guided", relu_like=True).top_n(
            GRAY_48.apply(_gray_faces(2)), n=1, progress=False
        )
    assert not result.relu_like and result.rule_caveat is None


# ---------------------------------------------------------------- item 2: folder faces cut at the model's side
def _config(tmp_path, root, **kw):
    from captum_fau.analysis_config import AnalysisConfig

    return AnalysisConfig(
        layer=kw.pop("layer", "layer1"),
        out=tmp_path / "out",
        face_crop="none",
        cache=False,
        progress=False,
        class_names=kw.pop("class_names", None),
        n=2,
        **kw,
    )


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from helpers.real_formats import write_labelled_folder

    from captum_fau.synthfacs import load_synthfacs

    faces = load_synthfacs(6, seed=4, size=256)  # photos with more detail than 96 px
    return write_labelled_folder(tmp_path_factory.mktemp("big") / "faces", faces), faces


@pytest.mark.parametrize("stream", [False, True], ids=["eager", "streamed"])
def test_folder_faces_for_a_224_model_are_cut_at_its_side(tmp_path, big_folder, stream):
    timm = pytest.importorskip("timm")
    from captum_fau.inputs.model_inputs import raw_shape
    from captum_fau.preflight import prepare

    root, source = big_folder
    model = timm.create_model("resnet18", pretrained=False, num_classes=8).eval()
    config = _config(tmp_path, root, stream=stream, workers=1 if stream else None, class_names=source.class_names)
    ready = prepare(model, f"folder:{root}", config, torch.device("cpu"), progress=False)
    side = int(224 / ready.spec.crop_pct + 1e-6)  # 235 for resnet18 (crop_pct 0.95): where timm's resize starts
    assert ready.spec.size == (224, 224) and side > 224
    assert raw_shape(ready.faces) == (1, side, side)
    assert any(f"Faces cut at {side} px" in n for n in ready.notes)
    seen = ready.dataset.tensors([0, 3]) if not stream else torch.stack([ready.dataset[i]["image"] for i in (0, 3)])
    expect = ready.spec.apply(torch.from_numpy(source.images[[0, 3]][:, None]))  # straight from the 256 px source
    assert float((seen - expect).abs().mean()) < 0.02  # one area resize 256 -> side on the way, no 96 px bottleneck
    at_96 = InputSpec(size=96, interpolation="area").apply(torch.from_numpy(source.images[[0, 3]][:, None]))
    via_96 = ready.spec.apply(at_96)
    assert float((via_96 - expect).abs().mean()) > 2 * float((seen - expect).abs().mean())  # the detail 96 px lost


def test_folder_faces_for_a_48_model_and_the_cache_key(tmp_path, big_folder):
    from captum_fau.data.folder import load_folder
    from captum_fau.inputs.resolve import face_crop_side
    from captum_fau.models import ZeroBiasCNN

    root, _ = big_folder
    assert face_crop_side(ZeroBiasCNN(img_size=48, num_classes=8)) == 48
    assert face_crop_side(_fully_convolutional()) is None  # a probe decides later: the loader's own 96
    assert face_crop_side(_fully_convolutional(), {"size": 64}) == 64
    cache = tmp_path / "cache"
    small = load_folder(root, size=48, face_crop="none", cache_dir=cache, progress=False)
    large = load_folder(root, size=224, face_crop="none", cache_dir=cache, progress=False)
    again = load_folder(root, size=48, face_crop="none", cache_dir=cache, progress=False)
    assert small.images.shape[1:] == (48, 48) and large.images.shape[1:] == (224, 224)
    assert np.array_equal(small.images, again.images)


def test_ckplus_keeps_the_reference_crop(monkeypatch, tmp_path):
    import captum_fau.data.spec as spec_module
    from captum_fau import preflight
    from captum_fau.analysis_config import AnalysisConfig

    seen = {}
    monkeypatch.setattr(spec_module, "load_data_spec", lambda spec, options, **kw: seen.update(kw) or "faces")
    monkeypatch.setattr(spec_module, "check_data_options", lambda *a: None)
    config = AnalysisConfig(out=tmp_path, progress=False)
    preflight._open_data(f"ckplus:{tmp_path}", config, False, "m", crop=256)
    assert "size" not in seen
    preflight._open_data(f"folder:{tmp_path}", config, False, "m", crop=256)
    assert seen["size"] == 256


def test_streamed_and_eager_folder_faces_at_a_224_model_are_equal(tmp_path, big_folder):
    timm = pytest.importorskip("timm")
    from captum_fau.preflight import prepare

    root, source = big_folder
    model = timm.create_model("resnet18", pretrained=False, num_classes=8).eval()
    got = []
    for stream in (False, True):
        config = _config(
            tmp_path / str(stream), root, stream=stream, workers=1 if stream else None, class_names=source.class_names
        )
        ready = prepare(model, f"folder:{root}", config, torch.device("cpu"), progress=False)
        got.append(torch.stack([ready.dataset[i]["image"] for i in range(len(ready.dataset))]))
    assert got[0].shape[-2:] == (224, 224) and torch.equal(got[0], got[1])


def test_synthfacs_photo_specs_get_held_out_subjects_and_photo_masks(tmp_path):
    from captum_fau import preflight
    from captum_fau.analysis_config import AnalysisConfig

    config = AnalysisConfig(out=tmp_path, progress=False)
    faces, provenance = preflight._open_data("synthfacs-photo:12", config, False, "zerobias-synthfacs-8class")
    assert faces.name == "synthfacs-photo" and faces.meta["style"] == "photo" and provenance["held_out"] is True
    cartoon, _ = preflight._open_data("synthfacs:12", config, False, "zerobias-synthfacs-8class")
    assert np.array_equal(faces.subjects, cartoon.subjects)  # the same held-out subjects in either style
    masks = _masks_fn(faces, GRAY_48)(np.array([0, 1]))
    start = faces.meta["start"]
    np.testing.assert_array_equal(
        masks, map_masks(GRAY_48, region_masks(faces.meta["seed"], [start, start + 1], style="photo"))
    )
    assert preflight.au_labelled_count(faces) == 12


def test_cli_folder_data_are_cut_at_the_model_side(big_folder):
    from captum_fau.cli import build_parser
    from captum_fau.cli._options import load_data
    from captum_fau.models import ZeroBiasCNN

    root, _ = big_folder
    args = build_parser().parse_args(
        [
            "topn",
            "--model",
            "m",
            "--data",
            f"folder:{root}",
            "--face-crop",
            "none",
            "--no-cache",
            "--layer",
            "conv1",
            "--out",
            "o",
        ]
    )
    assert load_data(args, model=ZeroBiasCNN(img_size=48, num_classes=8)).images.shape[1:] == (48, 48)
    args.input_size = "64"
    assert load_data(args, model=_fully_convolutional()).images.shape[1:] == (64, 64)  # --input-size decides
    assert load_data(args).images.shape[1:] == (96, 96)  # no model: the loader's own
