"""The zoo registry: one :class:`ZooEntry` per model, read from ``zoo/registry.json``.

The repository's top-level ``zoo/`` folder is the source of the zoo: ``zoo/registry.json``
holds every entry (Hub repository, pinned revision and checksum, architecture, class names,
preprocessing, training data, metrics), and ``zoo/<name>/`` holds an entry's Hub folder as
published (``config.json``, ``model.safetensors``, ``metrics.json``, training log) where the
model was trained here. A wheel carries the same folder as ``captum_fau/zoo/entries/`` (see
``setup.py``); :data:`ZOO_DIR` is whichever of the two exists.

Trained models of a user (``captum-fau reproduce`` on their copy of CK+ or TFD) live in
:func:`user_zoo_dir`, one ``<name>/`` folder each, searched by :func:`captum_fau.zoo.load`
after explicit and packaged weights.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from captum_fau.errors import ConfigError, UnknownModelError, ZooWeightsUnavailable
from captum_fau._utils.io import atomic_write_text
from captum_fau._utils.paths import user_zoo_dir  # re-export: zoo.user_zoo_dir

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_DIR = PACKAGE_DIR.parent.parent


def _data_dir(installed: str, checkout: str) -> Path:
    """``captum_fau/zoo/<installed>`` in a wheel, else ``<checkout>/<checkout>`` of the source tree."""
    inside = PACKAGE_DIR / installed
    return inside if inside.is_dir() else _CHECKOUT_DIR / checkout


#: The zoo folder: ``zoo/`` of the checkout, or its copy inside an installed wheel.
ZOO_DIR = _data_dir("entries", "zoo")
#: The model cards: ``model_cards/`` of the checkout, or its copy inside an installed wheel.
CARDS_DIR = _data_dir("model_cards", "model_cards")
REGISTRY_FILE = ZOO_DIR / "registry.json"
WEIGHTS_FILENAME = "model.safetensors"
_REPO_ID = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo.

    Attributes:
        name: The zoo name, e.g. ``"zerobias-ckplus-8class"``.
        repo_id: Hugging Face Hub repository holding the weights.
        revision: Pinned Hub commit (``None`` while the entry is unpublished).
        sha256: Checksum of ``model.safetensors`` (``None`` when unpinned).
        packaged: Whether the weights ship inside the installed package.
        architecture: Keyword arguments of :class:`ZeroBiasCNN`.
        class_names: Class names in output-index order.
        preprocessing: What the model expects of its input images.
        training_data: The data the weights were trained on.
        dataset_hint: Where that data comes from.
        train_command: The command that produces the weights.
        metrics: Measured metrics (for packaged weights, read from their ``metrics.json``).
    """

    name: str
    repo_id: str
    revision: str | None
    sha256: str | None
    packaged: bool
    architecture: dict[str, Any]
    class_names: tuple[str, ...]
    preprocessing: dict[str, Any]
    training_data: str
    dataset_hint: str
    train_command: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def packaged_dir(self) -> Path:
        """The entry's folder in the zoo (``zoo/<name>/``), whether or not it exists."""
        return ZOO_DIR / self.name

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain JSON types."""
        d = asdict(self)
        d["class_names"] = [*self.class_names]
        return d


@lru_cache(maxsize=1)
def _registry() -> dict[str, ZooEntry]:
    raw = json.loads(REGISTRY_FILE.read_text(encoding="utf-8"))
    entries = {}
    for name, spec in raw.items():
        spec = dict(spec)
        spec["class_names"] = tuple(spec["class_names"])
        entries[name] = ZooEntry(name=name, **spec)
    return entries


def names() -> list[str]:
    """Names of all zoo entries, sorted."""
    return sorted(_registry())


def entry(name: str) -> ZooEntry:
    """The registry entry of ``name`` as written, or :class:`UnknownModelError` naming the closest."""
    registry = _registry()
    if not isinstance(name, str) or name not in registry:
        close = difflib.get_close_matches(str(name), registry, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(f"Unknown zoo model {name!r}.{hint} Known models: {', '.join(sorted(registry))}.")
    return registry[name]


def info(name: str) -> ZooEntry:
    """The registry entry of ``name``, with metrics of packaged weights filled in.

    Args:
        name (str): A zoo name (see :func:`captum_fau.zoo.list`).

    Returns:
        ZooEntry: Repository, revision, checksum, architecture, class names,
        preprocessing, training data and metrics.

    Raises:
        UnknownModelError: ``name`` is not in the zoo; the message names the closest one.
    """
    found = entry(name)
    metrics_file = found.packaged_dir / "metrics.json"
    if found.packaged and metrics_file.is_file():
        metrics = {**found.metrics, **json.loads(metrics_file.read_text(encoding="utf-8"))}
        found = ZooEntry(**{**found.__dict__, "metrics": metrics})
    return found


def zoo_folder(name: str, zoo_dir: str | Path | None = None) -> Path:
    """The folder holding the trained model of zoo entry ``name``.

    ``ZOO_DIR/<name>/`` when it holds weights (the output of ``captum-fau reproduce``),
    otherwise the packaged folder of entries that ship their weights.

    Args:
        name (str): A zoo name.
        zoo_dir (str or Path, optional): Where trained model folders are. Default: :data:`ZOO_DIR`.

    Returns:
        Path: A folder with ``config.json``, ``model.safetensors`` and ``metrics.json``.

    Raises:
        UnknownModelError: ``name`` is not in the zoo.
        ZooWeightsUnavailable: no trained model exists for ``name``; the message names the
            command that trains it.
    """
    found = info(name)
    base = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    candidates = [base / name]
    if found.packaged and found.packaged_dir not in candidates:
        candidates.append(found.packaged_dir)
    for folder in candidates:
        if (folder / WEIGHTS_FILENAME).is_file():
            return folder
    raise ZooWeightsUnavailable(
        f"There is no trained model for {name!r} to publish: none of {', '.join(str(c) for c in candidates)} "
        f"holds {WEIGHTS_FILENAME}.\n  Train it first ({found.training_data}; {found.dataset_hint})\n"
        f"  with: {found.train_command}\n  which writes zoo/{name}/; or pass --zoo-dir to the folder that holds it."
    )


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it reads ``ORG/NAME`` as the Hub allows, else raise :class:`ConfigError`.

    Args:
        repo_id (str): e.g. ``"my-lab/zerobias-ckplus-8class"``.

    Returns:
        str: ``repo_id``.
    """
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise ConfigError(
            f"Repository id {repo_id!r} is not valid: it must read ORG/NAME (letters, digits, '-', '_', '.', "
            "no '--' or '..', at most 96 characters each), e.g. --repo-id my-lab/zerobias-ckplus-8class."
        )
    return repo_id


def registry_text(raw: dict[str, dict[str, Any]]) -> str:
    """The registry file's layout: one entry per block, one field per line."""
    blocks = []
    for name, spec in raw.items():
        fields = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in spec.items())
        blocks.append(f"  {json.dumps(name)}: {{\n{fields}\n  }}")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def pin_registry(
    name: str,
    revision: str,
    sha256: str,
    *,
    repo_id: str | None = None,
    registry_file: str | Path | None = None,
) -> Path:
    """Pin ``revision`` and ``sha256`` (and ``repo_id``) of ``name`` in the registry, atomically.

    Args:
        name (str): A zoo name.
        revision (str): The 40-hex commit hash.
        sha256 (str): The 64-hex checksum of ``model.safetensors``.
        repo_id (str, optional): The repository, when it differs from the registry's. Default: None
        registry_file (str or Path, optional): Default: ``zoo/registry.json``.

    Returns:
        Path: The registry file.
    """
    path = Path(registry_file) if registry_file is not None else REGISTRY_FILE
    if not re.fullmatch(r"[0-9a-f]{40}", revision or ""):
        raise ConfigError(f"Pin a full 40-character commit hash, not {revision!r} (tags and branches move).")
    if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
        raise ConfigError(f"{sha256!r} is not a sha256 hex digest.")
    raw = json.loads(path.read_text(encoding="utf-8"))
    if name not in raw:
        raise ConfigError(f"{name!r} is not in {path}; known: {', '.join(raw)}.")
    raw[name]["revision"] = revision
    raw[name]["sha256"] = sha256
    if repo_id is not None:
        raw[name]["repo_id"] = validate_repo_id(repo_id)
    atomic_write_text(path, registry_text(raw))
    if path.resolve() == REGISTRY_FILE.resolve():
        _registry.cache_clear()
    return path


__all__ = [
    "CARDS_DIR",
    "REGISTRY_FILE",
    "WEIGHTS_FILENAME",
    "ZOO_DIR",
    "ZooEntry",
    "entry",
    "info",
    "names",
    "pin_registry",
    "registry_text",
    "user_zoo_dir",
    "validate_repo_id",
    "zoo_folder",
]
