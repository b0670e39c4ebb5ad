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


def test_statistics_options_and_the_fields_of_earlier_releases() -> None:
    from dataclasses import replace

    from captum_fau.concept.options import StatisticsOptions

    assert AnalysisConfig(seed=4).statistics == StatisticsOptions(seed=4)
    given = StatisticsOptions(n_permutations=300, max_permutations=5000, bins=8)
    assert AnalysisConfig(statistics=given).statistics is given
    old = AnalysisConfig(permutations=50, bootstrap=0, stratify="emotion")  # kept one release: mapped, then cleared
    assert (old.statistics.n_permutations, old.statistics.intervals, old.statistics.stratify) == (50, False, "emotion")
    assert (old.permutations, old.bootstrap, old.stratify) == (None, None, None)
    again = replace(old, permutations=70)
    assert (again.statistics.n_permutations, again.statistics.stratify) == (70, "emotion")
    with pytest.raises(ConfigError, match="statistics must be a StatisticsOptions"):
        AnalysisConfig(statistics={"n_permutations": 5})


def test_analyze_and_demo_share_the_statistics_flags_of_fau_kl() -> None:
    from captum_fau.cli import build_parser
    from captum_fau.cli.analyze import analysis_config

    parser = build_parser()
    common = ["--permutations", "200", "--max-permutations", "9000", "--bins", "6", "--no-intervals",
              "--stratify", "emotion", "--seed", "3", "--statistic", "kl"]  # fmt: skip
    args = parser.parse_args(["analyze", "--model", "m", "--data", "synthfacs:8", *common])
    stats = analysis_config(args).statistics
    assert (stats.n_permutations, stats.max_permutations, stats.bins, stats.intervals, stats.stratify, stats.seed,
            stats.test_statistic) == (200, 9000, 6, False, "emotion", 3, "kl")  # fmt: skip
    assert analysis_config(parser.parse_args(["demo", *common])).statistics == stats
    faukl = parser.parse_args(["fau-kl", "--model", "m", "--data", "synthfacs:8", "--out", "o", *common])
    from captum_fau.cli._options import statistics_options

    assert statistics_options(faukl) == stats


def test_one_design_from_the_labels_for_analyze_and_faukl() -> None:
    from captum_fau.concept.faukl import design_from_labels
    from captum_fau.errors import LabelError

    subjects, sequences = np.array([0, 0, 1, 1]), np.array([0, 1, 2, 2])
    design = design_from_labels({"subject": subjects, "sequence": sequences, "emotion": np.array([1, 2, 1, 2])},
                                "emotion")  # fmt: skip
    assert design.unit == "subject" and design.sequences is sequences and design.clusters is subjects
    assert design.strata.tolist() == [1, 2, 1, 2]
    only_sequences = design_from_labels({"sequence": sequences})
    assert only_sequences.unit == "sequence" and only_sequences.sequences is None and only_sequences.clusters is None
    assert design_from_labels({}, groups=None).groups is None
    with pytest.raises(LabelError, match="stratify='pose'"):
        design_from_labels({"subject": subjects}, "pose")
