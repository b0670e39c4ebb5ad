"""Model cards and the Hub folder: one valid card per zoo entry, metrics equal to metrics.json,
untrained entries claim nothing, and bad inputs give errors that say what to do."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, metadata_load

from captum_fau import ZeroBiasCNN, zoo
from captum_fau.zoo import cards, publish, registry
from captum_fau.errors import ConfigError, UnknownModelError, WeightsError, ZooWeightsUnavailable

CARDS = zoo.CARDS_DIR
TRAINED = "zerobias-synthfacs-8class"
SECTIONS = ("## Model details", "## How to use", "## Training", "## Evaluation",
            "## Limitations and ethical considerations", "## Citation")  # fmt: skip


@pytest.mark.parametrize("name", zoo.list())
def test_every_entry_has_a_valid_card_that_matches_its_metrics(name: str) -> None:
    path = CARDS / f"{name}.md"
    assert path.is_file(), (
        f"model_cards/{name}.md is missing; write it with scripts/publish_to_hub.py {name} --write-card"
    )
    text = path.read_text()
    assert text == cards.render_card(name), "the committed card is stale: rerun --write-card"
    meta = metadata_load(path)
    for key in ("license", "library_name", "tags", "datasets", "pipeline_tag"):
        assert meta.get(key), key
    card = ModelCard(text, ignore_metadata_errors=False)
    assert card.data.license == "bsd-3-clause" and card.data.pipeline_tag == "image-classification"
    for section in SECTIONS:
        assert section in text, section
    assert "arXiv" in text and "Khorrami" in text and "AI Act" in text and "consent" in text.lower()
    entry = zoo.info(name)
    try:
        folder = registry.zoo_folder(name)
    except ZooWeightsUnavailable:
        folder = None
    if folder is not None:
        metrics = json.loads((folder / "metrics.json").read_text())
        assert cards.card_metrics(text) == cards.measured_metrics(metrics) != {}
        assert card.data.eval_results[0].dataset_split  # the protocol travels with the numbers
        assert f"{100 * cards.measured_metrics(metrics)['accuracy']:.1f}% ±" in text
    else:
        assert cards.card_metrics(text) == {} and "model-index" not in meta
        assert "Weights not yet trained or published" in text
        assert entry.train_command in text and entry.metrics["paper_accuracy"] in text
        assert "the paper's" in text


def test_card_model_details_are_measured() -> None:
    size = cards.model_size({"num_classes": 8, "in_chans": 1, "img_size": 96})
    assert size["params"] == sum(p.numel() for p in ZeroBiasCNN(num_classes=8).parameters())
    # conv1..3 at 96/48/24 px + fc layers, one MAC per multiply-add
    macs = 96 * 96 * 64 * 25 + 48 * 48 * 128 * 64 * 25 + 24 * 24 * 256 * 128 * 25 + 1024 * 300 + 300 * 8
    assert size["gmacs"] == pytest.approx(macs / 1e9)
    assert f"| GMACs (one image) | {size['gmacs']:.3f} |" in (CARDS / f"{TRAINED}.md").read_text()


def test_untrained_card_snippet_runs_on_a_trained_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "zerobias-ckplus-6class"
    entry = zoo.info(name)
    ZeroBiasCNN(**entry.architecture, class_names=list(entry.class_names)).save_pretrained(tmp_path / "zoo" / name)
    blocks = re.findall(r"```python\n(.*?)```", (CARDS / f"{name}.md").read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], f"{name}.md", "exec"), namespace)  # noqa: S102 - our card
    assert namespace["model"].config["zoo"]["source"] == "explicit"


def _fake_zoo(tmp_path: Path, metrics: bool = True) -> Path:
    source = zoo.info(TRAINED).packaged_dir
    folder = tmp_path / "zoo" / TRAINED
    folder.mkdir(parents=True)
    for f in ("config.json", "model.safetensors") + (("metrics.json",) if metrics else ()):
        shutil.copy(source / f, folder / f)
    return tmp_path / "zoo"


def test_assemble_gives_the_exact_hub_folder(tmp_path: Path) -> None:
    folder = publish.assemble_hub_folder(TRAINED, tmp_path / "out")
    assert sorted(p.name for p in folder.path.iterdir()) == sorted(publish.HUB_FILES)
    assert folder.sha256 == zoo.info(TRAINED).sha256
    assert (folder.path / "README.md").read_text() == (CARDS / f"{TRAINED}.md").read_text()
    publish.verify_hub_folder(folder)
    with pytest.raises(ConfigError, match="not empty"):
        publish.assemble_hub_folder(TRAINED, tmp_path / "out")


def test_missing_metrics_card_or_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="metrics.json is missing"):
        publish.assemble_hub_folder(TRAINED, tmp_path / "a", zoo_dir=_fake_zoo(tmp_path / "z1", metrics=False))
    with pytest.raises(ConfigError, match=r"model card .* is missing.*write_card\("):
        publish.assemble_hub_folder(TRAINED, tmp_path / "b", cards_dir=tmp_path / "no-cards")
    with pytest.raises(ZooWeightsUnavailable, match=r"captum-fau reproduce --tfd"):
        publish.publish(
            "zerobias-tfd-7class", "my-lab/tfd", dry_run=True, zoo_dir=tmp_path / "empty", log=lambda s: None
        )
    with pytest.raises(UnknownModelError, match="Known models"):
        publish.publish("zerobias-tfd", "my-lab/tfd", dry_run=True)
    for bad in ("no-slash", "a/b/c", "org/na me", "org--x/name", "/name", "org/"):
        with pytest.raises(ConfigError, match="ORG/NAME"):
            registry.validate_repo_id(bad)


def test_card_disagreeing_with_metrics_is_rejected(tmp_path: Path) -> None:
    text = (CARDS / f"{TRAINED}.md").read_text()
    measured = cards.card_metrics(text)["accuracy"]
    cards_dir = tmp_path / "cards"
    cards_dir.mkdir()
    (cards_dir / f"{TRAINED}.md").write_text(text.replace(f"value: {measured!r}", "value: 0.99", 1))
    with pytest.raises(ConfigError, match=r"disagrees with its metrics.json.*write_card\("):
        publish.assemble_hub_folder(TRAINED, tmp_path / "out", cards_dir=cards_dir)
    # A card that claims results for an untrained entry is rejected as well.
    with pytest.raises(ConfigError, match="no trained weights"):
        cards.check_card("zerobias-ckplus-8class", text, None)
    with pytest.raises(ConfigError, match="YAML"):
        cards.card_metrics("---\nlicense: [unclosed\n---\n# x\n")


def test_pin_registry_is_atomic_and_keeps_the_layout(tmp_path: Path) -> None:
    registry_file = tmp_path / "registry.json"
    shutil.copy(zoo.REGISTRY_FILE, registry_file)
    before = registry_file.read_text()
    assert registry.registry_text(json.loads(before)) == before
    registry.pin_registry("zerobias-ckplus-8class", "a" * 40, "b" * 64, registry_file=registry_file)
    after = registry_file.read_text()
    diff = [(x, y) for x, y in zip(before.splitlines(), after.splitlines()) if x != y]
    assert len(diff) == 2 and json.loads(after)["zerobias-ckplus-8class"]["revision"] == "a" * 40
    for revision in ("v1", "main", "a" * 39):
        with pytest.raises(ConfigError, match="40-character commit"):
            registry.pin_registry("zerobias-ckplus-8class", revision, "b" * 64, registry_file=registry_file)
    assert registry_file.read_text() == after
    assert not list(tmp_path.glob(".registry.json.*"))  # no temporary file left behind


def test_publish_options_object_and_keywords_are_read_alike(tmp_path: Path) -> None:
    lines: list[str] = []
    options = publish.PublishOptions(dry_run=True, zoo_dir=tmp_path / "empty", token="hf_secret", log=lines.append)
    assert "hf_secret" not in repr(options)
    with pytest.raises(ZooWeightsUnavailable, match=r"captum-fau reproduce --tfd"):
        publish.publish("zerobias-tfd-7class", "my-lab/tfd", options)
    with pytest.raises(ZooWeightsUnavailable, match=r"captum-fau reproduce --tfd"):
        publish.publish("zerobias-tfd-7class", "my-lab/tfd", publish.PublishOptions(), dry_run=True,
                        zoo_dir=tmp_path / "empty", log=lines.append)  # fmt: skip
    with pytest.raises(ConfigError, match="not PublishOptions fields"):
        publish.publish("zerobias-tfd-7class", "my-lab/tfd", dryrun=True)
    with pytest.raises(ConfigError, match="must be a PublishOptions"):
        publish.publish("zerobias-tfd-7class", "my-lab/tfd", {"dry_run": True})
