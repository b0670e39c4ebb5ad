"""Emotion names and class mapping by name: accuracy is never computed by index."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch
from torch import nn

from captum_fau import zoo
from captum_fau.inputs import classes as emotions_module
from captum_fau.data.base import CKPLUS_CLASSES
from captum_fau.data.emotions import (
    CANONICAL_EMOTIONS,
    FER2013_CLASSES,
    ClassMapping,
    canonical_emotion,
    class_names_from_config,
    mapped_accuracy,
    parse_class_names,
)
from captum_fau.data.input_spec import InputSpec
from captum_fau.errors import ConfigError, LabelError

WEIGHTS_CONFIG = zoo.info("zerobias-synthfacs-8class").packaged_dir / "config.json"


class ConstantFER(nn.Module):
    """A 48x48 FER2013-order model that always predicts one class."""

    def __init__(self, predicted: str) -> None:
        super().__init__()
        self.register_buffer("logits", torch.full((len(FER2013_CLASSES),), -5.0))
        self.logits[FER2013_CLASSES.index(predicted)] = 5.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != (1, 48, 48):
            raise RuntimeError(f"expected [B, 1, 48, 48], got {tuple(x.shape)}")
        return self.logits.expand(x.shape[0], -1)


@pytest.mark.parametrize(
    "spelling, canonical",
    [
        ("Angry", "anger"),
        ("ANGER", "anger"),
        ("mad", "anger"),
        ("happy", "happy"),
        ("Happiness", "happy"),
        ("joy", "happy"),
        ("sad", "sadness"),
        ("Sadness", "sadness"),
        ("surprised", "surprise"),
        (" surprise ", "surprise"),
        ("fearful", "fear"),
        ("afraid", "fear"),
        ("Fear", "fear"),
        ("disgusted", "disgust"),
        ("disgust", "disgust"),
        ("Neutral", "neutral"),
        ("contempt", "contempt"),
    ],
)
def test_synonyms_are_read_case_insensitively(spelling: str, canonical: str) -> None:
    assert canonical_emotion(spelling) == canonical


def test_vocabulary_covers_the_library_and_fer2013_orders() -> None:
    assert CANONICAL_EMOTIONS == CKPLUS_CLASSES
    assert [canonical_emotion(n) for n in FER2013_CLASSES] == [
        "anger",
        "disgust",
        "fear",
        "happy",
        "sadness",
        "surprise",
        "neutral",
    ]
    assert canonical_emotion("calm") is None
    assert canonical_emotion("calm", synonyms={"calm": "neutral"}) == "neutral"
    assert canonical_emotion("Grin", synonyms={"grin": "happiness"}) == "happy"


def test_fer2013_model_on_ckplus_data_maps_by_name_and_notes_contempt() -> None:
    labels = np.repeat(np.arange(8), [10, 9, 18, 7, 6, 12, 5, 8])  # 18 contempt images
    mapping = ClassMapping.build(FER2013_CLASSES, CKPLUS_CLASSES, labels=labels)
    assert mapping.index.tolist() == [6, 0, -1, 1, 2, 3, 4, 5]
    assert mapping.missing == ("contempt",) and not mapping.complete
    assert "contempt: not a class of the model; 18 images left out of accuracy" in mapping.notes
    assert "data classes matched to the model's by name: anger=angry, sadness=sad" in mapping.notes
    assert mapping.remap(np.array([2, 5, -1, 1])).tolist() == [-1, 3, -1, 0]
    without_contempt = ClassMapping.build(FER2013_CLASSES, CKPLUS_CLASSES, labels=labels[labels != 2])
    assert without_contempt.complete and not any("contempt" in n for n in without_contempt.notes)
    # A model class the data lack is noted: predicting it counts as an error.
    reverse = ClassMapping.build(CKPLUS_CLASSES, FER2013_CLASSES)
    assert reverse.complete and "model classes with no data class: contempt" in reverse.notes[-1]
    assert json.loads(json.dumps(mapping.to_dict()))["index"] == mapping.index.tolist()


def test_constant_model_scores_exactly_the_share_of_its_class_with_classes_in_another_order() -> None:
    rng = np.random.default_rng(0)
    # Alphabetical folder classes (what a labels.csv with emotion names gives), not the model's order.
    data_classes = ("angry", "contempt", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
    labels = rng.permutation(np.repeat(np.arange(-1, len(data_classes)), [25, 30, 18, 25, 40, 60, 35, 20, 22]))
    images = torch.rand(len(labels), 1, 96, 96, generator=torch.Generator().manual_seed(1))
    model = ConstantFER("happy").eval()
    spec = InputSpec.resolve({"mean": 0.5, "std": 0.5}, None, model=model, data_shape=(1, 96, 96))
    assert spec.size == (48, 48)
    with torch.no_grad():
        logits = model(spec.apply(images))
    mapping = ClassMapping.build(FER2013_CLASSES, data_classes, labels=labels)
    result = mapped_accuracy(logits, labels, mapping)

    labelled = labels >= 0
    mappable = labelled & (labels != data_classes.index("contempt"))
    share = (labels[mappable] == data_classes.index("happy")).mean()
    assert result["accuracy"] == pytest.approx(share, abs=1e-12)
    assert result["n"] == mappable.sum() and result["n_unlabelled"] == 25
    assert result["n_left_out"] == (labels == 1).sum() and result["left_out"] == {"contempt": int((labels == 1).sum())}
    # Index-order scoring would score the share of data class 3 ("fearful") instead.
    wrong = (labels[mappable] == FER2013_CLASSES.index("happy")).mean()
    assert abs(wrong - share) > 0.01

    confusion = np.array(result["confusion"])
    happy = FER2013_CLASSES.index("happy")
    assert confusion.shape == (7, 7) and confusion.sum() == result["n"]
    assert (confusion[:, happy] == confusion.sum(1)).all()  # every image predicted happy
    for j, name in enumerate(FER2013_CLASSES):  # rows in model order hold each class's count
        data_index = [canonical_emotion(c) for c in data_classes].index(canonical_emotion(name))
        assert confusion[j].sum() == (labels == data_index).sum()
    assert result["class_names"] == list(FER2013_CLASSES)
    assert result["per_class_accuracy"]["happy"] == 1.0 and result["per_class_accuracy"]["angry"] == 0.0
    assert result["notes"] == [
        f"contempt: not a class of the model; {result['n_left_out']} images left out of accuracy"
    ]
    json.dumps(result)  # JSON-ready for results.json


def test_per_class_accuracy_is_none_for_a_class_without_images_and_no_mappable_image_skips_accuracy() -> None:
    mapping = ClassMapping.build(("sad", "happy", "fear"), ("happiness", "sadness", "contempt"))
    logits = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    result = mapped_accuracy(logits, [0, 1, 1], mapping)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["per_class_accuracy"] == {"sad": 0.5, "happy": 1.0, "fear": None}
    bf16 = mapped_accuracy(torch.tensor(logits, dtype=torch.bfloat16), [0, 1, 1], mapping)
    assert bf16["confusion"] == result["confusion"]
    none = mapped_accuracy(logits, [2, 2, -1], mapping)
    assert none["accuracy"] is None and none["n"] == 0 and none["n_left_out"] == 2
    assert none["notes"][-1] == "accuracy skipped: no labelled image has a class of the model"


def test_names_outside_the_vocabulary_match_only_the_same_spelling_or_declared_synonyms() -> None:
    mapping = ClassMapping.build(("Pain", "happy"), ("happy", "pain"))
    assert mapping.index.tolist() == [1, 0]
    calm = ClassMapping.build(FER2013_CLASSES, ("calm", "happy"), synonyms={"calm": "neutral"})
    assert calm.index.tolist() == [6, 3]


def test_bad_class_names_raise_errors_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="'angry' and 'anger', which both mean 'anger'"):
        ClassMapping.build(("angry", "anger", "happy"), CKPLUS_CLASSES)
    with pytest.raises(LabelError, match="'happy' and 'Happy', which are the same name"):
        ClassMapping.build(FER2013_CLASSES, ("happy", "Happy"))
    with pytest.raises(ConfigError) as info:
        ClassMapping.build(("angry", "suprise"), CKPLUS_CLASSES)
    message = str(info.value)
    assert (
        "'suprise' (did you mean 'surprise'?)" in message and "Known names:" in message and "--class-names" in message
    )
    with pytest.raises(LabelError) as info:
        ClassMapping.build(FER2013_CLASSES, ("0", "1", "happy"))
    assert "'0', '1'" in str(info.value) and "sadness (sad)" in str(info.value)
    with pytest.raises(ConfigError, match="no class names"):
        ClassMapping.build((), CKPLUS_CLASSES)
    mapping = ClassMapping.build(FER2013_CLASSES, CKPLUS_CLASSES)
    with pytest.raises(ConfigError, match="the model has 8 outputs but 7 class names .* with 8 names"):
        mapping.check_outputs(8)
    mapping.check_outputs(7)
    with pytest.raises(ConfigError, match="8 outputs but 7 class names"):
        mapped_accuracy(np.zeros((3, 8)), [0, 1, 2], mapping)
    with pytest.raises(LabelError, match="-1 \\(unlabelled\\) or 0..7"):
        mapping.remap(np.array([0, 8]))
    with pytest.raises(LabelError, match="integer class indices"):
        mapping.remap(np.array([0.5]))
    with pytest.raises(LabelError, match="3 labels for 2 rows"):
        mapped_accuracy(np.zeros((2, 7)), [0, 1, 2], mapping)
    with pytest.raises(LabelError, match="0..7"):
        ClassMapping.build(FER2013_CLASSES, CKPLUS_CLASSES, labels=[9])


def test_parse_class_names_for_the_cli() -> None:
    assert parse_class_names("angry,disgust,fear,happy,sad,surprise,neutral") == FER2013_CLASSES
    assert parse_class_names(["a ", " b"]) == ("a", "b")
    with pytest.raises(ConfigError, match="one non-empty name per model output"):
        parse_class_names("angry,,fear")
    with pytest.raises(ConfigError, match="'sad' and 'sadness', which both mean 'sadness'"):
        parse_class_names("sad,happy,sadness")


def test_class_names_from_configs() -> None:
    hub = json.loads(WEIGHTS_CONFIG.read_text())
    assert class_names_from_config(hub) == CKPLUS_CLASSES
    assert class_names_from_config({"label_names": FER2013_CLASSES}) == FER2013_CLASSES
    hf = {"id2label": {"0": "angry", "2": "happy", "1": "disgust"}, "label2id": {}}
    assert class_names_from_config(hf) == ("angry", "disgust", "happy")
    assert class_names_from_config({"zoo": {"class_names": ["a", "b"]}}) == ("a", "b")
    assert class_names_from_config({"num_classes": 7}) is None
    with pytest.raises(ConfigError, match="output indices 0..1"):
        class_names_from_config({"id2label": {"0": "a", "5": "b"}})


def test_module_doctests() -> None:
    result = doctest.testmod(emotions_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
