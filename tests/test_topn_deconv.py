"""TopNDeconv against Captum's neuron attributions on every model kind, crop and full paths."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerActivation, NeuronDeconvolution, NeuronGuidedBackprop
from torch import nn

from captum_fau import ZeroBiasCNN
from captum_fau.attr import TopNDeconv, TopNResult
from captum_fau.errors import AttributionError, ConfigError, DatasetError, LayerError

RTOL = 1e-4


class Mixed(nn.Module):
    """Biased convs, eval BatchNorm, an inplace ReLU, one ReLU module reused, and functional ReLUs."""

    def __init__(self, functional: bool = True) -> None:
        super().__init__()
        self.functional = functional
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.act_inplace = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.shared = nn.ReLU()
        self.conv3 = nn.Conv2d(8, 12, 3, padding=1, stride=2)
        self.conv4 = nn.Conv2d(12, 6, 3, padding=1)
        # Separate modules for Captum's reference model (it hooks modules only).
        self.r2, self.r3, self.r4, self.r5, self.r6 = nn.ReLU(), nn.ReLU(), nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act_inplace(self.bn1(self.conv1(x))))
        x = self.shared(self.conv2(x)) if self.functional else self.r2(self.conv2(x))
        x = self.shared(x + 0.1) if self.functional else self.r3(x + 0.1)  # the shared module, again
        x = F.relu(self.conv3(x)) if self.functional else self.r4(self.conv3(x))
        x = torch.relu(x) * 1.0 if self.functional else self.r5(x) * 1.0
        x = self.conv4(x)
        return x.relu().mean((2, 3)) if self.functional else self.r6(x).mean((2, 3))


def _no_inplace(model: nn.Module) -> nn.Module:
    """Captum's module hooks cannot handle inplace ReLUs; the math is the same without."""
    ref = copy.deepcopy(model)
    for module in ref.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return ref


def _captum_reference(
    ref_model: nn.Module, layer: nn.Module, x: torch.Tensor, filters: list[int], rule: str
) -> torch.Tensor:
    """Captum per (image, filter): neuron attribution at the spatial max, times the max."""
    cls = NeuronGuidedBackprop if rule == "guided" else NeuronDeconvolution
    method = cls(ref_model, layer)
    acts = LayerActivation(ref_model, layer).attribute(x)
    out = torch.zeros(x.shape[0], len(filters), *x.shape[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(x.shape[0]):
            for k, f in enumerate(filters):
                value, where = acts[b, f].flatten().max(0)
                h, w = divmod(int(where), acts.shape[3])
                out[b, k] = method.attribute(x[b : b + 1], neuron_selector=(f, h, w))[0] * value
    return out


def _hook_reference(
    ref_model: nn.Module, layer: nn.Module, x: torch.Tensor, filters: list[int], rule: str
) -> torch.Tensor:
    """The same rule through PyTorch's full backward hooks on every ReLU module.

    Captum's NeuronDeconvolution mis-routes the signal through two consecutive
    hooked ReLUs (as in ``Mixed``), so this independent reference checks that case.
    """

    def hook(_m: nn.Module, grad_in: tuple, grad_out: tuple) -> tuple:
        return ((grad_in[0] if rule == "guided" else grad_out[0]).clamp(min=0),)

    handles = [m.register_full_backward_hook(hook) for m in ref_model.modules() if isinstance(m, nn.ReLU)]
    captured: dict[str, torch.Tensor] = {}
    handles.append(layer.register_forward_hook(lambda _m, _i, o: captured.__setitem__("out", o)))
    out = torch.zeros(x.shape[0], len(filters), *x.shape[1:])
    try:
        for b in range(x.shape[0]):
            xb = x[b : b + 1].clone().requires_grad_(True)
            ref_model(xb)
            act = captured["out"]
            for k, f in enumerate(filters):
                value, where = act[0, f].detach().flatten().max(0)
                h, w = divmod(int(where), act.shape[3])
                grad = torch.zeros_like(act)
                grad[0, f, h, w] = value
                out[b, k] = torch.autograd.grad(act, xb, grad, retain_graph=True)[0][0]
    finally:
        for handle in handles:
            handle.remove()
    return out


def _relu_like_hook_reference(
    ref_model: nn.Module, layer: nn.Module, x: torch.Tensor, filters: list[int], rule: str
) -> torch.Tensor:
    """The ReLU-like rule through module hooks on every activation module (an independent mechanism):
    deconv relu(grad_out); guided relu(grad_out) * max(f'(input), 0)."""
    kinds = (nn.ReLU, nn.SiLU, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.ReLU6, nn.Hardtanh, nn.Tanh)
    inputs: dict[nn.Module, torch.Tensor] = {}

    def keep(module: nn.Module, args: tuple) -> None:
        inputs[module] = args[0].detach()

    def hook(module: nn.Module, _grad_in: tuple, grad_out: tuple) -> tuple:
        grad = grad_out[0].clamp(min=0)
        if rule == "guided":
            with torch.enable_grad():
                z = inputs[module].clone().requires_grad_(True)
                (slope,) = torch.autograd.grad(type(module).forward(module, z), z, torch.ones_like(z))  # no hooks
            grad = grad * slope.clamp(min=0)
        return (grad,)

    for module in ref_model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    acts = [m for m in ref_model.modules() if isinstance(m, kinds)]
    handles = [m.register_forward_pre_hook(keep) for m in acts] + [m.register_full_backward_hook(hook) for m in acts]
    captured: dict[str, torch.Tensor] = {}
    handles.append(layer.register_forward_hook(lambda _m, _i, o: captured.__setitem__("out", o)))
    out = torch.zeros(x.shape[0], len(filters), *x.shape[1:])
    try:
        for b in range(x.shape[0]):
            for k, f in enumerate(filters):
                xb = x[b : b + 1].clone().requires_grad_(True)
                ref_model(xb)
                act = captured["out"]
                value, where = act[0, f].detach().flatten().max(0)
                h, w = divmod(int(where), act.shape[3])
                grad = torch.zeros_like(act)
                grad[0, f, h, w] = value
                out[b, k] = torch.autograd.grad(act, xb, grad)[0][0]
    finally:
        for handle in handles:
            handle.remove()
    return out


def _assert_close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    for b in range(ref.shape[0]):
        for k in range(ref.shape[1]):
            scale = float(ref[b, k].abs().max()) or 1.0
            err = float((ours[b, k] - ref[b, k]).abs().max()) / scale
            assert err <= RTOL, f"image {b} filter {k}: relative error {err:.2e}"


def ref_layer_of(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name)


def _timm(name: str) -> nn.Module:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False).eval()


def _cases() -> list[tuple[str, nn.Module, nn.Module, str, nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    zb = ZeroBiasCNN(img_size=32).eval()
    mixed = Mixed().eval()
    mixed.bn1.running_mean.uniform_(-0.5, 0.5)
    mixed.bn1.running_var.uniform_(0.5, 2.0)
    mixed.bn1.weight.data.uniform_(0.5, 1.5)
    mixed_ref = Mixed(functional=False).eval()
    mixed_ref.load_state_dict(mixed.state_dict())
    resnet = _timm("resnet18")
    vgg = _timm("vgg11")
    effnet = _timm("efficientnet_b0")
    return [
        ("zerobias", zb, zb, "conv3", zb.conv3, torch.randn(2, 1, 32, 32)),
        ("mixed", mixed, mixed_ref, "conv4", mixed_ref.conv4, torch.randn(2, 3, 16, 16)),
        ("resnet18", resnet, _no_inplace(resnet), "layer2.0.conv2", None, torch.randn(1, 3, 32, 32)),
        ("vgg11", vgg, _no_inplace(vgg).features, "features.8", None, torch.randn(1, 3, 32, 32)),
        ("efficientnet_b0", effnet, _no_inplace(effnet), "blocks.2.0", None, torch.randn(1, 3, 32, 32)),
    ]


CASES = _cases()


# Both rules on the small models; the timm models (slower) check guided backpropagation.
RULE_CASES = [
    (case, rule)
    for case in CASES
    for rule in (("guided", "deconv") if case[0] in ("zerobias", "mixed") else ("guided",))
]


@pytest.mark.parametrize(("case", "rule"), RULE_CASES, ids=[f"{c[0]}-{r}" for c, r in RULE_CASES])
def test_attribute_matches_captum_crop_and_full(case: tuple, rule: str) -> None:
    name, model, ref_model, layer, ref_layer, x = case
    if ref_layer is None:
        ref_layer = ref_model.get_submodule(layer.removeprefix("features.") if name == "vgg11" else layer)
    filters = [0, 3]
    topn = TopNDeconv(model, layer, rule=rule)
    if name == "efficientnet_b0":
        # SiLU and the squeeze-excitation's sigmoid would keep their plain gradient: refused ...
        with pytest.raises(AttributionError, match=r"SiLU.*relu_like=True"):
            topn.attribute(x, filters=filters)
        # ... unless opted in; the rule then acts on them as on ReLUs.
        topn = TopNDeconv(model, layer, rule=rule, relu_like=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crop = topn.attribute(x, filters=filters)
        full = topn.attribute(x, filters=filters, full_image=True)
    if name == "efficientnet_b0":
        hook_model = copy.deepcopy(ref_model)
        ref = _relu_like_hook_reference(hook_model, ref_layer_of(hook_model, layer), x, filters, rule)
    else:
        ref = _captum_reference(ref_model, ref_layer, x, filters, rule)
    if name == "mixed" and rule == "deconv":
        assert float((crop - ref).abs().max()) > 1e-3 * float(ref.abs().max())  # Captum's known misrouting
        hook_model = _no_inplace(ref_model)
        ref = _hook_reference(hook_model, ref_layer_of(hook_model, "conv4"), x, filters, rule)
    assert crop.shape == (x.shape[0], 2, *x.shape[1:])
    _assert_close(crop, ref)
    _assert_close(full, ref)


def test_receptive_fields_local_for_convnets_and_global_with_squeeze_excite() -> None:
    zb = CASES[0][1]
    fields = TopNDeconv(zb, "conv3").receptive_fields((1, 32, 32), (8, 8))
    assert fields.local and fields.stride == (4, 4)
    assert fields.rows[0].tolist() == [0, 17] and fields.rows[7].tolist() == [14, 31]  # clamped to the border
    big = TopNDeconv(ZeroBiasCNN(img_size=96).eval(), "conv3").receptive_fields((1, 96, 96), (24, 24))
    assert (
        big.size == (32, 32)
        and big.rows[10].tolist() == [26, 57]
        and big.rows[0].tolist() == [0, 17]
        and big.rows[23].tolist() == [78, 95]
    )
    effnet = CASES[4][1]
    se = TopNDeconv(effnet, "blocks.2.0").receptive_fields((3, 32, 32), (4, 4))
    assert se.size == (32, 32)  # squeeze-excitation makes every unit see the whole image


class SizeCheckedNet(nn.Module):
    """Not a ZeroBiasCNN, but it refuses inputs other than 32x32 unless ``strict_size`` is off."""

    def __init__(self) -> None:
        super().__init__()
        self.strict_size = True
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2, bias=False)
        self.conv2 = nn.Conv2d(6, 8, 5, padding=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.strict_size and x.shape[-2:] != (32, 32):
            raise ValueError(f"expected 32x32 inputs, got {tuple(x.shape[-2:])}")
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return F.relu(self.conv2(x)).amax((2, 3))


def test_any_model_with_strict_size_gets_the_crop_path() -> None:
    torch.manual_seed(3)
    model = SizeCheckedNet().eval()
    x = torch.randn(3, 1, 32, 32)
    topn = TopNDeconv(model, "conv2", rule="guided")
    fields = topn.receptive_fields((1, 32, 32), (16, 16))
    assert fields.local and fields.size == (14, 14)  # crops, not the whole image
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no crop falls back to the full image
        crop = topn.attribute(x, filters=[0, 5])
    full = topn.attribute(x, filters=[0, 5], full_image=True)
    _assert_close(crop, full)
    assert model.strict_size is True  # restored afterwards
    with pytest.raises(ValueError, match="32x32"):
        model(torch.randn(1, 1, 14, 14))


def test_top_n_matches_brute_force_and_captum() -> None:
    torch.manual_seed(1)
    model = ZeroBiasCNN(img_size=32).eval()
    data = torch.randn(14, 1, 32, 32)
    topn = TopNDeconv(model, model.conv3, rule="guided")
    res = topn.top_n(data, n=3, filters=[1, 5, 9], batch_size=4, full_maps=True, progress=False)
    acts = LayerActivation(model, model.conv3).attribute(data)
    maxima = acts.flatten(2).max(2).values
    assert torch.equal(res.indices, maxima.topk(3, dim=0).indices.T[[1, 5, 9]])
    assert torch.allclose(res.values, maxima.topk(3, dim=0).values.T[[1, 5, 9]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ngb = NeuronGuidedBackprop(model, model.conv3)
        for row, f in enumerate([1, 5, 9]):
            for k in range(3):
                h, w = res.positions[row, k].tolist()
                i = int(res.indices[row, k])
                ref = ngb.attribute(data[i : i + 1], neuron_selector=(f, h, w))[0] * res.values[row, k]
                scale = float(ref.abs().max())
                assert float((res.full_maps[row, k] - ref).abs().max()) <= RTOL * scale
                y0, x0, y1, x1 = res.boxes[row, k].tolist()
                assert float((res.patches[row, k] - ref[:, y0:y1, x0:x1]).abs().max()) <= RTOL * scale
                assert torch.equal(res.image_patches[row, k], data[i][:, y0:y1, x0:x1])
    full = topn.top_n(data, n=3, filters=[1, 5, 9], batch_size=4, progress=False, full_image=True)
    assert float((full.patches - res.patches).abs().max()) <= RTOL * float(res.patches.abs().max())


def test_save_load_and_plot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(2)
    model = ZeroBiasCNN(img_size=32).eval()
    res = TopNDeconv(model, "conv3", rule="deconv").top_n(
        torch.randn(6, 1, 32, 32), n=2, filters=[0, 1], progress=False
    )
    back = TopNResult.load(res.save(tmp_path / "out"))
    assert back.layer == "conv3" and back.rule == "deconv" and torch.equal(back.patches, res.patches)
    assert torch.equal(back.indices, res.indices) and back.meta["map_size"] == [8, 8]
    fig = res.plot([1, 0], show="both", path=tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0 and len(fig.axes) == 2 * 2 * 2
    with pytest.raises(ConfigError):
        res.plot([7])


def test_bad_input_and_dead_filter() -> None:
    torch.manual_seed(3)
    model = ZeroBiasCNN(img_size=32).eval()
    data = torch.randn(5, 1, 32, 32)
    with pytest.raises(LayerError, match="conv3"):
        TopNDeconv(model, "conv7")
    with pytest.raises(LayerError, match="not a \\[B, C, H, W\\]"):
        TopNDeconv(model, "fc4").top_n(data, n=2, progress=False)
    topn = TopNDeconv(model, "conv3")
    with pytest.raises(DatasetError, match="only 5"):
        topn.top_n(data, n=6, progress=False)
    with pytest.raises(ConfigError, match="out of range"):
        topn.top_n(data, n=2, filters=[0, 256], progress=False)
    with pytest.raises(ConfigError, match="out of range"):
        topn.attribute(data, filters=[-1])
    with pytest.raises(DatasetError, match="empty"):
        topn.top_n(torch.zeros(0, 1, 32, 32), n=2, progress=False)
    with pytest.raises(ConfigError, match="Unknown rule"):
        TopNDeconv(model, "conv3", rule="lrp-z")
    with torch.no_grad():
        model.conv3.weight[4] = 0.0
    model.train()
    with pytest.warns(UserWarning) as record:
        res = topn.top_n(data, n=2, filters=[3, 4], progress=False)
    messages = " ".join(str(w.message) for w in record)
    assert "eval mode" in messages and "dead" in messages
    assert model.training and res.dead == [4] and float(res.patches[1].abs().max()) == 0.0


def test_cli_topn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from captum_fau.cli._options import parse_filters
    from captum_fau.cli import main

    torch.manual_seed(4)
    ZeroBiasCNN().eval().save_pretrained(tmp_path / "model")
    out = tmp_path / "topn"
    code = main(
        [
            "topn",
            "--model",
            str(tmp_path / "model"),
            "--data",
            "synthfacs:12",
            "--n",
            "2",
            "--filters",
            "0-2",
            "--rule",
            "deconv",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    res = TopNResult.load(out)
    assert res.filters.tolist() == [0, 1, 2] and res.rule == "deconv" and (out / "topn.png").is_file()
    assert parse_filters("3,5-7") == [3, 5, 6, 7] and parse_filters("all") is None
    assert (
        main(
            [
                "topn",
                "--model",
                str(tmp_path / "model"),
                "--data",
                "synthfacs:12",
                "--layer",
                "nope",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 2
    )


def test_options_object_and_keywords_give_the_same_result() -> None:
    from captum_fau.attr import TopNOptions

    torch.manual_seed(4)
    model = ZeroBiasCNN(img_size=32).eval()
    data = torch.randn(6, 1, 32, 32)
    topn = TopNDeconv(model, "conv2")
    by_keywords = topn.top_n(data, n=2, filters=[0, 3], batch_size=4, progress=False)
    by_options = topn.top_n(data, TopNOptions(n=2, filters=[0, 3], batch_size=4, progress=False))
    positional_n = topn.top_n(data, 2, filters=[0, 3], batch_size=4, progress=False)
    mixed = topn.top_n(data, TopNOptions(n=5, filters=[0, 3]), n=2, batch_size=4, progress=False)
    for other in (by_options, positional_n, mixed):
        assert torch.equal(other.indices, by_keywords.indices) and torch.equal(other.patches, by_keywords.patches)
    with pytest.raises(ConfigError, match="not TopNOptions fields"):
        topn.top_n(data, n=2, top=3, progress=False)
    with pytest.raises(ConfigError, match="TopNOptions"):
        topn.top_n(data, {"n": 2})
