"""The layout rules of docs/ARCHITECTURE.md, checked on the source: imports point down, no function
over 150 lines, no backend switching, only public Captum imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "captum_fau"

#: Top-level parts of the package, lowest first: a part may import only the parts before it.
LAYERS = ("errors", "_utils", "data", "models", "viz", "zoo", "stats", "attr", "concept", "train", "probes",
          "preflight", "analyze", "cli", "__init__")  # fmt: skip


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _own_part(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("captum_fau"):
            if node.module == "captum_fau":
                found += [(node.lineno, f"captum_fau.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("captum_fau")]
    return found


def test_imports_point_down() -> None:
    upward = []
    for path in _sources():
        me = _own_part(path)
        for line, module in _imported_modules(ast.parse(path.read_text())):
            target = _part(module)
            if target in LAYERS and LAYERS.index(target) > LAYERS.index(me):
                upward.append(f"{path.relative_to(PACKAGE)}:{line} ({me}) imports {module} ({target})")
    assert not upward, "imports pointing up the layers of docs/ARCHITECTURE.md:\n" + "\n".join(upward)


def test_every_part_of_the_package_is_placed_in_a_layer() -> None:
    parts = {_own_part(path) for path in _sources()}
    assert parts <= set(LAYERS), f"place {sorted(parts - set(LAYERS))} in LAYERS and docs/ARCHITECTURE.md"


def test_no_function_is_longer_than_150_lines() -> None:
    long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > 150:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "split these functions into named steps:\n" + "\n".join(long)


@pytest.mark.parametrize(
    "pattern, why",
    [
        (r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot", "use Figure + FigureCanvasAgg"),
        (r"from captum\.\w+\._|import captum\.\w+\._", "import Captum's public names (captum.attr, captum.concept)"),
        (r"torch\.load\(|pickle\.load|import pickle", "weights are safetensors only"),
    ],
)
def test_forbidden_constructs_are_absent(pattern: str, why: str) -> None:
    hits = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line) and not line.lstrip().startswith("#") and "weights_only=True" not in line
    ]
    assert not hits, f"{why}:\n" + "\n".join(hits)
