"""The one pass :func:`captum_fau.analyze.analyze` runs before the first batch (:func:`prepare`), and its checks.

Everything a user can get wrong about the model, the data and their labels is found here,
in a second, and raised as a :mod:`captum_fau.errors` exception that names the fix, rather
than after a scan of minutes or as a traceback from inside torch:

* the model takes one image batch (:func:`~captum_fau.inputs.probe.check_single_input`) and one
  image goes through it up to the analysed layer (:func:`check_forward`);
* the items are dicts with a float ``"image"`` tensor ``[C, H, W]`` (:func:`check_items`);
* AU labels, when the data has them, cover enough images for FAU-KL's histograms
  (:func:`check_au_labels`).

Raw tensors are accepted as data: :func:`tensor_dataset` turns a float ``[N, C, H, W]`` tensor
into a dataset of unlabelled images (the run notes that FAU-KL and accuracy are skipped for want
of labels); a ``uint8`` tensor is refused, since its scale cannot be guessed safely.

Examples::

    >>> import torch
    >>> data, notes = tensor_dataset(torch.rand(4, 1, 96, 96))
    >>> len(data), data[0]["image"].shape
    (4, torch.Size([1, 96, 96]))
    >>> tensor_dataset(torch.zeros(4, 1, 96, 96, dtype=torch.uint8))
    Traceback (most recent call last):
    ...
    captum_fau.errors.InputShapeError: The images are a torch.uint8 tensor; ...
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from captum_fau.errors import ConfigError, DatasetError, InputShapeError, LabelError
from captum_fau.inputs.forward import ForwardCheck

#: FAU-KL's histogram bins in :func:`~captum_fau.analyze.analyze`.
ANALYSIS_BINS = 10


def _dtype_fix(dtype: torch.dtype) -> str:
    return (
        f"The images are a {dtype} tensor; the models read float images in [0, 1] (what every captum-fau "
        "dataset yields). Convert them first, e.g. images.float() / 255 for 8-bit pixels."
    )


class TensorImages(Dataset):
    """Items ``{"image": images[i]}`` of a float tensor ``[N, C, H, W]`` (no labels)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index]}

    def __repr__(self) -> str:
        return f"TensorImages({list(self.images.shape)}, {self.images.dtype})"


def tensor_dataset(images: torch.Tensor) -> tuple[TensorImages, list[str]]:
    """A dataset of the images of a float tensor ``[N, C, H, W]``, and the note saying what it lacks.

    Args:
        images (Tensor): Float images ``[N, C, H, W]`` in [0, 1], preprocessed as the model expects.

    Returns:
        tuple: The dataset and one note for the report.

    Raises:
        InputShapeError: not 4-D, empty, not floating point, or holding NaN / inf.
    """
    if images.dim() != 4:
        raise InputShapeError(
            f"A tensor passed as data must be [N, C, H, W], got shape {tuple(images.shape)}; add the channel "
            "dimension with images.unsqueeze(1) for gray images, or a batch dimension with images[None]."
        )
    if images.shape[0] == 0:
        raise DatasetError("The tensor passed as data holds no images; pass at least one image [1, C, H, W].")
    if not images.is_floating_point():
        raise InputShapeError(_dtype_fix(images.dtype))
    if not bool(torch.isfinite(images).all()):
        raise InputShapeError("The tensor passed as data holds NaN or inf values; replace them before the analysis.")
    note = (
        f"Data given as a tensor {list(images.shape)}: fed to the model as is (no preprocessing) and without labels, "
        "so FAU-KL and accuracy are skipped; pass a FaceSet or a data spec with AU / emotion labels for them."
    )
    return TensorImages(images.detach().cpu()), [note]


def check_items(dataset: Any) -> None:
    """Raise unless the first item is a dict with a float ``"image"`` tensor ``[C, H, W]``.

    Raises:
        DatasetError: the item is not a dict with an ``"image"`` entry.
        InputShapeError: the image is not a 3-D floating-point tensor.
    """
    item = dataset[0]
    if not isinstance(item, Mapping) or "image" not in item:
        raise DatasetError(
            f"The dataset's items are {type(item).__name__}, not dicts with an 'image' entry; return "
            "{'image': tensor [C, H, W], 'aus': ..., 'emotion': ...} from __getitem__, or pass a FaceSet or a data spec."
        )
    image = item["image"]
    if not isinstance(image, torch.Tensor):
        raise InputShapeError(
            f"item['image'] is a {type(image).__name__}, not a torch tensor; return torch.as_tensor(image).float() / 255 "
            "for 8-bit pixels."
        )
    if not image.is_floating_point():
        raise InputShapeError(_dtype_fix(image.dtype))
    if image.dim() != 3:
        raise InputShapeError(
            f"item['image'] must be [C, H, W], got shape {tuple(image.shape)}; use image.unsqueeze(0) for a gray image."
        )


def au_labelled_count(faces: Any) -> int | None:
    """Images with at least one coded AU (None when the dataset holds no AU array, e.g. lazy sets)."""
    aus = getattr(faces, "aus", None)
    if not tuple(getattr(faces, "au_ids", ()) or ()):
        return None
    if aus is None:  # a lazy set (SynthFACS) labels every item it renders
        return len(faces) if getattr(faces, "name", "") in ("synthfacs", "synthfacs-photo") else None
    values = np.asarray(aus, dtype=np.float64)
    return int(np.isfinite(values).any(axis=1).sum()) if values.ndim == 2 else None


def check_au_labels(faces: Any, bins: int = ANALYSIS_BINS) -> None:
    """Raise when the data has AU labels on too few images for FAU-KL (two per histogram bin).

    Raises:
        LabelError: no image has an AU row (the AU table does not match the images), or too few do.
    """
    from captum_fau.concept.statistics import MIN_IMAGES_PER_BIN

    labelled = au_labelled_count(faces)
    if labelled is None:
        return
    values = np.asarray(faces.aus if getattr(faces, "aus", None) is not None else [], dtype=np.float64)
    if np.isinf(values).any():
        raise LabelError(
            f"The AU labels hold {int(np.isinf(values).sum())} infinite value(s); AU labels are finite (0 absent, "
            "1..5 intensity, NaN for not coded). Replace them in the AU table (--au-csv / au_csv=) or FaceSet.aus."
        )
    need = MIN_IMAGES_PER_BIN * bins
    source = (getattr(faces, "meta", None) or {}).get("au_csv")
    where = f"the AU table {source}" if source else "the AU labels"
    if labelled == 0 and not source:
        raise LabelError(
            f"Every AU label of the {len(faces)} images is NaN (not coded), so FAU-KL has nothing to compare. Give "
            "the AUs as 0 (absent) or 1..5 (intensity) in the dataset's aus array (FaceSet.aus), or pass data "
            "without AU ids to run without FAU-KL."
        )
    if labelled == 0:
        raise LabelError(
            f"None of the {len(faces)} images has a row in {where}: its file column does not name the images. "
            "Make the file (or input) column hold the image paths relative to the data folder, or their file "
            "names, e.g. the image a.png needs a row 'a.png,...' (FaceSet.meta['skipped'] lists the unmatched rows)."
        )
    if labelled < need:
        have = (
            f"The data has {labelled} images"
            if labelled == len(faces)
            else (f"Only {labelled} of {len(faces)} images have AU labels in {where}")
        )
        raise LabelError(
            f"{have}; FAU-KL needs at least {need} "
            f"({MIN_IMAGES_PER_BIN} per histogram bin). Use more images (e.g. synthfacs:{max(need, 200)}), add AU rows for more of "
            "them (check that the AU table's file column names the images), or drop --au-csv to run without FAU-KL."
        )


def check_forward(model: nn.Module, dataset: Any, layer: str, device: torch.device) -> ForwardCheck:
    """Run the first item through ``model``: the one forward check before the first batch
    (:func:`captum_fau.inputs.forward.check_forward`), whose result later steps reuse.

    Returns:
        ForwardCheck: the output shape and the layer's ``[B, C, H, W]`` shape.

    Raises:
        ConfigError: the forward pass fails (its one-line reason and the fix are named).
        LayerError: the layer is not reached, or its output is not ``[B, C, H, W]``.
    """
    from captum_fau._utils.modules import layer_name
    from captum_fau.inputs.forward import check_forward as forward_check

    name = layer_name(model, layer)
    return forward_check(model, dataset[0]["image"][None].to(device), [name])


def check_rule_fits(model: nn.Module, layer: str, dataset: Any, config: Any) -> None:
    """Refuse a backward rule the model's activations would silently not follow (a ReLU rule on GELUs without
    ``relu_like``), on one image, before the scan rather than after it.

    Raises:
        ConfigError: the rule does not fit the model's activations; the message names the fix.
    """
    from captum_fau._utils.modules import eval_mode
    from captum_fau.attr.crops import crop_friendly
    from captum_fau.attr.rules import check_model

    sample = dataset[0]["image"][None].to(next(iter(model.parameters()), torch.empty(0)).device)
    with eval_mode(model, "The rule check"), crop_friendly(model):
        check_model(model, model.get_submodule(layer), sample, config.rule, config.relu_like, layer)


def check_featured(config: Any, dataset: Any, layer: str) -> None:
    """Refuse more featured filters than the layer has (the default, 10, is lowered quietly on a small layer).

    Raises:
        ConfigError: ``n_featured`` (``--featured``) exceeds the layer's filters.
    """
    check = getattr(dataset, "forward_check", None)
    shape = None if check is None else check.layer_shapes.get(layer)
    default = type(config).__dataclass_fields__["n_featured"].default
    if shape is not None and config.n_featured > shape[1] and config.n_featured != default:
        raise ConfigError(
            f"AnalysisConfig.n_featured ({config.n_featured}) asks for more featured filters than layer {layer!r} has "
            f"({shape[1]}); pass n_featured={min(default, shape[1])} or any number up to {shape[1]}."
        )


class Prepared(NamedTuple):
    """What the preflight found, for the steps after it (:func:`prepare`)."""

    model: nn.Module
    model_name: str
    data_name: str
    faces: Any
    dataset: Any
    spec: Any
    notes: list[str]
    provenance: dict[str, Any]
    mapping: Any


def prepare(model: nn.Module | str, data: Any, config: Any, device: torch.device, progress: bool) -> Prepared:
    """(``config``: the :class:`~captum_fau.analyze.AnalysisConfig`.) The one pass before the first batch: the model, the data, its inputs for the model (with the one forward
    check through the analysed layer), the AU labels and the class mapping, each checked, with their notes.

    Raises:
        captum_fau.errors.CaptumFAUError: whatever is wrong, with the fix, before any long work.
    """
    from captum_fau._utils.modules import layer_name
    from captum_fau.data.folder import face_crop_note
    from captum_fau.data.lazy import stream_note
    from captum_fau.inputs.resolve import face_crop_side, model_inputs, print_notes
    from captum_fau.zoo.resolve import load_model_spec

    model_name = model if isinstance(model, str) else type(model).__name__
    data_name = data if isinstance(data, str) else repr(data)[:120]
    if isinstance(model, str):
        # a timm architecture gets one output per --class-names entry (the head of your checkpoint)
        outputs = len(config.class_names) if config.class_names and model.strip().startswith("timm:") else None
        model = load_model_spec(model, checkpoint=config.checkpoint, device=device, num_classes=outputs)
    model = model.to(device).eval()
    layer = layer_name(model, config.layer)
    crop = face_crop_side(model, config.input_spec, config.input_spec_sources)  # folder: faces cut at the model's side
    faces, notes, provenance = _resolve_data(data, config, progress, model_name, crop)
    if model_name.strip().startswith("timm:") and config.checkpoint is None:
        from captum_fau.zoo.resolve import random_weights_note

        notes.append(random_weights_note(model_name.strip()))
    if len(faces) == 0:
        raise DatasetError(f"The dataset {data_name} is empty.")
    check_items(faces)  # before an item is read for the model
    dataset, spec, spec_notes = model_inputs(model, faces, config.input_spec, config.input_spec_sources, layers=[layer])
    notes += spec_notes
    if progress:  # before the long work: what the model will see
        print_notes(spec_notes, file=sys.stderr)
    if config.n > len(faces):
        raise ConfigError(f"n={config.n} images per filter were requested but the dataset has only {len(faces)}; "
                          f"pass --n / n <= {len(faces)}.")  # fmt: skip
    check_au_labels(faces)
    check_rule_fits(model, layer, dataset, config)
    check_featured(config, dataset, layer)
    if provenance.get("held_out"):
        notes.insert(0, f"Held-out faces: {provenance['reason']}.")
    mapping, mapping_notes = _class_mapping(model, faces, config.class_names)  # checked before the scan
    mapping_notes += [n for n in (face_crop_note(getattr(faces, "meta", None) or {}), stream_note(faces)) if n]
    return Prepared(model, model_name, data_name, faces, dataset, spec, notes + mapping_notes, provenance, mapping)


def _resolve_data(data: Any, config: Any, progress: bool, model_name: str,
                  crop: int | None = None) -> tuple[Any, list[str], dict[str, Any]]:  # fmt: skip
    """The dataset ``data`` names (a spec, a dataset, or a float tensor ``[N, C, H, W]``), its notes, and
    whether the model saw it (``held_out``, ``reason``, ...); ``folder:`` faces are cut at ``crop`` px."""
    unknown = {"held_out": False, "reason": "the data were passed as an object: captum-fau cannot tell whether "
               "the model saw these images in training"}  # fmt: skip
    if isinstance(data, torch.Tensor):
        return (*tensor_dataset(data), unknown)
    if isinstance(data, str):
        faces, provenance = _open_data(data, config, progress, model_name, crop)
        cut = crop is not None and data.strip().lower().startswith("folder:")
        note = f"Faces cut at {crop} px, the side the model's input is made from (none enlarged)."
        return faces, [note] if cut else [], provenance
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise DatasetError(
            f"analyze's data is a {type(data).__name__}; pass a data spec such as 'synthfacs:500' or "
            "'folder:PATH', a FaceSet, a map-style dataset of dict items, or a float tensor [N, C, H, W]."
        )
    return data, [], unknown


def _open_data(spec: str, config: Any, progress: bool, model_name: str = "",
               crop: int | None = None) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The dataset a spec names, and whether the model saw it (``held_out``, ``reason``, ...).

    SynthFACS is opened lazily: each rank renders only the images it scans and memory does not
    grow with N (the pixels equal those of the in-memory FaceSet). With a zoo model trained on
    SynthFACS the images start after the subjects of its training pool
    (:func:`captum_fau.zoo.held_out.held_out_synthfacs`), so the accuracy is on held-out subjects.
    """
    from captum_fau.data.spec import check_data_options, load_data_spec, parse_data_spec

    seed = config.seed
    kind, argument = parse_data_spec(spec)
    read = config.read_options
    check_data_options(kind, config.au_csv, read.face_crop, read.lazy, read.workers, read.cache)
    if kind in ("synthfacs", "synthfacs-photo") and argument.isdigit() and int(argument) >= 1 and config.au_csv is None:
        from captum_fau.zoo.held_out import held_out_synthfacs, synthfacs_training_pool

        style = "photo" if kind == "synthfacs-photo" else "cartoon"
        if synthfacs_training_pool(model_name) is not None:
            return held_out_synthfacs(model_name, int(argument), seed=seed, style=style)
        from captum_fau.data.synthfacs import SynthFACS

        return SynthFACS(n=int(argument), seed=seed, style=style), {
            "held_out": False,
            "seed": seed,
            "reason": (
                f"{model_name} records no SynthFACS training set: captum-fau cannot tell whether it saw these faces"
            ),
        }
    unknown = {"held_out": False, "reason": f"captum-fau does not know which images {model_name} was trained on"}
    options = config.read_options.with_changes(progress=progress)
    sized = {"size": crop} if kind == "folder" and crop else {}  # ckplus: keeps the reference protocol's 96 px
    return load_data_spec(spec, options, au_csv=config.au_csv, seed=seed, **sized), unknown


def _class_mapping(model: nn.Module, faces: Any, class_names: tuple[str, ...] | None) -> tuple[Any, list[str]]:
    """The data's classes mapped onto the model's outputs by name (None and a note when they cannot be)."""
    from captum_fau.inputs.classes import model_class_mapping

    data_classes = tuple(getattr(faces, "class_names", ()) or ())
    if not data_classes:
        return None, []
    outputs = getattr(model, "num_classes", None)
    mapping, notes = model_class_mapping(
        model, data_classes, class_names=class_names, labels=getattr(faces, "emotions", None),
        num_outputs=outputs if isinstance(outputs, int) and not isinstance(outputs, bool) else None,
    )  # fmt: skip
    return mapping, [mapping_note(note) for note in notes]


def mapping_note(note: str) -> str:
    """A note of the class mapping as the report lists it."""
    note = note if note.endswith(".") else note + "."
    return "A" + note[1:] if note.startswith("accuracy skipped") else f"Class mapping: {note}"


__all__ = ["ANALYSIS_BINS", "Prepared", "TensorImages", "au_labelled_count", "check_au_labels", "check_forward",
           "check_items", "mapping_note", "prepare", "tensor_dataset"]  # fmt: skip
