"""The paper's training recipe, its cross-validation protocols and evaluation.

* :mod:`~captum_fau.train.augment` - the reference augmentation as batched tensor ops.
* :mod:`~captum_fau.train.trainer` - SGD recipe with checkpoints, resume and model selection.
* :mod:`~captum_fau.train.protocols` - CK+ / TFD / SynthFACS folds and the paper's ablations.
* :mod:`~captum_fau.train.evaluate` - results tables (mean +- std over folds, confusion matrices).
"""

from captum_fau.train.augment import AugmentConfig, AugmentParams, augment_batch, sample_params
from captum_fau.train.evaluate import FoldResult, ResultsTable, confusion_matrix, evaluate_model, per_class_accuracy
from captum_fau.train.protocols import ABLATIONS, PROTOCOLS, Split, make_splits, run_protocol, variant_config
from captum_fau.train.trainer import TrainConfig, TrainResult, accuracy, predict, resolve_device, train

__all__ = [
    "ABLATIONS",
    "PROTOCOLS",
    "AugmentConfig",
    "AugmentParams",
    "FoldResult",
    "ResultsTable",
    "Split",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "augment_batch",
    "confusion_matrix",
    "evaluate_model",
    "make_splits",
    "per_class_accuracy",
    "predict",
    "resolve_device",
    "run_protocol",
    "sample_params",
    "train",
    "variant_config",
]
