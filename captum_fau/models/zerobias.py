"""The zero-bias CNN of Khorrami, Paine & Huang (2015).

Three 5x5 convolutions (64, 128, 256 filters, stride 1, "same" padding) with
**no biases**, each followed by a ReLU; 2x2 max pooling after the first two;
"quadrant pooling" (a max over each quarter of the conv3 map) after the third;
dropout on the 1,024 pooled features; a 300-unit fully connected layer with
ReLU; and a linear output layer whose softmax gives the class probabilities
(the model returns logits, as PyTorch classifiers do).

Details follow the authors' reference code (see ``DESIGN.md`` section 4),
including their initialisation: one ``k ~ U[0.2, 1.2)`` per model and weights
drawn from ``N(0, (k / sqrt(fan_in))**2)``.
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import load_file
from torch import nn

from captum_fau._utils.io import atomic_safetensors, atomic_write_text
from captum_fau._utils.validate import int_at_least, positive_int
from captum_fau.data.transforms import LOCAL_MEAN_PADDING_KEY, check_local_mean_padding
from captum_fau.errors import ConfigError, InputShapeError, WeightsError

PAPER_URL = "https://arxiv.org/abs/1510.02969"

#: Names of the model's submodules, in forward order.
LAYER_NAMES: tuple[str, ...] = (
    "conv1",
    "relu1",
    "pool1",
    "conv2",
    "relu2",
    "pool2",
    "conv3",
    "relu3",
    "quadrant_pool",
    "dropout",
    "fc4",
    "relu4",
    "fc_out",
)

FC4_INIT_CHOICES = ("fan_in", "reference")
#: The constructor's arguments (anything else is refused with the closest of these).
CONSTRUCTOR_ARGS: tuple[str, ...] = (
    "num_classes",
    "in_chans",
    "img_size",
    "drop_rate",
    "fc4_init",
    "init_k",
    "class_names",
    "local_mean_padding",
)
#: Keys of the timm-layout ``config.json`` beside the constructor arguments (read by timm, not by the constructor).
HUB_CONFIG_KEYS: tuple[str, ...] = ("architecture", "num_features", "label_names", "model_args", "pretrained_cfg")


def reject_unknown_kwargs(kwargs: dict[str, Any], valid: Sequence[str], owner: str) -> None:
    """Raise :class:`ConfigError` naming the closest valid argument unless ``kwargs`` is empty.

    Args:
        kwargs (dict): The keyword arguments left after the known ones were taken.
        valid (sequence of str): The accepted argument names.
        owner (str): What was called, for the message (e.g. ``"ZeroBiasCNN"``).
    """
    if not kwargs:
        return
    parts = []
    for name in sorted(kwargs):
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(
        f"{owner} got unknown keyword argument{'s' if len(parts) > 1 else ''} {', '.join(parts)}. "
        f"Its arguments are: {', '.join(valid)}."
    )


class ZeroBiasCNN(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="captum-fau",
    license="bsd-3-clause",
    paper_url=PAPER_URL,
    pipeline_tag="image-classification",
    tags=["facial-expression-recognition", "facial-action-units", "zero-bias-cnn"],
):
    r"""Zero-bias CNN for facial expression recognition.

    The module names are stable and are what analyses refer to: ``conv1``,
    ``relu1``, ``pool1``, ``conv2``, ``relu2``, ``pool2``, ``conv3``,
    ``relu3``, ``quadrant_pool``, ``dropout``, ``fc4``, ``relu4``, ``fc_out``.
    Every ReLU is its own ``nn.ReLU`` module so that Captum's hooks (guided
    backpropagation, deconvolution) see each of them.

    Args:
        num_classes (int, optional): Number of expression classes (>= 2). The
            paper uses 8 (CK+ with neutral and contempt), 6 (CK+ basic
            emotions) and 7 (TFD). Default: 8
        in_chans (int, optional): Number of input channels. Default: 1
        img_size (int, optional): Side of the square input image; 96 as in the
            paper, 48 for FER2013-sized data. Must be a multiple of 8 so that
            the conv3 map (``img_size / 4``) splits into four equal quadrants.
            Default: 96
        drop_rate (float, optional): Dropout probability on the input of
            ``fc4`` (the 1,024 quadrant-pooled features). Default: 0.5
        fc4_init (str, optional): ``"fan_in"`` draws ``fc4`` weights with std
            ``k / sqrt(1024)`` like every other layer; ``"reference"``
            reproduces the reference code, whose fan-in for ``fc4`` also
            counted the batch of 64 (std ``k / sqrt(64 * 1024) = k / 256``).
            Default: ``"fan_in"``
        init_k (float, optional): The initialisation scale ``k``. ``None``
            draws ``k ~ U[0.2, 1.2)`` from torch's random generator, as the
            reference did once per run. Default: None
        class_names (sequence of str, optional): Class names in index order;
            stored in the config so that saved models describe their outputs.
            Default: None
        local_mean_padding (str, optional): Border handling of the 5x5 local
            mean subtraction of the inputs the model was trained on: ``"zeros"``
            (the reference code) or ``"replicate"``. It does not change the
            network; it is recorded in the config (``"local_mean_padding"``)
            so that the model's input spec feeds it what it was trained on
            (:meth:`captum_fau.inputs.spec.InputSpec.from_zerobias_config`).
            Default: ``"zeros"``

    Examples::

        >>> import torch
        >>> from captum_fau import ZeroBiasCNN
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = ZeroBiasCNN(num_classes=8).eval()
        >>> model(torch.randn(2, 1, 96, 96)).shape
        torch.Size([2, 8])
        >>> sum(p.numel() for p in model.parameters())
        1335508
    """

    def __init__(
        self,
        num_classes: int = 8,
        in_chans: int = 1,
        img_size: int = 96,
        drop_rate: float = 0.5,
        fc4_init: str = "fan_in",
        init_k: float | None = None,
        class_names: Sequence[str] | None = None,
        local_mean_padding: str = "zeros",
        **unknown: Any,
    ) -> None:
        super().__init__()
        # ``**unknown`` only exists to refuse misspelt arguments with a ConfigError that names the
        # closest one (``num_clases`` -> ``num_classes``) instead of building a default model.
        reject_unknown_kwargs(unknown, CONSTRUCTOR_ARGS, "ZeroBiasCNN")
        _validate_config(num_classes, in_chans, img_size, drop_rate, fc4_init, init_k, class_names)
        self.local_mean_padding = check_local_mean_padding(local_mean_padding)
        self.num_classes = int(num_classes)
        self.in_chans = int(in_chans)
        self.img_size = int(img_size)
        self.drop_rate = float(drop_rate)
        self.fc4_init = fc4_init
        self.class_names = list(class_names) if class_names is not None else None
        self.num_features = 300  # timm convention: width of the pre-logits features
        #: Check that inputs are img_size x img_size. Analyses that run the convolutional
        #: layers on receptive-field crops switch it off meanwhile; the head needs the full size.
        self.strict_size = True

        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=5, padding=2, bias=False)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(64, 128, kernel_size=5, padding=2, bias=False)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv3 = nn.Conv2d(128, 256, kernel_size=5, padding=2, bias=False)
        self.relu3 = nn.ReLU()
        # Quadrant pooling: a max over each quarter of the conv3 map
        # (12x12 windows with stride 12 on the 24x24 map of a 96x96 input).
        quadrant = img_size // 8
        self.quadrant_pool = nn.MaxPool2d(kernel_size=quadrant, stride=quadrant)
        self.dropout = nn.Dropout(p=drop_rate)
        self.fc4 = nn.Linear(256 * 2 * 2, 300)
        self.relu4 = nn.ReLU()
        self.fc_out = nn.Linear(300, num_classes)

        self.init_k = self.reset_parameters(init_k)

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def reset_parameters(self, init_k: float | None = None) -> float:
        """Re-draw all parameters with the reference initialisation.

        Args:
            init_k (float, optional): Scale ``k``; ``None`` draws ``k ~ U[0.2, 1.2)``.

        Returns:
            float: The ``k`` that was used.
        """
        k = float(torch.empty(()).uniform_(0.2, 1.2)) if init_k is None else float(init_k)
        fc4_fan_in = 1024 * (64 if self.fc4_init == "reference" else 1)
        fan_ins = {
            self.conv1: 25 * self.in_chans,
            self.conv2: 25 * 64,
            self.conv3: 25 * 128,
            self.fc4: fc4_fan_in,
            self.fc_out: 300,
        }
        for layer, fan_in in fan_ins.items():
            layer.weight.normal_(0.0, k / math.sqrt(fan_in))
        self.fc4.bias.fill_(1.0)
        self.fc_out.bias.zero_()
        return k

    # --------------------------------------------------------------- forward
    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`~captum_fau.errors.InputShapeError` unless ``x`` is ``[B, in_chans, H, W]``
        with ``H == W == img_size``."""
        expected = f"[batch, {self.in_chans}, {self.img_size}, {self.img_size}]"
        if not isinstance(x, torch.Tensor):
            raise InputShapeError(f"ZeroBiasCNN expects a tensor shaped {expected}, got {type(x).__name__}.")
        if x.dim() != 4:
            raise InputShapeError(
                f"ZeroBiasCNN expects a 4-D tensor shaped {expected}, got shape {tuple(x.shape)}; "
                "add a batch dimension with x.unsqueeze(0) for a single image."
            )
        if x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"ZeroBiasCNN expects {self.in_chans} input channel(s) ({expected}), got {x.shape[1]} "
                f"(shape {tuple(x.shape)}); convert the images (e.g. RGB to grayscale) or build the "
                f"model with in_chans={x.shape[1]}."
            )
        if self.strict_size and (x.shape[2] != self.img_size or x.shape[3] != self.img_size):
            raise InputShapeError(
                f"ZeroBiasCNN expects {self.img_size}x{self.img_size} images ({expected}), got "
                f"{x.shape[2]}x{x.shape[3]}; resize the images or build the model with "
                f"img_size={x.shape[2]} (a multiple of 8)."
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1,024 quadrant-pooled conv3 features (before dropout), channel-major."""
        self.check_input(x)
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.quadrant_pool(self.relu3(self.conv3(x)))
        return x.flatten(1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """From pooled features to logits (or to the 300 ``fc4`` features)."""
        x = self.relu4(self.fc4(self.dropout(x)))
        return x if pre_logits else self.fc_out(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, num_classes]`` for images ``[B, in_chans, img_size, img_size]``."""
        return self.forward_head(self.forward_features(x))

    # ----------------------------------------------------------- timm hooks
    def get_classifier(self) -> nn.Module:
        return self.fc_out

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the output layer (timm API), initialised as the reference did."""
        self.num_classes = int_at_least(num_classes, "num_classes", 2, hint="a classifier needs at least two classes.")
        self.class_names = None
        self.fc_out = nn.Linear(300, self.num_classes)
        with torch.no_grad():
            self.fc_out.weight.normal_(0.0, self.init_k / math.sqrt(300))
            self.fc_out.bias.zero_()

    # ------------------------------------------------------------ hub mixin
    @property
    def config(self) -> dict[str, Any]:
        """The model's configuration: constructor arguments plus any metadata
        attached by :func:`captum_fau.zoo.load` (under ``"zoo"``)."""
        cfg = architecture_config(self)
        zoo_meta = getattr(self, "_zoo_metadata", None)
        if zoo_meta is not None:
            cfg["zoo"] = zoo_meta
        return cfg

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write ``model.safetensors`` and a ``config.json`` that both
        :meth:`from_pretrained` and ``timm.create_model("hf-hub:...")`` read."""
        atomic_safetensors(save_directory / "model.safetensors", self.state_dict(), metadata={"format": "pt"})
        cfg = timm_hub_config(self)
        atomic_write_text(save_directory / "config.json", json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    @classmethod
    def _from_pretrained(  # type: ignore[override]
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> "ZeroBiasCNN":
        """Safetensors-only, strict loading (never falls back to pickled weights)."""
        from huggingface_hub import hf_hub_download

        # The mixin passes every config.json key; the timm-layout keys are for timm, not the constructor.
        model = cls(**{k: v for k, v in model_kwargs.items() if k not in HUB_CONFIG_KEYS})
        if Path(model_id).is_dir():
            from captum_fau._utils.weights import safetensors_in_folder

            weights_file = safetensors_in_folder(model_id)
        else:
            weights_file = Path(
                hf_hub_download(
                    repo_id=model_id,
                    filename="model.safetensors",
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    token=token,
                    local_files_only=local_files_only,
                )
            )
        load_weights(model, weights_file, strict=strict)
        return model.to(map_location).eval()


def architecture_config(model: ZeroBiasCNN) -> dict[str, Any]:
    """The constructor arguments that rebuild ``model``'s architecture."""
    return {
        "num_classes": model.num_classes,
        "in_chans": model.in_chans,
        "img_size": model.img_size,
        "drop_rate": model.drop_rate,
        "fc4_init": model.fc4_init,
        "init_k": model.init_k,
        "class_names": model.class_names,
        LOCAL_MEAN_PADDING_KEY: model.local_mean_padding,
    }


def timm_hub_config(model: ZeroBiasCNN) -> dict[str, Any]:
    """A ``config.json`` in timm's Hub layout that also carries the constructor
    arguments at top level (what :class:`PyTorchModelHubMixin` reads)."""
    args = architecture_config(model)
    return {
        **args,
        "architecture": "zerobias_cnn",
        "num_features": model.num_features,
        "label_names": model.class_names,
        "model_args": {
            k: args[k] for k in ("in_chans", "img_size", "drop_rate", "fc4_init", "class_names", LOCAL_MEAN_PADDING_KEY)
        },
        "pretrained_cfg": {
            "input_size": [model.in_chans, model.img_size, model.img_size],
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": [0.0] * model.in_chans,
            "std": [1.0] * model.in_chans,
            "num_classes": model.num_classes,
            "first_conv": "conv1",
            "classifier": "fc_out",
            "license": "bsd-3-clause",
            "paper_ids": "arXiv:1510.02969",
        },
    }


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load a safetensors file into ``model``, naming the file in every error.

    Args:
        model (nn.Module): The model to fill.
        path (str or Path): A ``.safetensors`` file.
        strict (bool, optional): Require exactly the model's keys. Default: True

    Returns:
        nn.Module: ``model``, for chaining.
    """
    from captum_fau._utils.weights import require_safetensors

    path = require_safetensors(path)
    try:
        state = load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises several types for corrupt files
        raise WeightsError(f"Weights file {path} cannot be read as safetensors ({err}).") from err
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if strict and (missing or unexpected):
        raise WeightsError(
            f"Weights file {path} does not match the model: missing keys {missing[:8]}, "
            f"unexpected keys {unexpected[:8]}. Was it saved from a different architecture?"
        )
    wrong_shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if wrong_shapes:
        raise WeightsError(
            f"Weights file {path} has tensors of the wrong shape ({'; '.join(wrong_shapes[:4])}); "
            "check num_classes / in_chans / img_size in config.json."
        )
    model.load_state_dict(state, strict=strict)
    return model


def _validate_config(
    num_classes: int,
    in_chans: int,
    img_size: int,
    drop_rate: float,
    fc4_init: str,
    init_k: float | None,
    class_names: Sequence[str] | None,
) -> None:
    int_at_least(num_classes, "num_classes", 2, hint="a classifier needs at least two classes.")
    positive_int(in_chans, "in_chans", hint="1 for grayscale, 3 for RGB.")
    if int_at_least(img_size, "img_size", 8, hint="e.g. 96, or 48 for FER2013.") % 8:
        raise ConfigError(
            f"img_size must be a positive multiple of 8 (e.g. 96, or 48 for FER2013), got {img_size!r}: "
            "two 2x2 poolings and the 2x2 quadrant pooling must divide it evenly."
        )
    if not 0.0 <= float(drop_rate) < 1.0:
        raise ConfigError(f"drop_rate must be in [0, 1), got {drop_rate!r}.")
    if fc4_init not in FC4_INIT_CHOICES:
        raise ConfigError(f"fc4_init must be one of {FC4_INIT_CHOICES}, got {fc4_init!r}.")
    if init_k is not None and not float(init_k) > 0:
        raise ConfigError(f"init_k must be positive, got {init_k!r}.")
    if class_names is not None and len(class_names) != num_classes:
        raise ConfigError(f"class_names has {len(class_names)} names but num_classes is {num_classes}.")


__all__ = [
    "CONSTRUCTOR_ARGS",
    "LAYER_NAMES",
    "ZeroBiasCNN",
    "architecture_config",
    "load_weights",
    "reject_unknown_kwargs",
    "timm_hub_config",
]
