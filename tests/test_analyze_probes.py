"""analyze's causal-probe steps: results.json keys, the report sections, resume, and the skipped-with-note paths."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from captum_fau.analyze import analyze
from captum_fau.probes import ProbeOptions

FAST = dict(n=3, permutations=50, bootstrap=0, progress=False, n_featured=2, sanity_check=False)
TINY_PROBE = ProbeOptions(n_faces=2, prototypes=False, n_permutations=99)


@pytest.fixture(scope="module")
def faces(synthfacs):
    return synthfacs(48, seed=3)


@pytest.fixture(scope="module")
def model(zerobias):
    return zerobias(num_classes=8, seed=0)


def _probes(**changes):
    return {"causal": True, "importance": True, "probe_options": TINY_PROBE, **changes}


def test_probes_write_results_keys_report_sections_and_resume(tmp_path: Path, faces, model, monkeypatch) -> None:
    result = analyze(model, faces, layer="conv3", out=tmp_path, class_names=faces.class_names, **FAST, **_probes())
    results = json.loads((tmp_path / "results.json").read_text())
    causal, importance, facs = results["causal"], results["importance"], results["facs"]
    assert causal["n_faces"] == 2 and len(causal["filters"]) == 256 and causal["layer"] == "conv3"
    # the probe rendered its faces at the spec this run resolved, not one of its own
    assert causal["input_spec"] == results["params"]["input_spec"]
    assert causal["agreement"]["definition"] and causal["occlusion"]["fill"] == "mean"  # SynthFACS carries AU regions
    assert set(importance["emotions"]) <= set(faces.class_names) and importance["mapping"]
    assert importance["unit"].startswith("subject") and {r["source"] for r in facs["rows"]} <= {"causal", "association"}
    assert "association" in facs["score"]
    for name in (
        "causal.npz",
        "importance.npz",
        "facs.json",
        "occlusion.npz",
        "causal_tuning.png",
        "importance.png",
        "facs.png",
    ):
        assert (tmp_path / name).is_file(), name
    html = (tmp_path / "index.html").read_text()
    assert "Causal probes: does a filter respond to the AU itself?" in html
    assert "Does the model use AUs the way FACS says?" in html and "which filters does each emotion" in html
    assert result.probes.causal is not None and result.probes.facs is not None

    from captum_fau.probes import AUProbe, FilterImportance

    def refuse(*args, **kwargs):
        raise AssertionError("a finished probe step was recomputed")

    monkeypatch.setattr(AUProbe, "probe", refuse)
    monkeypatch.setattr(FilterImportance, "run", refuse)
    again = analyze(model, faces, layer="conv3", out=tmp_path, class_names=faces.class_names, **FAST, **_probes())
    assert again.probes.causal.effect.tolist() == result.probes.causal.effect.tolist()
    monkeypatch.undo()
    # different probe settings recompute the probe, and only it
    calls = []
    original = AUProbe.probe
    monkeypatch.setattr(AUProbe, "probe", lambda self, **kw: calls.append(1) or original(self, **kw))
    monkeypatch.setattr(FilterImportance, "run", refuse)
    changed = ProbeOptions(n_faces=2, seed=1, prototypes=False, n_permutations=99)
    third = analyze(model, faces, layer="conv3", out=tmp_path, class_names=faces.class_names, **FAST,
                    **_probes(probe_options=changed))  # fmt: skip
    assert calls == [1] and third.probes.causal.meta["options"]["seed"] == 1


def test_probes_are_skipped_with_notes_without_labels_or_class_names(tmp_path: Path, faces, zerobias) -> None:
    images = torch.rand(24, 1, 96, 96)
    plain = analyze(zerobias(seed=1), images, layer="conv3", out=tmp_path / "tensor", **FAST, **_probes())
    notes = " ".join(plain.notes)
    assert "Filter importance skipped: the data has no emotion labels" in notes
    assert "AU-region occlusion skipped" in notes and "Causal vs associational AU skipped" in notes
    assert "FACS table skipped" in notes
    results = json.loads((tmp_path / "tensor" / "results.json").read_text())
    assert results["causal"] is not None and results["importance"] is None and results["facs"] is None
    # a model without class names: its classes cannot be mapped to the data's emotions by name
    unnamed = analyze(zerobias(seed=1), faces, layer="conv3", out=tmp_path / "unnamed", **FAST,
                      **_probes(causal=False))  # fmt: skip
    assert any("Filter importance skipped: the data's emotions cannot be mapped" in n for n in unnamed.notes)
    off = json.loads((tmp_path / "unnamed" / "results.json").read_text())
    assert off["causal"] is None and off["importance"] is None and off["facs"] is None


def test_cli_probe_flags_default_on_in_demo_only() -> None:
    from captum_fau.cli import analyze as cli_analyze

    def config(demo: bool, *argv: str):
        parser = argparse.ArgumentParser()
        cli_analyze._analysis_options(parser, "out", demo=demo)
        return cli_analyze.analysis_config(parser.parse_args(list(argv)))

    analyze_default, demo_default = config(False), config(True)
    assert (analyze_default.causal, analyze_default.importance) == (False, False)
    assert (demo_default.causal, demo_default.importance) == (True, True)
    assert demo_default.probe_options.n_faces == cli_analyze.DEMO_PROBE_FACES
    assert analyze_default.probe_options.n_faces == 64 and analyze_default.probe_options.prototypes
    assert not demo_default.probe_options.prototypes
    assert demo_default.importance_images == cli_analyze.DEMO_IMPORTANCE_IMAGES
    chosen = config(False, "--causal", "--importance", "--probe-faces", "16", "--probe-precision", "bfloat16",
                    "--importance-images", "0", "--seed", "3")  # fmt: skip
    assert chosen.causal and chosen.importance and chosen.importance_images == 0
    options = chosen.probe_options
    assert (options.n_faces, options.precision, options.seed) == (16, "bfloat16", 3)
    off = config(True, "--no-causal", "--no-importance")
    assert (off.causal, off.importance) == (False, False)
