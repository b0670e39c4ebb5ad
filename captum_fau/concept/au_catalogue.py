"""Deprecated location of the action-unit vocabulary; it now lives in :mod:`captum_fau.data.au`.

Kept for one release so that existing imports keep working.
"""

from captum_fau.data.au import CATALOGUE, ActionUnit, au_label, au_name, au_number, au_region, parse_au

__all__ = ["CATALOGUE", "ActionUnit", "au_label", "au_name", "au_number", "au_region", "parse_au"]
