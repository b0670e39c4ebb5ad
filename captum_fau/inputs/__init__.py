"""The model-input contract: how a dataset's raw face crops become a model's input tensors.

* :mod:`~captum_fau.inputs.spec` -- :class:`InputSpec` (size, channels, pixel range, mean/std, local mean);
* :mod:`~captum_fau.inputs.sources` -- what a model declares (zero-bias config, timm, Hub folder);
* :mod:`~captum_fau.inputs.probe` -- size probing of plain modules;
* :mod:`~captum_fau.inputs.resolve` -- THE decision: :func:`model_inputs` (spec + notes) for a model and data;
* :mod:`~captum_fau.inputs.forward` -- THE forward check before the first batch;
* :mod:`~captum_fau.inputs.model_inputs` -- :class:`ModelInputs`, a dataset through a spec;
* :mod:`~captum_fau.inputs.classes` -- a model's class names, the mapping onto the data's emotions by
  name, and accuracy through that mapping.
"""

from __future__ import annotations

from captum_fau.inputs.classes import ClassMapping, mapped_accuracy, model_class_mapping, model_class_names
from captum_fau.inputs.forward import ForwardCheck, check_forward
from captum_fau.inputs.model_inputs import ModelInputs
from captum_fau.inputs.resolve import model_inputs, resolve_input_spec
from captum_fau.inputs.sources import declared_input_spec
from captum_fau.inputs.spec import InputSpec

__all__ = [
    "ClassMapping",
    "ForwardCheck",
    "InputSpec",
    "ModelInputs",
    "check_forward",
    "declared_input_spec",
    "mapped_accuracy",
    "model_class_mapping",
    "model_class_names",
    "model_inputs",
    "resolve_input_spec",
]
