"""Model definitions: the zero-bias CNN and its timm registration."""

from captum_fau.models import timm_entry as _timm_entry  # noqa: F401  (registers "zerobias_cnn")
from captum_fau.models.zerobias import LAYER_NAMES, ZeroBiasCNN, load_weights

__all__ = ["LAYER_NAMES", "ZeroBiasCNN", "load_weights"]
