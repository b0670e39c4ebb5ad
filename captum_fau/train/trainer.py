"""The paper's training recipe: SGD on random batches for a fixed budget.

The reference recipe (``DESIGN.md`` section 4): SGD with a constant learning
rate of 0.01, momentum 0.9 and weight decay 1e-5 on every parameter; batches
of 64 images drawn uniformly *with replacement*; a fixed budget of 31,000
iterations; a checkpoint every 1,000 iterations; dropout 0.5 on the input of
``fc4``; the augmentation of :mod:`captum_fau.train.augment`.

:func:`train` adds what a library needs around it: any device, optional bf16
autocast, determinism from one seed, checkpoints (safetensors + JSON, never
pickle) that an interrupted run resumes from and ends identical to an
uninterrupted one, and model selection on a *validation* set. The reference
code picked the checkpoint with the best *test* accuracy; that choice is only
available as ``selection="test"``, and results made with it are labelled so.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from captum_fau._utils.device import resolve_device
from captum_fau._utils.io import atomic_safetensors, atomic_write_text
from captum_fau._utils.validate import positive_int
from captum_fau.data.base import FaceSet
from captum_fau.data.transforms import model_input
from captum_fau.errors import ConfigError, DatasetError, DeviceError, LabelError, ResumeError, TrainingError
from captum_fau.models.zerobias import ZeroBiasCNN
from captum_fau.train.augment import AugmentConfig, augment_batch
from captum_fau.train.predict import accuracy, check_labelled, predict  # predict/accuracy: also public here

Selection = Literal["valid", "test", "last"]
SELECTIONS: tuple[str, ...] = ("valid", "test", "last")

#: File names inside a run folder.
LAST_WEIGHTS = "checkpoint_last.safetensors"
LAST_STATE = "checkpoint_last.json"
BEST_WEIGHTS = "best.safetensors"
LOG_FILE = "training_log.jsonl"


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (defaults: the paper's recipe).

    Args:
        iterations (int): Number of SGD steps. The reference ran 31,000.
        batch_size (int): Images per step, drawn uniformly with replacement.
        lr (float): Constant learning rate.
        momentum (float): SGD momentum.
        weight_decay (float): L2 weight decay on all parameters (biases included, as the reference).
        dropout (float): Dropout probability on the input of ``fc4``; 0 gives the paper's "plain" /
            "+A" variants.
        augment (bool): Apply the reference augmentation (the paper's "+A").
        checkpoint_every (int): Iterations between checkpoints (and validation passes).
        selection (str): Which checkpoint becomes the final model: ``"valid"`` (best validation
            accuracy, the default), ``"last"`` (the final iterate), or ``"test"`` (best *test*
            accuracy: the reference code's choice, optimistic, for comparison only).
        seed (int): Seeds initialisation, batch sampling, augmentation and dropout.
        device (str): ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        bf16 (bool): Run forward/backward under bfloat16 autocast.
        fc4_init (str): ``"fan_in"`` or ``"reference"`` (see :class:`ZeroBiasCNN`).
        eval_batch_size (int): Batch size of validation/test passes.
        channels_last (bool): Keep activations in channels-last memory layout, which makes the
            convolutions about 20% faster on CPU (oneDNN); results differ from the default layout
            only by floating-point rounding.
        augment_config (AugmentConfig): Augmentation ranges.
    """

    iterations: int = 31_000
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-5
    dropout: float = 0.5
    augment: bool = True
    checkpoint_every: int = 1_000
    selection: str = "valid"
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    fc4_init: str = "fan_in"
    eval_batch_size: int = 256
    channels_last: bool = True
    augment_config: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.augment_config, dict):
            self.augment_config = AugmentConfig(**self.augment_config)
        for name in ("iterations", "batch_size", "checkpoint_every", "eval_batch_size"):
            positive_int(getattr(self, name), f"TrainConfig.{name}")
        if not self.lr > 0:
            raise ConfigError(f"TrainConfig.lr must be > 0, got {self.lr}.")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"TrainConfig.momentum must be in [0, 1), got {self.momentum}.")
        if self.weight_decay < 0:
            raise ConfigError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"TrainConfig.dropout must be in [0, 1), got {self.dropout}.")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"TrainConfig.selection must be one of {SELECTIONS}, got {self.selection!r}.")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["augment_config"] = self.augment_config.to_dict()
        return d

    @property
    def variant(self) -> str:
        """The paper's name of this setting: ``plain``, ``+D``, ``+A`` or ``+AD``."""
        return {(False, False): "plain", (False, True): "+D", (True, False): "+A", (True, True): "+AD"}[
            (bool(self.augment), self.dropout > 0)
        ]


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: The selected model (eval mode, on the training device).
        selected_iteration: Iteration of the selected checkpoint.
        selection: How it was selected (``"valid"``, ``"test"`` or ``"last"``).
        history: One dict per checkpoint: iteration, train loss/accuracy (running over the
            interval), valid/test accuracy where those sets were given, and elapsed seconds
            (cumulative over resumed calls, validation passes included).
        wall_time_s: Seconds spent in this call (a resumed run counts only its own part).
        images_per_s: Training throughput of this call.
        out_dir: The run folder, if one was used.
    """

    model: ZeroBiasCNN
    selected_iteration: int
    selection: str
    history: list[dict[str, Any]]
    wall_time_s: float
    images_per_s: float
    out_dir: Path | None = None


# ------------------------------------------------------------------ helpers
def _rng_tensors(generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    state = {"rng.sampler": generator.get_state(), "rng.torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["rng.torch_cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(tensors: dict[str, torch.Tensor], generator: torch.Generator, device: torch.device) -> None:
    generator.set_state(tensors["rng.sampler"])
    torch.set_rng_state(tensors["rng.torch_cpu"])
    if device.type == "cuda" and "rng.torch_cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.torch_cuda"], device)


def _optimizer_tensors(model: nn.Module, optimizer: torch.optim.SGD) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        buf = optimizer.state.get(param, {}).get("momentum_buffer")
        if buf is not None:
            out[f"momentum.{name}"] = buf
    return out


def _restore_optimizer(tensors: dict[str, torch.Tensor], model: nn.Module, optimizer: torch.optim.SGD) -> None:
    for name, param in model.named_parameters():
        key = f"momentum.{name}"
        if key in tensors:
            optimizer.state[param]["momentum_buffer"] = tensors[key].to(param.device).clone()


def _comparable(fingerprint: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in fingerprint.items() if k != "config"}
    out["config"] = {k: v for k, v in fingerprint.get("config", {}).items() if k not in ("iterations", "device")}
    return json.loads(json.dumps(out))


# -------------------------------------------------------------------- train
def _check_train_inputs(
    train_set: FaceSet, config: TrainConfig, valid_set: FaceSet | None, test_set: FaceSet | None, device: torch.device
) -> tuple[np.ndarray, int]:
    """The labelled training indices and the class count; raise on anything that cannot train."""
    num_classes = len(train_set.class_names) if isinstance(train_set, FaceSet) else 0
    labelled = check_labelled(train_set, "training")
    if len(labelled) < config.batch_size:
        raise DatasetError(
            f"The training set has {len(labelled)} labelled images, fewer than one batch of "
            f"{config.batch_size}; lower the batch size (--batch-size {len(labelled)} or less) or add images."
        )
    counts = np.bincount(train_set.emotions[labelled], minlength=num_classes)
    missing = [train_set.class_names[c] for c in np.flatnonzero(counts == 0)]
    if missing:
        raise LabelError(
            f"The training set has no image of class(es) {missing}; the model could never predict them. "
            "Use folds that keep every class in training (e.g. subject folds stratified over classes), "
            "or drop those classes from the class list."
        )
    for what, data in (("validation", valid_set), ("test", test_set)):
        if data is not None:
            check_labelled(data, what, num_classes)
    if config.selection == "valid" and valid_set is None:
        raise ConfigError(
            "selection='valid' needs a validation set; pass valid_set=..., or choose selection='last' "
            "(the final iterate)."
        )
    if config.selection == "test" and test_set is None:
        raise ConfigError("selection='test' needs test_set=...; it reproduces the reference's test-fold selection.")
    if config.bf16 and device.type == "mps":
        raise DeviceError("bf16 autocast is not supported on MPS here; drop --bf16 or use cpu/cuda.")
    return labelled, num_classes


def _make_run_dir(out_dir: str | Path | None) -> Path | None:
    """The run folder, created; None without ``out_dir``."""
    if out_dir is None:
        return None
    run_dir = Path(out_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from captum_fau.errors import OutputError

        raise OutputError(f"Cannot create the run folder {run_dir} ({err}); choose a writable --out.") from err
    return run_dir


def _fingerprint(train_set: FaceSet, config: TrainConfig, labelled: np.ndarray, num_classes: int) -> dict[str, Any]:
    """What identifies a run, so that a resume with other data or hyper-parameters is refused."""
    return {
        "config": config.to_dict(),
        "n_train": len(labelled),
        "num_classes": num_classes,
        "image_size": list(train_set.image_size),
        "train_label_sum": int(train_set.emotions[labelled].sum()),
        # A content hash, so that a resume on re-rendered or edited images is refused.
        "train_images_sha256": hashlib.sha256(np.ascontiguousarray(train_set.images[labelled]).tobytes()).hexdigest(),
    }


@dataclass
class _Interval:
    """Running training loss and accuracy since the last checkpoint."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss_sum += float(loss.detach()) * len(y)
        self.correct += int((logits.detach().argmax(1) == y).sum())
        self.seen += len(y)

    @property
    def loss(self) -> float:
        return self.loss_sum / self.seen

    @property
    def accuracy(self) -> float:
        return self.correct / self.seen


class _Run:
    """One training run: the seeded model, optimiser and sampler, the training tensors, the history,
    the selected checkpoint, and the run folder it is saved in and resumed from."""

    def __init__(
        self, train_set: FaceSet, labelled: np.ndarray, num_classes: int, config: TrainConfig,
        device: torch.device, run_dir: Path | None,
    ) -> None:  # fmt: skip
        self.config, self.device, self.run_dir = config, device, run_dir
        # Everything random comes from the seed: initialisation and dropout use
        # torch's global generator, sampling and augmentation a private one.
        torch.manual_seed(config.seed)
        if device.type == "cuda":
            torch.cuda.manual_seed_all(config.seed)
        model = ZeroBiasCNN(
            num_classes=num_classes,
            img_size=train_set.image_size[0],
            drop_rate=config.dropout,
            fc4_init=config.fc4_init,
            class_names=train_set.class_names,
            local_mean_padding=config.augment_config.local_mean_padding,
        ).to(device)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = model.to(memory_format=self.memory_format)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        self.sampler = torch.Generator().manual_seed(config.seed + 1)
        self.images = torch.from_numpy(np.ascontiguousarray(train_set.images[labelled]))[:, None].to(device)
        self.labels = torch.from_numpy(train_set.emotions[labelled]).to(device)
        self.fingerprint = _fingerprint(train_set, config, labelled, num_classes)
        self.autocast = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16)
            if config.bf16
            else torch.autocast(device_type=device.type, enabled=False)
        )
        self.history: list[dict[str, Any]] = []
        self.start_iteration = 0
        # Seconds spent by earlier calls of an interrupted run, so that elapsed_s is cumulative.
        self.elapsed_before = 0.0
        self.best: dict[str, Any] = {"iteration": 0, "score": -1.0}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.t0 = time.perf_counter()  # restarted by begin(), after any resume

    def begin(self) -> None:
        """Switch the model to training mode and start this call's clock."""
        self.model.train()
        self.t0 = time.perf_counter()

    def resume_or_reset(self, resume: bool) -> None:
        """Continue from the run folder's last checkpoint, or clear the folder for a fresh run."""
        run_dir = self.run_dir
        if run_dir is None:
            return
        if resume and (run_dir / LAST_STATE).is_file():
            self._resume(run_dir)
        else:
            # A fresh run: forget the log of any earlier run in this folder.
            for stale in (LAST_STATE, LAST_WEIGHTS, BEST_WEIGHTS, LOG_FILE):
                (run_dir / stale).unlink(missing_ok=True)
        if (run_dir / BEST_WEIGHTS).is_file() and self.start_iteration > 0:
            self.best_state = load_file(str(run_dir / BEST_WEIGHTS), device="cpu")

    def _resume(self, run_dir: Path) -> None:
        state = json.loads((run_dir / LAST_STATE).read_text())
        # The budget may be extended and the device changed on resume; all else must match.
        if _comparable(self.fingerprint) != _comparable(state.get("fingerprint", {})):
            raise ResumeError(
                f"{run_dir} holds a checkpoint of a different run (data or hyper-parameters differ); "
                "use another --out folder, or pass resume=False / --no-resume to start over there."
            )
        tensors = load_file(str(run_dir / LAST_WEIGHTS), device="cpu")
        self.model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        _restore_optimizer(tensors, self.model, self.optimizer)
        _restore_rng(tensors, self.sampler, self.device)
        self.start_iteration = int(state["iteration"])
        self.history = list(state["history"])
        self.best = dict(state["best"])
        self.elapsed_before = float(state.get("elapsed_s", self.history[-1]["elapsed_s"] if self.history else 0.0))

    def step(self, iteration: int, interval: _Interval) -> None:
        """One SGD step on a batch drawn with replacement; raise TrainingError if the loss is not finite."""
        config = self.config
        idx = torch.randint(len(self.labels), (config.batch_size,), generator=self.sampler).to(self.device)
        batch = self.images[idx]
        if config.augment:
            x = augment_batch(batch, config.augment_config, generator=self.sampler)
        else:
            x = model_input(batch, config.augment_config.local_mean, config.augment_config.local_mean_padding)
        x = x.contiguous(memory_format=self.memory_format)
        y = self.labels[idx]
        with self.autocast:
            logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y)
        if not torch.isfinite(loss):
            last_good = self.start_iteration if not self.history else self.history[-1]["iteration"]
            where = (
                f"the last good checkpoint (iteration {last_good}) is kept in {self.run_dir}"
                if self.run_dir is not None
                else "no run folder was given, so nothing was saved"
            )
            raise TrainingError(
                f"Training diverged: the loss is {loss.item()} at iteration {iteration}; {where}. "
                "Lower the learning rate (--lr), check the images for NaN/constant values, or try "
                "without --bf16."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        interval.add(loss, logits, y)

    def checkpoint(
        self, iteration: int, interval: _Interval, valid_set: FaceSet | None, test_set: FaceSet | None
    ) -> dict[str, Any]:
        """Evaluate, record, keep the best checkpoint so far and save the run folder; return the record."""
        config = self.config
        record: dict[str, Any] = {
            "iteration": iteration,
            "train_loss": interval.loss,
            "train_accuracy": interval.accuracy,
            "elapsed_s": round(self.elapsed_before + time.perf_counter() - self.t0, 3),
        }
        if valid_set is not None:
            record["valid_accuracy"] = accuracy(self.model, valid_set, self.device, config.eval_batch_size)
        if test_set is not None:
            record["test_accuracy"] = accuracy(self.model, test_set, self.device, config.eval_batch_size)
        self.model.train()
        self.history.append(record)
        key = {"valid": "valid_accuracy", "test": "test_accuracy", "last": None}[config.selection]
        score = record[key] if key is not None else float(iteration)
        # Ties keep the earlier checkpoint (fewer iterations).
        if score > self.best["score"]:
            self.best = {"iteration": iteration, "score": score}
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            if self.run_dir is not None:
                atomic_safetensors(self.run_dir / BEST_WEIGHTS, self.best_state, {"format": "pt"})
        return record

    def save_last(self, iteration: int, record: dict[str, Any]) -> None:
        """Write the resumable checkpoint (weights, momentum, generators, history) and append to the log."""
        if self.run_dir is None:
            return
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update(_optimizer_tensors(self.model, self.optimizer))
        tensors.update(_rng_tensors(self.sampler, self.device))
        atomic_safetensors(self.run_dir / LAST_WEIGHTS, tensors, {"format": "pt"})
        state = {
            "iteration": iteration,
            "history": self.history,
            "best": self.best,
            "elapsed_s": record["elapsed_s"],
            "fingerprint": self.fingerprint,
        }
        atomic_write_text(self.run_dir / LAST_STATE, json.dumps(state, indent=1) + "\n")
        with open(self.run_dir / LOG_FILE, "a") as log:
            log.write(json.dumps(record) + "\n")

    def result(self, iteration: int) -> TrainResult:
        """Load the selected checkpoint into the model (eval mode) and summarise the run."""
        wall = time.perf_counter() - self.t0
        done = max(iteration - self.start_iteration, 0)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        return TrainResult(
            model=self.model,
            selected_iteration=int(self.best["iteration"]),
            selection=self.config.selection,
            history=self.history,
            wall_time_s=wall,
            images_per_s=done * self.config.batch_size / wall if wall > 0 else math.nan,
            out_dir=self.run_dir,
        )


def train(
    train_set: FaceSet,
    config: TrainConfig | None = None,
    *,
    valid_set: FaceSet | None = None,
    test_set: FaceSet | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    on_checkpoint: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train a :class:`ZeroBiasCNN` on ``train_set`` with the paper's recipe.

    Args:
        train_set (FaceSet): Training images with emotion labels (``-1`` rows are ignored).
            Every class must have at least one image.
        config (TrainConfig, optional): Hyper-parameters; default the paper's recipe.
        valid_set (FaceSet, optional): Selects the checkpoint when ``selection="valid"``
            (required then).
        test_set (FaceSet, optional): Evaluated at every checkpoint for the record; used for
            selection only with ``selection="test"`` (the reference's optimistic protocol).
        out_dir (str or Path, optional): Run folder for checkpoints, the best weights and
            ``training_log.jsonl``. Without it nothing is written and nothing can be resumed.
        resume (bool, optional): Continue from ``out_dir``'s last checkpoint if there is one.
            Default: True
        progress (bool, optional): Show a tqdm bar with loss and accuracy. Default: True
        on_checkpoint (callable, optional): Called as ``on_checkpoint(iteration, record)`` after
            each checkpoint is written.

    Returns:
        TrainResult: the selected model and the training history.

    Raises:
        TrainingError: the loss became NaN/inf (the last good checkpoint stays in ``out_dir``).
        LabelError: a class has no training image, or labels are missing.
        DatasetError: fewer training images than a batch.
        DeviceError: unknown or unavailable device.
        ResumeError: ``out_dir`` holds a checkpoint of a different run.

    Examples::

        >>> import numpy as np
        >>> from captum_fau.data.base import FaceSet
        >>> rng = np.random.default_rng(0)
        >>> fs = FaceSet(images=rng.integers(0, 255, (8, 96, 96), dtype=np.uint8),
        ...              class_names=("a", "b"), emotions=np.array([0, 1] * 4))
        >>> res = train(fs, TrainConfig(iterations=2, batch_size=4, checkpoint_every=1,
        ...                             selection="last"), progress=False)
        >>> res.selected_iteration
        2
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    labelled, num_classes = _check_train_inputs(train_set, config, valid_set, test_set, device)
    run = _Run(train_set, labelled, num_classes, config, device, _make_run_dir(out_dir))
    run.resume_or_reset(resume)
    run.begin()
    interval = _Interval()
    bar = tqdm(
        total=config.iterations,
        initial=run.start_iteration,
        disable=not progress,
        desc=f"train {config.variant}",
        unit="it",
        dynamic_ncols=True,
    )
    iteration = run.start_iteration
    try:
        for iteration in range(run.start_iteration + 1, config.iterations + 1):
            run.step(iteration, interval)
            bar.update(1)
            if iteration % 10 == 0 or iteration == config.iterations:
                bar.set_postfix(loss=f"{interval.loss:.3f}", acc=f"{interval.accuracy:.3f}")
            if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                record = run.checkpoint(iteration, interval, valid_set, test_set)
                interval = _Interval()
                bar.set_postfix(
                    loss=f"{record['train_loss']:.3f}",
                    acc=f"{record['train_accuracy']:.3f}",
                    **({"val": f"{record['valid_accuracy']:.3f}"} if "valid_accuracy" in record else {}),
                )
                run.save_last(iteration, record)
                if on_checkpoint is not None:
                    on_checkpoint(iteration, record)
    finally:
        bar.close()
    return run.result(iteration)


__all__ = [
    "BEST_WEIGHTS",
    "LAST_STATE",
    "LAST_WEIGHTS",
    "LOG_FILE",
    "SELECTIONS",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "check_labelled",
    "predict",
    "resolve_device",
    "train",
]
