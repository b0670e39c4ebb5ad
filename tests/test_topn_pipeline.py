"""The top-N pipeline: filters reconstructed now or later (pending), exactly; compact storage; completion."""

from __future__ import annotations

import pytest
import torch

from captum_fau.attr import TopNDeconv, TopNResult
from captum_fau.attr.topn_pipeline import within_budget
from captum_fau.errors import ConfigError, DatasetError
from captum_fau.models import ZeroBiasCNN
from captum_fau.stats.scan import scan


def _setup(seed: int = 0) -> tuple[ZeroBiasCNN, torch.Tensor, TopNDeconv]:
    torch.manual_seed(seed)
    model = ZeroBiasCNN(img_size=32).eval()
    images = torch.rand(14, 1, 32, 32, generator=torch.Generator().manual_seed(seed))
    return model, images, TopNDeconv(model, "conv3", rule="guided")


def test_pending_filters_complete_to_the_same_result() -> None:
    model, images, topn = _setup()
    found = scan(model, "conv3", images, top_n=3, keep_inputs=True, progress=False)
    full = topn.from_scan(found, filters=[0, 2, 5, 7], progress=False)
    part = topn.from_scan(found, filters=[0, 2, 5, 7], reconstruct=[5, 0], progress=False)
    assert part.filters.tolist() == [0, 5] and part.pending_filters == [2, 7]
    assert sorted(part.top_values()) == [0, 2, 5, 7]
    assert torch.equal(part.patches, full.patches[[0, 2]])
    with pytest.raises(ConfigError, match="not reconstructed"):
        part.row(2)
    calls: list[int] = []
    done = topn.complete(part, images, progress=False, checkpoint=lambda r: calls.append(len(r.filters)))
    assert done.filters.tolist() == [0, 2, 5, 7] and done.pending is None and calls == [4]
    for name in ("indices", "values", "positions", "patches", "image_patches", "boxes"):
        assert torch.equal(getattr(done, name), getattr(full, name)), name
    one = topn.complete(part, images, filters=[7], progress=False)
    assert one.filters.tolist() == [0, 5, 7] and one.pending_filters == [2]


def test_save_load_keeps_pending_and_compact_storage_is_smaller(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model, images, topn = _setup(1)
    found = scan(model, "conv3", images, top_n=2, keep_inputs=True, progress=False)
    part = topn.from_scan(found, reconstruct=[1, 3], progress=False)
    exact = TopNResult.load(part.save(tmp_path / "exact"))
    compact = TopNResult.load(part.save(tmp_path / "compact", compact=True))
    others = [f for f in range(len(part.top_values())) if f not in (1, 3)]
    assert exact.pending_filters == compact.pending_filters == others
    assert torch.equal(exact.patches, part.patches) and torch.equal(exact.pending.values, part.pending.values)
    scale = float(part.patches.abs().max())
    assert float((compact.patches - part.patches).abs().max()) <= 1e-3 * scale
    span = float(part.image_patches.max() - part.image_patches.min())
    assert float((compact.image_patches - part.image_patches).abs().max()) <= span / 255
    size = lambda folder: (folder / "topn.safetensors").stat().st_size  # noqa: E731
    assert size(tmp_path / "compact") < 0.6 * size(tmp_path / "exact")
    part.patches = part.patches * 1e-6  # tiny reconstructions keep their digits (each stored scaled to its max)
    tiny = TopNResult.load(part.save(tmp_path / "tiny", compact=True))
    per_pair = part.patches.abs().amax(dim=(2, 3, 4), keepdim=True)
    assert bool(((tiny.patches - part.patches).abs() <= 1e-3 * per_pair).all())
    done = topn.complete(compact, images, filters=[0], progress=False)
    assert torch.equal(done.patches[0], topn.complete(exact, images, filters=[0], progress=False).patches[0])


def test_complete_refuses_other_data_and_other_layers() -> None:
    model, images, topn = _setup(2)
    found = scan(model, "conv3", images, top_n=2, keep_inputs=True, progress=False)
    part = topn.from_scan(found, reconstruct=[0], progress=False)
    with pytest.raises(DatasetError, match="differ from the run"):
        topn.complete(part, images.flip(-1) * 0.5, progress=False)
    with pytest.raises(DatasetError, match="shape"):
        topn.complete(part, torch.rand(14, 1, 28, 28), progress=False)
    with pytest.raises(ConfigError, match="matching TopNDeconv"):
        TopNDeconv(model, "conv2").complete(part, images, progress=False)


def test_within_budget_keeps_a_prefix_and_the_minimum() -> None:
    model, images, topn = _setup(3)
    found = scan(model, "conv3", images, top_n=2, keep_inputs=True, progress=False)
    part = topn.from_scan(found, reconstruct=[], progress=False)
    order = list(range(len(part.top_values())))[::-1]
    per_filter = 2 * 1 * part.meta["receptive_field"][0] * part.meta["receptive_field"][1] * 3
    assert within_budget(topn, part, order, 3.5 * per_filter / 2**20) == order[:3]
    assert within_budget(topn, part, order, 0.0, keep=2) == order[:2]
    assert within_budget(topn, part, order, 1e6) == order


def test_cli_topn_completes_pending_filters_in_out(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from captum_fau.attr import TopNSearch
    from captum_fau.cli import main

    torch.manual_seed(5)
    ZeroBiasCNN().eval().save_pretrained(tmp_path / "model")
    out = tmp_path / "run"
    common = [
        "topn",
        "--model",
        str(tmp_path / "model"),
        "--data",
        "synthfacs:12",
        "--n",
        "2",
        "--rule",
        "deconv",
        "--out",
        str(out),
        "-q",
    ]
    assert main(common + ["--filters", "0-3"]) == 0
    full = TopNResult.load(out)
    keep = [0, 1]
    part = TopNResult(
        layer=full.layer,
        rule=full.rule,
        filters=full.filters[keep],
        indices=full.indices[keep],
        values=full.values[keep],
        positions=full.positions[keep],
        patches=full.patches[keep],
        image_patches=full.image_patches[keep],
        boxes=full.boxes[keep],
        dead=[],
        meta=full.meta,
        pending=TopNSearch(full.filters[2:], full.indices[2:], full.values[2:], full.positions[2:]),
    )
    part.save(out, compact=True)
    assert main(common + ["--layer", "conv2"]) == 2  # the folder holds conv3: named in the error
    assert "--layer conv3" in capsys.readouterr().err
    assert main(common + ["--filters", "3"]) == 0
    assert "1 still pending (2)" in capsys.readouterr().out
    one = TopNResult.load(out)
    assert one.filters.tolist() == [0, 1, 3] and one.pending_filters == [2]
    assert torch.allclose(one.patches[2], full.patches[3], rtol=1e-3, atol=1e-3 * float(full.patches[3].abs().max()))
    assert main(common) == 0
    done = TopNResult.load(out)
    assert done.filters.tolist() == [0, 1, 2, 3] and done.pending is None


def test_browser_marks_pending_filters_and_links_full_size_strips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from captum_fau.viz.analysis_report import topn_status
    from captum_fau.viz.filter_browser import filter_browser_section

    model, images, topn = _setup(6)
    found = scan(model, "conv3", images, top_n=2, keep_inputs=True, progress=False)
    part = topn.from_scan(found, filters=[0, 1, 2], reconstruct=[1], progress=False)
    section = filter_browser_section(tmp_path, part, None, "conv3", None, featured=[1])
    assert section.html.count('<details class="filt"') == 3 and section.html.count("· pending") == 2
    assert "--filters 0</code>" in section.html and "--filters 2</code>" in section.html
    assert '<a href="filters/filter-1.png"' in section.html and (tmp_path / "filters" / "filter-1.png").is_file()
    assert not (tmp_path / "filters" / "filter-0.png").exists()
    assert any("Reconstructed: 1 of 3 filters" in t for t in section.text)
    status = topn_status(part)
    assert (
        status["complete"] is False and status["reconstructed_filters"] == [1] and status["pending_filters"] == [0, 2]
    )


def test_sanity_caveat_follows_the_full_cascade() -> None:
    from types import SimpleNamespace

    from captum_fau.viz.analysis_report import input_caveat

    steps = [
        {"mode": "cascade", "randomised": ["b"]},
        {"mode": "cascade", "randomised": ["b", "a"]},
        {"mode": "independent", "randomised": ["a"]},
    ]
    check = lambda last: SimpleNamespace(
        layer="b",
        steps=steps,
        summary=lambda: [  # noqa: E731
            {"ssim_median": 0.1},
            {"ssim_median": last},
            {"ssim_median": 0.05},
        ],
    )
    assert "mostly show the input" in input_caveat(check(0.9))
    assert "partly show the input" in input_caveat(check(0.5))
    assert input_caveat(check(0.2)) is None and input_caveat(check(None)) is None and input_caveat(None) is None
