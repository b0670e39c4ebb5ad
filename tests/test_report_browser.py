"""The report a researcher reads: every filter browsable, notes first, and the demo on held-out faces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from captum_fau.attr import TopNResult
from captum_fau.concept import FAUKLResult, fau_kl_statistics
from captum_fau.viz.analysis_report import build_report
from captum_fau.viz.filter_browser import au_sort_key, strip_image

N_FILTERS, N_TOP, PATCH = 256, 10, 32  # conv3 of the zero-bias CNN: 256 filters, 32 x 32 receptive field
AUS = ("AU1", "AU12", "AU15", "AU2", "AU4")  # deliberately not in numeric order


def _topn(rng: np.random.Generator) -> TopNResult:
    return TopNResult(
        layer="conv3", rule="guided", filters=torch.arange(N_FILTERS),
        indices=torch.from_numpy(rng.integers(0, 200, (N_FILTERS, N_TOP))),
        values=torch.from_numpy(np.sort(rng.random((N_FILTERS, N_TOP)), axis=1)[:, ::-1].copy()).float(),
        positions=torch.zeros(N_FILTERS, N_TOP, 2, dtype=torch.long),
        patches=torch.from_numpy(rng.normal(size=(N_FILTERS, N_TOP, 1, PATCH, PATCH))).float(),
        image_patches=torch.from_numpy(rng.random((N_FILTERS, N_TOP, 1, PATCH, PATCH))).float(),
        boxes=torch.zeros(N_FILTERS, N_TOP, 4, dtype=torch.long),
    )  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, FAUKLResult]:
    rng = np.random.default_rng(0)
    presence = rng.random((200, len(AUS))) < 0.4
    acts = rng.normal(size=(200, N_FILTERS))
    acts[:, 7] += 3 * presence[:, 1]  # filter 7 responds to AU12: a planted, significant association
    st = fau_kl_statistics(acts, presence, bins=8, n_permutations=30, n_bootstrap=0)
    faukl = FAUKLResult(layers={"conv3": st}, au_ids=AUS, n_images=200)
    out = tmp_path_factory.mktemp("report")
    localisation = {
        "rate": 1.0,
        "n_filters": 1,
        "per_filter": [{"filter": 7, "fau_kl_au": "AU12", "region_au": "AU12", "share": 0.8, "agree": True}],
    }
    build_report(
        out, model="m<odel>", data="synthfacs:200", layer="conv3", faces=range(200), topn=_topn(rng), faukl=faukl,
        accuracy=None, localisation=localisation, featured=[7, 3], notes=["FAU-KL note <b>"],
        params={"data_provenance": {"held_out": True, "reason": "planted", "seed": 0, "start": 2409,
                                    "subjects": [219, 237]}},
    )  # fmt: skip
    return out, faukl


def test_every_filter_has_an_anchored_entry_and_a_lazy_strip(report) -> None:
    out, _ = report
    page = (out / "index.html").read_text()
    ids = re.findall(r'<details class="filt" id="filter-(\d+)"', page)
    assert sorted(map(int, ids)) == list(range(N_FILTERS))
    links = set(re.findall(r'href="#filter-(\d+)"', page))
    assert links == {str(k) for k in range(N_FILTERS)}  # the index table links every entry
    imgs = re.findall(r"<img [^>]*>", page)
    assert imgs and all('loading="lazy"' in tag for tag in imgs)
    strips = re.findall(r'src="(filters/filter-\d+\.png)"', page)
    assert len(strips) == N_FILTERS and all((out / s).is_file() for s in strips)
    assert "data:image" not in page and "http://" not in page and "https://" not in page  # opens from disk
    size = (out / "index.html").stat().st_size
    folder = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size <= 20 * 2**20, f"index.html is {size / 2**20:.1f} MB"
    assert folder <= 60 * 2**20, f"report folder is {folder / 2**20:.1f} MB"
    assert "<script>" in page and "fb-index" in page  # the sortable index is inline


def test_entries_show_bars_over_every_au_in_numeric_order_with_the_chosen_au(report) -> None:
    out, faukl = report
    page = (out / "index.html").read_text()
    entry = page.split('id="filter-7"')[1].split("</details>")[0]
    bars = re.findall(r'<div class="bar-row( chosen)?"><span class="au">(AU\d+)</span>', entry)
    assert [au for _, au in bars] == ["AU1", "AU2", "AU4", "AU12", "AU15"]
    assert [au for chosen, au in bars if chosen] == [faukl.top_au(7)] == ["AU12"]
    assert "AU region AU12 (energy share" in entry


def test_notes_and_held_out_status_come_first_and_are_escaped(report) -> None:
    out, _ = report
    page = (out / "index.html").read_text()
    assert page.index("FAU-KL note &lt;b&gt;") < page.index('id="top-n-deconvolution"')
    assert "m&lt;odel&gt;" in page and "subjects 219..237" in page
    results = json.loads((out / "results.json").read_text())
    assert results["held_out"] is True
    sig = results["fau_kl"]["significant_filters"]
    assert f"{sig} of {N_FILTERS} filters" in results["summary"]["Significant filters"]


def test_au_sort_and_strip_shape() -> None:
    assert sorted(["AU15", "AU2", "AU1"], key=au_sort_key) == ["AU1", "AU2", "AU15"]
    strip = strip_image(np.zeros((3, 1, 4, 5)), np.ones((3, 1, 4, 5)), zoom=2, gap=2)
    assert strip.shape == (4 * 2 * 2 + 4, 3 * 10 + 2 * 2, 3) and strip.dtype == np.uint8


def test_the_demo_draws_subjects_the_zoo_model_never_saw() -> None:
    """Proof against the training script's own split: every subject of the training pool (the
    training, validation and test folds of every fold) is absent from the demo's data."""
    from captum_fau.analyze import AnalysisConfig
    from captum_fau.preflight import _open_data
    from captum_fau.cli.analyze import DEMO_IMAGES, DEMO_MODEL
    from captum_fau.data.folds import subject_kfold
    from captum_fau.data.synthfacs import SynthFACS
    from captum_fau.zoo import info

    data = info(DEMO_MODEL).metrics["data"]
    pool = SynthFACS(n=data["n"], seed=data["seed"], mode=data["mode"])
    folds = subject_kfold(pool.subjects, 5, seed=data["seed"])
    train_valid = set(pool.subjects[folds != 0].tolist())  # the shipped fold-0 model's training + validation
    faces, provenance = _open_data(f"synthfacs:{DEMO_IMAGES}", AnalysisConfig(seed=data["seed"]), False, DEMO_MODEL)
    demo_ids = set(faces.subjects.tolist())
    assert len(faces) == DEMO_IMAGES and provenance["held_out"] is True
    assert demo_ids.isdisjoint(train_valid) and demo_ids.isdisjoint(pool.subjects.tolist())
    assert faces.start >= data["n"]  # and no demo image is one of the training set's images
    assert faces[0]["subject"] == min(demo_ids) == provenance["subjects"][0]
    # the same index of the training pool shows another face
    assert not torch.equal(faces[0]["image"], pool[0]["image"])
    # a model without a recorded SynthFACS pool is labelled as not verified
    _, unknown = _open_data("synthfacs:20", AnalysisConfig(seed=0), False, "my_pkg:build")
    assert unknown["held_out"] is False and "cannot tell" in unknown["reason"]


def test_a_truncated_table_says_so_and_links_the_csv(tmp_path) -> None:
    from captum_fau.viz.analysis_report import LOCALISATION_ROWS, _localisation_section

    per = [{"filter": k, "fau_kl_au": "AU12" if k % 2 else "AU2", "region_au": "AU12", "share": 0.5, "agree": bool(k % 2)}
           for k in range(LOCALISATION_ROWS + 5)]  # fmt: skip
    section = _localisation_section(tmp_path, {"rate": 0.5, "n_filters": len(per), "per_filter": per}, None, "conv3")
    assert len(section.table[1]) == LOCALISATION_ROWS and section.table_csv == "localisation.csv"
    assert f"Showing {LOCALISATION_ROWS} of {len(per)}" in section.table_note
    assert len((tmp_path / "localisation.csv").read_text().splitlines()) == len(per) + 1
    assert list(section.figures[0][1].split(":")[0].split()) == ["Localisation", "agreement", "per", "FAU-KL", "top",
                                                                 "AU", "(filters)"]  # fmt: skip
