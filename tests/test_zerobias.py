"""ZeroBiasCNN: architecture, initialisation, hub-mixin round trip, timm entry, input errors."""

from __future__ import annotations

import json
import math

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from captum_fau import ZeroBiasCNN
from captum_fau.errors import ConfigError, InputShapeError, WeightsError
from captum_fau.models import LAYER_NAMES, load_weights


@pytest.fixture(scope="module")
def model() -> ZeroBiasCNN:
    torch.manual_seed(0)
    return ZeroBiasCNN(num_classes=8).eval()


def test_layer_names_and_order(model: ZeroBiasCNN) -> None:
    assert tuple(name for name, _ in model.named_children()) == LAYER_NAMES
    assert all(isinstance(getattr(model, f"relu{i}"), nn.ReLU) for i in (1, 2, 3, 4))


def test_parameter_count_matches_paper_architecture(model: ZeroBiasCNN) -> None:
    assert sum(p.numel() for p in model.parameters()) == 1_335_508


def test_convolutions_have_no_bias_and_paper_shapes(model: ZeroBiasCNN) -> None:
    for conv, (out_c, in_c) in zip((model.conv1, model.conv2, model.conv3), ((64, 1), (128, 64), (256, 128))):
        assert conv.bias is None
        assert conv.weight.shape == (out_c, in_c, 5, 5)
        assert conv.padding == (2, 2) and conv.stride == (1, 1)
    assert model.fc4.bias is not None and model.fc_out.bias is not None


def test_intermediate_shapes_96(model: ZeroBiasCNN) -> None:
    shapes = {}
    hooks = [
        getattr(model, n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
        for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "quadrant_pool", "fc4", "fc_out")
    ]
    with torch.no_grad():
        model(torch.randn(3, 1, 96, 96))
    for h in hooks:
        h.remove()
    assert shapes == {
        "conv1": (3, 64, 96, 96),
        "pool1": (3, 64, 48, 48),
        "conv2": (3, 128, 48, 48),
        "pool2": (3, 128, 24, 24),
        "conv3": (3, 256, 24, 24),
        "quadrant_pool": (3, 256, 2, 2),
        "fc4": (3, 300),
        "fc_out": (3, 8),
    }


def test_quadrant_pooling_is_max_over_quarters_channel_major(model: ZeroBiasCNN) -> None:
    x = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        conv3 = model.relu3(
            model.conv3(model.pool2(model.relu2(model.conv2(model.pool1(model.relu1(model.conv1(x)))))))
        )
        feats = model.forward_features(x)
    q = conv3.unflatten(2, (2, 12)).unflatten(4, (2, 12)).amax(dim=(3, 5))  # [B, 256, 2, 2]
    torch.testing.assert_close(feats, q.flatten(1))
    # channel-major: the first four features are channel 0's four quadrants
    torch.testing.assert_close(feats[:, :4], q[:, 0].flatten(1))


def test_48_pixel_inputs_adapt_quadrant_pooling() -> None:
    m = ZeroBiasCNN(num_classes=7, img_size=48).eval()
    assert m.quadrant_pool.kernel_size == 6
    assert m(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    assert sum(p.numel() for p in m.parameters()) == 1_335_508 - 300 - 1  # one class fewer


@pytest.mark.parametrize("num_classes", [2, 6, 7, 8, 11])
def test_num_classes(num_classes: int) -> None:
    assert ZeroBiasCNN(num_classes=num_classes).eval()(torch.randn(1, 1, 96, 96)).shape == (1, num_classes)


def test_reference_initialisation_statistics() -> None:
    torch.manual_seed(123)
    m = ZeroBiasCNN(init_k=0.8)
    assert m.init_k == 0.8
    for layer, fan_in in ((m.conv1, 25), (m.conv2, 1600), (m.conv3, 3200), (m.fc4, 1024), (m.fc_out, 300)):
        w = layer.weight.detach()
        expected = 0.8 / math.sqrt(fan_in)
        assert abs(float(w.std()) / expected - 1) < (0.2 if w.numel() < 5000 else 0.03), layer
        assert abs(float(w.mean())) < 4 * expected / math.sqrt(w.numel())
    assert torch.all(m.fc4.bias == 1.0) and torch.all(m.fc_out.bias == 0.0)


def test_fc4_reference_quirk_flag() -> None:
    m = ZeroBiasCNN(init_k=1.0, fc4_init="reference")
    # the reference code's fan-in for fc4 counted the batch of 64: std = k / sqrt(64 * 1024) = k / 256
    assert abs(float(m.fc4.weight.detach().std()) * 256 - 1) < 0.02


def test_k_is_drawn_from_reference_range() -> None:
    ks = []
    for seed in range(40):
        torch.manual_seed(seed)
        ks.append(ZeroBiasCNN().init_k)
    assert min(ks) >= 0.2 and max(ks) < 1.2 and max(ks) - min(ks) > 0.5


def test_seeded_construction_is_reproducible() -> None:
    torch.manual_seed(7)
    a = ZeroBiasCNN()
    torch.manual_seed(7)
    b = ZeroBiasCNN()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_hub_mixin_round_trip(tmp_path, model: ZeroBiasCNN) -> None:
    m = ZeroBiasCNN(num_classes=6, class_names=["anger", "disgust", "fear", "happy", "sadness", "surprise"]).eval()
    m.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "model.safetensors"}
    assert not list(tmp_path.glob("*.bin"))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["num_classes"] == 6 and cfg["architecture"] == "zerobias_cnn"
    assert cfg["class_names"][3] == "happy"
    loaded = ZeroBiasCNN.from_pretrained(tmp_path)
    assert not loaded.training
    x = torch.randn(2, 1, 96, 96)
    torch.testing.assert_close(loaded(x), m(x), rtol=0, atol=0)
    assert loaded.config["class_names"] == m.class_names
    assert loaded.init_k == pytest.approx(m.init_k)


def test_timm_create_model() -> None:
    m = timm.create_model("zerobias_cnn", num_classes=8)
    assert isinstance(m, ZeroBiasCNN) and m.num_classes == 8
    assert m.pretrained_cfg["classifier"] == "fc_out"
    assert "zerobias_cnn" in timm.list_models("zerobias*")


def test_timm_reads_saved_folder(tmp_path) -> None:
    m = ZeroBiasCNN(num_classes=7).eval()
    m.save_pretrained(tmp_path)
    t = timm.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    x = torch.randn(1, 1, 96, 96)
    torch.testing.assert_close(t(x), m(x))


def test_unknown_constructor_argument_names_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"'num_clases' \(did you mean 'num_classes'\?\)") as err:
        ZeroBiasCNN(num_clases=7)
    assert "num_classes, in_chans, img_size" in str(err.value)
    with pytest.raises(ConfigError, match="'colour'"):  # nothing close: the valid arguments are listed
        ZeroBiasCNN(num_classes=7, colour="red")


def test_from_pretrained_refuses_unknown_arguments_but_reads_its_config(tmp_path) -> None:
    ZeroBiasCNN(num_classes=7).save_pretrained(tmp_path)
    assert ZeroBiasCNN.from_pretrained(tmp_path).num_classes == 7  # timm-layout keys are not constructor arguments
    with pytest.raises(ConfigError, match="did you mean 'drop_rate'"):
        ZeroBiasCNN.from_pretrained(tmp_path, dropout_rate=0.1)


def test_timm_entry_filters_builder_arguments_and_refuses_the_rest() -> None:
    cfg = timm.models.get_pretrained_cfg("zerobias_cnn")
    m = timm.create_model("zerobias_cnn", num_classes=6, pretrained_cfg=cfg, pretrained_cfg_overlay={"crop_pct": 0.9})
    assert m.num_classes == 6 and m.pretrained_cfg["crop_pct"] == 0.9  # builder arguments reach timm's builder
    with pytest.raises(ConfigError, match=r"'drop_path_rate' \(did you mean 'drop_rate'\?\)"):
        timm.create_model("zerobias_cnn", drop_path_rate=0.1)
    with pytest.raises(ConfigError, match="'features_only'"):
        timm.create_model("zerobias_cnn", features_only=True)
    with pytest.raises(ConfigError, match="did you mean 'img_size'"):
        timm.create_model("zerobias_cnn", img_sise=48)


def test_reset_classifier() -> None:
    m = ZeroBiasCNN(num_classes=8)
    m.reset_classifier(3)
    assert m(torch.randn(1, 1, 96, 96)).shape == (1, 3) and m.config["num_classes"] == 3


@pytest.mark.parametrize(
    "shape, fragment",
    [((1, 96, 96), "4-D"), ((2, 3, 96, 96), "input channel"), ((2, 1, 64, 64), "96x96")],
)
def test_wrong_input_shape_names_expected_shape(model: ZeroBiasCNN, shape, fragment: str) -> None:
    with pytest.raises(InputShapeError, match=fragment) as err:
        model(torch.randn(*shape))
    assert "[batch, 1, 96, 96]" in str(err.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_classes": 1},
        {"img_size": 90},
        {"drop_rate": 1.5},
        {"fc4_init": "xavier"},
        {"in_chans": 0},
        {"num_classes": 3, "class_names": ["a", "b"]},
        {"init_k": -1.0},
    ],
)
def test_invalid_config(kwargs) -> None:
    with pytest.raises(ConfigError):
        ZeroBiasCNN(**kwargs)


def test_load_weights_errors_name_the_file(tmp_path, model: ZeroBiasCNN) -> None:
    wrong_keys = tmp_path / "wrong_keys.safetensors"
    save_file({"foo": torch.zeros(1)}, str(wrong_keys))
    with pytest.raises(WeightsError, match="wrong_keys.safetensors.*missing keys"):
        load_weights(ZeroBiasCNN(), wrong_keys)

    wrong_shape = tmp_path / "six.safetensors"
    save_file(ZeroBiasCNN(num_classes=6).state_dict(), str(wrong_shape))
    with pytest.raises(WeightsError, match="six.safetensors.*wrong shape.*fc_out"):
        load_weights(ZeroBiasCNN(num_classes=8), wrong_shape)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="garbage.safetensors"):
        load_weights(ZeroBiasCNN(), garbage)

    pickled = tmp_path / "model.pt"
    pickled.write_bytes(b"\x80\x04")
    with pytest.raises(WeightsError, match="never unpickles"):
        load_weights(ZeroBiasCNN(), pickled)
