"""Where the wheel's files come from (everything else about the project is in pyproject.toml).

The zoo (``zoo/``: ``registry.json`` and one Hub folder per entry) and the model cards
(``model_cards/``) live at the top of the repository, where they are trained into, reviewed
and published from. A wheel carries them inside the package, as ``captum_fau/zoo/entries/``
and ``captum_fau/zoo/model_cards/``: ``package_dir`` maps the two folders to data-only
packages, so a non-editable install loads the packaged model offline and renders cards
without the checkout. :mod:`captum_fau.zoo.registry` reads whichever of the two exists.
``tests/test_packaging.py`` checks that these globs cover every file of the two folders.

The package index shows :func:`long_description`: the README without its parts between
``<!-- not-on-index -->`` and ``<!-- /not-on-index -->`` (the demo figure, whose relative link
resolves in the repository but not on the index, and the project has no fixed public URL to point
an absolute link at).
"""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import find_packages, setup

#: Data-only packages of the wheel and the repository folders they are built from.
DATA_PACKAGES: dict[str, str] = {
    "captum_fau.zoo.entries": "zoo",
    "captum_fau.zoo.model_cards": "model_cards",
}
PACKAGE_DATA: dict[str, list[str]] = {
    "captum_fau": ["py.typed"],
    "captum_fau.zoo": ["templates/*.j2"],
    "captum_fau.zoo.entries": ["registry.json", "*/*"],
    "captum_fau.zoo.model_cards": ["*.md"],
}

#: Markers around README parts that only work inside the repository (relative image links).
NOT_ON_INDEX = re.compile(r"<!-- not-on-index -->.*?<!-- /not-on-index -->\n?", re.S)


def long_description(readme: str) -> str:
    """The README as the package index shows it: without the repository-only parts."""
    return NOT_ON_INDEX.sub("", readme)


if __name__ == "__main__":
    setup(
        long_description=long_description((Path(__file__).parent / "README.md").read_text(encoding="utf-8")),
        long_description_content_type="text/markdown",
        packages=[*find_packages(include=["captum_fau", "captum_fau.*"]), *DATA_PACKAGES],
        package_dir=DATA_PACKAGES,
        package_data=PACKAGE_DATA,
        include_package_data=False,
    )
