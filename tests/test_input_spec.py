"""InputSpec (the input contract) and the input-size probe, on models in their real formats."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision.transforms.functional as TF
from scipy.ndimage import uniform_filter
from torch import nn
from torchvision.transforms import InterpolationMode

from captum_fau import zoo
from captum_fau.inputs import fields as fields_module
from captum_fau.inputs import forward as forward_module
from captum_fau.inputs import probe as probe_module
from captum_fau.inputs import sources as sources_module
from captum_fau.inputs import spec as input_spec_module
from captum_fau.data.input_spec import CLI_FLAGS, InputSpec, discover_input_spec, local_mean_subtract
from captum_fau.data.probe import check_single_input, forward_shape, probe_input
from captum_fau.errors import ConfigError, InputShapeError

WEIGHTS_CONFIG = zoo.info("zerobias-synthfacs-8class").packaged_dir / "config.json"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# What a ViT image processor's save_pretrained writes (transformers' ViTImageProcessor).
VIT_PREPROCESSOR = {
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_processor_type": "ViTImageProcessor",
    "image_std": [0.5, 0.5, 0.5],
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 224, "width": 224},
}


class FER2013Net(nn.Module):
    """A 48x48 FER2013-style classifier: reflection padding, BN, strided convs, inplace ReLUs
    inside nested Sequentials, and a Linear head that only fits 48x48 inputs."""

    classes = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(inplace=True)),
            nn.Sequential(
                nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True)),
                nn.Sequential(nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True)),
            ),
        )
        self.head = nn.Linear(16 * 12 * 12, len(self.classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


class Only64(nn.Module):
    """Accepts 64x64 gray input only, and says so in a multi-line message."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64 * 64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (64, 64):
            raise RuntimeError(f"expected 64x64 input, got {tuple(x.shape[-2:])}\n  second line of detail")
        return self.fc(x.flatten(1))


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return self.fc(landmarks)


class NeverRuns(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("this model is broken\nTraceback-looking second line")


def faces(b: int = 3, c: int = 1, h: int = 96, w: int = 96, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"channels": 3, "mean": (0.5, 0.5)}, "mean has 2 values but the model takes 3"),
        ({"channels": 1, "std": (0.5, 0.5, 0.5)}, "std has 3 values but the model takes 1"),
        ({"std": 0.0}, "std must be > 0"),
        ({"std": (-1.0,)}, "std must be > 0"),
        ({"mean": "a,b"}, "mean must be a number"),
        ({"mean": float("nan")}, "finite"),
        ({"interpolation": "lanczos"}, "unknown interpolation 'lanczos'"),
        ({"pixel_range": (1, 0)}, "LO < HI"),
        ({"pixel_range": "zero-one"}, "LO-HI"),
        ({"channels": 2}, "channels must be 1 (gray) or 3 (RGB)"),
        ({"channels": 4}, "--channels"),
        ({"size": "48x"}, "--input-size 48"),
        ({"size": 0}, "positive integers"),
        ({"size": 47.5}, "positive integers"),
        ({"local_mean": 4}, "odd box size"),
        ({"local_mean": -1}, "odd box size"),
        ({"local_mean_padding": "reflect"}, "zeros or replicate"),
        ({"crop_pct": 0.0}, "crop_pct"),
        ({"crop_pct": 1.5}, "crop_pct"),
        ({"face_margin": -0.1}, "face_margin"),
        ({"sources": {"colour": "explicit"}}, "unknown fields"),
    ],
)
def test_invalid_fields_raise_config_error_naming_the_fix(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        InputSpec(**kwargs)
    assert fragment in str(info.value)


def test_fields_are_normalised_and_a_single_mean_is_repeated_per_channel() -> None:
    spec = InputSpec(size="48", channels=3, pixel_range="-1-1", mean=0.5, std="0.5", interpolation="BICUBIC")
    assert spec.size == (48, 48)
    assert spec.pixel_range == (-1.0, 1.0)
    assert spec.mean == spec.std == (0.5, 0.5, 0.5)
    assert spec.interpolation == "bicubic"
    assert InputSpec(size=(48, 64)).size == (48, 64)
    # Set by hand: what differs from the defaults counts as explicit.
    assert spec.sources["size"] == "explicit" and spec.sources["local_mean"] == "default"


def test_to_dict_from_dict_round_trips_through_json() -> None:
    spec = InputSpec.from_preprocessor_config({**VIT_PREPROCESSOR, "resample": 1})
    back = InputSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    assert back.sources == spec.sources and back.remarks == spec.remarks
    assert back.describe() == spec.describe()
    with pytest.raises(ConfigError, match="unknown keys \\['colour'\\]"):
        InputSpec.from_dict({**spec.to_dict(), "colour": 1})


# --------------------------------------------------------------------------- apply numerics


def _without_padding(config: dict) -> dict:
    """A zero-bias config as saved before the local-mean padding was recorded."""
    out = {k: v for k, v in config.items() if k != "local_mean_padding"}
    out["model_args"] = {k: v for k, v in config.get("model_args", {}).items() if k != "local_mean_padding"}
    return out


def test_zerobias_local_mean_matches_scipy_uniform_filter_with_zero_padding() -> None:
    packaged = json.loads(WEIGHTS_CONFIG.read_text())
    # The packaged model records the replicate padding it was trained with; a config without the key
    # gets the reference code's zero padding.
    assert InputSpec.from_zerobias_config(packaged).local_mean_padding == "replicate"
    spec = InputSpec.from_zerobias_config(_without_padding(packaged))
    assert (spec.size, spec.channels, spec.pixel_range, spec.local_mean) == ((96, 96), 1, (0.0, 2.0), 5)
    assert spec.local_mean_padding == "zeros"
    x = faces(2)
    out = spec.apply(x).numpy()
    scaled = x.numpy().astype(np.float64) * 2.0
    expected = scaled - uniform_filter(scaled, size=(1, 1, 5, 5), mode="constant", cval=0.0)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # Zero and replicate padding agree inside the image and differ on its border.
    replicate = InputSpec(size=96, pixel_range=(0, 2), local_mean=5, local_mean_padding="replicate").apply(x).numpy()
    np.testing.assert_allclose(out[:, :, 2:-2, 2:-2], replicate[:, :, 2:-2, 2:-2], atol=1e-5)
    assert np.abs(out[:, :, 0, :] - replicate[:, :, 0, :]).min() > 1e-3


def test_replicate_local_mean_matches_scipy_nearest_and_the_faceset_pipeline() -> None:
    from captum_fau.data.transforms import model_input

    spec = InputSpec(size=96, pixel_range=(0, 2), local_mean=5, local_mean_padding="replicate")
    raw = torch.randint(0, 256, (2, 1, 96, 96), dtype=torch.uint8)
    out = spec.apply(raw)
    scaled = raw.numpy().astype(np.float64) / 255 * 2
    expected = scaled - uniform_filter(scaled, size=(1, 1, 5, 5), mode="nearest")
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    torch.testing.assert_close(out, model_input(raw, 5, "replicate"), atol=1e-5, rtol=0)


def test_local_mean_of_size_zero_is_the_identity() -> None:
    x = faces(1)
    assert local_mean_subtract(x, 0) is x


def test_range_scaling_and_normalisation_match_torchvision_normalize() -> None:
    x = faces(2, c=3, h=48, w=48)
    spec = InputSpec(size=48, channels=3, pixel_range=(0, 255), mean=(120.0, 110.0, 100.0), std=(60.0, 50.0, 40.0))
    expected = TF.normalize(x * 255.0, mean=[120.0, 110.0, 100.0], std=[60.0, 50.0, 40.0])
    torch.testing.assert_close(spec.apply(x), expected, atol=1e-4, rtol=1e-5)
    minus_one = InputSpec(size=48, channels=3, pixel_range=(-1, 1)).apply(x)
    torch.testing.assert_close(minus_one, x * 2 - 1)
    # [-1, 1] via range or via mean/std 0.5 are the same preprocessing.
    torch.testing.assert_close(InputSpec(size=48, channels=3, mean=0.5, std=0.5).apply(x), minus_one, atol=1e-6, rtol=0)


def test_channel_conversions_bt601_and_repetition_are_noted() -> None:
    rgb = faces(2, c=3, h=32, w=32)
    gray_spec = InputSpec(size=32, channels=1)
    expected = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    torch.testing.assert_close(gray_spec.apply(rgb), expected)
    assert gray_spec.notes((3, 32, 32)) == [
        "RGB data converted to gray by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B)"
    ]
    gray = faces(2, c=1, h=32, w=32)
    out = InputSpec(size=32, channels=3).apply(gray)
    assert out.shape == (2, 3, 32, 32)
    for c in range(3):
        torch.testing.assert_close(out[:, c : c + 1], gray)
    assert InputSpec(size=32, channels=3).notes((32, 32)) == ["gray data repeated to 3 channels for an RGB model"]
    assert InputSpec(size=32, channels=1).notes((1, 32, 32)) == []


@pytest.mark.parametrize(
    "interpolation, mode",
    [
        ("bilinear", InterpolationMode.BILINEAR),
        ("bicubic", InterpolationMode.BICUBIC),
        ("nearest", InterpolationMode.NEAREST),
    ],
)
def test_resize_matches_torchvision_resize(interpolation: str, mode: InterpolationMode) -> None:
    x = faces(2, h=96, w=96)
    out = InputSpec(size=48, interpolation=interpolation).apply(x)
    torch.testing.assert_close(out, TF.resize(x, [48, 48], interpolation=mode, antialias=True), atol=1e-5, rtol=0)


def test_area_resize_is_block_averaging_and_no_size_keeps_the_data_size() -> None:
    x = faces(1, h=96, w=96)
    out = InputSpec(size=48, interpolation="area").apply(x)
    torch.testing.assert_close(out, x.reshape(1, 1, 48, 2, 48, 2).mean((3, 5)))
    assert InputSpec().apply(x).shape == x.shape
    assert InputSpec().notes((1, 96, 96)) == []
    assert InputSpec(size=48).notes((1, 96, 96)) == ["resized 96x96 -> 48x48 (bilinear, antialiased)"]


def test_bad_batches_raise_input_shape_errors_naming_the_fix() -> None:
    spec = InputSpec(size=48)
    with pytest.raises(InputShapeError, match="alpha channel"):
        spec.apply(torch.rand(1, 4, 48, 48))
    with pytest.raises(InputShapeError, match="\\[B, C, H, W\\]"):
        spec.apply(torch.rand(48, 48))
    with pytest.raises(InputShapeError, match="65535"):
        spec.apply(torch.rand(1, 1, 48, 48) * 65535)  # 16-bit pixels passed as floats
    uint8 = torch.randint(0, 256, (1, 1, 48, 48), dtype=torch.uint8)
    torch.testing.assert_close(spec.apply(uint8), uint8.float() / 255)


# --------------------------------------------------------------------------- discovered specs


def test_timm_pretrained_cfg_of_a_real_timm_model_and_its_eval_transform() -> None:
    model = timm.create_model("resnet18", pretrained=False)
    spec = discover_input_spec(pretrained_cfg=model.pretrained_cfg)
    assert spec == InputSpec.from_timm_cfg(model.pretrained_cfg)
    cfg = model.pretrained_cfg
    assert spec.size == tuple(cfg["input_size"][1:]) and spec.channels == cfg["input_size"][0] == 3
    assert spec.mean == tuple(cfg["mean"]) and spec.std == tuple(cfg["std"])
    assert spec.interpolation == cfg["interpolation"] and spec.crop_pct == cfg["crop_pct"]
    assert {spec.sources[k] for k in ("size", "mean", "std", "interpolation", "crop_pct")} == {"timm pretrained_cfg"}
    x = faces(2, c=3, h=96, w=96)
    out = spec.apply(x)
    # timm's eval transform: resize to floor(224 / crop_pct), centre-crop 224, normalise.
    scale = int(224 / cfg["crop_pct"])
    mode = InterpolationMode(cfg["interpolation"])
    expected = TF.normalize(
        TF.center_crop(TF.resize(x, [scale, scale], interpolation=mode, antialias=True), [224, 224]),
        mean=list(cfg["mean"]),
        std=list(cfg["std"]),
    )
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)
    gray_notes = spec.notes((1, 96, 96))
    assert gray_notes[0] == "gray data repeated to 3 channels for an RGB model"
    assert "centre-cropped to 224x224 (crop_pct 0.95" in gray_notes[1]
    with torch.no_grad():
        assert model.eval()(out).shape == (2, 1000)


def test_a_gray_timm_model_gets_a_gray_spec_from_its_first_conv() -> None:
    model = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=7).eval()
    assert model.pretrained_cfg["input_size"][0] == 3  # timm keeps the pretrained channels
    spec = discover_input_spec(pretrained_cfg=model.pretrained_cfg, model=model)
    assert spec.channels == 1
    assert spec.mean == pytest.approx((sum(IMAGENET_MEAN) / 3,)) and spec.std == pytest.approx((sum(IMAGENET_STD) / 3,))
    assert "takes 1 channel(s) where its timm pretrained_cfg says 3" in spec.notes()[0]
    with torch.no_grad():
        assert model(spec.apply(faces(2, c=3))).shape == (2, 7)
    # A first_conv the model lacks is ignored.
    assert (
        discover_input_spec(pretrained_cfg={**model.pretrained_cfg, "first_conv": "stem.nope"}, model=model).channels
        == 3
    )


def test_timm_registered_zerobias_cnn_gets_its_reference_preprocessing_not_timm_mean_std() -> None:
    model = timm.create_model("zerobias_cnn", num_classes=8)
    spec = discover_input_spec(config=model.config, pretrained_cfg=model.pretrained_cfg)
    assert spec is not None and spec.local_mean == 5 and spec.pixel_range == (0.0, 2.0)
    assert spec.sources["local_mean"] == "zero-bias config"
    hub_cfg = json.loads(WEIGHTS_CONFIG.read_text())
    assert discover_input_spec(config=hub_cfg).local_mean_padding == "replicate"  # as the packaged model was trained
    hub_cfg = _without_padding(hub_cfg)
    assert discover_input_spec(config=hub_cfg) == spec == InputSpec.from_zerobias_config(model.config)
    chosen = InputSpec.from_zerobias_config({**hub_cfg, "local_mean_padding": "replicate", "local_mean": 3})
    assert (chosen.local_mean, chosen.local_mean_padding) == (3, "replicate")
    assert chosen.sources["local_mean_padding"] == "zero-bias config"


def test_hub_folder_preprocessor_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["ViTForImageClassification"], "hidden_size": 8})
    )
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(VIT_PREPROCESSOR, indent=2))
    config = json.loads((tmp_path / "config.json").read_text())
    spec = discover_input_spec(config=config, folder=tmp_path)
    assert spec is not None
    assert (spec.size, spec.channels, spec.interpolation) == ((224, 224), 3, "bilinear")
    assert spec.pixel_range == pytest.approx((0.0, 1.0))
    assert spec.sources["mean"] == "preprocessor_config.json"
    x = faces(2, c=1, h=96, w=96)
    # The processor: resize the 0..255 image, times rescale_factor, then (x - mean) / std.
    rgb255 = TF.resize(
        x.expand(-1, 3, -1, -1) * 255.0, [224, 224], interpolation=InterpolationMode.BILINEAR, antialias=True
    )
    expected = TF.normalize(rgb255 * VIT_PREPROCESSOR["rescale_factor"], mean=[0.5] * 3, std=[0.5] * 3)
    torch.testing.assert_close(spec.apply(x), expected, atol=1e-4, rtol=0)
    assert discover_input_spec(config=config, folder=tmp_path / "missing") is None
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        discover_input_spec(folder=tmp_path)


def test_other_image_processor_layouts() -> None:
    convnext = {
        "crop_pct": 0.875,
        "do_normalize": True,
        "do_rescale": True,
        "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": 224},
    }
    spec = InputSpec.from_preprocessor_config(convnext)
    assert (spec.size, spec.crop_pct, spec.interpolation) == ((224, 224), 0.875, "bicubic")
    clip = {
        "do_center_crop": True,
        "crop_size": {"height": 224, "width": 224},
        "size": {"shortest_edge": 256},
        "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD,
        "resample": 3,
        "do_convert_rgb": True,
    }
    spec = InputSpec.from_preprocessor_config(clip)
    assert spec.size == (224, 224) and spec.crop_pct == pytest.approx(224 / 256)
    assert spec.apply(faces(1, h=300, w=300)).shape == (1, 3, 224, 224)
    assert "resized 300x300 -> 256x256" in spec.notes((1, 300, 300))[1]
    raw = InputSpec.from_preprocessor_config(
        {"size": 48, "do_rescale": False, "do_normalize": False, "image_mean": [0.5]}
    )
    assert (raw.size, raw.channels, raw.pixel_range, raw.mean) == ((48, 48), 1, (0.0, 255.0), (0.0,))
    efficientnet = {
        "size": {"height": 600, "width": 600},
        "rescale_factor": 1 / 127.5,
        "rescale_offset": True,
        "do_normalize": False,
        "image_mean": IMAGENET_MEAN,
        "resample": 0,
    }
    spec = InputSpec.from_preprocessor_config(efficientnet)
    assert spec.pixel_range == pytest.approx((-1.0, 1.0)) and spec.interpolation == "nearest"
    lanczos = InputSpec.from_preprocessor_config({**VIT_PREPROCESSOR, "resample": 1})
    assert lanczos.interpolation == "bicubic" and "LANCZOS" in lanczos.notes()[0]
    with pytest.raises(ConfigError, match="PIL resampling code"):
        InputSpec.from_preprocessor_config({**VIT_PREPROCESSOR, "resample": 9})
    with pytest.raises(ConfigError, match="--input-size"):
        InputSpec.from_preprocessor_config({**VIT_PREPROCESSOR, "size": {"longest_edge": 224}})
    with pytest.raises(ConfigError, match="no usable size"):
        InputSpec.from_preprocessor_config({"image_mean": [0.5]})
    with pytest.raises(ConfigError, match="input_size"):
        InputSpec.from_timm_cfg({"mean": IMAGENET_MEAN})


# --------------------------------------------------------------------------- resolve


def test_explicit_flags_win_over_a_discovered_spec_with_a_note() -> None:
    discovered = InputSpec.from_timm_cfg(timm.create_model("resnet18", pretrained=False).pretrained_cfg)
    spec = InputSpec.resolve(
        {"mean": "0.5", "std": 0.5, "size": "48", "interpolation": None}, discovered, explicit_sources=CLI_FLAGS
    )
    assert spec.mean == spec.std == (0.5, 0.5, 0.5)
    assert spec.size == (48, 48) and spec.interpolation == "bicubic" and spec.crop_pct == 0.95
    assert "--mean 0.5 overrides 0.485,0.456,0.406 from timm pretrained_cfg" in spec.remarks
    assert "--std 0.5 overrides 0.229,0.224,0.225 from timm pretrained_cfg" in spec.remarks
    assert "--input-size 48x48 overrides 224x224 from timm pretrained_cfg" in spec.remarks
    assert spec.sources["size"] == "--input-size" and spec.sources["interpolation"] == "timm pretrained_cfg"
    assert "size/mean/std from --input-size" not in spec.describe()
    assert "size from --input-size" in spec.describe() and "mean from --mean" in spec.describe()
    # Agreeing with the discovered value is no override.
    same = InputSpec.resolve({"mean": IMAGENET_MEAN, "interpolation": "BICUBIC", "size": "224"}, discovered)
    assert not any("overrides" in r for r in same.remarks) and same.sources["mean"] == "explicit"
    assert InputSpec(local_mean=np.int64(5)).local_mean == 5


def test_resolve_defaults_unknown_keys_and_channel_conflicts() -> None:
    spec = InputSpec.resolve({}, None, data_shape=(3, 96, 96))
    assert spec.channels == 3 and spec.sources["channels"] == "data" and spec.size is None
    assert spec.sources["mean"] == "default" and spec.describe().endswith("channels from data")
    assert InputSpec.resolve().describe().endswith("all defaults")
    with pytest.raises(ConfigError, match="unknown input spec fields \\['colour'\\]"):
        InputSpec.resolve({"colour": "red"})
    timm_spec = InputSpec.from_timm_cfg({"input_size": (3, 224, 224), "mean": IMAGENET_MEAN, "std": IMAGENET_STD})
    with pytest.raises(ConfigError, match="pass --mean with 1 value"):
        InputSpec.resolve({"channels": "1"}, timm_spec, explicit_sources=CLI_FLAGS)
    ok = InputSpec.resolve({"channels": 1, "mean": 0.5, "std": 0.5}, timm_spec, explicit_sources=CLI_FLAGS)
    assert ok.channels == 1 and "--channels 1 overrides 3 from timm pretrained_cfg" in ok.remarks
    # A user-built InputSpec passed as input_spec= contributes the fields it sets.
    user = InputSpec(size=48, mean=0.5, std=0.5)
    merged = InputSpec.resolve(user, InputSpec.from_zerobias_config({"img_size": 96}))
    assert merged.size == (48, 48) and merged.local_mean == 5 and merged.sources["size"] == "explicit"
    assert "explicit size 48x48 overrides 96x96 from zero-bias config" in merged.remarks


def test_resolve_probes_a_plain_fer2013_model_and_the_spec_feeds_it() -> None:
    model = FER2013Net().train()
    spec = InputSpec.resolve(
        {"mean": 0.5, "std": 0.5}, None, explicit_sources=CLI_FLAGS, model=model, data_shape=(1, 96, 96)
    )
    assert spec.size == (48, 48) and spec.sources["size"] == "probe" and spec.channels == 1
    assert model.training  # the probe restored training mode
    note = spec.remarks[0]
    assert "at 48x48" in note and "mat1 and mat2 shapes cannot be multiplied" in note and "--input-size" in note
    assert (
        "48x48 gray, pixels in [0,1], mean 0.5 std 0.5, bilinear; size from probe; channels from data"
        in spec.describe()
    )
    with torch.no_grad():
        logits = model.eval()(spec.apply(faces(4)))
    assert logits.shape == (4, 7)
    # With --input-size no probe runs.
    assert InputSpec.resolve({"size": 48}, None, model=NeverRuns(), data_shape=(1, 96, 96)).size == (48, 48)


def test_resolve_takes_the_probed_channel_count_unless_one_was_given() -> None:
    rgb48 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 48 * 48, 7))
    spec = InputSpec.resolve({}, None, model=rgb48, data_shape=(1, 96, 96))
    assert (spec.size, spec.channels, spec.sources["channels"]) == ((48, 48), 3, "probe")
    with pytest.raises(ConfigError, match="pass --channels 3"):
        InputSpec.resolve({"channels": 1}, None, explicit_sources=CLI_FLAGS, model=rgb48, data_shape=(1, 96, 96))


# --------------------------------------------------------------------------- probe


def test_probe_finds_64_for_a_64_only_model_and_notes_the_first_failure() -> None:
    size, channels, note = probe_input(Only64(), channels=1, data_size=(96, 96))
    assert (size, channels) == ((64, 64), 1)
    assert "at 64x64" in note
    assert "96x96 with 1 channel(s) failed: RuntimeError: expected 64x64 input, got (96, 96)" in note
    assert "second line" not in note


def test_probe_accepts_the_data_size_first() -> None:
    result = probe_input(nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()), 1, (72, 72))
    assert result.size == (72, 72) and "at the data size 72x72" in result.note and "failed" not in result.note


def test_probe_failure_is_a_config_error_without_traceback() -> None:
    with pytest.raises(ConfigError) as info:
        probe_input(NeverRuns(), channels=1, data_size=(96, 96))
    message = str(info.value)
    assert "--input-size" in message and "input_spec=" in message
    assert "tried 96x96, 48x48, 64x64, 112x112, 128x128, 224x224 with 1 and 3 channel(s)" in message
    assert "ValueError: this model is broken" in message
    assert "\n" not in message and "Traceback" not in message


def test_two_input_model_is_reported_with_how_to_wrap_it() -> None:
    with pytest.raises(ConfigError, match="needs 2 inputs \\(image, landmarks\\).*Wrap it"):
        probe_input(TwoInputs(), channels=1, data_size=(96, 96))
    with pytest.raises(ConfigError, match="Wrap it"):
        InputSpec.resolve({}, None, model=TwoInputs(), data_shape=(1, 96, 96))
    check_single_input(FER2013Net())  # one input: no error

    class DefaultedSecond(nn.Module):
        def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
            return x.flatten(1) * scale

    check_single_input(DefaultedSecond())


def test_probe_leaves_batchnorm_statistics_untouched_and_restores_eval() -> None:
    model = FER2013Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    assert forward_shape(model, 1, (48, 48)) == (2, 7)
    assert not model.training
    model.train()
    probe_input(model, 1, (96, 96))
    assert model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_forward_shape_reads_hugging_face_style_outputs() -> None:
    class WithLogits(nn.Module):
        def forward(self, x: torch.Tensor) -> dict:
            return {"logits": x.mean((2, 3))}

    assert forward_shape(WithLogits(), 3, (8, 8)) == (2, 3)


def test_module_doctests() -> None:
    for module in (input_spec_module, fields_module, probe_module, sources_module, forward_module):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__
