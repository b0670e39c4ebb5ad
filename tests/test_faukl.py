"""FAUKL end to end on tiny models, FAUKLResult persistence and reports, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from captum.concept import Concept, ConceptInterpreter
from torch import nn

from captum_fau.concept import FAUKL, FAUKLResult
from captum_fau.data.base import FaceSet
from captum_fau.errors import LabelError, LayerError, OutputError, StatisticsError

AU_IDS = ("AU1", "AU12", "AU25")


class BandMask(nn.Module):
    """Keeps channel k only in horizontal band k of the map."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        bands = torch.arange(h.shape[-2], device=h.device) * h.shape[1] // h.shape[-2]
        mask = (bands[None, :] == torch.arange(h.shape[1])[:, None]).to(h.dtype)  # [C, H]
        return h * mask[None, :, :, None]


class BrightnessProbe(nn.Module):
    """Channel k = image brightness in horizontal band k (a known, AU-controlled response)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
        self.act = nn.ReLU()
        self.bands = BandMask()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bands(self.act(self.conv(x)))
        return self.head(h.amax(dim=(2, 3)))


def _faces(n: int = 96, seed: int = 0) -> FaceSet:
    rng = np.random.default_rng(seed)
    aus = (rng.random((n, 3)) < 0.4).astype(np.float32)
    images = rng.integers(0, 60, size=(n, 24, 24)).astype(np.uint8)
    for k in range(3):  # AU k brightens band k
        rows = slice(k * 8, k * 8 + 8)
        images[aus[:, k] > 0, rows, 6:18] += 150
    subjects = np.repeat(np.arange(n // 4), 4)
    return FaceSet(images=images, aus=aus, au_ids=AU_IDS, subjects=subjects, local_mean=0)


def _brute_force_maxima(model: nn.Module, layer: str, faces: FaceSet) -> np.ndarray:
    store = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: store.update(out=o))
    with torch.no_grad():
        model(faces.tensors())
    handle.remove()
    return store["out"].amax(dim=(2, 3)).numpy()


def test_interpret_end_to_end_recovers_probe_and_matches_brute_force():
    model = BrightnessProbe().eval()
    faces = _faces()
    fau = FAUKL(model, ["bands"], bins=5, n_permutations=200, n_bootstrap=30, progress=False)
    assert isinstance(fau, ConceptInterpreter)
    result = fau.interpret(faces)
    assert all(isinstance(c, Concept) for c in fau.concepts)
    assert [c.name for c in fau.concepts] == list(AU_IDS)
    assert [result.top_au(k) for k in range(3)] == list(AU_IDS)
    assert (np.diag(result.q) < 0.05).all()
    assert result.kl.shape == (3, 3) and result.ci.shape == (3, 3, 2)
    # the scan's maxima feed the same statistics as a brute-force pass
    reference = fau.interpret_activations(
        {"bands": _brute_force_maxima(model, "bands", faces)}, faces.aus, au_ids=AU_IDS, groups=faces.subjects
    )
    np.testing.assert_allclose(result.kl, reference.kl, rtol=1e-5)
    np.testing.assert_array_equal(result.p, reference.p)
    # TCAV layout
    scores = result.scores
    assert set(scores) == {"0", "1", "2"} and set(scores["1"]) == {"bands"}
    assert torch.allclose(scores[result.concept_key("AU12")]["bands"]["kl"], torch.from_numpy(result.kl[:, 1]))
    assert any("Permutation unit" in n for n in result.stats().notes)


def test_dataloader_and_explicit_au_ids():
    model = BrightnessProbe().eval()
    faces = _faces()
    loader = torch.utils.data.DataLoader(faces, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    fau = FAUKL(model, "bands", bins=5, n_permutations=50, n_bootstrap=0, progress=False)
    result = fau.interpret(loader, au_ids=["1", "12", "25"], groups=None)
    assert result.au_ids == AU_IDS
    assert [result.top_au(k) for k in range(3)] == list(AU_IDS)


def test_result_save_load_exports_and_plots(tmp_path):
    fau = FAUKL(BrightnessProbe().eval(), ["bands"], bins=5, n_permutations=50, n_bootstrap=10, progress=False)
    result = fau.interpret(_faces())
    path = result.save(tmp_path / "r.safetensors")
    loaded = FAUKLResult.load(path)
    np.testing.assert_array_equal(loaded.kl, result.kl)
    np.testing.assert_array_equal(loaded.ci, result.ci)
    assert loaded.au_ids == result.au_ids and loaded.stats().config == result.stats().config
    table = result.table()
    assert "AU12: Lip Corner Puller" in table and table.splitlines()[0].startswith("Filter")
    rows = list(open(result.to_csv(tmp_path / "r.csv")))
    assert len(rows) == 1 + 3 * 3
    payload = json.load(open(result.to_json(tmp_path / "r.json")))
    assert payload["au_ids"] == list(AU_IDS) and len(payload["pairs"]) == 9
    fig = result.plot_bars([0, 1, 2])
    bars = fig.axes[1].patches
    assert len(bars) == 3 and bars[1].get_facecolor()[:3] == pytest.approx((0.839, 0.153, 0.157), abs=0.01)
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(OutputError):
        FAUKLResult.load(tmp_path / "missing.safetensors")


def test_zerobias_conv3_code_path():
    from captum_fau.models.zerobias import ZeroBiasCNN

    torch.manual_seed(0)
    model = ZeroBiasCNN().eval()
    rng = np.random.default_rng(0)
    faces = FaceSet(
        images=rng.integers(0, 255, (40, 96, 96)).astype(np.uint8),
        aus=(rng.random((40, 3)) < 0.5).astype(np.float32), au_ids=AU_IDS,
    )  # fmt: skip
    result = FAUKL(model, ["conv3"], bins=4, n_permutations=20, n_bootstrap=0, progress=False).interpret(faces)
    assert result.kl.shape == (256, 3)
    assert np.isfinite(result.q).all()


def test_bad_input():
    model = BrightnessProbe().eval()
    with pytest.raises(LayerError):
        FAUKL(model, ["conv9"])
    with pytest.raises(LayerError):
        FAUKL(model, [])
    fau = FAUKL(model, ["bands"], bins=5, n_permutations=10, n_bootstrap=0, progress=False)
    faces = _faces()
    with pytest.raises(LabelError, match="aligned"):
        fau.interpret_activations(np.zeros((10, 3)), faces.aus, au_ids=AU_IDS)
    with pytest.raises(LabelError):
        fau.interpret_activations(np.zeros((96, 3)), faces.aus, au_ids=AU_IDS[:2])
    with pytest.raises(LabelError):
        fau.interpret(FaceSet(images=faces.images, local_mean=0))
    with pytest.raises(LabelError):
        fau.interpret(faces, groups=np.arange(5))
    with pytest.raises(StatisticsError, match="too few"):
        FAUKL(model, ["bands"], bins=50, progress=False).interpret(faces)
    # an AU nobody shows and a dead filter are reported, not errors
    faces.aus[:, 2] = 0
    result = fau.interpret(faces)
    assert not result.stats().testable_aus[2] and np.isfinite(result.kl).all()


def test_cli_registered():
    from captum_fau.cli import COMMAND_MODULES, build_parser

    assert "captum_fau.cli.faukl" in COMMAND_MODULES
    args = build_parser().parse_args(["fau-kl", "--model", "m", "--data", "synthfacs:64", "--out", "o"])
    assert args.layer == ["conv3"] and args.permutations == 1000


def test_bench_trained_agreement_code_path_on_random_zerobias():
    import importlib.util
    from pathlib import Path

    from captum_fau.data.synthfacs import load_synthfacs
    from captum_fau.models.zerobias import ZeroBiasCNN

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_faukl.py"
    spec = importlib.util.spec_from_file_location("bench_faukl", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch.manual_seed(0)
    faces = load_synthfacs(60, seed=7, mode="independent", progress=False)
    out = bench.trained_agreement(ZeroBiasCNN().eval(), faces, n_top=2, alpha=1.01, n_permutations=20, max_filters=4)
    assert out["n_filters"] <= 4 and (out["agreement"] is None or 0.0 <= out["agreement"] <= 1.0)
    assert out["n_filters"] > 0


def test_cli_end_to_end(tmp_path, capsys):
    from captum_fau.cli import main
    from captum_fau.models.zerobias import ZeroBiasCNN

    torch.manual_seed(0)
    ZeroBiasCNN().save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    code = main([
        "fau-kl", "--model", str(tmp_path / "model"), "--data", "synthfacs:48", "--layer", "conv3",
        "--out", str(out), "--bins", "4", "--permutations", "20", "--bootstrap", "5", "--filters", "3", "-q",
    ])  # fmt: skip
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {
        "faukl.safetensors",
        "faukl.csv",
        "faukl.json",
        "faukl_bars.png",
        "table4.txt",
    }
    assert FAUKLResult.load(out / "faukl.safetensors").kl.shape == (256, 20)
    out_text = capsys.readouterr().out  # the default rule is significance-consistent (issue 16), both tests shown
    assert "FAU (smallest p of the main test" in out_text and "q (KL)" in out_text and "q (AUROC)" in out_text
    assert main(["fau-kl", "--model", str(tmp_path / "model"), "--data", "nosuch:1", "--out", str(out), "-q"]) == 2


def test_ckplus_fixture_sequences_group_the_permutations(tmp_path):
    """On a fabricated CK+ tree (real on-disk layout): sequence ids become the permutation groups."""
    import sys
    import warnings
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from helpers.real_formats import CKSequence, CountingDetector, make_ckplus_tree

    from captum_fau.data.ckplus import load_ckplus

    facs_options = [((1.0, 2.0), (12.0, 3.0)), ((4.0, 1.0),), ((12.0, 2.0), (25.0, 1.0)), ((1.0, 0.0), (25.0, 2.0))]
    sequences = [
        CKSequence(f"S{100 + i:03d}", "001", label=1 + i % 7, frames=5, facs=facs_options[i % 4]) for i in range(12)
    ]
    make_ckplus_tree(tmp_path, sequences)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        faces = load_ckplus(tmp_path, detector=CountingDetector(), cache_dir=tmp_path / ".cache", progress=False)
    assert faces.sequences is not None and faces.aus is not None
    from captum_fau.models.zerobias import ZeroBiasCNN

    torch.manual_seed(0)
    fau = FAUKL(ZeroBiasCNN().eval(), ["conv2"], bins=4, n_permutations=30, n_bootstrap=10, progress=False)
    result = fau.interpret(faces)
    st = result.stats()
    assert st.config["grouped"] and any("Permutation unit" in n for n in st.notes)
    assert result.kl.shape == (128, len(faces.au_ids))
    assert np.isfinite(result.kl).all() and np.isfinite(result.q).all()
    # neutral first frames carry no AUs, so every AU has images without it
    assert st.testable_aus.all()


def test_images_without_au_coding_are_left_out_with_a_warning() -> None:
    """NaN AU rows (never coded, e.g. a CK+ sequence without a FACS file) leave the analysis."""
    import warnings as _warnings

    rng = np.random.default_rng(0)
    acts = rng.random((60, 3)).astype(np.float32)
    aus = (rng.random((60, 2)) > 0.5).astype(np.float32)
    aus[:6] = np.nan
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1))
    fau = FAUKL(model, layers=["0"], n_permutations=50, n_bootstrap=10, progress=False)
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        result = fau.interpret_activations(acts, aus, au_ids=["AU1", "AU12"], groups=np.arange(60) // 3)
    assert any("6 image(s) without AU coding" in str(w.message) for w in caught)
    assert result.n_images == 54 and result.meta["images_without_au_coding"] == 6
    assert np.isfinite(result.kl).all()
