"""AnalysisConfig: validated before any work; keyword overrides; one accuracy/confusion implementation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from captum_fau.analyze import AnalysisConfig, _resolve_config, analyze, emotion_accuracy
from captum_fau.errors import ConfigError, LayerError
from captum_fau.train.evaluate import accuracy_summary, confusion_matrix, per_class_accuracy


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"n": 0}, ConfigError, "AnalysisConfig.n must be an integer >= 1"),
        ({"batch_size": 2.5}, ConfigError, "batch_size"),
        ({"permutations": -1}, ConfigError, "permutations must be an integer >= 0"),
        ({"checkpoint_every_s": True}, ConfigError, "checkpoint_every_s"),
        ({"checkpoint_every_s": -1.0}, ConfigError, "checkpoint_every_s must be a number of seconds >= 0"),
        ({"rule": "lrp"}, ConfigError, "Unknown rule 'lrp'"),
        ({"layer": ""}, LayerError, "dotted module name"),
        ({"out": 3}, ConfigError, "folder path"),
    ],
)
def test_bad_values_are_refused_on_construction(kwargs, error, words) -> None:
    with pytest.raises(error, match=words):
        AnalysisConfig(**kwargs)


def test_overrides_replace_fields_and_are_checked(tmp_path: Path) -> None:
    base = AnalysisConfig(layer="conv2", out=str(tmp_path), n=3)
    assert base.out == tmp_path and isinstance(base.out, Path)
    changed = _resolve_config(base, {"n": 5, "progress": False})
    assert (changed.layer, changed.n, changed.progress, base.n) == ("conv2", 5, False, 3)
    assert _resolve_config(None, {"layer": "conv1"}) == AnalysisConfig(layer="conv1")
    with pytest.raises(ConfigError, match="did you mean permutations"):
        _resolve_config(None, {"permutation": 10})
    with pytest.raises(ConfigError, match="n must be"):
        _resolve_config(base, {"n": -2})


def test_analyze_refuses_bad_config_before_loading_anything(tmp_path: Path) -> None:
    # the model spec does not exist: a config error must come first, and nothing is written
    with pytest.raises(ConfigError, match="bootstrap"):
        analyze("no-such-model", "synthfacs:4", out=tmp_path / "never", bootstrap=-1)
    with pytest.raises(ConfigError, match="third argument is an AnalysisConfig"):
        analyze("no-such-model", "synthfacs:4", "conv3")
    assert not (tmp_path / "never").exists()


def test_analyze_and_evaluate_score_with_the_same_implementation() -> None:
    rng = np.random.default_rng(0)
    names = ("a", "b", "c")
    emotions = rng.integers(-1, 3, size=50)  # -1: unlabelled, left out
    logits = rng.normal(size=(50, 3))
    scores = emotion_accuracy(logits, emotions, names)
    labelled = emotions >= 0
    preds = logits[labelled].argmax(1)
    expected = confusion_matrix(emotions[labelled], preds, 3)
    assert scores == accuracy_summary(emotions[labelled], preds, names)
    assert scores["confusion"] == expected.tolist() and scores["n"] == int(labelled.sum())
    assert scores["accuracy"] == pytest.approx(float((preds == emotions[labelled]).mean()))
    assert list(scores["per_class_accuracy"].values()) == pytest.approx(per_class_accuracy(expected).tolist())
    assert emotion_accuracy(logits[:, :2], emotions, names) is None  # outputs do not match the classes
    # a class absent from the data has no accuracy (None), not 0
    assert accuracy_summary([0, 0], [0, 1], ("a", "b"))["per_class_accuracy"] == {"a": 0.5, "b": None}
