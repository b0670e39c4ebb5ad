"""AnalysisConfig: validated before any work; keyword overrides; one accuracy/confusion implementation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from captum_fau.analyze import AnalysisConfig, _resolve_config, analyze
from captum_fau.inputs.classes import emotion_accuracy
from captum_fau.data.emotions import ClassMapping, mapped_accuracy
from captum_fau.errors import ConfigError, LayerError
from captum_fau.train.evaluate import confusion_matrix, per_class_accuracy


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"n": 0}, ConfigError, "AnalysisConfig.n must be an integer >= 1"),
        ({"batch_size": 2.5}, ConfigError, "batch_size"),
        ({"permutations": -1}, ConfigError, "permutations must be an integer >= 0"),
        ({"checkpoint_every_s": True}, ConfigError, "checkpoint_every_s"),
        ({"checkpoint_every_s": -1.0}, ConfigError, "checkpoint_every_s must be a number of seconds >= 0"),
        ({"rule": "lrp-z"}, ConfigError, "Unknown rule 'lrp-z'"),
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
    model_names, data_names = ("happy", "sad", "fear"), ("sadness", "fearful", "happiness")  # other order, synonyms
    emotions = rng.integers(-1, 3, size=50)  # -1: unlabelled, left out
    logits = rng.normal(size=(50, 3))
    mapping = ClassMapping.build(model_names, data_names)
    scores = emotion_accuracy(logits, emotions, mapping)
    labelled = emotions >= 0
    preds = logits[labelled].argmax(1)
    truth = np.array([1, 2, 0])[emotions[labelled]]  # data class -> model output, by name
    expected = confusion_matrix(truth, preds, 3)
    from_preds = mapped_accuracy(logits.argmax(1), emotions, mapping)  # logits or predictions: one implementation
    assert scores == from_preds and scores["n_unlabelled"] == int((~labelled).sum())
    assert scores["confusion"] == expected.tolist() and scores["n"] == int(labelled.sum())
    assert scores["accuracy"] == pytest.approx(float((preds == truth).mean()))
    assert list(scores["per_class_accuracy"].values()) == pytest.approx(per_class_accuracy(expected).tolist())
    with pytest.raises(ConfigError, match="2 outputs but 3 class names"):
        emotion_accuracy(logits[:, :2], emotions, mapping)  # outputs do not match the classes
    # a class absent from the data has no accuracy (None), not 0
    two = ClassMapping.build(("a", "b"), ("a", "b"), synonyms={"a": "a", "b": "b"})
    assert mapped_accuracy(np.array([0, 1]), [0, 0], two)["per_class_accuracy"] == {"a": 0.5, "b": None}


def test_class_names_and_face_crop_are_checked_on_construction() -> None:
    assert AnalysisConfig(class_names="angry, happy").class_names == ("angry", "happy")
    with pytest.raises(ConfigError, match="both mean 'happy'"):
        AnalysisConfig(class_names="happy,sad,happiness")
    with pytest.raises(ConfigError, match="face_crop must be one of"):
        AnalysisConfig(face_crop="mtcnn")
