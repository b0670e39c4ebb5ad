"""Captum attributions: top-N deconvolution, ReLU backward rules, receptive fields."""

from captum_fau.attr.receptive_field import ReceptiveFields, receptive_fields
from captum_fau.attr.rules import RULES, ReluRuleMode
from captum_fau.attr.crops import SizeCheckedModule
from captum_fau.attr.topn_deconv import TopNDeconv
from captum_fau.attr.topn_result import TopNResult, TopNSearch

__all__ = ["RULES", "ReceptiveFields", "ReluRuleMode", "SizeCheckedModule", "TopNDeconv", "TopNResult", "TopNSearch", "receptive_fields"]
