"""Accuracy matches classes by name in analyze, evaluate and the report, never by index."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from captum_fau.analyze import analyze
from captum_fau.cli import main
from captum_fau.data.emotions import FER2013_CLASSES, canonical_emotion
from captum_fau.data.folder import load_folder
from captum_fau.errors import ConfigError, LabelError
from captum_fau.train.evaluate import evaluate_model

FAST = dict(n=2, permutations=20, bootstrap=5, progress=False, n_featured=2, sanity_check=False)

# Always predicts "sad" (output 4 of FER2013's order); a conv gives analyze a layer to scan.
CONSTANT_MODEL = """
import torch
from torch import nn

class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.register_buffer("logits", torch.tensor([0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0]))

    def forward(self, x):
        x = self.conv(x[:, :1])
        return self.logits.expand(x.shape[0], -1) + 0.0 * x.mean(dim=(1, 2, 3))[:, None]

def build():
    torch.manual_seed(0)
    return Constant()
"""


@pytest.fixture(scope="module")
def faces(synthfacs):
    return synthfacs(40, seed=5)


@pytest.fixture(scope="module")
def constant_spec(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("models") / "constant_model.py"
    path.write_text(textwrap.dedent(CONSTANT_MODEL))
    return f"{path}:build"


def _sad_share(faces) -> tuple[float, int, int]:
    """Share of sadness among the images whose class FER2013 has (all but contempt), and the counts."""
    names = np.array(faces.class_names)[faces.emotions]
    mappable = names != "contempt"
    return float((names[mappable] == "sadness").mean()), int(mappable.sum()), int((~mappable).sum())


def test_constant_model_scores_the_share_of_its_class_in_analyze_and_the_report(tmp_path: Path, faces, constant_spec):
    share, n, contempt = _sad_share(faces)
    assert 0 < share < 0.5 and contempt > 0  # index order would score CK+'s output 4 (fear) instead
    result = analyze(constant_spec, faces, layer="conv", out=tmp_path, class_names=",".join(FER2013_CLASSES), **FAST)
    acc = result.accuracy
    assert acc["accuracy"] == share and acc["n"] == n and acc["n_left_out"] == contempt
    assert any(f"contempt: not a class of the model; {contempt} images" in note for note in result.notes)
    # the confusion matrix is in the model's order: every scored image is predicted "sad"
    confusion = np.asarray(acc["confusion"])
    assert confusion[:, 4].sum() == n and confusion.sum() == n
    assert acc["class_names"] == list(FER2013_CLASSES)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["accuracy"]["mapping"]["model_classes"] == list(FER2013_CLASSES)
    assert results["accuracy"]["mapping"]["index"] == [6, 0, -1, 1, 2, 3, 4, 5]  # CK+ code -> FER2013 output
    assert (tmp_path / "confusion.png").is_file()
    manifest = json.loads((tmp_path / "analysis.json").read_text())
    assert manifest["params"]["class_names"] == list(FER2013_CLASSES)
    assert manifest["steps"]["accuracy"]["info"]["mapping"]["index"] == results["accuracy"]["mapping"]["index"]


def test_no_class_names_skips_accuracy_and_bad_class_names_stop_before_the_scan(tmp_path: Path, faces, constant_spec):
    plain = analyze(constant_spec, faces, layer="conv", out=tmp_path / "plain", **FAST)
    assert plain.accuracy is None and any("declares no class names" in note for note in plain.notes)
    assert json.loads((tmp_path / "plain" / "results.json").read_text())["accuracy"] is None
    with pytest.raises(ConfigError, match="both mean 'sadness'"):
        analyze(constant_spec, faces, out=tmp_path / "dup", class_names="angry,sad,sadness", **FAST)
    from captum_fau import ZeroBiasCNN

    with pytest.raises(ConfigError, match="8 outputs but 7 class names"):
        analyze(ZeroBiasCNN(num_classes=8), faces, out=tmp_path / "count", class_names=FER2013_CLASSES, **FAST)
    assert not (tmp_path / "count" / "maxima.npz").exists()  # refused before the scan


def test_evaluate_maps_by_name(tmp_path: Path, faces, constant_spec, capsys) -> None:
    from captum_fau.zoo.resolve import load_model_spec

    share, n, contempt = _sad_share(faces)
    model = load_model_spec(constant_spec)
    fold = evaluate_model(model, faces, class_names=FER2013_CLASSES)
    assert fold.accuracy == share and fold.n_test == n and fold.extra["n_left_out"] == contempt
    assert fold.extra["mapping"]["data_classes"] == list(faces.class_names)
    with pytest.raises(LabelError, match="declares no class names"):
        evaluate_model(model, faces)
    # the command line: --class-names, and the table in the model's class order
    root = _save_as_class_folders(tmp_path / "faces", faces)
    out = tmp_path / "eval.md"
    assert main(["evaluate", "--model", constant_spec, "--data", f"folder:{root}", "--face-crop", "none",
                 "--class-names", ",".join(FER2013_CLASSES), "--out", str(out), "-q"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert f"{100 * share:.1f} ± 0.0" in printed and "contempt: not a class of the model" in printed
    table = json.loads(out.with_suffix(".json").read_text())
    mapping = table["meta"]["mapping"]
    assert table["class_names"] == list(FER2013_CLASSES) and mapping["data_classes"] == sorted(faces.class_names)
    assert mapping["index"] == [0, -1, 1, 2, 3, 6, 4, 5]  # anger contempt disgust fear happy neutral sadness surprise


def _save_as_class_folders(root: Path, faces) -> Path:
    for i, (image, emotion) in enumerate(zip(faces.images, faces.emotions)):
        folder = root / faces.class_names[emotion]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)
    return root


def test_zoo_model_on_emotion_named_folders_scores_as_on_the_face_set(tmp_path: Path, faces) -> None:
    from captum_fau.zoo.resolve import load_model_spec

    model = load_model_spec("zerobias-synthfacs-8class")
    root = _save_as_class_folders(tmp_path / "faces", faces)
    folder = load_folder(root, face_crop="none", cache=False, progress=False)
    assert folder.class_names == tuple(sorted(faces.class_names))  # alphabetical, not CK+ order
    assert np.array_equal(
        np.sort(folder.images.reshape(len(folder), -1), 0), np.sort(faces.images.reshape(len(faces), -1), 0)
    )
    on_faces = evaluate_model(model, faces)
    on_folder = evaluate_model(model, folder)
    assert on_folder.accuracy == on_faces.accuracy and on_faces.accuracy > 0.5
    assert np.array_equal(on_folder.confusion, on_faces.confusion)  # both in the model's class order
    assert [canonical_emotion(c) for c in on_folder.extra["mapping"]["data_classes"]] == sorted(faces.class_names)


def test_model_class_names_come_from_arguments_then_the_model() -> None:
    import timm
    from torch import nn

    from captum_fau import ZeroBiasCNN
    from captum_fau.data.emotions import model_class_names

    zerobias = ZeroBiasCNN(num_classes=2, class_names=("sad", "happy"))
    assert model_class_names(zerobias) == ("sad", "happy")
    assert model_class_names(zerobias, "happy,sad") == ("happy", "sad")  # the argument wins

    class HubStyle(nn.Linear):  # a transformers-style config object with id2label
        config = type("Config", (), {"id2label": {1: "happy", 0: "angry"}})()

    assert model_class_names(HubStyle(2, 2)) == ("angry", "happy")
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=3)
    assert model_class_names(resnet) is None
    resnet.pretrained_cfg = {**resnet.pretrained_cfg, "label_names": ["fear", "happy", "sad"]}
    assert model_class_names(resnet) == ("fear", "happy", "sad")


def test_evaluate_options_object_equals_the_keywords(faces, constant_spec) -> None:
    from captum_fau.errors import ConfigError
    from captum_fau.train.evaluate import EvaluateOptions
    from captum_fau.zoo.resolve import load_model_spec

    model = load_model_spec(constant_spec)
    by_keywords = evaluate_model(model, faces, class_names=FER2013_CLASSES, fold=3, batch_size=5)
    by_options = evaluate_model(model, faces, EvaluateOptions(class_names=FER2013_CLASSES, fold=3, batch_size=5))
    assert (
        (by_options.fold, by_options.accuracy) == (by_keywords.fold, by_keywords.accuracy) == (3, by_keywords.accuracy)
    )
    assert np.array_equal(by_options.confusion, by_keywords.confusion)
    with pytest.raises(ConfigError, match="not EvaluateOptions fields"):
        evaluate_model(model, faces, class_name=FER2013_CLASSES)
