"""The input contract end to end: raw face crops -> a model's resolved InputSpec -> its tensors."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from captum_fau.inputs.resolve import model_inputs
from captum_fau.data.base import FaceSet
from captum_fau.data.input_spec import CLI_FLAGS
from captum_fau.data.model_inputs import ModelInputs, raw_shape
from captum_fau.data.synthfacs import SynthFACS, load_synthfacs
from captum_fau.errors import ConfigError, InputShapeError
from captum_fau.zoo.resolve import load_model_spec, resolve_input_spec

FER_NET = textwrap.dedent("""
    from torch import nn

    def build():
        torch_block = lambda cin, cout: nn.Sequential(
            nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=2), nn.BatchNorm2d(cout)),
            nn.ReLU(inplace=True))
        return nn.Sequential(
            nn.Sequential(torch_block(1, 4), torch_block(4, 8)),  # 48 -> 24 -> 12
            nn.Flatten(), nn.Linear(8 * 12 * 12, 7))
""")


def _faces(n: int = 16, size: int = 96, seed: int = 0) -> FaceSet:
    rng = np.random.default_rng(seed)
    return FaceSet(images=rng.integers(0, 256, (n, size, size), dtype=np.uint8), class_names=("a", "b"),
                   emotions=np.arange(n) % 2)  # fmt: skip


class _DictFaces(torch.utils.data.Dataset):
    """Any dataset of dict items with raw crops."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "emotion": i % 2, "index": i}


def test_zoo_model_sees_exactly_todays_tensors() -> None:
    model = load_model_spec("zerobias-synthfacs-8class")
    spec = resolve_input_spec(model, (1, 96, 96))
    assert spec.local_mean_padding == "replicate" and spec.sources["local_mean_padding"] == "zero-bias config"
    faces = load_synthfacs(24, seed=3)
    today = replace(faces, local_mean_padding="replicate")  # what the scan fed the packaged model
    assert torch.equal(ModelInputs(faces, spec).tensors(), today.tensors())
    lazy = SynthFACS(n=24, seed=3, local_mean_padding="replicate")
    assert torch.equal(ModelInputs(SynthFACS(n=24, seed=3), spec)[5]["image"], lazy[5]["image"])
    assert ModelInputs(faces, spec)[5]["emotion"] == faces[5]["emotion"]


def test_timm_style_pretrained_cfg_with_override_note() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 7))
    net.pretrained_cfg = {"input_size": (3, 64, 64), "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                          "interpolation": "bicubic", "crop_pct": 0.875, "first_conv": "0"}  # fmt: skip
    faces = _faces(4)
    spec = resolve_input_spec(net, (1, 96, 96))
    assert spec.sources["mean"] == "timm pretrained_cfg" and spec.crop_pct == 0.875
    x = faces.raw_images().float() / 255
    ref = F.interpolate(x, size=(73, 73), mode="bicubic", antialias=True, align_corners=False)[:, :, 4:68, 4:68]
    ref = (ref.expand(-1, 3, -1, -1) - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(ModelInputs(faces, spec).tensors(), ref, rtol=0, atol=1e-6)
    dataset, spec2, notes = model_inputs(net, faces, {"mean": "0.5", "std": "0.5"}, CLI_FLAGS)
    assert spec2.mean == (0.5,) * 3 and any("--mean 0.5 overrides 0.485,0.456,0.406" in n for n in notes)
    assert any("gray data repeated to 3 channels" in n for n in notes) and dataset[0]["image"].shape == (3, 64, 64)


class _Only64(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (64, 64):
            raise RuntimeError(f"expects 64x64 input, got {tuple(x.shape[-2:])}")
        return self.conv(x).mean((2, 3))


def test_model_that_takes_64_only_is_probed_with_a_note() -> None:
    _, spec, notes = model_inputs(_Only64(), _faces(4))
    assert spec.size == (64, 64) and spec.sources["size"] == "probe"
    assert any("probe forward at 64x64" in n and "96x96" in n for n in notes)


def test_plain_48_model_without_flags_runs_with_a_note_or_names_input_size(tmp_path) -> None:
    namespace: dict = {}
    exec(FER_NET, namespace)
    net = namespace["build"]().eval()
    dataset, spec, notes = model_inputs(net, _faces(4))
    assert spec.size == (48, 48) and any("48x48" in n and "--input-size" in n for n in notes)
    assert net(dataset.tensors([0, 1])).shape == (2, 7)

    class NoSize(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("never runs")

    with pytest.raises(ConfigError, match="--input-size"):
        model_inputs(NoSize(), _faces(4))
    from captum_fau import ZeroBiasCNN

    with pytest.raises(ConfigError, match="does not run on 1-channel 48x48.*--input-size"):
        model_inputs(ZeroBiasCNN().eval(), _faces(4), {"size": "48"}, CLI_FLAGS)


def test_bad_inputs_fail_early_with_the_fix() -> None:
    class TwoInputs(nn.Module):
        def forward(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
            return image

    with pytest.raises(ConfigError, match="needs 2 inputs"):
        model_inputs(TwoInputs(), _faces(2))
    gray = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ConfigError, match="mean 0.5,0.5 from --mean has 2 values but channels is 3"):
        model_inputs(gray, _faces(2), {"size": "32", "channels": "3", "mean": "0.5,0.5"}, CLI_FLAGS)
    with pytest.raises(ConfigError, match="runs on 1-channel input, not the 3 channel.*--channels 1"):
        model_inputs(gray, _faces(2), {"channels": "3"}, CLI_FLAGS)
    with pytest.raises(InputShapeError, match="RGBA"):
        raw_shape(_DictFaces(torch.rand(2, 4, 32, 32)))
    with pytest.raises(InputShapeError, match="65535"):
        raw_shape(_DictFaces(torch.full((2, 1, 32, 32), 40000.0)))
    # RGB data for a gray model: converted by luma, with a note; the reverse is repeated.
    rgb = torch.rand(3, 3, 32, 32)
    dataset, spec, notes = model_inputs(gray, _DictFaces(rgb))
    assert spec.channels == 1 and any("BT.601" in n for n in notes)
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(dataset[1]["image"], luma[1], rtol=0, atol=1e-6)
    # A conflicting explicit value wins over the zero-bias config, with a note.
    model = load_model_spec("zerobias-synthfacs-8class")
    _, spec, notes = model_inputs(model, _faces(2), {"mean": "0.1"}, CLI_FLAGS)
    assert spec.mean == (0.1,) and any("--mean 0.1 overrides 0 from zero-bias config" in n for n in notes)


def test_fer2013_style_net_through_the_cli(tmp_path, capsys) -> None:
    from captum_fau.cli import main

    source = tmp_path / "fer_models.py"
    source.write_text(FER_NET)
    namespace: dict = {}
    exec(FER_NET, namespace)
    torch.manual_seed(0)
    weights = tmp_path / "w.safetensors"
    save_file(namespace["build"]().state_dict(), str(weights))
    out = tmp_path / "report"
    code = main(["analyze", "--model", f"{source}:build", "--checkpoint", str(weights), "--input-size", "48",
                 "--mean", "0.5", "--std", "0.5", "--data", "synthfacs:40", "--layer", "0.1.0.1", "--n", "3",
                 "--permutations", "10", "--bootstrap", "0", "--featured", "3", "--out", str(out), "-q"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = json.loads((out / "results.json").read_text())
    spec = results["params"]["input_spec"]
    assert spec["size"] == [48, 48] and spec["mean"] == [0.5] and spec["sources"]["size"] == "--input-size"
    assert spec["pixel_range"] == [0.0, 1.0] and spec["local_mean"] == 0
    assert results["summary"]["Input"].startswith("48x48 gray, pixels in [0,1], mean 0.5 std 0.5")
    assert "Input: 48x48 gray" in captured.out and "resized 96x96 -> 48x48" in captured.out
    manifest = json.loads((out / "analysis.json").read_text())
    assert manifest["params"]["input_spec"]["sources"]["mean"] == "--mean"


def test_preprocessor_config_beside_a_factory_checkpoint(tmp_path) -> None:
    source = tmp_path / "hub_model.py"
    source.write_text(
        textwrap.dedent("""
        from torch import nn
        def build():
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 7))
    """)
    )
    namespace: dict = {}
    exec(source.read_text(), namespace)
    save_file(namespace["build"]().state_dict(), str(tmp_path / "model.safetensors"))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "do_rescale": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "resample": 2, "rescale_factor": 1 / 255, "size": {"height": 32, "width": 32}}))  # fmt: skip
    model = load_model_spec(f"{source}:build", checkpoint=tmp_path / "model.safetensors")
    spec = resolve_input_spec(model, (1, 96, 96))
    assert (spec.size, spec.channels, spec.mean) == ((32, 32), 3, (0.5,) * 3)
    assert spec.sources["mean"] == "preprocessor_config.json"
    x = ModelInputs(_faces(2), spec)[0]["image"]
    assert x.shape == (3, 32, 32) and float(x.min()) >= -1 and float(x.max()) <= 1


def test_evaluate_feeds_an_rgb_model_through_its_spec(tmp_path, capsys) -> None:
    from captum_fau.cli import main
    from captum_fau.train.trainer import predict

    source = tmp_path / "rgb_eval.py"
    source.write_text(
        textwrap.dedent("""
        import torch
        from torch import nn
        def build():
            torch.manual_seed(1)
            return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7 * 7, 8))
    """)
    )
    classes = "neutral,anger,contempt,disgust,fear,happy,sadness,surprise"  # its outputs, named (never by index)
    code = main(
        [
            "evaluate",
            "--model",
            f"{source}:build",
            "--data",
            "synthfacs:16",
            "--input-size",
            "32",
            "--class-names",
            classes,
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "gray data repeated to 3 channels" in out and "size from --input-size" in out
    namespace: dict = {}
    exec(source.read_text(), namespace)
    model = namespace["build"]().eval()
    faces = load_synthfacs(16, seed=0)
    spec = resolve_input_spec(model, (1, 96, 96), {"size": 32})
    expected = model(spec.apply(faces.raw_images())).argmax(1).numpy()
    np.testing.assert_array_equal(predict(model, faces, input_spec=spec), expected)
    np.testing.assert_array_equal(predict(model, faces, input_spec={"size": 32}), expected)


def test_a_bare_faceset_is_scanned_as_the_zoo_model_was_trained() -> None:
    """TopNDeconv.top_n / FAUKL.interpret on a bare FaceSet feed the zoo model its recorded (replicate)
    local-mean padding, as analyze does, not the data's own zero padding."""
    from dataclasses import replace

    from captum_fau import zoo
    from captum_fau.stats.scan import scan

    model = zoo.load("zerobias-synthfacs-8class")
    faces = load_synthfacs(24, seed=3)
    assert faces.local_mean_padding == "zeros"
    bare = scan(model, "conv3", faces, progress=False).layers["conv3"].maxima
    trained = scan(model, "conv3", replace(faces, local_mean_padding="replicate").tensors(), progress=False)
    zeros = scan(model, "conv3", faces.tensors(), progress=False)
    torch.testing.assert_close(bare, trained.layers["conv3"].maxima, rtol=0, atol=0)
    assert not torch.equal(bare, zeros.layers["conv3"].maxima)


def test_a_bare_faceset_follows_a_timm_style_spec_and_warns_for_a_model_without_one() -> None:
    """scan() on a bare FaceSet: a model declaring pretrained_cfg sees its ImageNet-normalised RGB tensors;
    a model declaring nothing gets the reference preprocessing and a warning that says so and how to choose."""
    import warnings

    from captum_fau.data.input_spec import InputSpec
    from captum_fau.data.model_inputs import ModelInputs
    from captum_fau.stats.scan import scan

    faces = load_synthfacs(8, seed=1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    net.pretrained_cfg = {"input_size": (3, 64, 64), "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
                          "interpolation": "bilinear", "crop_pct": 1.0}  # fmt: skip
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bare = scan(net, "1", faces, progress=False).layers["1"].maxima
    spec = InputSpec(size=(64, 64), channels=3, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                     interpolation="bilinear", crop_pct=1.0, local_mean=0)  # fmt: skip
    expected = scan(net, "1", ModelInputs(faces, spec).tensors(), progress=False).layers["1"].maxima
    torch.testing.assert_close(bare, expected, rtol=0, atol=0)

    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval()
    with pytest.warns(UserWarning, match="declares no input spec.*reference preprocessing.*ModelInputs"):
        scan(plain, "1", faces, progress=False)


def test_the_one_forward_check_is_passed_on_to_the_scan(monkeypatch, zerobias) -> None:
    """model_inputs runs the forward check once on the first item; the scan takes the layer shapes from it."""
    from captum_fau.errors import LayerError
    from captum_fau.stats import accumulate
    from captum_fau.stats.scan import scan

    model = zerobias(num_classes=8, seed=0)
    dataset, _, _ = model_inputs(model, _faces(6), layers=["conv2"])
    check = dataset.forward_check
    assert check.input_shape == (1, 1, 96, 96) and check.output_shape == (1, 8)
    assert check.layer_shapes == {"conv2": (1, 128, 48, 48)}

    def no_second_probe(*_args, **_kwargs):
        raise AssertionError("the scan probed the layers again")

    monkeypatch.setattr(accumulate, "probe_layers", no_second_probe)
    result = scan(model, "conv2", dataset, top_n=2, batch_size=4, progress=False)
    assert result.layers["conv2"].maxima.shape == (6, 128)
    with pytest.raises(LayerError, match="not a feature map"):
        model_inputs(model, _faces(2), layers=["fc4"])
