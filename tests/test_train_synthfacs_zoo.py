"""scripts/train_synthfacs_zoo.py: folds trained, resumed or reused, combined into mean +- std over
folds (checked against numpy/scipy), and packaged with a pinned sha256 and a card that shows them."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from scipy import stats

from captum_fau import ZeroBiasCNN
from captum_fau.zoo import cards
from captum_fau.errors import ConfigError
from captum_fau.zoo import sha256_file

REPO = Path(__file__).resolve().parents[1]
NAME = "zerobias-synthfacs-8class"
TINY = ["--n", "300", "--folds", "3", "--iterations", "2", "--checkpoint-every", "2", "--quiet"]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_synthfacs_zoo", REPO / "scripts" / "train_synthfacs_zoo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tsz = _script()


def _fold(k: int, confusion: list[list[int]], test_selection: float, iterations: int = 700) -> dict:
    cm = np.asarray(confusion)
    return {
        "data": {
            "dataset": "SynthFACS",
            "n": 100,
            "seed": 0,
            "mode": "prototype",
            "n_subjects": 10,
            "classes": ["a", "b"],
        },
        "split": {
            "kind": "3 subject-independent folds",
            "test_fold": k,
            "valid_fold": (k + 1) % 3,
            "n_test": int(cm.sum()),
            "test_subjects": [str(k)],
        },
        "recipe": {"variant": "+AD", "iterations": iterations},
        "iterations": iterations,
        "batch": 64,
        "selection": f"best validation accuracy; selected iteration {100 * (k + 1)}",
        "accuracy": float(np.trace(cm) / cm.sum()),
        "confusion_matrix": {"counts": cm.tolist()},
        "comparison_reference_test_selection": {"iteration": 700, "test_accuracy": test_selection},
        "train_wall_time_s": 10.0,
    }


FOLDS = [_fold(0, [[9, 1], [0, 10]], 0.97), _fold(1, [[7, 3], [2, 18]], 0.9), _fold(2, [[5, 0], [1, 4]], 1.0)]


def test_combined_metrics_are_mean_and_std_over_folds() -> None:
    out = tsz.combine_folds(list(reversed(FOLDS)), shipped_fold=1)
    accs = np.array([19 / 20, 25 / 30, 9 / 10])
    assert out["fold_accuracies"] == pytest.approx(accs.tolist())
    assert out["accuracy_mean"] == pytest.approx(accs.mean())
    assert out["accuracy_std"] == pytest.approx(np.std(accs, ddof=0))
    assert out["accuracy_ci95"] == pytest.approx(
        list(stats.t.interval(0.95, 2, loc=accs.mean(), scale=stats.sem(accs)))
    )
    assert out["folds_measured"] == 3 and out["split"]["test_folds"] == [0, 1, 2]
    pooled = np.array([[21, 4], [3, 32]])
    assert out["confusion_matrix"]["counts"] == pooled.tolist()
    assert out["accuracy_pooled"] == pytest.approx(53 / 60)
    assert out["per_class_accuracy"] == pytest.approx({"a": 21 / 25, "b": 32 / 35})
    comparison = out["comparison_reference_test_selection"]
    assert comparison["accuracy_mean"] == pytest.approx(np.mean([0.97, 0.9, 1.0]))
    assert comparison["accuracy_std"] == pytest.approx(np.std([0.97, 0.9, 1.0]))
    assert "TEST fold" in comparison["label"]
    assert out["shipped_weights"]["test_fold"] == 1 and out["shipped_weights"]["accuracy"] == pytest.approx(25 / 30)
    assert [f["selected_iteration"] for f in out["folds"]] == [100, 200, 300]
    assert "does not reach" in out["note"] and "700 iterations" in out["note"]
    assert cards.measured_metrics(out) == pytest.approx({"accuracy": accs.mean(), "accuracy_std": np.std(accs)})

    perfect = [_fold(k, [[5, 0], [0, 5]], 1.0) for k in range(3)]
    assert "reaches it" in tsz.combine_folds(perfect, 0)["note"]


def test_combining_refuses_inconsistent_folds() -> None:
    with pytest.raises(ConfigError, match="repeat"):
        tsz.combine_folds([FOLDS[0], FOLDS[0]], 0)
    with pytest.raises(ConfigError, match="shipped fold 2"):
        tsz.combine_folds(FOLDS[:2], 2)
    with pytest.raises(ConfigError, match="budgets"):
        tsz.combine_folds([FOLDS[0], _fold(1, [[1, 0], [0, 1]], 1.0, iterations=50)], 0)
    no_iteration = copy.deepcopy(FOLDS[0])
    no_iteration["selection"] = "best validation accuracy"
    with pytest.raises(ConfigError, match="selected iteration"):
        tsz.combine_folds([no_iteration], 0)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigError, match="--folds must be >= 3"):
        tsz.parse_args(["--folds", "2"])
    with pytest.raises(ConfigError, match=r"Folds \[7\] do not exist"):
        tsz.parse_args(["--test-folds", "7"])
    assert tsz.parse_args(["--test-folds", "3", "1", "3"]).test_folds == [1, 3]
    assert tsz.parse_args([]).test_folds == [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three tiny folds: fold 0 in one call, the package call trains 1 and 2 and reuses 0."""
    root = tmp_path_factory.mktemp("synthfacs-zoo")
    out, target = root / "runs", root / "zoo" / NAME
    registry = root / "registry.json"
    shutil.copyfile(REPO / "zoo" / "registry.json", registry)
    assert tsz.main([*TINY, "--out", str(out), "--test-folds", "0"]) == 0
    assert (out / "fold0" / "metrics.json").is_file() and not (out / "metrics.json").exists()
    fold0_before = (out / "fold0" / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(ConfigError, match=r"Folds \[1, 2\] are not finished"):
        tsz.main([*TINY, "--out", str(out), "--test-folds", "0", "--package"], target=target, registry=registry)
    assert not target.exists()
    assert (
        tsz.main([*TINY, "--out", str(out), "--package", "--shipped-fold", "0"], target=target, registry=registry) == 0
    )
    assert (out / "fold0" / "model.safetensors").stat().st_mtime_ns == fold0_before  # reused, not retrained
    return {"out": out, "target": target, "registry": registry}


def test_package_ships_the_fold_model_with_metrics_over_folds(trained: dict[str, Path]) -> None:
    out, target, registry = trained["out"], trained["target"], trained["registry"]
    folds = [json.loads((out / f"fold{k}" / "metrics.json").read_text()) for k in range(3)]
    accs = [f["accuracy"] for f in folds]
    combined = json.loads((target / "metrics.json").read_text())
    assert combined == json.loads((out / "metrics.json").read_text())
    assert combined["accuracy_mean"] == pytest.approx(np.mean(accs))
    assert combined["accuracy_std"] == pytest.approx(np.std(accs))
    assert sum(f["split"]["n_test"] for f in folds) == combined["split"]["n_test_total"] == 300
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json",
        "metrics.json",
        "model.safetensors",
        "training_log.jsonl",
    ]
    assert (target / "training_log.jsonl").read_bytes() == (out / "fold0" / "training_log.jsonl").read_bytes()
    entry = json.loads(registry.read_text())[NAME]
    assert entry["sha256"] == sha256_file(target / "model.safetensors")
    assert entry["metrics"]["accuracy"] == round(combined["accuracy_mean"], 4)
    assert "3 subject folds" in entry["metrics"]["evaluation"]
    assert entry["train_command"] == "python scripts/train_synthfacs_zoo.py --package"
    # the shipped weights are fold 0's selected checkpoint
    model = ZeroBiasCNN.from_pretrained(target).eval()
    fold0 = ZeroBiasCNN.from_pretrained(out / "fold0").eval()
    x = torch.randn(2, 1, 96, 96)
    assert torch.equal(model(x), fold0(x))
    assert folds[0]["selected_iteration"] == 2


def test_card_shows_the_fold_statistics(trained: dict[str, Path]) -> None:
    card = cards.render_card(NAME, zoo_dir=trained["target"].parent)
    combined = json.loads((trained["target"] / "metrics.json").read_text())
    assert f"{100 * combined['accuracy_mean']:.1f}% ± {100 * combined['accuracy_std']:.1f}" in card
    assert "Student-t interval of the mean over 3 folds" in card
    assert "Accuracy pooled over folds" in card and "chosen on the test fold (comparison only)" in card
    assert "| Fold accuracies | " + ", ".join(f"{100 * a:.1f}" for a in combined["fold_accuracies"]) in card


def test_a_finished_fold_of_another_run_is_not_reused(trained: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "runs"
    shutil.copytree(trained["out"] / "fold0", out / "fold0")
    with pytest.raises(ConfigError, match="iterations 2, asked 3"):
        tsz.main([*TINY[:4], "--iterations", "3", *TINY[6:], "--out", str(out), "--test-folds", "0"])
    with pytest.raises(ConfigError, match="seed 0, asked 1"):
        tsz.main([*TINY, "--seed", "1", "--out", str(out), "--test-folds", "0"])
