"""Concept-based interpretation: the FAU-KL association between filters and action units."""
