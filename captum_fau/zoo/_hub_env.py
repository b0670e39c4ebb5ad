"""The Hugging Face Hub settings as the environment says *now*.

huggingface_hub reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` and ``HF_HUB_CACHE``
once, at import; the zoo reads them at call time so that a process can change them (tests,
notebooks, ``os.environ`` set after ``import captum_fau``).
"""

from __future__ import annotations

import os


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` without a trailing slash (``None``: huggingface_hub's default)."""
    value = os.environ.get("HF_ENDPOINT", "").strip()
    return value.rstrip("/") or None


def import_time_endpoint() -> str:
    """The endpoint huggingface_hub (and so timm) resolved at import."""
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids downloads."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_cache_dir() -> str:
    """The Hub cache folder: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else huggingface_hub's default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expandvars(os.path.expanduser(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expandvars(os.path.expanduser(os.environ["HF_HOME"])), "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, without a final full stop."""
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(".") if lines else ""


__all__ = ["first_line", "hub_cache_dir", "hub_endpoint", "hub_offline", "import_time_endpoint"]
