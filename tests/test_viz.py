"""Report writer and generic figures."""

from __future__ import annotations

import numpy as np
import pytest

from captum_fau._utils.io import atomic_write_text
from captum_fau.viz.figures import plot_agreement, plot_au_heatmap, plot_confusion
from captum_fau.viz.report import Section, write_report


def test_report_is_self_contained(tmp_path) -> None:
    png = tmp_path / "heat.png"
    plot_au_heatmap(
        np.random.default_rng(0).random((5, 4)),
        ["AU1", "AU2", "AU4", "AU12"],
        [0, 3, 5, 7, 9],
        significant=np.eye(5, 4, dtype=bool),
        path=png,
    )
    plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], path=tmp_path / "cm.png")
    plot_agreement({"AU12": 0.8, "AU4": 0.5}, path=tmp_path / "agree.png")
    page = write_report(
        tmp_path / "report",
        "Title <&>",
        [
            Section("Heat map", text=["x < y"], figures=[(png, "the caption")], notes=["FAU-KL skipped"]),
            Section("Table", table=(["filter", "AU", "KL"], [[1, "AU12", 0.53125], [2, "AU4", 1e-5]])),
        ],
        summary={"model": "m", "layer": "conv3"},
    )
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


_BACKEND_CHECK = r"""
import matplotlib
matplotlib.use("svg")
import sys, pathlib
import numpy as np
import torch
from captum_fau.attr import TopNResult
from captum_fau.concept import FAUKLResult, fau_kl_statistics
from captum_fau.viz import analysis_report, figures
from captum_fau.viz.figures import plot_agreement, plot_au_heatmap, plot_confusion

out = pathlib.Path(sys.argv[1])
rng = np.random.default_rng(0)
topn = TopNResult(
    layer="conv1", rule="guided", filters=torch.arange(2), indices=torch.zeros(2, 3, dtype=torch.long),
    values=torch.ones(2, 3), positions=torch.zeros(2, 3, 2, dtype=torch.long),
    patches=torch.randn(2, 3, 1, 5, 5), image_patches=torch.rand(2, 3, 1, 5, 5),
    boxes=torch.zeros(2, 3, 4, dtype=torch.long),
)
st = fau_kl_statistics(rng.normal(size=(40, 3)), rng.random((40, 2)) < 0.5, bins=4, n_permutations=0, n_bootstrap=0)
faukl = FAUKLResult(layers={"conv1": st}, au_ids=("AU1", "AU12"), n_images=40)
made = [
    topn.plot(path=out / "grid.png"),
    faukl.plot_bars([0, 1]),
    plot_au_heatmap(st.kl, ["AU1", "AU12"], [0, 1, 2], path=out / "heat.png"),
    plot_confusion(np.eye(2), ["a", "b"]),
    plot_agreement({"AU1": 0.5}),
]
png = [fig._repr_png_()[:8] for fig in made]
import matplotlib.pyplot as plt
print(matplotlib.get_backend(), len(plt.get_fignums()), len(set(png)), png[0] == b"\x89PNG\r\n\x1a\n")
"""


def test_importing_and_plotting_keep_the_users_backend(tmp_path) -> None:
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _BACKEND_CHECK, str(tmp_path)], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    # the backend chosen by the user stays; no figure is registered with pyplot; notebooks get PNGs
    assert run.stdout.split() == ["svg", "0", "1", "True"]
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "heat.png").stat().st_size > 0
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temporary files
