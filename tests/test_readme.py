"""The README's Python code blocks run, in order, as a user would paste them."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_blocks_run(tmp_path, monkeypatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 4, "the API tour should show zoo.load, TopNDeconv, FAUKL and analyze"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README is ours
    assert (tmp_path / "tour-report" / "index.html").is_file()
    assert namespace["res"].indices.shape == (8, 5)
    assert namespace["scores"].kl.shape == (256, 20)
