"""Weights of zoo entries: where they come from, checksums and the offline rules.

:func:`load` resolves weights in this order:

1. an explicit ``weights=`` path (a ``.safetensors`` file or a Hub-format folder);
2. weights packaged with captum-fau (``zoo/<name>/``: the SynthFACS model, offline);
3. the user zoo (:func:`~captum_fau.zoo.registry.user_zoo_dir`, ``CAPTUM_FAU_ZOO``), where
   training on one's own copy of CK+ or TFD puts the models under their zoo names;
4. the Hugging Face cache, or a download at the pinned revision
   (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` and ``HF_HUB_CACHE`` are read
   at call time; a corrupt cache entry is removed, never used);
5. otherwise :class:`~captum_fau.errors.ZooWeightsUnavailable`, whose message
   says which dataset and which command produce the weights.

Checksums are verified wherever the registry pins them; a mismatch is an error. Only
``.safetensors`` files are ever read.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import torch

from captum_fau._utils.device import resolve_device
from captum_fau.errors import ChecksumMismatch, WeightsError, ZooWeightsUnavailable, option
from captum_fau.models.zerobias import ZeroBiasCNN, load_weights
from captum_fau.zoo import _hub_env, registry
from captum_fau.zoo.registry import WEIGHTS_FILENAME, ZooEntry


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


def snapshot_commit(path: str | Path) -> str | None:
    """The commit of a Hub cache file ``.../snapshots/<commit>/<file>``, else ``None``."""
    path = Path(path)
    if path.parent.parent.name == "snapshots":
        return path.parent.name
    return None


def _unavailable(entry: ZooEntry, why: str) -> ZooWeightsUnavailable:
    return ZooWeightsUnavailable(
        f"Weights for zoo model {entry.name!r} are not available: {why}\n"
        f"  They are trained on: {entry.training_data}.\n"
        f"  Data: {entry.dataset_hint}\n"
        f"  Produce them with: {entry.train_command}\n"
        f"  then load them with "
        + option(
            f"zoo.load({entry.name!r}, weights='PATH/TO/model.safetensors' or the output folder)",
            f"--model {entry.name} --checkpoint PATH/TO/model.safetensors (or the output folder)",
        )
        + ",\n"
        f"  or put the output folder at {registry.user_zoo_dir() / entry.name} (CAPTUM_FAU_ZOO) for "
        + option(f"zoo.load({entry.name!r}).", f"--model {entry.name}.")
    )


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
            "and no packaged, user-zoo or explicit weights were found.",
        )
    cache_dir = _hub_env.hub_cache_dir()
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    if _hub_env.hub_offline():
        cached = try_to_load_from_cache(entry.repo_id, WEIGHTS_FILENAME, cache_dir=cache_dir, revision=revision)
        if not isinstance(cached, str):
            raise _unavailable(
                entry,
                f"HF_HUB_OFFLINE is set and {entry.repo_id}@{revision} is not in the Hub cache {cache_dir}. "
                "Unset HF_HUB_OFFLINE to download it (or copy a cache that holds it into HF_HOME).",
            )
        return Path(cached)
    endpoint = _hub_env.hub_endpoint()
    try:
        return Path(
            hf_hub_download(entry.repo_id, WEIGHTS_FILENAME, revision=revision, cache_dir=cache_dir, endpoint=endpoint)
        )
    except Exception as err:  # network, auth, missing repo or revision
        raise _unavailable(
            entry,
            f"downloading {entry.repo_id}@{revision} from {endpoint or 'the Hugging Face Hub'} failed "
            f"({type(err).__name__}: {_hub_env.first_line(err)}).",
        ) from err


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
    from captum_fau._utils.weights import require_safetensors, safetensors_in_folder

    path = Path(weights).expanduser()
    if path.is_dir():
        return safetensors_in_folder(path)
    if not path.is_file():
        raise WeightsError(
            f"{option('weights=', '--checkpoint ')}{str(weights)!r} is neither a .safetensors file nor a folder "
            f"containing {WEIGHTS_FILENAME}."
        )
    return require_safetensors(path, f"The {option('weights=', '--checkpoint')} file")


def local_weights(entry: ZooEntry) -> tuple[Path, str] | None:
    """The weights of ``entry`` on this machine without the Hub: packaged, else in the user zoo.

    Args:
        entry (ZooEntry): A registry entry.

    Returns:
        tuple or None: ``(path, "packaged" | "user")``, not yet verified; ``None`` when neither exists.
    """
    packaged = entry.packaged_dir / WEIGHTS_FILENAME
    if entry.packaged and packaged.is_file():
        return packaged, "packaged"
    user = registry.user_zoo_dir() / entry.name / WEIGHTS_FILENAME
    return (user, "user") if user.is_file() else None


def weights_path(entry: ZooEntry, revision: str | None = None, weights: str | Path | None = None) -> tuple[Path, str]:
    """The weights file of ``entry`` and where it came from (``explicit|packaged|user|hub``), verified.

    Args:
        entry (ZooEntry): A registry entry.
        revision (str, optional): A Hub revision instead of the pinned one (skips packaged
            and user-zoo weights). Default: None
        weights (str or Path, optional): An explicit file or folder. Default: None

    Returns:
        tuple: ``(path, source)``.
    """
    if weights is not None:
        return _explicit_weights(weights), "explicit"
    local = local_weights(entry) if revision is None else None
    if local is not None:
        verify_checksum(local[0], entry.sha256)
        return local
    wanted = revision or entry.revision
    path = _hub_weights(entry, wanted)
    _verify_hub_file(entry, path, wanted)  # type: ignore[arg-type]
    return path, "hub"


def load(
    name: str,
    *,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    weights: str | Path | None = None,
) -> ZeroBiasCNN:
    """Load a zoo model, in eval mode, with its metadata in ``model.config["zoo"]``.

    Args:
        name (str): A zoo name (see :func:`captum_fau.zoo.list`).
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
        WeightsError: a file has the wrong keys or shapes, or is not safetensors.

    Examples::

        >>> from captum_fau import zoo
        >>> model = zoo.load("zerobias-synthfacs-8class")
        >>> model.training
        False
    """
    entry = registry.info(name)
    dev = resolve_device(device)
    path, source = weights_path(entry, revision=revision, weights=weights)
    model = ZeroBiasCNN(**entry.architecture, class_names=[*entry.class_names], drop_rate=0.5, init_k=1.0)
    load_weights(model, path)
    model._zoo_metadata = {**copy.deepcopy(entry.to_dict()), "weights_file": str(path), "source": source}
    return model.to(dev).eval()


__all__ = ["load", "local_weights", "sha256_file", "snapshot_commit", "verify_checksum", "weights_path"]
