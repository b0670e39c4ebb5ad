"""Captum attributions: top-N deconvolution, ReLU backward rules, receptive fields."""

from captum_fau.attr.receptive_field import ReceptiveFields, receptive_fields
from captum_fau.attr.rules import RULES, ReluRuleMode
from captum_fau.attr.topn_deconv import SizeCheckedModule, TopNDeconv
from captum_fau.attr.topn_result import TopNResult

__all__ = ["RULES", "ReceptiveFields", "ReluRuleMode", "SizeCheckedModule", "TopNDeconv", "TopNResult", "receptive_fields"]
