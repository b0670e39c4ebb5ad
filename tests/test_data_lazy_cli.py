"""topn, evaluate and fau-kl on streamed folder data (--stream --workers 2) give what they give in memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers.real_formats import write_labelled_folder

from captum_fau.cli import main
from captum_fau.data.synthfacs import load_synthfacs


def _folder(root: Path) -> Path:
    return write_labelled_folder(root, load_synthfacs(24, seed=7), au_csv=root.parent / "aus.csv")


def test_topn_and_evaluate_on_streamed_data_equal_the_in_memory_runs(tmp_path: Path, capsys) -> None:
    data = f"folder:{_folder(tmp_path / 'faces')}"
    common = ["--model", "zerobias-synthfacs-8class", "--data", data, "--face-crop", "none", "--no-cache", "-q"]
    for mode in ("--no-stream", "--stream"):
        assert main(["topn", *common, mode, "--workers", "2", "--layer", "conv1", "--n", "2", "--filters", "0-7",
                     "--out", str(tmp_path / mode)]) == 0  # fmt: skip
    a, b = (load_file(str(tmp_path / mode / "topn.safetensors")) for mode in ("--no-stream", "--stream"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()
    tables = []
    for mode in ("--no-stream", "--stream"):
        out = tmp_path / f"eval{mode}.md"
        assert main(["evaluate", *common, mode, "--workers", "2", "--out", str(out)]) == 0
        tables.append(json.loads(out.with_suffix(".json").read_text())["folds"])
    assert tables[0] == tables[1]


@pytest.mark.slow
def test_fau_kl_on_streamed_data_equals_the_in_memory_run(tmp_path: Path) -> None:
    data = f"folder:{_folder(tmp_path / 'faces')}"
    common = ["--model", "zerobias-synthfacs-8class", "--data", data, "--face-crop", "none", "--no-cache", "-q"]
    for mode in ("--no-stream", "--stream"):
        assert (
            main(
                [
                    "fau-kl",
                    *common,
                    mode,
                    "--workers",
                    "2",
                    "--au-csv",
                    str(tmp_path / "aus.csv"),
                    "--layer",
                    "conv1",
                    "--permutations",
                    "20",
                    "--bootstrap",
                    "0",
                    "--out",
                    str(tmp_path / f"kl{mode}"),
                ]
            )
            == 0
        )
    kl = [(tmp_path / f"kl{mode}" / "faukl.csv").read_text() for mode in ("--no-stream", "--stream")]
    assert kl[0] == kl[1] and len(kl[0].splitlines()) > 10
