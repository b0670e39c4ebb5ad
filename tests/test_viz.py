"""Report writer and generic figures."""

from __future__ import annotations

import numpy as np
import pytest

from captum_fau._utils.io import atomic_write_text
from captum_fau.viz.figures import plot_agreement, plot_au_heatmap, plot_confusion
from captum_fau.viz.report import Section, write_report


def test_report_is_self_contained(tmp_path) -> None:
    png = tmp_path / "heat.png"
    plot_au_heatmap(np.random.default_rng(0).random((5, 4)), ["AU1", "AU2", "AU4", "AU12"], [0, 3, 5, 7, 9],
                    significant=np.eye(5, 4, dtype=bool), path=png)
    plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], path=tmp_path / "cm.png")
    plot_agreement({"AU12": 0.8, "AU4": 0.5}, path=tmp_path / "agree.png")
    page = write_report(
        tmp_path / "report", "Title <&>", [
            Section("Heat map", text=["x < y"], figures=[(png, "the caption")], notes=["FAU-KL skipped"]),
            Section("Table", table=(["filter", "AU", "KL"], [[1, "AU12", 0.53125], [2, "AU4", 1e-5]])),
        ], summary={"model": "m", "layer": "conv3"})
    text = page.read_text()
    assert page.name == "index.html"
    assert "Title &lt;&amp;&gt;" in text and "x &lt; y" in text
    assert text.count("data:image/png;base64,") == 1
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network
    assert 'name="viewport"' in text and "FAU-KL skipped" in text
    assert "0.531" in text and "1e-05" in text
    assert not list((tmp_path / "report").glob("*.tmp"))


def test_atomic_write_leaves_old_file_on_failure(tmp_path) -> None:
    target = atomic_write_text(tmp_path / "a.txt", "old")

    with pytest.raises(TypeError):
        atomic_write_text(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
