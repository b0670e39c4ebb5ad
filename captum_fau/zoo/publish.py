"""Publishing zoo models to a Hugging Face Hub repository.

A zoo entry is published as one Hub repository holding exactly three files:

* ``config.json`` -- the constructor arguments in timm's Hub layout (what
  :meth:`ZeroBiasCNN.from_pretrained` and ``timm.create_model("hf-hub:...")`` read);
* ``model.safetensors`` -- the weights (never a pickle);
* ``README.md`` -- the model card, ``model_cards/<name>.md`` (see :mod:`captum_fau.zoo.cards`).

The weights come from the entry's folder in the zoo, ``zoo/<name>/`` (written by
``captum-fau reproduce`` and ``scripts/train_synthfacs_zoo.py``). :func:`publish`
assembles the Hub folder, verifies that it loads, uploads it in one commit, tags that commit
and returns the commit hash to pin in ``zoo/registry.json``
(:func:`~captum_fau.zoo.registry.pin_registry` writes it, atomically, only after a
successful upload). ``scripts/publish_to_hub.py`` is its command line.

Examples::

    >>> import tempfile
    >>> from captum_fau.zoo import publish
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = publish.assemble_hub_folder("zerobias-synthfacs-8class", f"{tmp}/out")
    ...     sorted(folder.files)
    ['README.md', 'config.json', 'model.safetensors']
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from captum_fau._utils.validate import with_settings
from captum_fau.errors import ConfigError, HubError, WeightsError
from captum_fau.zoo import registry
from captum_fau.zoo._hub_env import first_line, hub_endpoint, import_time_endpoint
from captum_fau.zoo.cards import card_path, check_card, load_metrics
from captum_fau.zoo.loading import sha256_file
from captum_fau.zoo.registry import WEIGHTS_FILENAME, pin_registry, validate_repo_id, zoo_folder

#: The files of a published repository, in upload order.
HUB_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "README.md")


@dataclass
class HubFolder:
    """A folder ready to upload.

    Attributes:
        name: The zoo name.
        path: The folder (holds exactly :data:`HUB_FILES`).
        files: ``{file name: {"size": bytes, "sha256": hex}}``.
    """

    name: str
    path: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Checksum of ``model.safetensors`` (what the registry pins)."""
        return self.files[WEIGHTS_FILENAME]["sha256"]

    def describe(self) -> str:
        """One line per file: size and sha256."""
        return "\n".join(f"  {f:18s} {d['size']:>10,d} bytes  sha256 {d['sha256']}" for f, d in self.files.items())


def assemble_hub_folder(
    name: str,
    out: str | Path,
    *,
    zoo_dir: str | Path | None = None,
    cards_dir: str | Path | None = None,
) -> HubFolder:
    """Copy a zoo entry's weights, config and checked card into ``out`` (the exact Hub layout).

    Args:
        name (str): A zoo name.
        out (str or Path): An empty or new folder.
        zoo_dir (str or Path, optional): Where trained model folders are. Default: :data:`~captum_fau.zoo.registry.ZOO_DIR`.
        cards_dir (str or Path, optional): Where the model cards are. Default: :data:`~captum_fau.zoo.registry.CARDS_DIR`.

    Returns:
        HubFolder: The assembled folder.

    Raises:
        ZooWeightsUnavailable: the entry has no trained model (the message names the train command).
        WeightsError: ``metrics.json`` or ``config.json`` is missing.
        ConfigError: the card is missing, its YAML invalid, or its metrics disagree with ``metrics.json``.
    """
    source = zoo_folder(name, zoo_dir)
    metrics = load_metrics(source)
    if not (source / "config.json").is_file():
        raise WeightsError(f"{source / 'config.json'} is missing; save the model with ZeroBiasCNN.save_pretrained().")
    card_file = card_path(name, cards_dir)
    if not card_file.is_file():
        raise ConfigError(
            f"The model card {card_file} is missing. Write it from metrics.json in Python: "
            f"captum_fau.zoo.cards.write_card({name!r}, cards_dir={str(card_file.parent)!r})"
        )
    card = card_file.read_text(encoding="utf-8")
    check_card(name, card, metrics)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; give a new or empty folder to assemble the Hub repository in.")
    shutil.copyfile(source / "config.json", out / "config.json")
    shutil.copyfile(source / WEIGHTS_FILENAME, out / WEIGHTS_FILENAME)
    (out / "README.md").write_text(card, encoding="utf-8")
    folder = HubFolder(name=name, path=out)
    for f in HUB_FILES:
        folder.files[f] = {"size": (out / f).stat().st_size, "sha256": sha256_file(out / f)}
    return folder


def verify_hub_folder(folder: HubFolder) -> None:
    """Check that the folder loads through both public loaders and matches the zoo entry.

    Loads it with :meth:`ZeroBiasCNN.from_pretrained` and with
    ``timm.create_model("local-dir:...")`` (the loader ``"hf-hub:..."`` uses once uploaded),
    and checks that both give the same tensors and the architecture of the registry entry.

    Raises:
        WeightsError: the folder does not load, or the two loaders disagree.
    """
    import timm

    from captum_fau.models.zerobias import ZeroBiasCNN

    entry = registry.info(folder.name)
    try:
        mixin_model = ZeroBiasCNN.from_pretrained(str(folder.path))
        timm_model = timm.create_model(f"local-dir:{folder.path}", pretrained=True)
    except Exception as err:
        raise WeightsError(f"The assembled folder {folder.path} does not load ({type(err).__name__}: {err}).") from err
    for key, value in entry.architecture.items():
        if getattr(mixin_model, key) != value:
            raise WeightsError(
                f"{folder.path}/config.json has {key}={getattr(mixin_model, key)!r} but the zoo entry "
                f"{folder.name!r} is {key}={value!r}; this is not the model of that entry."
            )
    a, b = mixin_model.state_dict(), timm_model.state_dict()
    if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
        raise WeightsError(f"from_pretrained and timm load different tensors from {folder.path}.")


# ----------------------------------------------------------------------------- publishing


@dataclass
class PublishResult:
    """What :func:`publish` did.

    Attributes:
        name: The zoo name.
        repo_id: The Hub repository.
        folder: The assembled folder (deleted after an upload unless kept).
        commit: The uploaded commit hash (``None`` for a dry run).
        tag: The tag created on that commit (``None`` for a dry run or without tag).
        commit_url: The commit's URL.
        pinned: Whether the registry was updated.
    """

    name: str
    repo_id: str
    folder: HubFolder
    commit: str | None = None
    tag: str | None = None
    commit_url: str | None = None
    pinned: bool = False

    def registry_pin(self) -> dict[str, Any]:
        """The registry fields to pin: ``{"repo_id", "revision", "sha256"}``."""
        return {"repo_id": self.repo_id, "revision": self.commit, "sha256": self.folder.sha256}


@dataclass(frozen=True)
class PublishOptions:
    """Where :func:`publish` reads from, how it uploads and what it does after.

    Attributes:
        zoo_dir (str or Path, optional): Where trained model folders are. Default: :data:`~captum_fau.zoo.registry.ZOO_DIR`.
        cards_dir (str or Path, optional): Where the cards are. Default: :data:`~captum_fau.zoo.registry.CARDS_DIR`.
        tag (str, optional): Tag to create on the uploaded commit. Default: None
        private (bool): Create the repository private. Default: False
        dry_run (bool): Stop after verifying; upload nothing. Default: False
        token (str, optional): Hub token; by default huggingface_hub's own lookup
            (``HF_TOKEN``, ``hf auth login``). Never printed (left out of the options' repr). Default: None
        pin (bool): Write the commit and checksum into the registry after a successful upload. Default: False
        registry_file (str or Path, optional): The registry to pin into. Default: ``zoo/registry.json``.
        staging_dir (str or Path, optional): Where to assemble the folder (kept). Default: a
            temporary folder, removed afterwards.
        log (callable): Where progress lines go. Default: ``print``
    """

    zoo_dir: str | Path | None = None
    cards_dir: str | Path | None = None
    tag: str | None = None
    private: bool = False
    dry_run: bool = False
    token: str | None = field(default=None, repr=False)
    pin: bool = False
    registry_file: str | Path | None = None
    staging_dir: str | Path | None = None
    log: Callable[[str], None] = print


def publish(name: str, repo_id: str, options: PublishOptions | None = None, **settings: Any) -> PublishResult:
    """Assemble, verify, upload, tag and (optionally) pin one zoo entry.

    Args:
        name (str): A zoo name.
        repo_id (str): Target repository ``ORG/NAME``.
        options (PublishOptions, optional): Folders, tag, privacy, dry run, token, pinning and log.
            Default: ``PublishOptions()``
        **settings: :class:`PublishOptions` fields as keywords (``dry_run=True, tag="v1"``); they override
            ``options``.

    Returns:
        PublishResult: The commit hash and what to pin.

    Raises:
        ConfigError, WeightsError, ZooWeightsUnavailable: bad inputs (nothing is uploaded).
        HubError: the upload or the tag failed (the registry is unchanged).
    """
    opts = with_settings(PublishOptions, options, settings)
    tag, token, log, registry_file = opts.tag, opts.token, opts.log, opts.registry_file
    validate_repo_id(repo_id)
    registry.info(name)  # unknown names fail here, listing the known ones
    tmp = None
    if opts.staging_dir is None:
        tmp = tempfile.mkdtemp(prefix=f"captum-fau-publish-{name}-")
        staging = Path(tmp) / name
    else:
        staging = Path(opts.staging_dir)
    try:
        folder = assemble_hub_folder(name, staging, zoo_dir=opts.zoo_dir, cards_dir=opts.cards_dir)
        log(f"Assembled {name} for {repo_id} in {folder.path}:\n{folder.describe()}")
        verify_hub_folder(folder)
        log("Verified: the folder loads with ZeroBiasCNN.from_pretrained and timm.create_model, identically.")
        result = PublishResult(name=name, repo_id=repo_id, folder=folder, tag=tag)
        if opts.dry_run:
            log(
                f"Dry run: would upload these {len(folder.files)} files to {hub_endpoint() or 'https://huggingface.co'}"
                f"/{repo_id}" + (f" and tag the commit {tag!r}" if tag else "") + "; nothing was sent."
            )
            return result
        _upload(result, token=token, private=opts.private, log=log)
        _check_uploaded(result, token=token)
        log(
            f"Verified the upload: {repo_id}@{result.commit} serves the same model.safetensors (sha256 {folder.sha256})."
        )
        if opts.pin:
            pin_registry(name, result.commit, folder.sha256, repo_id=repo_id, registry_file=registry_file)
            result.pinned = True
        return result
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _upload(result: PublishResult, *, token: str | None, private: bool, log: Callable[[str], None]) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_endpoint(), token=token)
    repo_id, folder = result.repo_id, result.folder
    step = "creating the repository"
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        step = "uploading the files"
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder.path),
            allow_patterns=list(HUB_FILES),
            commit_message=f"Upload {folder.name} (model.safetensors sha256 {folder.sha256[:12]})",
        )
        commit = getattr(info, "oid", None)
        if not commit or not re.fullmatch(r"[0-9a-f]{40}", str(commit)):
            raise HubError(f"the server answered without a commit hash ({info!r})")
        result.commit, result.commit_url = str(commit), getattr(info, "commit_url", None)
        if result.tag:
            step = f"tagging the commit {result.commit} as {result.tag!r}"
            api.create_tag(
                repo_id, tag=result.tag, revision=result.commit, tag_message=f"{folder.name} {folder.sha256[:12]}"
            )
    except HubError as err:
        raise HubError(f"Publishing {folder.name} to {repo_id} failed while {step}: {err}. {_NOTHING_PINNED}") from err
    except Exception as err:  # huggingface_hub raises HTTP, connection and value errors
        hint = ""
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            hint = " Check the token (HF_TOKEN or `hf auth login`) has write access to the organisation."
        elif status == 409 and result.tag:
            hint = f" The tag {result.tag!r} exists already: choose another --tag."
        raise HubError(
            f"Publishing {folder.name} to {repo_id} failed while {step} "
            f"({type(err).__name__}: {first_line(err)}).{hint} {_NOTHING_PINNED}"
            + (f" The files were committed as {result.commit}." if result.commit else "")
        ) from err
    log(f"Uploaded {folder.name} to {repo_id}: commit {result.commit}" + (f", tag {result.tag}" if result.tag else ""))


_NOTHING_PINNED = "The zoo registry was not changed; fix the cause and run the command again."


def _check_uploaded(result: PublishResult, *, token: str | None) -> None:
    """Download the weights at the new commit into a temporary cache and compare checksums;
    load the commit with ``timm.create_model("hf-hub:REPO@COMMIT")`` as users will."""
    import timm
    from huggingface_hub import hf_hub_download

    with tempfile.TemporaryDirectory(prefix="captum-fau-verify-") as cache:
        try:
            path = hf_hub_download(
                result.repo_id,
                WEIGHTS_FILENAME,
                revision=result.commit,
                cache_dir=cache,
                endpoint=hub_endpoint(),
                token=token,
            )
        except Exception as err:
            raise HubError(
                f"The upload of {result.name} was committed as {result.commit}, but downloading it back failed "
                f"({type(err).__name__}: {first_line(err)}). {_NOTHING_PINNED}"
            ) from err
        if sha256_file(path) != result.folder.sha256:
            raise HubError(
                f"{result.repo_id}@{result.commit} serves a model.safetensors whose sha256 differs from the "
                f"uploaded one. {_NOTHING_PINNED}"
            )
        if hub_endpoint() is None or hub_endpoint() == import_time_endpoint():
            # timm downloads through huggingface_hub's import-time endpoint; check it only when that is ours.
            model = timm.create_model(f"hf-hub:{result.repo_id}@{result.commit}", pretrained=True, cache_dir=cache)
            if model.num_classes != registry.info(result.name).architecture["num_classes"]:
                raise HubError(f"timm.create_model('hf-hub:{result.repo_id}@{result.commit}') built the wrong model.")


__all__ = [
    "HUB_FILES",
    "HubFolder",
    "PublishOptions",
    "PublishResult",
    "assemble_hub_folder",
    "publish",
    "verify_hub_folder",
]
