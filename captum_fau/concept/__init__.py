"""Concept-based interpretation: the FAU-KL association between filters and action units."""

from captum_fau.concept.faukl import FAUKL
from captum_fau.concept.options import Design, StatisticsOptions
from captum_fau.concept.result import FAUKLResult
from captum_fau.concept.statistics import AssociationStatistics, fau_kl_statistics

__all__ = ["FAUKL", "FAUKLResult", "AssociationStatistics", "Design", "StatisticsOptions", "fau_kl_statistics"]
