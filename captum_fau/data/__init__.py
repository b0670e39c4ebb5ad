"""Datasets: SynthFACS, CK+, TFD, FER2013 and folders with AU labels; preprocessing; folds."""
