"""Model specs: zoo names, Hub folders, timm:NAME + checkpoint, module:factory; each one's input spec."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from captum_fau import ZeroBiasCNN
from captum_fau.errors import UnknownModelError, WeightsError
from captum_fau.zoo.resolve import declared_input_spec, load_model_spec, resolve_input_spec


def test_hub_folder(tmp_path) -> None:
    m = ZeroBiasCNN(num_classes=6).eval()
    m.save_pretrained(tmp_path)
    loaded = load_model_spec(str(tmp_path))
    assert isinstance(loaded, ZeroBiasCNN) and not loaded.training
    x = torch.randn(1, 1, 96, 96)
    torch.testing.assert_close(loaded(x), m(x))
    spec = resolve_input_spec(loaded, (1, 96, 96))
    assert (spec.channels, spec.size, spec.local_mean) == (1, (96, 96), 5)


def test_timm_with_checkpoint(tmp_path) -> None:
    import timm

    torch.manual_seed(0)
    ref = timm.create_model("resnet18", pretrained=False, num_classes=7).eval()
    ckpt = tmp_path / "resnet.safetensors"
    save_file(ref.state_dict(), str(ckpt))
    loaded = load_model_spec("timm:resnet18", checkpoint=ckpt, num_classes=7)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(loaded(x), ref(x))
    spec = resolve_input_spec(loaded, (1, 96, 96))
    assert (spec.channels, spec.size) == (3, (224, 224)) and spec.sources["size"] == "timm pretrained_cfg"
    with pytest.raises(WeightsError, match="does not match"):
        load_model_spec("timm:resnet18", checkpoint=ckpt, num_classes=5)
    with pytest.raises(UnknownModelError, match="timm has no model"):
        load_model_spec("timm:not_a_model")


def test_module_factory_from_file(tmp_path) -> None:
    source = tmp_path / "my_models.py"
    source.write_text(
        textwrap.dedent("""
        from torch import nn
        def build():
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        NOT_CALLABLE = 3
    """)
    )
    model = load_model_spec(f"{source}:build")
    assert isinstance(model, nn.Sequential) and not model.training
    declared = declared_input_spec(model)
    assert declared is not None and declared.channels == 3 and declared.size is None
    spec = resolve_input_spec(model, (1, 96, 96))  # global pooling: runs at the data's size
    assert (spec.channels, spec.size, spec.sources["size"]) == (3, (96, 96), "probe")
    with pytest.raises(UnknownModelError, match="no callable 'NOT_CALLABLE'"):
        load_model_spec(f"{source}:NOT_CALLABLE")
    sys.path.insert(0, str(tmp_path))
    try:
        assert isinstance(load_model_spec("my_models:build"), nn.Sequential)
    finally:
        sys.path.remove(str(tmp_path))


def test_pickled_checkpoint_refused(tmp_path) -> None:
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"\x80\x04")
    with pytest.raises(WeightsError, match="never unpickles"):
        load_model_spec("timm:resnet18", checkpoint=bad)


@pytest.mark.parametrize("spec", ["", "no-such-zoo-model", "nowhere_module_xyz:factory"])
def test_unknown_specs_list_accepted_forms(spec: str) -> None:
    with pytest.raises(UnknownModelError) as err:
        load_model_spec(spec)
    assert "zoo name" in str(err.value) or "Cannot import" in str(err.value)


def test_module_factory_resolves_from_the_current_directory(tmp_path) -> None:
    """As under ``python -m``: a module in the current directory imports even when the process was
    started by a script elsewhere (as the ``captum-fau`` console script is); import errors say where."""
    import subprocess

    work = tmp_path / "work"
    (work / "mypkg").mkdir(parents=True)
    (work / "mypkg" / "__init__.py").write_text("")
    (work / "mypkg" / "nets.py").write_text("from torch import nn\ndef build():\n    return nn.Linear(2, 3)\n")
    (work / "broken.py").write_text("import not_installed_dependency_xyz\ndef build():\n    pass\n")
    runner = tmp_path / "elsewhere" / "runner.py"
    runner.parent.mkdir()
    runner.write_text(
        textwrap.dedent("""
        import sys
        assert "" not in sys.path and sys.path[0].endswith("elsewhere")
        from captum_fau.errors import UnknownModelError
        from captum_fau.zoo.resolve import load_model_spec
        print(type(load_model_spec("mypkg.nets:build")).__name__)
        try:
            load_model_spec("broken:build")
        except UnknownModelError as err:
            print(err)
    """)
    )
    done = subprocess.run([sys.executable, str(runner)], cwd=work, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, message = done.stdout.split("\n", 1)
    assert first == "Linear"
    assert "Cannot import module 'broken'" in message and str(work) in message
    assert "ModuleNotFoundError: No module named 'not_installed_dependency_xyz'" in message
