"""Every entry point x bad input: a captum_fau.errors exception that names the fix, raised before long work.

One table per surface. A CLI row is ``(argv, keyword)``: ``captum_fau.cli.main(argv)`` must exit with
2 (returned, or argparse's ``SystemExit(2)`` for option types), print the keyword on stderr, print no
traceback, and leave nothing in ``--out`` that looks like a finished analysis. A Python row is
``(call, error class, keyword)``: the call must raise that :mod:`captum_fau.errors` class with the keyword
in its message. Each row is classified as ``clear`` (all of the above), ``unclear`` (an error of ours
without the keyword), ``traceback`` (any other exception, or a traceback on stderr) or ``silently
wrong`` (no error at all); every row must be ``clear``.

Pickled weights are a benign pickle whose unpickling would create a marker file: every path refuses
it and the marker never appears.
"""

from __future__ import annotations

import json
import pickle
import textwrap
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from captum_fau import errors, zoo
from captum_fau.cli import main
from helpers.real_formats import draw_face, draw_no_face, write_png

ZOO_MODEL = "zerobias-synthfacs-8class"
FINISHED = ("results.json", "index.html", "fau_kl.csv", "topn.safetensors")


class _Marker:
    """Unpickling this creates ``path``: proof that a file was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files for the table: faces, AU tables that do not fit them, pickles, broken weights and models."""
    root = tmp_path_factory.mktemp("bad")
    imgs = root / "imgs"
    for i in range(6):
        write_png(imgs / f"f{i}.png", draw_face(shift=i))
    (root / "aus_other.csv").write_text("input,AU12\n" + "".join(f"other{i}.png,0.9\n" for i in range(6)))
    (root / "aus_text.csv").write_text("input,AU12\n" + "".join(f"f{i}.png,high\n" for i in range(6)))
    marker = root / "UNPICKLED"
    pth = root / "weights.pth"
    pth.write_bytes(pickle.dumps(_Marker(marker)))
    timm_dir = root / "timm_model"
    timm_dir.mkdir()
    (timm_dir / "config.json").write_text(json.dumps({"architecture": "resnet18", "num_classes": 8}))
    (timm_dir / "pytorch_model.bin").write_bytes(pickle.dumps(_Marker(marker)))
    zb_dir = root / "zb_model"
    zb_dir.mkdir()
    (zb_dir / "config.json").write_text(json.dumps({"architecture": "zerobias_cnn", "num_classes": 8}))
    (zb_dir / "pytorch_model.bin").write_bytes(pickle.dumps(_Marker(marker)))
    (root / "garbage.safetensors").write_bytes(b"not safetensors at all")
    save_file({"fc.weight": torch.zeros(3, 3)}, str(root / "other.safetensors"))
    (root / "models.py").write_text(
        textwrap.dedent("""
        from torch import nn

        class TwoInputs(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv3 = nn.Conv2d(1, 4, 3)
            def forward(self, image, landmarks):
                return self.conv3(image).mean((2, 3))

        class FixedSize(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv3 = nn.Conv2d(1, 4, 3)
                self.head = nn.Linear(4 * 30 * 30, 8)
            def forward(self, x):
                return self.head(self.conv3(x).flatten(1))

        def two_inputs():
            return TwoInputs()

        def fixed_size():
            return FixedSize()

        def not_a_model():
            return 42
    """)
    )
    (root / "a_file").write_text("")
    deep, clear = root / "imgs16", root / "imgs_alpha"
    for i in range(4):
        write_png(deep / f"f{i}.png", draw_face(shift=i))
        write_png(clear / f"f{i}.png", draw_face(shift=i))
    write_png(deep / "deep.png", draw_face(shift=5).astype(np.uint16) * 257)
    face = draw_face(shift=5)
    write_png(clear / "see_through.png", np.dstack([face, face, face, np.where(face > 100, 255, 0).astype(np.uint8)]))
    _silent_case_files(root)
    return {"root": root, "imgs": imgs, "marker": marker, "pth": pth, "timm_dir": timm_dir, "zb_dir": zb_dir,
            "models": root / "models.py", "deep": deep, "clear": clear}  # fmt: skip


def _an(*extra: str) -> list[str]:
    return ["analyze", "--model", ZOO_MODEL, "--data", "synthfacs:24", "-q", "--permutations", "5", "--bootstrap", "0",
            *extra]  # fmt: skip


#: (id, argv with {root}/{imgs}/... placeholders, keyword the message must hold)
CLI_CASES: list[tuple[str, list[str], str]] = [
    ("analyze-permutations-negative", _an("--permutations", "-5"), "0 or more"),
    ("analyze-featured-zero", _an("--featured", "0"), "positive integer"),
    ("analyze-n-zero", _an("--n", "0"), "positive integer"),
    ("analyze-batch-size-text", _an("--batch-size", "many"), "not an integer"),
    ("analyze-rule-unknown", _an("--rule", "magic"), "invalid choice"),
    ("analyze-checkpoint-every-s-negative", _an("--checkpoint-every-s", "-1"), "seconds >= 0"),
    ("analyze-seed-negative", _an("--seed", "-1"), "0 or more"),
    ("analyze-n-exceeds-data", _an("--n", "30"), "--n / n <= 24"),
    (
        "analyze-model-unimportable",
        ["analyze", "--model", "nowhere_xyz:build", "--data", "synthfacs:24"],
        "Cannot import",
    ),
    ("analyze-model-unknown", ["analyze", "--model", "no-such-model", "--data", "synthfacs:24"], "Accepted forms"),
    ("analyze-model-not-module", ["analyze", "--model", "{models}:not_a_model", "--data", "synthfacs:24"], "nn.Module"),
    ("analyze-model-two-inputs", ["analyze", "--model", "{models}:two_inputs", "--data", "synthfacs:24"], "Wrap it"),
    ("analyze-model-fixed-size", ["analyze", "--model", "{models}:fixed_size", "--data", "synthfacs:24"], "size"),
    (
        "analyze-model-zoo-unavailable",
        ["analyze", "--model", "zerobias-ckplus-8class", "--data", "synthfacs:24"],
        "captum-fau reproduce",
    ),
    ("analyze-layer-unknown", _an("--layer", "conv9"), "conv3"),
    ("analyze-layer-linear", _an("--layer", "fc_out"), "feature map"),
    ("analyze-data-unknown-kind", _an("--data", "mystery:1"), "synthfacs"),
    ("analyze-data-synthfacs-zero", _an("--data", "synthfacs:0"), "positive integer"),
    ("analyze-data-folder-missing", _an("--data", "folder:{root}/nowhere"), "nowhere"),
    ("analyze-data-too-few-for-faukl", _an("--data", "synthfacs:12", "--n", "3"), "at least 20"),
    ("analyze-folder-16-bit", _an("--data", "folder:{deep}", "--face-crop", "none"), "deep.png"),
    ("analyze-folder-transparent", _an("--data", "folder:{clear}", "--face-crop", "none"), "-alpha remove"),
    ("analyze-au-csv-missing", _an("--data", "folder:{imgs}", "--au-csv", "{root}/none.csv"), "does not exist"),
    (
        "analyze-au-csv-unmatched",
        _an("--data", "folder:{imgs}", "--au-csv", "{root}/aus_other.csv", "--n", "3"),
        "file (or input) column",
    ),
    ("analyze-au-csv-not-numbers", _an("--data", "folder:{imgs}", "--au-csv", "{root}/aus_text.csv"), "not a number"),
    ("analyze-au-csv-with-synthfacs", _an("--au-csv", "{root}/aus_other.csv"), "folder:"),
    (
        "analyze-checkpoint-pickle-timm",
        ["analyze", "--model", "timm:resnet18", "--checkpoint", "{pth}", "--data", "synthfacs:24", "--layer", "layer1"],
        "weights_only=True",
    ),
    ("analyze-checkpoint-pickle-zoo", _an("--checkpoint", "{pth}"), "safetensors.torch"),
    (
        "analyze-model-folder-timm-pickle",
        ["analyze", "--model", "{timm_dir}", "--data", "synthfacs:24"],
        "weights_only=True",
    ),
    (
        "analyze-model-folder-zerobias-pickle",
        ["analyze", "--model", "{zb_dir}", "--data", "synthfacs:24"],
        "weights_only=True",
    ),
    ("analyze-checkpoint-missing", _an("--checkpoint", "{root}/none.safetensors"), "neither a .safetensors file"),
    ("analyze-checkpoint-garbage", _an("--checkpoint", "{root}/garbage.safetensors"), "cannot be read"),
    ("analyze-checkpoint-wrong-keys", _an("--checkpoint", "{root}/other.safetensors"), "different architecture"),
    ("analyze-device-unknown", _an("--device", "gpu0"), "Unknown device"),
    ("analyze-out-is-a-file", _an("--out", "{root}/a_file/sub"), "writable"),
    ("demo-images-zero", ["demo", "--images", "0"], "positive integer"),
    ("demo-permutations-negative", ["demo", "--permutations", "-1"], "0 or more"),
    ("topn-layer-unknown", ["topn", "--model", ZOO_MODEL, "--layer", "conv9", "--data", "synthfacs:8"], "conv3"),
    ("topn-n-exceeds-data", ["topn", "--model", ZOO_MODEL, "--n", "20", "--data", "synthfacs:8"], "n <="),
    (
        "topn-model-pickle",
        ["topn", "--model", "timm:resnet18", "--checkpoint", "{pth}", "--layer", "layer1", "--data", "synthfacs:8"],
        "weights_only=True",
    ),
    ("topn-filters-bad", ["topn", "--model", ZOO_MODEL, "--data", "synthfacs:8", "--filters", "a-b"], "3,17,20-23"),
    ("fau-kl-bins-one", ["fau-kl", "--model", ZOO_MODEL, "--data", "synthfacs:24", "--bins", "1"], "two bins"),
    (
        "fau-kl-smoothing-negative",
        ["fau-kl", "--model", ZOO_MODEL, "--data", "synthfacs:24", "--smoothing", "-1"],
        "smoothing",
    ),
    ("fau-kl-too-few-images", ["fau-kl", "--model", ZOO_MODEL, "--data", "synthfacs:8", "--permutations", "5"], "bins"),
    (
        "fau-kl-au-csv-unmatched",
        ["fau-kl", "--model", ZOO_MODEL, "--data", "folder:{imgs}", "--au-csv", "{root}/aus_other.csv"],
        "file (or input) column",
    ),
    ("evaluate-model-unknown", ["evaluate", "--model", "no-such-model", "--data", "synthfacs:8"], "Accepted forms"),
    ("evaluate-results-missing", ["evaluate", "{root}/none/results.json"], "none"),
    ("train-iterations-zero", ["train", "--data", "synthfacs:8", "--iterations", "0"], "positive integer"),
    ("train-data-unknown", ["train", "--data", "mystery:1", "--iterations", "1"], "synthfacs"),
    ("zoo-info-unknown", ["zoo", "info", "zerobias-nope"], "Known models"),
    ("zoo-no-subcommand", ["zoo"], "required"),
    ("data-describe-unknown", ["data", "describe", "mystery:1"], "synthfacs"),
    ("data-describe-folder-missing", ["data", "describe", "folder:{root}/nowhere"], "nowhere"),
    (
        "data-describe-au-unmatched",
        ["data", "describe", "folder:{imgs}", "--au-csv", "{root}/aus_other.csv"],
        "file (or input) column",
    ),
    ("data-synthfacs-size-tiny", ["data", "synthfacs", "--n", "4", "--size", "8"], "32"),
    ("reproduce-no-data", ["reproduce"], "--ckplus"),
    ("reproduce-tfd-missing", ["reproduce", "--tfd", "{root}/none/TFD_96x96.mat", "--iterations", "1"], "TFD"),
    ("reproduce-variant-unknown", ["reproduce", "--tfd", "x.mat", "--variants", "+Z"], "invalid choice"),
    (
        "analyze-pickle-command-quoted",
        ["analyze", "--model", "timm:resnet18", "--checkpoint", "{root}/w$(touch X).pth", "--data", "synthfacs:24"],
        "/w$(touch X).pth' ",
    ),
    ("analyze-stream-synthfacs", _an("--stream"), "Drop --stream"),
    ("analyze-face-crop-synthfacs", _an("--face-crop", "none"), "Drop --face-crop"),
    ("analyze-checkpoint-missing-names-flag", _an("--checkpoint", "{root}/none.safetensors"), "--checkpoint '"),
    (
        "analyze-zoo-unavailable-names-flag",
        ["analyze", "--model", "zerobias-ckplus-8class", "--data", "synthfacs:24"],
        "--model zerobias-ckplus-8class --checkpoint",
    ),
    ("topn-stream-synthfacs", ["topn", "--model", ZOO_MODEL, "--data", "synthfacs:8", "--stream"], "Drop --stream"),
    (
        "fau-kl-face-crop-synthfacs",
        ["fau-kl", "--model", ZOO_MODEL, "--data", "synthfacs:24", "--face-crop", "haar"],
        "Drop --face-crop",
    ),
    (
        "analyze-folder-16-bit-quoted-command",
        _an("--data", "folder:{deep}", "--face-crop", "none"),
        "mogrify -depth 8 -auto-level",
    ),
    (
        "fau-kl-max-permutations-negative",
        ["fau-kl", "--model", ZOO_MODEL, "--data", "synthfacs:24", "--max-permutations", "-1"],
        "max-permutations",
    ),
    ("analyze-topn-budget-negative", ["analyze", "--data", "synthfacs:8", "--topn-budget-mb", "-1"], "topn-budget-mb"),
    ("analyze-out-empty", _an("--out", ""), "--out: is empty"),
    ("topn-out-empty", ["topn", "--model", ZOO_MODEL, "--data", "synthfacs:8", "--out", ""], "--out: is empty"),
    ("analyze-featured-exceeds-filters", _an("--layer", "conv1", "--featured", "1000"), "--featured (1000)"),
    (
        "analyze-au-csv-inf",
        _an("--data", "folder:{imgs}", "--face-crop", "none", "--au-csv", "{root}/aus_inf.csv"),
        "infinite",
    ),
    (
        "analyze-au-csv-all-nan",
        _an("--data", "folder:{imgs}", "--face-crop", "none", "--au-csv", "{root}/aus_nan.csv"),
        "every AU value in them is empty or NaN",
    ),
    (
        "fau-kl-no-au-labels",
        ["fau-kl", "--model", ZOO_MODEL, "--data", "folder:{imgs}", "--face-crop", "none"],
        "has no AU labels, and FAU-KL needs them. Give them with --au-csv",
    ),
    (
        "analyze-gelu-guided",
        [
            "analyze",
            "--model",
            "timm:convnext_atto",
            "--data",
            "synthfacs:24",
            "--layer",
            "stages.1",
            "--rule",
            "guided",
            "-q",
        ],
        "--relu-like",
    ),
    (
        "analyze-layer-unknown-vit",
        ["analyze", "--model", "timm:vit_tiny_patch16_224", "--data", "synthfacs:24", "--layer", "nope"],
        "output (convolutions and blocks of them): patch_embed.proj.",
    ),
    (
        "analyze-model-factory-raises",
        ["analyze", "--model", "{root}/silent_models.py:raises", "--data", "synthfacs:24"],
        "raised RuntimeError: no weights at /nowhere",
    ),
    (
        "analyze-model-file-raises",
        ["analyze", "--model", "{root}/broken_models.py:build", "--data", "synthfacs:24"],
        "failed: ModuleNotFoundError",
    ),
    ("analyze-noise-folder", _an("--data", "folder:{root}/noise"), "found no face in 5 of the 6 images"),
    ("analyze-probe-faces-one", _an("--causal", "--probe-faces", "1"), "--probe-faces 2 or more"),
    ("demo-importance-images-negative", ["demo", "--importance-images", "-1"], "0 or more"),
]


def _fill(argv: list[str], files: dict[str, Path]) -> list[str]:
    return [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]


def _with_out(argv: list[str], out: Path) -> list[str]:
    """Give commands that write a folder an ``--out`` in the test's folder (unless the case sets its own)."""
    writes = argv[0] in ("analyze", "demo", "topn", "fau-kl", "train", "reproduce") or argv[:2] == ["data", "synthfacs"]
    return argv if "--out" in argv or not writes else [*argv, "--out", str(out)]


def _cli_outcome(argv: list[str], keyword: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    except errors.CaptumFAUError as err:  # main must catch these
        return "traceback", f"escaped main: {type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - the point is to classify it
        return "traceback", f"{type(err).__name__}: {err}"
    err_text = capsys.readouterr().err
    if code == 0:
        return "silently wrong", "exit code 0"
    if "Traceback" in err_text or code != 2:
        return "traceback", f"exit {code}: {err_text[-400:]}"
    if keyword.lower() not in err_text.lower():
        return "unclear", err_text[-400:]
    return "clear", err_text


@pytest.mark.parametrize("case_id, argv, keyword", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(case_id: str, argv: list[str], keyword: str, bad: dict[str, Path], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CAPTUM_FAU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CAPTUM_FAU_ZOO", str(tmp_path / "user-zoo"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = _with_out(_fill(argv, bad), out)
    outcome, detail = _cli_outcome(argv, keyword, capsys)
    assert outcome == "clear", f"{case_id}: {outcome}: {detail}"
    for name in FINISHED:
        assert not (out / name).exists(), f"{case_id}: {name} written although the run failed"
    assert not bad["marker"].exists(), "a pickle was unpickled"


# --- Python API -------------------------------------------------------------------------------------------


def _model() -> nn.Module:
    return zoo.load(ZOO_MODEL)


def _analyze(data: Any, model: Any = None, **kwargs: Any) -> Callable[[Path], Any]:
    from captum_fau.analyze import analyze

    options = {"progress": False, "permutations": 5, "bootstrap": 0, "n": 3, **kwargs}
    return lambda out: analyze(_model() if model is None else model, data, out=out, **options)


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv3 = nn.Conv2d(1, 4, 3)

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        return self.conv3(image).mean((2, 3)) + landmarks


def _topn(**kwargs: Any) -> Callable[[Path], Any]:
    from captum_fau.attr import TopNDeconv

    return lambda out: TopNDeconv(_model(), **kwargs)


def _topn_attribute(inputs: torch.Tensor) -> Callable[[Path], Any]:
    from captum_fau.attr import TopNDeconv

    return lambda out: TopNDeconv(_model(), "conv3").attribute(inputs, filters=[0])


def _faukl(**kwargs: Any) -> Callable[[Path], Any]:
    from captum_fau.concept import FAUKL

    return lambda out: FAUKL(_model(), "conv3", **kwargs)


def _faukl_activations(maxima: np.ndarray, aus: np.ndarray, au_ids: tuple[str, ...]) -> Callable[[Path], Any]:
    from captum_fau.concept import FAUKL

    return lambda out: FAUKL(_model(), "conv3", n_permutations=5, n_bootstrap=0, progress=False).interpret_activations(
        {"conv3": maxima}, aus, au_ids=au_ids
    )


def _scan(data: Any, layer: str = "conv3", **kwargs: Any) -> Callable[[Path], Any]:
    from captum_fau.stats.scan import scan

    return lambda out: scan(_model(), layer, data, progress=False, **kwargs)


def _spec(spec: str, **kwargs: Any) -> Callable[[Path], Any]:
    from captum_fau.data.spec import load_data_spec

    return lambda out: load_data_spec(spec, progress=False, **kwargs)


def _model_spec(spec: str, **kwargs: Any) -> Callable[[Path], Any]:
    from captum_fau.zoo.resolve import load_model_spec

    return lambda out: load_model_spec(spec, **kwargs)


def _from_pretrained(folder: str) -> Callable[[Path], Any]:
    from captum_fau import ZeroBiasCNN

    return lambda out: ZeroBiasCNN.from_pretrained(folder)


def _load_weights(path: str) -> Callable[[Path], Any]:
    from captum_fau.models.zerobias import load_weights

    return lambda out: load_weights(_model(), path)


_RAND = torch.rand(24, 1, 96, 96)
#: (id, factory of the call (given the files), error class, keyword)
API_CASES: list[tuple[str, Callable[[dict[str, Path]], Callable[[Path], Any]], type[Exception], str]] = [
    (
        "analyze-permutations-negative",
        lambda f: _analyze("synthfacs:24", permutations=-5),
        errors.ConfigError,
        "permutations",
    ),
    ("analyze-featured-zero", lambda f: _analyze("synthfacs:24", n_featured=0), errors.ConfigError, "n_featured="),
    ("analyze-unknown-option", lambda f: _analyze("synthfacs:24", perms=5), errors.ConfigError, "did you mean"),
    (
        "analyze-config-positional-str",
        lambda f: lambda out: __import__("captum_fau.analyze").analyze.analyze(ZOO_MODEL, "synthfacs:24", "conv3"),
        errors.ConfigError,
        "AnalysisConfig",
    ),
    (
        "analyze-tensor-uint8",
        lambda f: _analyze(torch.zeros(24, 1, 96, 96, dtype=torch.uint8)),
        errors.InputShapeError,
        "float() / 255",
    ),
    ("analyze-tensor-3d", lambda f: _analyze(torch.rand(24, 96, 96)), errors.InputShapeError, "unsqueeze(1)"),
    (
        "analyze-tensor-nan",
        lambda f: _analyze(torch.full((24, 1, 96, 96), float("nan"))),
        errors.InputShapeError,
        "NaN",
    ),
    ("analyze-tensor-empty", lambda f: _analyze(torch.zeros(0, 1, 96, 96)), errors.DatasetError, "at least one"),
    ("analyze-data-list-of-ints", lambda f: _analyze([1, 2, 3]), errors.DatasetError, "'image'"),
    ("analyze-data-number", lambda f: _analyze(42), errors.DatasetError, "data spec"),
    (
        "analyze-data-uint8-items",
        lambda f: _analyze([{"image": torch.zeros(1, 96, 96, dtype=torch.uint8)}] * 24),
        errors.InputShapeError,
        "float() / 255",
    ),
    (
        "analyze-data-numpy-items",
        lambda f: _analyze([{"image": np.zeros((1, 96, 96), np.float32)}] * 24),
        errors.InputShapeError,
        "torch.as_tensor",
    ),
    ("analyze-two-input-model", lambda f: _analyze("synthfacs:24", model=_TwoInputs()), errors.ConfigError, "Wrap it"),
    ("analyze-wrong-channels", lambda f: _analyze(torch.rand(24, 2, 96, 96)), errors.InputShapeError, "channels"),
    ("analyze-layer-unknown", lambda f: _analyze("synthfacs:24", layer="conv9"), errors.LayerError, "conv3"),
    ("analyze-layer-linear", lambda f: _analyze("synthfacs:24", layer="fc_out"), errors.LayerError, "feature map"),
    ("analyze-too-few-for-faukl", lambda f: _analyze("synthfacs:12"), errors.LabelError, "at least 20"),
    (
        "analyze-folder-unmatched-aus",
        lambda f: _analyze(f"folder:{f['imgs']}", au_csv=f["root"] / "aus_other.csv"),
        errors.LabelError,
        "file (or input) column",
    ),
    ("analyze-au-csv-number", lambda f: _analyze(f"folder:{f['imgs']}", au_csv=3), errors.ConfigError, "file path"),
    ("TopNDeconv-layer-unknown", lambda f: _topn(layer="conv9"), errors.LayerError, "conv3"),
    ("TopNDeconv-rule-unknown", lambda f: _topn(layer="conv3", rule="magic"), errors.ConfigError, "guided"),
    (
        "TopNDeconv-not-a-module",
        lambda f: lambda out: __import__("captum_fau.attr").attr.TopNDeconv(len, "conv3"),
        errors.ConfigError,
        "nn.Module",
    ),
    (
        "TopNDeconv-attribute-uint8",
        lambda f: _topn_attribute(torch.zeros(2, 1, 96, 96, dtype=torch.uint8)),
        errors.InputShapeError,
        "float",
    ),
    ("TopNDeconv-attribute-3d", lambda f: _topn_attribute(torch.rand(1, 96, 96)), errors.InputShapeError, "[B"),
    (
        "TopNDeconv-attribute-filter-range",
        lambda f: (
            lambda out: (
                __import__("captum_fau.attr").attr.TopNDeconv(_model(), "conv3").attribute(_RAND[:2], filters=[999])
            )
        ),
        errors.ConfigError,
        "999",
    ),
    ("FAUKL-permutations-negative", lambda f: _faukl(n_permutations=-1), errors.ConfigError, "n_permutations"),
    ("FAUKL-bins-one", lambda f: _faukl(bins=1), errors.ConfigError, "two bins"),
    (
        "FAUKL-layer-unknown",
        lambda f: lambda out: __import__("captum_fau.concept").concept.FAUKL(_model(), "conv9"),
        errors.LayerError,
        "conv3",
    ),
    (
        "FAUKL-aus-rows-mismatch",
        lambda f: _faukl_activations(np.random.rand(40, 128), np.ones((30, 2)), ("AU1", "AU2")),
        errors.CaptumFAUError,
        "40",
    ),
    (
        "FAUKL-au-ids-mismatch",
        lambda f: _faukl_activations(np.random.rand(40, 128), np.ones((40, 2)), ("AU1",)),
        errors.CaptumFAUError,
        "au_ids",
    ),
    ("zoo.load-unknown", lambda f: lambda out: zoo.load("zerobias-nope"), errors.UnknownModelError, "Known models"),
    (
        "zoo.load-unavailable",
        lambda f: lambda out: zoo.load("zerobias-tfd-7class"),
        errors.ZooWeightsUnavailable,
        "captum-fau reproduce --tfd",
    ),
    (
        "zoo.load-pickle",
        lambda f: lambda out: zoo.load(ZOO_MODEL, weights=f["pth"]),
        errors.WeightsError,
        "weights_only=True",
    ),
    (
        "zoo.load-pickle-folder",
        lambda f: lambda out: zoo.load(ZOO_MODEL, weights=f["zb_dir"]),
        errors.WeightsError,
        "weights_only=True",
    ),
    ("zoo.load-device", lambda f: lambda out: zoo.load(ZOO_MODEL, device="gpu0"), errors.DeviceError, "device"),
    (
        "load_model_spec-timm-pickle-folder",
        lambda f: _model_spec(str(f["timm_dir"])),
        errors.WeightsError,
        "weights_only=True",
    ),
    (
        "load_model_spec-timm-pickle-checkpoint",
        lambda f: _model_spec("timm:resnet18", checkpoint=f["pth"]),
        errors.WeightsError,
        "weights_only=True",
    ),
    (
        "load_model_spec-timm-unknown",
        lambda f: _model_spec("timm:resnet_nope"),
        errors.UnknownModelError,
        "list_models",
    ),
    ("load_model_spec-empty", lambda f: _model_spec(""), errors.UnknownModelError, "Accepted forms"),
    (
        "ZeroBiasCNN.from_pretrained-pickle",
        lambda f: _from_pretrained(str(f["zb_dir"])),
        errors.WeightsError,
        "weights_only=True",
    ),
    ("load_weights-pickle", lambda f: _load_weights(str(f["pth"])), errors.WeightsError, "weights_only=True"),
    ("load_data_spec-unknown", lambda f: _spec("mystery:1"), errors.DatasetError, "synthfacs"),
    ("load_data_spec-synthfacs-text", lambda f: _spec("synthfacs:many"), errors.DatasetError, "positive integer"),
    (
        "load_data_spec-au-csv-not-folder",
        lambda f: _spec("synthfacs:8", au_csv=f["root"] / "aus_other.csv"),
        errors.DatasetError,
        "folder:",
    ),
    (
        "load_data_spec-folder-unmatched",
        lambda f: _spec(f"folder:{f['imgs']}", au_csv=f["root"] / "aus_other.csv"),
        errors.LabelError,
        "file (or input) column",
    ),
    (
        "load_data_spec-folder-missing",
        lambda f: _spec(f"folder:{f['root']}/nowhere"),
        errors.DatasetLayoutError,
        "nowhere",
    ),
    (
        "load_data_spec-ckplus-missing",
        lambda f: _spec(f"ckplus:{f['root']}/nowhere"),
        errors.DatasetLayoutError,
        "nowhere",
    ),
    ("load_data_spec-tfd-fold", lambda f: _spec(f"tfd:{f['root']}#x"), errors.DatasetError, "0..4"),
    ("scan-layer-unknown", lambda f: _scan(_RAND, "conv9"), errors.LayerError, "conv3"),
    ("scan-tensor-3d", lambda f: _scan(torch.rand(4, 96, 96)), errors.InputShapeError, "unsqueeze"),
    ("scan-batch-size-zero", lambda f: _scan(_RAND, batch_size=0), errors.DatasetError, "batch_size=64"),
    ("scan-top-n-exceeds", lambda f: _scan(_RAND, top_n=99), errors.DatasetError, "top_n <= 24"),
    (
        "scan-tensor-uint8",
        lambda f: _scan(torch.zeros(4, 1, 96, 96, dtype=torch.uint8)),
        errors.InputShapeError,
        "float",
    ),
    ("load_data_spec-lazy-synthfacs", lambda f: _spec("synthfacs:4", lazy=True), errors.DatasetError, "Drop lazy=True"),
    (
        "load_data_spec-face-crop-synthfacs",
        lambda f: _spec("synthfacs:4", face_crop="none"),
        errors.DatasetError,
        "Drop face_crop=",
    ),
    ("analyze-stream-synthfacs", lambda f: _analyze("synthfacs:24", stream=True), errors.DatasetError, "lazy=True"),
    (
        "zoo.load-missing-weights-names-argument",
        lambda f: lambda out: zoo.load(ZOO_MODEL, weights=f["root"] / "no.st"),
        errors.WeightsError,
        "weights='",
    ),
    (
        "zoo.load-unavailable-names-argument",
        lambda f: lambda out: zoo.load("zerobias-ckplus-6class"),
        errors.ZooWeightsUnavailable,
        "weights='PATH/TO/model.safetensors'",
    ),
    (
        "load_model_spec-pickle-command-quoted",
        lambda f: _model_spec("timm:resnet18", checkpoint=f["root"] / "a b;c.pth"),
        errors.WeightsError,
        "/a b;c.pth' ",
    ),
    (
        "FAUKL-options-not-an-options-object",
        lambda f: _faukl(options={"bins": 4}),
        errors.ConfigError,
        "StatisticsOptions",
    ),
    ("FAUKL-unknown-keyword", lambda f: _faukl(n_permutation=5), errors.ConfigError, "not statistics options"),
    (
        "StatisticsOptions-alpha-out-of-range",
        lambda f: lambda out: __import__("captum_fau.concept").concept.StatisticsOptions(alpha=2),
        errors.ConfigError,
        "alpha",
    ),
    (
        "synthfacs-style-unknown",
        lambda f: lambda out: __import__("captum_fau.synthfacs", fromlist=["render"]).render(2, style="watercolour"),
        errors.ConfigError,
        "photo",
    ),
    ("synthfacs-photo-spec-bad-n", lambda f: _spec("synthfacs-photo:0"), errors.DatasetError, "positive integer"),
    (
        "analyze-topn-budget-negative",
        lambda f: _analyze("synthfacs:24", topn_budget_mb=-1),
        errors.ConfigError,
        "topn_budget_mb",
    ),
    (
        "TopNDeconv-complete-other-layer",
        lambda f: (
            lambda out: (
                __import__("captum_fau.attr")
                .attr.TopNDeconv(_model(), "conv2")
                .complete(
                    __import__("captum_fau.attr")
                    .attr.TopNDeconv(_model(), "conv3")
                    .from_scan(_scan(_RAND[:6], top_n=2, keep_inputs=True)(out), reconstruct=[0], progress=False),
                    _RAND[:6],
                )
            )
        ),
        errors.ConfigError,
        "matching TopNDeconv",
    ),
    (
        "AUProbe-au-not-drawable",
        lambda f: lambda out: __import__("captum_fau.probes").probes.AUProbe(_model(), "conv3", aus=["AU16"]),
        errors.ConfigError,
        "cannot draw",
    ),
    (
        "AUProbe-spec-not-square",
        lambda f: (
            lambda out: __import__("captum_fau.probes").probes.AUProbe(
                _model(), "conv3", __import__("captum_fau").InputSpec(size=(96, 64))
            )
        ),
        errors.ConfigError,
        "96x64",
    ),
    (
        "AUOcclusion-not-local",
        lambda f: (
            lambda out: (
                __import__("captum_fau.probes")
                .probes.AUOcclusion(
                    __import__("captum_fau.probes.planted").probes.planted.planted_decision_net(0),
                    "pool",
                    __import__("captum_fau").InputSpec(size=96),
                )
                .check_local(96)
            )
        ),
        errors.LayerError,
        "not local",
    ),
    (
        "landmarks-missing-columns",
        lambda f: (
            lambda out: __import__("captum_fau.probes.landmark_regions").probes.landmark_regions.landmarks_from_columns(
                {"x_0": [1.0]}
            )
        ),
        errors.LabelError,
        "y_0",
    ),
    (
        "FilterImportance-shape-changing-layer",
        lambda f: (
            lambda out: (
                __import__("captum_fau.probes")
                .probes.FilterImportance(_model(), "fc4")
                .run(_RAND[:4], [0] * 4, ("neutral",), progress=False)
            )
        ),
        errors.LayerError,
        "[B, C, H, W]",
    ),
    (
        "region_stats-masks-not-in-the-model-frame",
        lambda f: (
            lambda out: __import__("captum_fau.concept.localisation", fromlist=["region_stats"]).region_stats(
                torch.ones(1, 1, 1, 32, 32),
                torch.tensor([[[100, 100, 132, 132]]]),
                torch.tensor([[0]]),
                lambda idx: np.zeros((len(idx), 2, 96, 96), bool),
            )
        ),
        errors.ConfigError,
        "map_masks",
    ),
    (
        "map_masks-not-4d",
        lambda f: (
            lambda out: __import__("captum_fau.inputs.model_inputs", fromlist=["map_masks"]).map_masks(
                __import__("captum_fau.inputs", fromlist=["InputSpec"]).InputSpec(size=48), np.zeros((96, 96), bool)
            )
        ),
        errors.InputShapeError,
        "[K, J, H, W]",
    ),
    (
        "TopNDeconv-attribute-fractional-filter",
        lambda f: (
            lambda out: (
                __import__("captum_fau.attr").attr.TopNDeconv(_model(), "conv3").attribute(_RAND[:2], filters=[1.5])
            )
        ),
        errors.ConfigError,
        "whole filter indices",
    ),
    (
        "TopNDeconv-top_n-two-inputs",
        lambda f: (
            lambda out: (
                __import__("captum_fau.attr")
                .attr.TopNDeconv(_TwoInputs(), "conv3")
                .top_n(torch.rand(4, 1, 20, 20), n=2, progress=False)
            )
        ),
        errors.ConfigError,
        "additional_forward_args",
    ),
    (
        "TopNDeconv-attribute-two-inputs",
        lambda f: (
            lambda out: (
                __import__("captum_fau.attr")
                .attr.TopNDeconv(_TwoInputs(), "conv3")
                .attribute(torch.rand(2, 1, 20, 20), filters=[0])
            )
        ),
        errors.ConfigError,
        "Wrap it",
    ),
    (
        "load_model_spec-factory-raises",
        lambda f: _model_spec(f"{f['root']}/silent_models.py:raises"),
        errors.ConfigError,
        "raised RuntimeError",
    ),
    (
        "analyze-out-empty",
        lambda f: (
            lambda out: __import__("captum_fau.analyze").analyze.analyze(
                _model(), "synthfacs:24", out="", progress=False
            )
        ),
        errors.ConfigError,
        "out='my-report'",
    ),
    (
        "analyze-featured-exceeds-filters",
        lambda f: _analyze("synthfacs:24", layer="conv1", n_featured=1000),
        errors.ConfigError,
        "n_featured=10",
    ),
    (
        "FAUKL-interpret-no-au-labels",
        lambda f: (
            lambda out: (
                __import__("captum_fau.concept").concept.FAUKL(_model(), "conv3", progress=False).interpret(_RAND)
            )
        ),
        errors.LabelError,
        "au_csv=",
    ),
    (
        "load_data_spec-au-csv-inf",
        lambda f: _spec(f"folder:{f['imgs']}", au_csv=f["root"] / "aus_inf.csv", face_crop="none"),
        errors.LabelError,
        "infinite",
    ),
    (
        "load_data_spec-au-csv-all-nan",
        lambda f: _spec(f"folder:{f['imgs']}", au_csv=f["root"] / "aus_nan.csv", face_crop="none"),
        errors.LabelError,
        "empty or NaN",
    ),
    (
        "load_data_spec-noise-folder",
        lambda f: _spec(f"folder:{f['root']}/noise"),
        errors.DatasetLayoutError,
        "found no face",
    ),
    (
        "analyze-faceset-all-nan-aus",
        lambda f: _analyze(
            __import__("captum_fau.data.base", fromlist=["FaceSet"]).FaceSet(
                images=np.random.default_rng(0).integers(0, 256, (24, 96, 96), dtype=np.uint8),
                au_ids=("AU1", "AU12"),
                aus=np.full((24, 2), np.nan, np.float32),
            )
        ),
        errors.LabelError,
        "Every AU label of the 24 images is NaN",
    ),
    (
        "analyze-probe-options-not-options",
        lambda f: _analyze("synthfacs:24", causal=True, probe_options={"n_faces": 4}),
        errors.ConfigError,
        "ProbeOptions(n_faces=16)",
    ),
    (
        "analyze-causal-spec-not-renderable",
        lambda f: _analyze("synthfacs:24", _any_size_net(), layer="conv3", causal=True, input_spec={"size": (96, 64)}),
        errors.ConfigError,
        "causal=True",
    ),
    (
        "analyze-importance-head-not-from-layer",
        lambda f: _analyze("synthfacs:24", _any_size_net(), layer="conv3", importance=True, class_names=_CK8),
        errors.LayerError,
        "importance=True",
    ),
]


def _api_outcome(call: Callable[[Path], Any], expected: type[Exception], keyword: str, out: Path) -> tuple[str, str]:
    try:
        call(out)
    except errors.CaptumFAUError as err:
        if not isinstance(err, expected):
            return "unclear", f"{type(err).__name__} instead of {expected.__name__}: {err}"
        if keyword.lower() not in str(err).lower():
            return "unclear", f"{type(err).__name__}: {err}"
        return "clear", str(err)
    except Exception as err:  # noqa: BLE001 - the point is to classify it
        return "traceback", f"{type(err).__name__}: {err}"
    return "silently wrong", "no error"


@pytest.mark.parametrize("case_id, factory, expected, keyword", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(case_id: str, factory: Callable[[dict[str, Path]], Callable[[Path], Any]],
                       expected: type[Exception], keyword: str, bad: dict[str, Path], tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CAPTUM_FAU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CAPTUM_FAU_ZOO", str(tmp_path / "user-zoo"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    outcome, detail = _api_outcome(factory(bad), expected, keyword, out)
    assert outcome == "clear", f"{case_id}: {outcome}: {detail}"
    for name in FINISHED:
        assert not (out / name).exists(), f"{case_id}: {name} written although the call failed"
    assert not bad["marker"].exists(), "a pickle was unpickled"


def test_tensor_data_is_analysed_with_a_note(tmp_path: Path) -> None:
    """The accepted side of the tensor decision: float [N, C, H, W] runs, with the note in the report."""
    from captum_fau.analyze import analyze

    result = analyze(_model(), _RAND[:4], layer="conv1", out=tmp_path, n=1, progress=False, n_featured=2)
    assert result.faukl is None and result.accuracy is None and result.topn.indices.shape[1] == 1
    assert any("Data given as a tensor [4, 1, 96, 96]" in note for note in result.notes)
    assert "Data given as a tensor" in (tmp_path / "index.html").read_text()


def test_conversion_command_converts(tmp_path: Path) -> None:
    """The command the refusal prints turns a real pickled state dict into safetensors that load."""
    from captum_fau._utils.weights import conversion_command

    model = _model()
    torch.save(model.state_dict(), tmp_path / "model.pth")
    import shlex
    import subprocess
    import sys

    argv = shlex.split(conversion_command(tmp_path / "model.pth"))
    assert argv[:2] == ["python", "-c"]
    subprocess.run([sys.executable, *argv[1:]], check=True, capture_output=True)  # the printed line, as run
    again = zoo.load(ZOO_MODEL, weights=tmp_path / "model.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_no_cache_writes_nothing_outside(tmp_path: Path, bad: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """XDG_CACHE_HOME places the crop cache (announced on stderr); --no-cache writes none."""
    monkeypatch.delenv("CAPTUM_FAU_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    # face detection is what the cache saves: ask for it (auto keeps these small images whole)
    assert main(["data", "describe", f"folder:{bad['imgs']}", "--face-crop", "haar", "--no-cache"]) == 0
    assert not (tmp_path / "xdg").exists()
    assert main(["data", "describe", f"folder:{bad['imgs']}", "--face-crop", "haar"]) == 0
    assert list((tmp_path / "xdg" / "captum-fau" / "preprocessed").glob("*.npz"))
    assert "Face crops cached in" in capsys.readouterr().err
    monkeypatch.setenv("CAPTUM_FAU_CACHE", str(tmp_path / "mine"))
    assert main(["data", "describe", f"folder:{bad['imgs']}", "--face-crop", "haar", "-q"]) == 0
    assert list((tmp_path / "mine").glob("*.npz"))


def test_help_says_module_factory_runs_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    assert "runs your code" in " ".join(capsys.readouterr().out.split())


def test_zoo_list_says_where_weights_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("CAPTUM_FAU_ZOO", str(tmp_path / "zoo"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    user = tmp_path / "zoo" / "zerobias-tfd-7class"
    user.mkdir(parents=True)
    assert main(["zoo", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "packaged (offline)" in lines[ZOO_MODEL]
    assert "captum-fau reproduce --tfd" in lines["zerobias-tfd-7class"]
    (user / "model.safetensors").write_bytes(b"")  # listed as present; zoo.load verifies it
    assert main(["zoo", "list"]) == 0
    assert "user zoo (offline)" in capsys.readouterr().out


def _silent_case_files(root: Path) -> None:
    """Files of the rows added for the silent cases: AU tables with inf / only NaN, noise photos, failing models."""
    rows = "".join(f"f{i}.png,{'inf' if i == 2 else 0.9}\n" for i in range(6))
    (root / "aus_inf.csv").write_text("input,AU12\n" + rows)
    (root / "aus_nan.csv").write_text("input,AU01,AU12\n" + "".join(f"f{i}.png,,nan\n" for i in range(6)))
    for i in range(6):  # the detector finds a "face" in one of them
        write_png(root / "noise" / f"n{i}.png", draw_no_face(seed=i))
    (root / "silent_models.py").write_text("def raises():\n    raise RuntimeError('no weights at /nowhere')\n")
    (root / "broken_models.py").write_text("import no_such_module_xyz\n\ndef build():\n    return None\n")


_CK8 = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


def _any_size_net() -> nn.Module:
    """A conv net that runs at any input size and whose head also reads the input (a skip past conv3), so
    it cannot be run from conv3's output alone."""

    class SkipPast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv3 = nn.Conv2d(1, 4, 3, padding=1)
            self.head = nn.Linear(4, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head((torch.relu(self.conv3(x)) + x).mean((2, 3)))

    return SkipPast().eval()
