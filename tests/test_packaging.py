"""The wheel carries the zoo, the model cards and the license, and works without the checkout.

``setup.py`` maps the top-level ``zoo/`` and ``model_cards/`` folders into the wheel as
``captum_fau/zoo/entries/`` and ``captum_fau/zoo/model_cards/``. The first test checks that its
globs cover every file of those folders (a new file type cannot be left out silently); the
second builds the wheel, installs it (without dependencies, which come from this environment)
into a fresh virtual environment and uses it from outside the checkout, offline.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import torch

from captum_fau import zoo

ROOT = Path(__file__).resolve().parents[1]
NAME = "zerobias-synthfacs-8class"


def _setup_config():
    spec = importlib.util.spec_from_file_location("captum_fau_setup_config", ROOT / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the tables; setup() runs only as __main__
    return module


def _files(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not any(part.startswith(".") for part in p.parts)
    }


def _packaged(folder: Path, patterns: list[str]) -> set[str]:
    """What setuptools takes for a package: its globs, relative to the package folder (no hidden files)."""
    return {m for pattern in patterns for m in glob.glob(pattern, root_dir=folder) if (folder / m).is_file()}


def test_package_data_covers_the_zoo_and_cards_folders() -> None:
    setup = _setup_config()
    assert setup.DATA_PACKAGES == {"captum_fau.zoo.entries": "zoo", "captum_fau.zoo.model_cards": "model_cards"}
    for package, folder in setup.DATA_PACKAGES.items():
        on_disk = _files(ROOT / folder)
        assert on_disk, folder
        assert _packaged(ROOT / folder, setup.PACKAGE_DATA[package]) == on_disk, (
            f"{folder}/ files left out of the wheel"
        )
    templates = ROOT / "captum_fau" / "zoo"
    assert _packaged(templates, setup.PACKAGE_DATA["captum_fau.zoo"]) == {
        f"templates/{t}" for t in _files(templates / "templates")
    }
    # Every zoo entry has its card, and the packaged entry its Hub folder.
    assert {f"{name}.md" for name in zoo.list()} == _files(ROOT / "model_cards")
    assert {f"{NAME}/{f}" for f in ("config.json", "model.safetensors", "metrics.json")} <= _files(ROOT / "zoo")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license-files"] == ["LICENSE"] and "BSD 3-Clause" in (ROOT / "LICENSE").read_text()
    assert any(dep.startswith("jinja2") for dep in project["dependencies"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources so that the build writes nothing into the checkout."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".*")
    for folder in ("captum_fau", "zoo", "model_cards"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
           str(tmp_path / "dist"), str(src)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("captum_fau-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A virtual environment holding only the wheel; its dependencies come from this one's site-packages."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())  # fmt: skip
    # A plain path entry: .pth files there (an editable install's finder) are not run.
    (site / "zz_dependencies.pth").write_text(str(Path(torch.__file__).resolve().parents[1]) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=300)  # fmt: skip
    return python


def test_wheel_carries_the_zoo_the_cards_and_the_license(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, folder in _setup_config().DATA_PACKAGES.items():
        inside = package.replace(".", "/")
        assert {f"{inside}/{f}" for f in _files(ROOT / folder)} <= names
    assert "captum_fau/zoo/templates/model_card.md.j2" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "captum_fau").rglob("*.py")}
    assert sources <= names, sorted(sources - names)  # every subpackage is found
    # The index page: the README without its repository-relative image link, nothing else dropped.
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    page = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Content-Type: text/markdown" in page and "## Python API tour" in page
    assert "](docs/" not in page and "<!-- not-on-index -->" not in page


@pytest.mark.slow
def test_installed_wheel_loads_the_packaged_model_and_renders_cards_offline(tmp_path: Path, wheel: Path) -> None:
    python = _fresh_venv(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "HF_", "CAPTUM_FAU"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), CAPTUM_FAU_ZOO=str(tmp_path / "user-zoo"),
               OMP_NUM_THREADS="1")  # fmt: skip

    def run(*args: str) -> str:
        proc = subprocess.run([str(python), *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    script = (
        "import json, captum_fau\n"
        "from captum_fau import zoo\n"
        "from captum_fau.zoo import cards\n"
        f"m = zoo.load({NAME!r})\n"
        "print(m)\n"
        "card = cards.render_card(" + repr(NAME) + ")\n"
        "print(json.dumps({'package': captum_fau.__file__, 'weights': m.config['zoo']['weights_file'],\n"
        "    'source': m.config['zoo']['source'], 'card_equal': card == cards.card_path("
        + repr(NAME)
        + ").read_text(),\n"
        "    'cards': sorted(p.name for p in zoo.CARDS_DIR.glob('*.md'))}))\n"
    )
    out = run("-c", script)
    assert "ZeroBiasCNN(" in out and "(conv3): Conv2d(128, 256" in out
    report = json.loads(out.strip().splitlines()[-1])
    installed = str(tmp_path / "venv")
    assert report["package"].startswith(installed) and report["weights"].startswith(installed)
    assert report["source"] == "packaged" and report["card_equal"]
    assert report["cards"] == sorted(f"{n}.md" for n in zoo.list())
    info = json.loads(run("-m", "captum_fau.cli", "zoo", "info", NAME))
    assert info["name"] == NAME and info["sha256"] == zoo.info(NAME).sha256
