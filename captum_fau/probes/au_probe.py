"""Counterfactual AU probes: does a filter respond to the action unit itself?

FAU-KL measures association across a dataset, where AUs co-occur (AU6 with AU12 in happiness)
and follow the posed emotion. :class:`AUProbe` asks the causal question instead: it renders the
same SynthFACS face with one AU swept over intensities 0..5 and everything else (identity, pose,
lighting, noise, the other AUs) held fixed, and records each filter's spatial maximum at the
layer. Faces are the unit of every test.

Per filter x AU (:class:`AUProbeResult`):

* tuning curves: median and inter-quartile range over faces of the maximum at each intensity,
  on the neutral face and (averaged over them) on the emotion prototypes containing the AU;
* the causal effect: the mean over faces of ``max(AU at 5) - max(AU at 0)`` (averaged over the
  conditions) divided by the filter's activation standard deviation over all probe images;
* a two-sided sign-flip permutation p over faces, BH q over all filter x AU pairs, and a
  Student-t 95% interval of the standardised effect;
* per filter, the AU with the largest absolute significant effect (``None`` when none is).

Examples::

    >>> from captum_fau import zoo
    >>> from captum_fau.probes import AUProbe, ProbeOptions
    >>> model = zoo.load("zerobias-synthfacs-8class")
    >>> result = AUProbe(model, "conv3", options=ProbeOptions(n_faces=8)).probe(progress=False)
    >>> result.effect.shape
    (256, 20)
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from captum_fau._utils.modules import eval_mode
from captum_fau._utils.validate import int_at_least
from captum_fau.errors import ConfigError
from captum_fau.probes import faces as F
from captum_fau.probes._model import (
    batched_maxima,
    check_model,
    check_precision,
    layer_forward,
    model_device,
    resolve_spec,
)
from captum_fau.probes._result import cache_key, load_arrays, model_fingerprint, save_arrays
from captum_fau.probes._stats import bh_q, sign_flip_test, t_interval

#: The two kinds of condition a tuning curve is shown on.
CONDITIONS: tuple[str, ...] = ("neutral", "prototype")


@dataclass(frozen=True)
class ProbeOptions:
    """Options of :class:`AUProbe`.

    Args:
        n_faces (int): Faces (identities x poses x lighting), the units of the tests. Default: 64
        seed (int): SynthFACS seed of the faces. Default: 0
        intensities (tuple of int): Swept intensities; must start at 0 and end at the effect's top. Default: 0..5
        prototypes (bool): Also sweep each AU on the emotion prototypes containing it. Default: True
        context_intensity (float): Intensity of a prototype's other AUs. Default: 3.0
        style (str, optional): Renderer style, passed through when the renderer takes one. Default: None
        precision (str): ``"float32"`` or ``"bfloat16"`` (autocast, faster on CPUs with BF16). Default: float32
        n_permutations (int): Sign patterns when there are more than 16 faces. Default: 2000
        alpha (float): BH level at which an effect counts. Default: 0.05
        batch_size (int): Images per forward pass. Default: 128
    """

    n_faces: int = 64
    seed: int = 0
    intensities: tuple[int, ...] = F.INTENSITIES
    prototypes: bool = True
    context_intensity: float = 3.0
    style: str | None = None
    precision: str = "float32"
    n_permutations: int = 2000
    alpha: float = 0.05
    batch_size: int = 128

    def __post_init__(self) -> None:
        int_at_least(self.n_faces, "n_faces", 2, hint="the faces are the units of the tests; pass n_faces >= 2.")
        int_at_least(self.batch_size, "batch_size", 1, hint="pass a positive batch_size, e.g. 128.")
        int_at_least(self.n_permutations, "n_permutations", 99, hint="pass n_permutations >= 99, e.g. 2000.")
        levels = tuple(int(i) for i in self.intensities)
        if len(levels) < 2 or levels[0] != 0 or sorted(set(levels)) != list(levels) or levels[-1] > 5:
            raise ConfigError(
                f"intensities must rise from 0 to at most 5, e.g. (0, 1, 2, 3, 4, 5); got {self.intensities!r}."
            )
        object.__setattr__(self, "intensities", levels)
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha!r}.")
        check_precision(self.precision)


@dataclass
class AUProbeResult:
    """What :meth:`AUProbe.probe` measured at one layer. Arrays are indexed ``[filter, AU]``.

    Attributes:
        layer (str): The layer's dotted name.
        aus (tuple of str): The probed AUs.
        intensities (tuple of int): The swept intensities.
        median, q25, q75 (np.ndarray): ``[2, F, A, I]`` tuning curves over faces on the neutral
            face and on the prototypes (NaN where the AU is in no prototype).
        effect (np.ndarray): ``[F, A]`` standardised causal effect (see the module docstring).
        diff (np.ndarray): ``[F, A]`` the raw mean difference (layer units).
        ci_low, ci_high (np.ndarray): ``[F, A]`` 95% t interval of ``effect`` over faces.
        p, q (np.ndarray): ``[F, A]`` sign-flip p over faces and BH q over all pairs.
        scale (np.ndarray): ``[F]`` the activation standard deviation each effect is divided by.
        alpha (float): The BH level of :attr:`significant` and :attr:`top_au`.
        n_faces (int): Faces (units).
        meta (dict): Options, input spec, model fingerprint, precision and notes.
    """

    layer: str
    aus: tuple[str, ...]
    intensities: tuple[int, ...]
    median: np.ndarray
    q25: np.ndarray
    q75: np.ndarray
    effect: np.ndarray
    diff: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p: np.ndarray
    q: np.ndarray
    scale: np.ndarray
    alpha: float
    n_faces: int
    meta: dict[str, Any] = field(default_factory=dict)

    _ARRAYS = ("median", "q25", "q75", "effect", "diff", "ci_low", "ci_high", "p", "q", "scale")

    @property
    def significant(self) -> np.ndarray:
        """bool ``[F, A]``: BH q below :attr:`alpha` (and a non-zero effect)."""
        return (np.nan_to_num(self.q, nan=1.0) < self.alpha) & (self.diff != 0)

    @property
    def top_au(self) -> list[str | None]:
        """Per filter, the AU with the largest absolute significant effect, or ``None``."""
        masked = np.where(self.significant, np.abs(self.effect), -np.inf)
        best = masked.argmax(1)
        return [self.aus[j] if np.isfinite(masked[f, j]) else None for f, j in enumerate(best)]

    def agreement(
        self, association_top: Sequence[str | None], n_permutations: int = 1000, seed: int = 0
    ) -> dict[str, Any]:
        """Agreement of :attr:`top_au` with an associational top AU per filter (e.g. FAU-KL's).

        Args:
            association_top (sequence): ``[F]`` AU name or ``None`` per filter.
            n_permutations (int, optional): Shuffles of the associational labels over filters for
                the chance baseline. Default: 1000
            seed (int, optional): Seed of the shuffles. Default: 0

        Returns:
            dict: ``n_filters`` with both defined, ``agreement`` (share equal), ``kappa`` (Cohen's),
            ``chance`` (mean share under shuffling), ``p`` (share of shuffles at least as high) and
            ``per_filter`` (``[F]`` causal, associational, equal).
        """
        from captum_fau.probes.facs import cohen_kappa

        assoc = [None if a is None else F.normalise_au(a) for a in association_top]
        if len(assoc) != len(self.scale):
            raise ConfigError(
                f"association_top needs one AU (or None) per filter ({len(self.scale)}), got {len(assoc)}."
            )
        causal = self.top_au
        both = [f for f in range(len(causal)) if causal[f] is not None and assoc[f] is not None]
        per_filter = [{"filter": f, "causal": causal[f], "association": assoc[f], "equal": causal[f] == assoc[f]}
                      for f in range(len(causal))]  # fmt: skip
        if not both:
            empty = dict.fromkeys(("agreement", "kappa", "chance", "p"))
            return {"n_filters": 0, **empty, "per_filter": per_filter}
        c = np.array([causal[f] for f in both])
        a = np.array([assoc[f] for f in both])
        observed = float((c == a).mean())
        rng = np.random.default_rng(seed)
        null = np.array([(c == rng.permutation(a)).mean() for _ in range(n_permutations)])
        return {"n_filters": len(both), "agreement": observed, "kappa": cohen_kappa(c, a), "chance": float(null.mean()),
                "p": float((1 + (null >= observed).sum()) / (1 + n_permutations)),
                "per_filter": per_filter}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON summary: per filter the top AU with its effect, p, q and interval, plus layer counts."""
        top = self.top_au
        filters = []
        for f, au in enumerate(top):
            entry: dict[str, Any] = {"filter": f, "top_au": au}
            if au is not None:
                j = self.aus.index(au)
                entry.update(effect=float(self.effect[f, j]), p=float(self.p[f, j]), q=float(self.q[f, j]),
                             ci=[float(self.ci_low[f, j]), float(self.ci_high[f, j])])  # fmt: skip
            filters.append(entry)
        return {
            "layer": self.layer, "aus": list(self.aus), "intensities": list(self.intensities),
            "n_faces": self.n_faces, "alpha": self.alpha, "unit": "face",
            "effect_definition": "mean over faces of max(AU at top intensity) - max(AU at 0), averaged over "
                                 "conditions, "
                                 "divided by the filter's activation sd over all probe images",
            "n_significant": int(self.significant.sum()),
            "filters_with_causal_au": int(sum(a is not None for a in top)),
            "filters": filters, **self.meta,
        }  # fmt: skip

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the result to the ``.npz`` archive ``path`` atomically."""
        meta = {"layer": self.layer, "aus": list(self.aus), "intensities": list(self.intensities),
                "alpha": self.alpha, "n_faces": self.n_faces, "meta": self.meta}  # fmt: skip
        return save_arrays(path, "au_probe", {k: getattr(self, k) for k in self._ARRAYS}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "AUProbeResult":
        """Read a result written by :meth:`save`."""
        arrays, meta = load_arrays(path, "au_probe")
        return cls(layer=meta["layer"], aus=tuple(meta["aus"]), intensities=tuple(meta["intensities"]),
                   alpha=meta["alpha"], n_faces=meta["n_faces"], meta=meta["meta"], **arrays)  # fmt: skip


class AUProbe:
    """Counterfactual AU probe of one layer (see the module docstring).

    Args:
        model (nn.Module): Any image model; run in eval mode, stopped at ``layer``.
        layer (str or nn.Module): The layer whose filters are probed (``[B, C, H, W]`` output).
        input_spec (InputSpec, optional): How raw faces become the model's input. Default: the
            model's declared spec (zero-bias config, timm ``pretrained_cfg``), else ``InputSpec()``.
        aus (sequence of str, optional): AUs to probe. Default: every AU the renderer draws.
        options (ProbeOptions, optional): Faces, intensities, precision, test settings.

    Raises:
        ConfigError: an AU the renderer cannot draw, an input size it cannot render (non-square,
            outside 32..1024), a style it does not take, invalid options.
        LayerError: ``layer`` is not a layer of ``model``.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: Any,
        input_spec: Any = None,
        *,
        aus: Sequence[Any] | None = None,
        options: ProbeOptions | None = None,
    ) -> None:
        self.model = check_model(model, "AUProbe")
        self.options = options or ProbeOptions()
        self.aus = F.resolve_aus(aus)
        self.spec, self.notes = resolve_spec(model, input_spec)
        self.size, size_notes = F.render_size(self.spec)
        self.notes += size_notes
        self.render_extra = F.check_style(self.options.style)
        self.layer, self._maxima = layer_forward(model, layer, self.options.precision)

    def _key(self) -> str:
        opts = dataclasses.asdict(self.options)
        opts.pop("batch_size")
        return cache_key(model=model_fingerprint(self.model), layer=self.layer, spec=self.spec.to_dict(), options=opts)

    def _measure(self, images: np.ndarray) -> np.ndarray:
        flat = images.reshape((-1,) + images.shape[-2:])
        batch = min(self.options.batch_size, len(flat))
        out = batched_maxima(self._maxima, self.spec, flat, batch, model_device(self.model))
        return out.reshape(images.shape[:-2] + (out.shape[-1],))

    def _sweep(self, au: str) -> dict[str, np.ndarray]:
        """Maxima ``[conditions, K, I, F]`` of one AU, every condition swept over every intensity.

        Every call measures the same number of images in the same batch layout, so the same face
        gives bit-identical maxima in every call (an AU without effect differs by exactly zero).
        """
        o = self.options
        sweeps = []
        for _name, base in F.conditions(au, o.context_intensity, o.prototypes):
            images = F.render_sweep(o.seed, o.n_faces, base, au, o.intensities, self.size, self.render_extra)
            sweeps.append(self._measure(images))
        return {"acts": np.stack(sweeps)}

    def probe(self, *, cache_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> AUProbeResult:
        """Render, measure and test every AU; resumes from ``cache_dir`` (one archive per AU) after a kill.

        Args:
            cache_dir (str or Path, optional): Folder for the per-AU maxima, keyed by the model's
                weights, the layer, the input spec and the options. Default: None (no cache)
            progress (bool, optional): Show a progress bar over the AUs. Default: True

        Returns:
            AUProbeResult
        """
        key = self._key()
        cache = Path(cache_dir) if cache_dir is not None else None
        with eval_mode(self.model, "The AU probe"):
            per_au = []
            for au in tqdm(self.aus, desc=f"AU probe {self.layer}", unit="AU", disable=not progress, leave=False):
                per_au.append(self._cached(cache, f"{key}-{au}", lambda au=au: self._sweep(au))["acts"])
        return self._result(per_au, key)

    @staticmethod
    def _cached(cache: Path | None, name: str, compute: Any) -> dict[str, np.ndarray]:
        if cache is None:
            return compute()
        path = cache / f"au_probe-{name}.npz"
        if path.is_file():
            arrays, _ = load_arrays(path, "au_probe_step")
            return arrays
        arrays = compute()
        save_arrays(path, "au_probe_step", arrays, {})
        return arrays

    def _result(self, per_au: list[np.ndarray], key: str) -> AUProbeResult:
        """Curves, effects and tests from the maxima ``[conditions, K, I, F]`` of each AU."""
        o = self.options
        k, i, f = per_au[0].shape[1:]
        median = np.full((2, f, len(self.aus), i), np.nan, np.float32)
        q25, q75 = median.copy(), median.copy()
        diffs = np.empty((k, f, len(self.aus)))
        for j, acts in enumerate(per_au):
            curves = [acts[0]] + ([acts[1:].mean(0)] if len(acts) > 1 else [])
            for c, curve in enumerate(curves):
                lo, mid, hi = np.percentile(curve, [25, 50, 75], axis=0)  # [I, F]
                median[c, :, j], q25[c, :, j], q75[c, :, j] = mid.T, lo.T, hi.T
            diffs[:, :, j] = (acts[:, :, -1] - acts[:, :, 0]).mean(0)
        everything = np.concatenate([a.reshape(-1, f) for a in per_au])
        scale = everything.std(0).astype(np.float64)
        safe = np.where(scale > 0, scale, np.inf)
        standardised = diffs / safe[None, :, None]
        p = sign_flip_test(diffs, o.n_permutations, o.seed)
        low, high = t_interval(standardised)
        meta = {"options": dataclasses.asdict(o), "input_spec": self.spec.to_dict(), "cache_key": key,
                "model_fingerprint": model_fingerprint(self.model), "precision": o.precision,
                "conditions": {au: [n for n, _ in F.conditions(au, o.context_intensity, o.prototypes)]
                               for au in self.aus},
                "test": "two-sided sign-flip permutation over faces (exact for <= 16 faces), BH q over filter x AU",
                "interval": "Student-t 95% interval over faces", "notes": self.notes}  # fmt: skip
        return AUProbeResult(
            layer=self.layer, aus=self.aus, intensities=o.intensities, median=median, q25=q25, q75=q75,
            effect=standardised.mean(0), diff=diffs.mean(0), ci_low=np.nan_to_num(low), ci_high=np.nan_to_num(high),
            p=p, q=bh_q(p), scale=scale, alpha=o.alpha, n_faces=k, meta=meta,
        )  # fmt: skip


__all__ = ["CONDITIONS", "AUProbe", "AUProbeResult", "ProbeOptions"]
