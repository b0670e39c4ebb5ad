"""The command line's contract: fast, lazy parser; every help has an example and no markup;
one meaning per option; every command that takes a model takes every model form."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from captum_fau.cli import build_parser, main

HEAVY = ("torch", "timm", "matplotlib", "scipy")
MARKUP = re.compile(r"``|:(class|func|mod|meth|data|attr):|::")

NET_SOURCE = """
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 6, 5, padding=2)
            self.head = nn.Linear(6, 8)
        def forward(self, x):
            return self.head(F.relu(self.conv(x)).amax(dim=(2, 3)))

    def build():
        torch.manual_seed(0)
        return Net()
"""


def _subcommand_parsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(command path, parser) for every command and nested subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subcommand_parsers(sub, (*prefix, name))


def test_building_the_parser_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom captum_fau.cli import build_parser\nbuild_parser()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_captum_fau_is_lazy_and_complete() -> None:
    code = (
        "import sys, captum_fau\nheavy = sorted(m for m in ('torch', 'timm', 'matplotlib', 'scipy') if m in sys.modules)\n"
        "assert set(captum_fau.__all__) <= set(dir(captum_fau)), dir(captum_fau)\n"
        "values = {name: getattr(captum_fau, name) for name in captum_fau.__all__}\n"
        "print(heavy, callable(values['analyze']), values['ZeroBiasCNN'].__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True", "ZeroBiasCNN"]


def test_analyze_is_callable_whichever_import_comes_first(tmp_path: Path) -> None:
    import captum_fau.analyze  # noqa: F401  (the submodule now shadows the lazy name)
    from captum_fau import AnalysisConfig, analyze

    with pytest.raises(Exception, match="n must be an integer"):
        analyze("zerobias-synthfacs-8class", "synthfacs:4", AnalysisConfig(out=tmp_path), n=0)


def test_every_help_has_an_example_and_no_markup() -> None:
    parsers = [((), build_parser()), *_subcommand_parsers(build_parser())]
    assert {path for path, _ in parsers} >= {
        ("analyze",), ("demo",), ("zoo",), ("zoo", "list"), ("zoo", "info"), ("data",), ("data", "describe"),
        ("data", "synthfacs"), ("fau-kl",), ("train",), ("evaluate",), ("topn",),
    }  # fmt: skip
    for path, parser in parsers:
        text = parser.format_help()
        assert "example:\n  captum-fau " in text or "example:\n  captum-fau" in text, path
        assert not MARKUP.search(text), (path, MARKUP.search(text))


def test_options_only_where_they_act_and_one_meaning() -> None:
    commands = dict(_subcommand_parsers(build_parser()))

    def flags(path: tuple[str, ...]) -> set[str]:
        return {s for a in commands[path]._actions for s in a.option_strings}

    assert not flags(("data", "describe")) & {"--device", "--seed"}
    assert not flags(("zoo", "list")) & {"--device", "--seed", "--quiet"}
    for path in (("analyze",), ("topn",), ("fau-kl",), ("evaluate",)):
        assert {"--model", "--checkpoint", "--data", "--device"} <= flags(path), path
    for path in (("topn",), ("fau-kl",)):
        assert {"--filters", "--featured"} <= flags(path), path
    parser = build_parser()
    args = parser.parse_args(["fau-kl", "--model", "m", "--data", "synthfacs:8", "--out", "o", "--filters", "3,5-6"])
    assert args.filters == "3,5-6" and args.featured == 10
    assert parser.parse_args(["topn", "--model", "m", "--data", "d", "--out", "o"]).featured == 16


def test_cli_choices_match_the_library() -> None:
    from captum_fau.attr.rules import RULES
    from captum_fau.cli import _options
    from captum_fau.cli.data import SYNTHFACS_MODES
    from captum_fau.cli.train import FC4_INITS, SELECTIONS, VARIANTS
    from captum_fau.models.zerobias import FC4_INIT_CHOICES
    from captum_fau.data.synthfacs import MODES
    from captum_fau.train import protocols, trainer

    assert _options.RULES == RULES and SYNTHFACS_MODES == MODES
    assert VARIANTS == tuple(protocols.ABLATIONS) and SELECTIONS == trainer.SELECTIONS
    assert FC4_INITS == FC4_INIT_CHOICES


def test_parse_filters() -> None:
    from captum_fau.cli._options import parse_filters
    from captum_fau.errors import ConfigError

    assert parse_filters("3,5-7") == [3, 5, 6, 7] and parse_filters(None) is None and parse_filters("all") is None
    with pytest.raises(ConfigError, match="3,17,20-23"):
        parse_filters("three")


def test_topn_and_evaluate_take_a_module_factory_model(tmp_path: Path, capsys) -> None:
    source = tmp_path / "expr_model.py"
    source.write_text(textwrap.dedent(NET_SOURCE))
    spec = f"{source}:build"
    out = tmp_path / "topn"
    assert main(["topn", "--model", spec, "--layer", "conv", "--data", "synthfacs:8", "--n", "2",
                 "--featured", "3", "--out", str(out), "-q"]) == 0  # fmt: skip
    from captum_fau.attr import TopNResult

    assert TopNResult.load(out).indices.shape == (6, 2) and (out / "topn.png").is_file()
    # a plain module declares no class names: evaluate says so instead of scoring by index
    assert main(["evaluate", "--model", spec, "--data", "synthfacs:16", "-q"]) != 0
    assert "--class-names" in capsys.readouterr().err
    names = "neutral,anger,contempt,disgust,fear,happy,sadness,surprise"
    assert main(["evaluate", "--model", spec, "--data", "synthfacs:16", "--class-names", names, "-q"]) == 0
    assert "Confusion matrix" in capsys.readouterr().out


def test_fau_kl_takes_a_zoo_architecture_with_other_weights(tmp_path: Path, capsys) -> None:
    from safetensors.torch import save_file

    from captum_fau.concept import FAUKLResult
    from captum_fau.models import ZeroBiasCNN

    torch.manual_seed(1)
    weights = tmp_path / "w.safetensors"
    save_file(ZeroBiasCNN().state_dict(), str(weights))
    out = tmp_path / "fk"
    code = main(["fau-kl", "--model", "zerobias-synthfacs-8class", "--checkpoint", str(weights), "--data",
                 "synthfacs:48", "--layer", "conv2", "--out", str(out), "--bins", "4", "--permutations", "10",
                 "--bootstrap", "0", "--filters", "3,5", "-q"])  # fmt: skip
    assert code == 0
    table = (out / "table4.txt").read_text().splitlines()
    rows = [line.split()[0] for line in table if re.match(r"^\s*\d+\s", line)]
    assert rows == ["3", "5"]
    assert FAUKLResult.load(out / "faukl.safetensors").kl.shape[0] == 128
    capsys.readouterr()
    assert main(["fau-kl", "--model", str(weights), "--data", "synthfacs:8", "--out", str(out), "-q"]) == 2
    assert "Accepted forms" in capsys.readouterr().err


def test_topn_and_fau_kl_adapt_the_inputs_to_a_three_channel_model(tmp_path: Path, capsys) -> None:
    source = tmp_path / "rgb_model.py"
    source.write_text(textwrap.dedent(NET_SOURCE).replace("nn.Conv2d(1, 6", "nn.Conv2d(3, 6"))
    spec = f"{source}:build"
    assert main(["topn", "--model", spec, "--layer", "conv", "--data", "synthfacs:8", "--n", "2",
                 "--out", str(tmp_path / "topn"), "-q"]) == 0  # fmt: skip
    assert "repeated to 3 channels" in capsys.readouterr().out
    assert main(["fau-kl", "--model", spec, "--layer", "conv", "--data", "synthfacs:48", "--bins", "4",
                 "--permutations", "10", "--bootstrap", "0", "--out", str(tmp_path / "fk"), "-q"]) == 0  # fmt: skip
    assert "repeated to 3 channels" in capsys.readouterr().out
    assert (tmp_path / "fk" / "table4.txt").is_file()
