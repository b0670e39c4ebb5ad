"""Non-ReLU activations: deconv/guided refuse them unless relu_like=True; gradient always works."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from captum_fau.attr import TopNDeconv
from captum_fau.attr.rules import ReluRuleMode, find_non_relu_activations
from captum_fau.errors import AttributionError


class Gated(nn.Module):
    """A user module whose forward calls activations functionally."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.conv(x)) * torch.sigmoid(x)


class Busy(nn.Module):
    """Module activations in nested Sequentials, functional ones in forward, and some after the layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.Sequential(nn.GELU(), nn.Conv2d(4, 4, 3, padding=1))
        )
        self.block = nn.Sequential(nn.LeakyReLU(0.1), Gated())
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Sequential(nn.Tanh(), nn.Conv2d(4, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.stem(x)).clamp(0, 6)
        return self.head(self.conv(x))


class ReluOnly(nn.Module):
    """Inplace ReLUs inside nested Sequentials plus functional ReLUs; a GELU only after the layer."""

    def __init__(self, act: str = "relu") -> None:
        super().__init__()
        self.act = act
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1))
        )
        self.conv = nn.Conv2d(4, 3, 3, padding=1)
        self.after = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = F.relu(x) if self.act == "relu" else x.clamp(0, 6) if self.act == "clamp" else x.clamp_(0, 6)
        return self.after(self.conv(x))


def _x(seed: int = 0, size: int = 12) -> torch.Tensor:
    return torch.randn(2, 1, size, size, generator=torch.Generator().manual_seed(seed))


def test_probe_names_modules_and_functional_calls_up_to_the_layer() -> None:
    model = Busy().eval()
    report = find_non_relu_activations(model, model.conv, _x())
    assert report.modules == ["stem.1.0 (GELU)", "block.0 (LeakyReLU)"]
    assert report.functions == [
        "silu() in block.1 (Gated)",
        "sigmoid() in block.1 (Gated)",
        "clamp() in <model> (Busy)",
    ]
    # Tanh and the head run after conv: not part of the analysed computation.
    assert "Tanh" not in report.describe()
    # Stopping earlier sees less.
    early = find_non_relu_activations(model, model.stem[1][1], _x())
    assert early.modules == ["stem.1.0 (GELU)"] and not early.functions


@pytest.mark.parametrize("rule", ["deconv", "guided"])
def test_relu_rules_refuse_non_relu_activations(rule: str) -> None:
    model = Busy().eval()
    topn = TopNDeconv(model, "conv", rule=rule)
    with pytest.raises(AttributionError) as err:
        topn.attribute(_x(), filters=[0])
    message = str(err.value)
    for name in ("GELU", "LeakyReLU", "silu()", "sigmoid()", "clamp()", "relu_like=True", "rule='gradient'", "'conv'"):
        assert name in message, name
    # top_n refuses before scanning the data.
    with pytest.raises(AttributionError, match="LeakyReLU"):
        TopNDeconv(model, "conv", rule=rule).top_n(_x(1), n=1, progress=False)


def test_gradient_always_works_and_equals_autograd() -> None:
    model = Busy().eval()
    x = _x()
    out = TopNDeconv(model, "conv", rule="gradient").attribute(x, filters=[1], full_image=True)
    # Independent: plain autograd at each image's strongest unit, scaled by its value.
    for b in range(2):
        xb = x[b : b + 1].clone().requires_grad_(True)
        captured: list[torch.Tensor] = []
        handle = model.conv.register_forward_hook(lambda _m, _i, o: captured.append(o))
        model(xb)
        handle.remove()
        act = captured[0][0, 1]
        value, where = act.detach().flatten().max(0)
        grad = torch.zeros_like(captured[0])
        grad[0, 1].view(-1)[where] = value
        (ref,) = torch.autograd.grad(captured[0], xb, grad)
        torch.testing.assert_close(out[b, 0], ref[0], rtol=1e-4, atol=1e-6)


def test_relu_only_models_are_accepted_and_opting_in_warns() -> None:
    torch.manual_seed(0)
    model = ReluOnly().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning, no error for plain ReLUs (inplace, nested, functional)
        TopNDeconv(model, "conv", rule="guided").attribute(_x(), filters=[0])
    with pytest.warns(UserWarning, match="changes nothing"):
        TopNDeconv(model, "conv", rule="deconv", relu_like=True).attribute(_x(), filters=[0])
    with pytest.warns(UserWarning, match="no effect with rule='gradient'"):
        TopNDeconv(model, "conv", rule="gradient", relu_like=True).attribute(_x(), filters=[0])


@pytest.mark.parametrize("rule", ["deconv", "guided"])
@pytest.mark.parametrize("act", ["clamp", "clamp_"])
def test_relu_like_clamp_acts_as_relu(rule: str, act: str) -> None:
    # With pre-activations below 6, clamp(0, 6) is a ReLU; the opted-in rule must give the ReLU's result.
    torch.manual_seed(3)
    relu_model = ReluOnly("relu").eval()
    clamp_model = ReluOnly(act).eval()
    clamp_model.load_state_dict(relu_model.state_dict())
    x = _x(2) * 0.5
    with torch.no_grad():
        assert float(relu_model.features(x).max()) < 6
    ref = TopNDeconv(relu_model, "conv", rule=rule).attribute(x, filters=[0, 2])
    with pytest.raises(AttributionError, match=r"clamp"):
        TopNDeconv(clamp_model, "conv", rule=rule).attribute(x, filters=[0, 2])
    ours = TopNDeconv(clamp_model, "conv", rule=rule, relu_like=True).attribute(x, filters=[0, 2])
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    assert float(ref.abs().max()) > 0


@pytest.mark.parametrize("inplace", [False, True])
def test_relu_like_leaky_relu_by_hand(inplace: bool) -> None:
    torch.manual_seed(4)
    conv1, conv2 = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 2, 3, padding=1)
    model = nn.Sequential(conv1, nn.LeakyReLU(0.2, inplace=inplace), conv2).eval()
    x = _x(5, size=8)[:1]
    for rule in ("deconv", "guided"):
        ours = TopNDeconv(model, model[2], rule=rule, relu_like=True).attribute(x, filters=[1], full_image=True)[0, 0]
        # By hand: the unit's signal back through conv2, rectified, gated by max(f'(pre), 0) for guided,
        # then back through conv1.
        pre = conv1(x).detach()
        out = conv2(F.leaky_relu(pre, 0.2)).detach()
        value, where = out[0, 1].flatten().max(0)
        seed = torch.zeros_like(out)
        seed[0, 1].view(-1)[where] = value
        z = F.leaky_relu(pre, 0.2).requires_grad_(True)
        (signal,) = torch.autograd.grad(conv2(z), z, seed)
        signal = signal.clamp(min=0)
        if rule == "guided":
            signal = signal * torch.where(pre > 0, 1.0, 0.2)
        xx = x.clone().requires_grad_(True)
        (ref,) = torch.autograd.grad(conv1(xx), xx, signal)
        torch.testing.assert_close(ours, ref[0], rtol=1e-5, atol=1e-6)
    # The opted-in rule is not the plain gradient (which lets the negative signal through).
    plain = TopNDeconv(model, model[2], rule="gradient").attribute(x, filters=[1], full_image=True)[0, 0]
    assert float((plain - ours).abs().max()) > 1e-4


def test_rule_mode_counts_relu_like_calls() -> None:
    x = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    with ReluRuleMode("guided", relu_like=True) as mode:
        y = F.gelu(x)
    (g,) = torch.autograd.grad(y, x, torch.tensor([1.0, -1.0, 1.0]))
    assert mode.relu_like_calls == 1 and mode.relu_calls == 0
    slope = torch.autograd.functional.jacobian(F.gelu, x.detach()).diagonal()
    torch.testing.assert_close(g, torch.tensor([1.0, 0.0, 1.0]) * slope.clamp(min=0))
