"""The model zoo: pretrained zero-bias CNNs by name.

Each entry of the registry (``captum_fau/zoo_registry.json``) names a Hugging
Face Hub repository, the pinned revision and sha256 of its
``model.safetensors``, the architecture, the class names in index order, the
preprocessing the model expects, its training data and its metrics.

:func:`load` resolves weights in this order:

1. an explicit ``weights=`` path (a ``.safetensors`` file or a Hub-format folder);
2. weights packaged inside ``captum_fau`` (the SynthFACS model, offline);
3. the Hugging Face cache, or a download at the pinned revision
   (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` and ``HF_HUB_CACHE`` are read
   at call time; a corrupt cache entry is removed, never used);
4. otherwise :class:`~captum_fau.errors.ZooWeightsUnavailable`, whose message
   says which dataset and which command produce the weights.

Checksums are verified wherever the registry pins them; a mismatch is an error.

Examples::

    >>> from captum_fau import zoo
    >>> "zerobias-synthfacs-8class" in zoo.list()
    True
    >>> model = zoo.load("zerobias-synthfacs-8class")
    >>> model.config["zoo"]["class_names"][5]
    'happy'
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from captum_fau._utils.device import resolve_device
from captum_fau.errors import ChecksumMismatch, UnknownModelError, WeightsError, ZooWeightsUnavailable
from captum_fau.models.zerobias import ZeroBiasCNN, load_weights

PACKAGE_DIR = Path(__file__).resolve().parent
REGISTRY_FILE = PACKAGE_DIR / "zoo_registry.json"
PACKAGED_WEIGHTS_DIR = PACKAGE_DIR / "weights"
WEIGHTS_FILENAME = "model.safetensors"


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
        """Folder of the packaged weights (whether or not it exists)."""
        return PACKAGED_WEIGHTS_DIR / self.name

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = [*self.class_names]
        return d


@lru_cache(maxsize=1)
def _registry() -> dict[str, ZooEntry]:
    raw = json.loads(REGISTRY_FILE.read_text())
    entries = {}
    for name, spec in raw.items():
        spec = dict(spec)
        spec["class_names"] = tuple(spec["class_names"])
        entries[name] = ZooEntry(name=name, **spec)
    return entries


def list() -> list[str]:  # noqa: A001 - the zoo's public verb
    """Names of all zoo entries, sorted.

    Returns:
        list[str]: e.g. ``["zerobias-ckplus-6class", "zerobias-ckplus-8class", ...]``.
    """
    return sorted(_registry())


def _entry(name: str) -> ZooEntry:
    registry = _registry()
    if not isinstance(name, str) or name not in registry:
        close = difflib.get_close_matches(str(name), registry, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(f"Unknown zoo model {name!r}.{hint} Known models: {', '.join(sorted(registry))}.")
    return registry[name]


def info(name: str) -> ZooEntry:
    """The registry entry of ``name``, with metrics of packaged weights filled in.

    Args:
        name (str): A zoo name (see :func:`list`).

    Returns:
        ZooEntry: Repository, revision, checksum, architecture, class names,
        preprocessing, training data and metrics.
    """
    entry = _entry(name)
    metrics_file = entry.packaged_dir / "metrics.json"
    if entry.packaged and metrics_file.is_file():
        metrics = {**entry.metrics, **json.loads(metrics_file.read_text())}
        entry = ZooEntry(**{**entry.__dict__, "metrics": metrics})
    return entry


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: str | Path, expected: str | None) -> None:
    """Raise :class:`ChecksumMismatch` naming ``path`` unless its sha256 is ``expected``."""
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatch(
            f"Checksum mismatch for {path}: sha256 {actual} but the zoo registry pins {expected}. "
            "The file is corrupt or not the published one; delete it and load again "
            "(for a Hub cache entry, remove its snapshot folder)."
        )


def _hub_cache_dir() -> str:
    """The Hub cache folder as the environment says *now* (huggingface_hub reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expandvars(os.path.expanduser(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expandvars(os.path.expanduser(os.environ["HF_HOME"])), "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _unavailable(entry: ZooEntry, why: str) -> ZooWeightsUnavailable:
    return ZooWeightsUnavailable(
        f"Weights for zoo model {entry.name!r} are not available: {why}\n"
        f"  They are trained on: {entry.training_data}.\n"
        f"  Data: {entry.dataset_hint}\n"
        f"  Produce them with: {entry.train_command}\n"
        f"  then load them with zoo.load({entry.name!r}, weights='PATH/TO/model.safetensors' or the output folder)."
    )


def _hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` as the environment says *now* (``None``: huggingface_hub's default)."""
    value = os.environ.get("HF_ENDPOINT", "").strip()
    return value.rstrip("/") or None


def snapshot_commit(path: str | Path) -> str | None:
    """The commit of a Hub cache file ``.../snapshots/<commit>/<file>``, else ``None``."""
    path = Path(path)
    if path.parent.parent.name == "snapshots":
        return path.parent.name
    return None


def _discard_cache_entry(path: Path) -> None:
    """Remove a cached Hub file (the snapshot link and the blob it points to) so it is never used again."""
    target = path.resolve() if path.is_symlink() else None
    path.unlink(missing_ok=True)
    if target is not None and target.parent.name == "blobs":
        target.unlink(missing_ok=True)


def _hub_weights(entry: ZooEntry, revision: str | None) -> Path:
    """Path of ``model.safetensors`` from the Hub cache, downloading it if allowed.

    ``revision`` may be a commit hash, a tag or a branch.
    """
    if revision is None:
        raise _unavailable(
            entry,
            f"it is not published on the Hugging Face Hub yet (no pinned revision for {entry.repo_id}), "
            "and no packaged or explicit weights were found.",
        )
    cache_dir = _hub_cache_dir()
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    if _hub_offline():
        cached = try_to_load_from_cache(entry.repo_id, WEIGHTS_FILENAME, cache_dir=cache_dir, revision=revision)
        if not isinstance(cached, str):
            raise _unavailable(
                entry,
                f"HF_HUB_OFFLINE is set and {entry.repo_id}@{revision} is not in the Hub cache {cache_dir}. "
                "Unset HF_HUB_OFFLINE to download it (or copy a cache that holds it into HF_HOME).",
            )
        return Path(cached)
    try:
        return Path(
            hf_hub_download(
                entry.repo_id, WEIGHTS_FILENAME, revision=revision, cache_dir=cache_dir, endpoint=_hub_endpoint()
            )
        )
    except Exception as err:  # network, auth, missing repo or revision
        where = _hub_endpoint() or "the Hugging Face Hub"
        raise _unavailable(
            entry,
            f"downloading {entry.repo_id}@{revision} from {where} failed "
            f"({type(err).__name__}: {_first_line(err)}).",
        ) from err


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(".") if lines else ""


def _verify_hub_file(entry: ZooEntry, path: Path, revision: str) -> None:
    """Verify a cached Hub file against the registry checksum when it is the pinned commit.

    A requested tag or branch counts as pinned when the cache resolved it to the pinned
    commit. A file that fails is removed from the cache, so that it is never used again.
    """
    commit = snapshot_commit(path)
    if entry.sha256 is None or not (revision == entry.revision or (commit is not None and commit == entry.revision)):
        return
    try:
        verify_checksum(path, entry.sha256)
    except ChecksumMismatch as err:
        _discard_cache_entry(path)
        raise ChecksumMismatch(
            f"{err}\n  The file came from the Hub cache for {entry.repo_id}@{commit or revision}; that cache entry "
            "was removed and was not used. Loading again downloads a fresh copy; if the mismatch persists, "
            "the repository does not serve the published weights: check the repository and the pinned revision."
        ) from None


def _explicit_weights(weights: str | Path) -> Path:
    path = Path(weights).expanduser()
    if path.is_dir():
        path = path / WEIGHTS_FILENAME
    if not path.is_file():
        raise WeightsError(
            f"weights={str(weights)!r} is neither a .safetensors file nor a folder containing {WEIGHTS_FILENAME}."
        )
    return path


def load(
    name: str,
    *,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    weights: str | Path | None = None,
) -> ZeroBiasCNN:
    """Load a zoo model, in eval mode, with its metadata in ``model.config["zoo"]``.

    Args:
        name (str): A zoo name (see :func:`list`).
        revision (str, optional): A Hub revision (commit hash, tag or branch) to
            use instead of the pinned one. The registry checksum applies to the
            pinned commit, also when a tag or branch resolves to it. Default: None
        device (str or torch.device, optional): Where to put the model. Default: ``"cpu"``
        weights (str or Path, optional): A ``.safetensors`` file or a folder
            holding ``model.safetensors`` (e.g. the output of training);
            overrides every other source. Default: None

    Returns:
        ZeroBiasCNN: The model, in eval mode.

    Raises:
        UnknownModelError: ``name`` is not in the zoo.
        ZooWeightsUnavailable: no source has the weights; the message says how to get them.
        ChecksumMismatch: a file differs from the one the registry pins.
        WeightsError: a file has the wrong keys or shapes.

    Examples::

        >>> from captum_fau import zoo
        >>> model = zoo.load("zerobias-synthfacs-8class")
        >>> model.training
        False
    """
    entry = info(name)
    dev = resolve_device(device)
    if weights is not None:
        path, source = _explicit_weights(weights), "explicit"
    elif revision is None and entry.packaged and (entry.packaged_dir / WEIGHTS_FILENAME).is_file():
        path, source = entry.packaged_dir / WEIGHTS_FILENAME, "packaged"
        verify_checksum(path, entry.sha256)
    else:
        wanted = revision or entry.revision
        path, source = _hub_weights(entry, wanted), "hub"
        _verify_hub_file(entry, path, wanted)  # type: ignore[arg-type]

    model = ZeroBiasCNN(**entry.architecture, class_names=[*entry.class_names], drop_rate=0.5, init_k=1.0)
    load_weights(model, path)
    model._zoo_metadata = {**copy.deepcopy(entry.to_dict()), "weights_file": str(path), "source": source}
    return model.to(dev).eval()


__all__ = ["ZooEntry", "info", "list", "load", "sha256_file", "snapshot_commit", "verify_checksum"]
