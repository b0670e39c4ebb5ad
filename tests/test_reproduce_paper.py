"""scripts/reproduce_paper.py end to end on fabricated CK+ and TFD files (tiny budget)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from captum_fau.models.zerobias import ZeroBiasCNN
from captum_fau.train.protocols import run_seed
from helpers.real_formats import CKSequence, make_ckplus_tree, write_tfd_mat

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_paper.py"


def _script():
    spec = importlib.util.spec_from_file_location("reproduce_paper", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--iterations", "2", "--checkpoint-every", "1", "--batch-size", "4", "--variants", "plain", "+AD", "--quiet"]


def test_tfd_end_to_end(tmp_path: Path) -> None:
    mat = tmp_path / "TFD_96x96.mat"
    write_tfd_mat(mat, count=140, unlabelled=5, seed=3)
    out, zoo = tmp_path / "repro", tmp_path / "zoo"
    rc = _script().main(["--tfd", str(mat), "--out", str(out), "--zoo", str(zoo), "--folds", "0", "1", *TINY])
    assert rc == 0
    table = json.loads((out / "tables" / "tfd.json").read_text())
    assert set(table["summary"]) == {"plain", "+AD"} and len(table["folds"]) == 4
    assert "Zero-bias CNN +AD" in (out / "tables" / "tfd.md").read_text()
    model_dir = zoo / "zerobias-tfd-7class"
    for name in ("config.json", "model.safetensors", "metrics.json", "training_log.jsonl"):
        assert (model_dir / name).is_file(), name
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["iterations"] == 2 and len(metrics["fold_accuracies"]) == 2
    model = ZeroBiasCNN.from_pretrained(str(model_dir))
    assert model.num_classes == 7
    # Every run has its own recorded seed (and so its own init scale k).
    seeds = {(f["variant"], f["fold"]): f["extra"]["seed"] for f in table["folds"]}
    assert seeds == {(v, k): run_seed(0, v, k) for v in ("plain", "+AD") for k in (0, 1)}
    assert metrics["fold_seeds"] == {"0": run_seed(0, "+AD", 0), "1": run_seed(0, "+AD", 1)}
    assert metrics["exported_fold_seed"] == metrics["fold_seeds"][str(metrics["exported_fold"])]
    assert metrics["fold_init_k"]["0"] != metrics["fold_init_k"]["1"]
    assert model.init_k == pytest.approx(metrics["fold_init_k"][str(metrics["exported_fold"])])
    assert metrics["recipe"]["fc4_init"] == "fan_in"


def test_fc4_init_reference_reaches_the_models(tmp_path: Path) -> None:
    mat = tmp_path / "TFD_96x96.mat"
    write_tfd_mat(mat, count=140, unlabelled=5, seed=3)
    out, zoo = tmp_path / "repro", tmp_path / "zoo"
    tiny = ["--iterations", "1", "--checkpoint-every", "1", "--batch-size", "4", "--variants", "+AD", "--quiet"]
    rc = _script().main(
        ["--tfd", str(mat), "--out", str(out), "--zoo", str(zoo), "--folds", "0", "--fc4-init", "reference", *tiny]
    )
    assert rc == 0
    model_dir = zoo / "zerobias-tfd-7class"
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["recipe"]["fc4_init"] == "reference"
    assert ZeroBiasCNN.from_pretrained(str(model_dir)).fc4_init == "reference"


def test_ckplus_end_to_end(tmp_path: Path) -> None:
    # 10 subjects x 7 labelled sequences: every class is trained in every fold
    sequences = [
        CKSequence(subject=f"S{100 + s:03d}", sequence=f"{label:03d}", label=label, frames=4, landmarks=False)
        for s in range(10)
        for label in range(1, 8)
    ]
    make_ckplus_tree(tmp_path / "ck", sequences)
    out, zoo = tmp_path / "repro", tmp_path / "zoo"
    rc = _script().main(["--ckplus", str(tmp_path / "ck"), "--out", str(out), "--zoo", str(zoo), "--folds", "0", *TINY])
    assert rc == 0
    for protocol, name, classes in (("ckplus8", "zerobias-ckplus-8class", 8), ("ckplus6", "zerobias-ckplus-6class", 6)):
        assert (out / "tables" / f"{protocol}.md").is_file()
        assert ZeroBiasCNN.from_pretrained(str(zoo / name)).num_classes == classes


def test_needs_a_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main([]) == 2
    assert "--ckplus PATH" in capsys.readouterr().err


def test_unknown_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(["--tfd", str(tmp_path / "x.mat"), "--device", "quantum"]) == 2
    assert "Unknown device" in capsys.readouterr().err


def test_reproduce_options_object_and_keywords_are_checked_alike(tmp_path: Path) -> None:
    from captum_fau.errors import ConfigError
    from captum_fau.train.reproduce import ReproduceOptions, reproduce_paper
    from captum_fau.train.trainer import TrainConfig

    config = TrainConfig(iterations=2)
    for call in (lambda: reproduce_paper(config, ReproduceOptions(out=tmp_path)),
                 lambda: reproduce_paper(config, out=tmp_path)):  # fmt: skip
        with pytest.raises(ConfigError, match="--ckplus PATH"):
            call()
    with pytest.raises(ConfigError, match="Unknown variants"):
        reproduce_paper(config, ReproduceOptions(tfd=tmp_path), variants=["+X"])
    with pytest.raises(ConfigError, match="not ReproduceOptions fields"):
        reproduce_paper(config, ck_plus=tmp_path)
    assert not list(tmp_path.iterdir())
