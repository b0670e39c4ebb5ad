"""The model zoo: pretrained zero-bias CNNs by name, and any model from a spec string.

Each entry of the registry (``zoo/registry.json``) names a Hugging Face Hub repository,
the pinned revision and sha256 of its ``model.safetensors``, the architecture, the class
names in index order, the preprocessing the model expects, its training data and its
metrics. :func:`load` finds the weights (explicit, packaged, user zoo, Hub cache or
download; see :mod:`captum_fau.zoo.loading`) and verifies their checksum.

Modules:

* :mod:`~captum_fau.zoo.registry` -- :class:`ZooEntry`, the registry file, pinning;
* :mod:`~captum_fau.zoo.loading` -- weight sources, checksums, offline rules;
* :mod:`~captum_fau.zoo.resolve` -- THE model-spec resolver (zoo name, Hub folder,
  ``timm:NAME``, ``module:factory``, ``file.py:factory``);
* :mod:`~captum_fau.zoo.cards` -- model cards rendered from a Jinja template;
* :mod:`~captum_fau.zoo.publish` -- assembling, verifying and uploading a Hub folder.

Examples::

    >>> from captum_fau import zoo
    >>> "zerobias-synthfacs-8class" in zoo.list()
    True
    >>> model = zoo.load("zerobias-synthfacs-8class")
    >>> model.config["zoo"]["class_names"][5]
    'happy'
"""

from __future__ import annotations

from captum_fau.zoo.loading import load, local_weights, sha256_file, snapshot_commit, verify_checksum
from captum_fau.zoo.registry import (
    CARDS_DIR,
    REGISTRY_FILE,
    WEIGHTS_FILENAME,
    ZOO_DIR,
    ZooEntry,
    info,
    user_zoo_dir,
)
from captum_fau.zoo.registry import names as _names
from captum_fau.zoo.resolve import load_model_spec


def list() -> list[str]:  # noqa: A001 - the zoo's public verb
    """Names of all zoo entries, sorted.

    Returns:
        list[str]: e.g. ``["zerobias-ckplus-6class", "zerobias-ckplus-8class", ...]``.
    """
    return _names()


__all__ = [
    "CARDS_DIR",
    "REGISTRY_FILE",
    "WEIGHTS_FILENAME",
    "ZOO_DIR",
    "ZooEntry",
    "info",
    "list",
    "load",
    "load_model_spec",
    "local_weights",
    "sha256_file",
    "snapshot_commit",
    "user_zoo_dir",
    "verify_checksum",
]
