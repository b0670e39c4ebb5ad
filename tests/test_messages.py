"""Messages in the reader's language: the command line names flags, Python names arguments; notes print once,
without source lines; results name the model that ran; nothing points to a file a wheel install lacks."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from captum_fau import errors
from captum_fau.cli import main
from helpers.real_formats import draw_face, write_png

PACKAGE = Path(errors.__file__).resolve().parent
#: Python spellings that must not reach a command-line user.
PYTHON_WORDS = ("weights=", "relu_like=True", "AnalysisConfig.", "groups=", "num_classes", "lazy=True", "au_csv=",
                "face_crop=")  # fmt: skip


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTUM_FAU_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CAPTUM_FAU_ZOO", str(tmp_path / "user-zoo"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def resnet_head7(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A timm resnet18 checkpoint with a 7-class head (what a FER2013 model has), and its Hub folder."""
    import timm

    root = tmp_path_factory.mktemp("resnet")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=7)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(root / "head7.safetensors"))
    folder = root / "hub_resnet"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    names = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    (folder / "config.json").write_text(json.dumps({"architecture": "resnet18", "num_classes": 7,
                                                    "label_names": names}))  # fmt: skip
    return root


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _python_words(text: str) -> list[str]:
    return [word for word in PYTHON_WORDS if word in text]


@pytest.mark.parametrize("argv, flag", [
    (["analyze", "--model", "zerobias-synthfacs-8class", "--data", "synthfacs:24", "--checkpoint", "none.safetensors"],
     "--checkpoint"),
    (["analyze", "--model", "zerobias-synthfacs-8class", "--data", "synthfacs:24", "--stream"], "--stream"),
    (["topn", "--model", "zerobias-synthfacs-8class", "--data", "synthfacs:8", "--face-crop", "none"], "--face-crop"),
    (["evaluate", "--model", "zerobias-tfd-7class", "--data", "synthfacs:8"], "--checkpoint"),
], ids=["checkpoint-missing", "stream-synthfacs", "face-crop-synthfacs", "zoo-unavailable"])  # fmt: skip
def test_cli_errors_name_flags(argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(argv, capsys)
    assert code == 2 and flag in err and "Traceback" not in err, err
    assert not _python_words(err), err


def test_python_errors_name_arguments(tmp_path: Path) -> None:
    from captum_fau import zoo
    from captum_fau.data.spec import load_data_spec

    with pytest.raises(errors.WeightsError, match="weights="):
        zoo.load("zerobias-synthfacs-8class", weights=tmp_path / "none.safetensors")
    with pytest.raises(errors.DatasetError, match=r"lazy=True") as caught:
        load_data_spec("synthfacs:4", lazy=True)
    assert "--stream" not in str(caught.value)


def test_timm_head_that_does_not_match_class_names_names_the_flag(resnet_head7: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argv = ["evaluate", "--model", "timm:resnet18", "--checkpoint", str(resnet_head7 / "head7.safetensors"),
            "--class-names", "happy,sad,angry", "--data", "synthfacs:8"]  # fmt: skip
    code, _, err = _run(argv, capsys)
    assert code == 2 and "--class-names" in err and "7 names" in err, err
    assert not _python_words(err), err
    from captum_fau.zoo.resolve import load_model_spec

    with pytest.raises(errors.WeightsError, match=r"class_names= with 7 names"):
        load_model_spec("timm:resnet18", checkpoint=resnet_head7 / "head7.safetensors", num_classes=3)


def test_evaluate_names_the_model_that_ran(resnet_head7: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = resnet_head7 / "hub_resnet"
    code, out, err = _run(["evaluate", "--model", str(folder), "--data", "synthfacs:8", "--out", "t.md"], capsys)
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("| resnet18")]
    assert rows and f"({folder})" in rows[0], out
    assert "Zero-bias" not in out and "Zero-bias" not in Path("t.md").read_text()
    assert "+AD" not in out  # no training variant is claimed for a model captum-fau did not train


def test_zoo_model_rows_still_say_zero_bias(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["evaluate", "--model", "zerobias-synthfacs-8class", "--data", "synthfacs:8"], capsys)
    assert code == 0 and "| Zero-bias CNN (zerobias-synthfacs-8class) |" in out, out


@pytest.fixture(scope="module")
def no_ids_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One analyze run on a folder without subject ids, with --relu-like on a ReLU model (both warn)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    root = tmp_path_factory.mktemp("noids")
    for i in range(24):
        write_png(root / "imgs" / f"f{i}.png", draw_face(shift=i % 7))
    (root / "aus.csv").write_text("input,AU12\n" + "".join(f"f{i}.png,{i % 2}\n" for i in range(24)))
    out, err = io.StringIO(), io.StringIO()
    argv = ["analyze", "--model", "zerobias-synthfacs-8class", "--data", f"folder:{root / 'imgs'}", "--au-csv",
            str(root / "aus.csv"), "--layer", "conv1", "--n", "1", "--permutations", "5", "--bootstrap", "0",
            "--no-sanity-check", "--sanity-filters", "4", "--rule", "gradient", "--relu-like", "--no-cache",
            "--out", str(root / "out")]  # fmt: skip
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return {"code": str(code), "out": out.getvalue(), "err": err.getvalue(), "report": str(root / "out")}


def test_warnings_print_without_source_lines(no_ids_run: dict[str, str]) -> None:
    assert no_ids_run["code"] == "0", no_ids_run["err"]
    text = no_ids_run["out"] + no_ids_run["err"]
    assert "UserWarning" not in text and not re.search(r"\.py:\d+:", text), text
    assert "--relu-like has no effect with --rule gradient" in text


def test_each_note_is_printed_once(no_ids_run: dict[str, str]) -> None:
    text = no_ids_run["out"] + no_ids_run["err"]
    assert text.count("no subject or sequence ids") == 1, text
    assert text.count("Input: 96x96 gray") == 1, text
    assert text.count("--sanity-filters does nothing with --no-sanity-check") == 1, text


def test_notes_name_flags_not_arguments(no_ids_run: dict[str, str]) -> None:
    text = no_ids_run["out"] + no_ids_run["err"]
    assert not _python_words(text), _python_words(text)
    assert "a 'subject' column" in text


def _user_strings(path: Path) -> list[tuple[int, str]]:
    """String constants and f-string parts of a module, docstrings left out (they document the source tree)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}  # fmt: skip
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]  # fmt: skip


def test_nothing_points_to_files_a_wheel_lacks(no_ids_run: dict[str, str]) -> None:
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}: {text[:80]!r}" for path in sorted(PACKAGE.rglob("*.py"))
             for line, text in _user_strings(path) if "scripts/" in text]  # fmt: skip
    for template in PACKAGE.rglob("*.j2"):
        found += [f"{template.name}: {line}" for line in template.read_text().splitlines() if "scripts/" in line]
    assert not found, "messages or pages that point to scripts/:\n" + "\n".join(found)
    assert "scripts/" not in (Path(no_ids_run["report"]) / "index.html").read_text()
