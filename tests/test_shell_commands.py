"""Every command captum-fau prints for a person to paste runs exactly the intended program, for any file name.

Three checks: (1) each builder of ``captum_fau._utils.shell`` is pasted into ``bash`` for hostile file
names, with the program replaced by a stub on ``PATH`` that records its arguments: the stub runs once,
receives the name intact, and ``INJECTED`` never appears; (2) no other module spells a command out by hand
with a value formatted into it (an AST scan of every f-string and ``.format`` template of the package), and
the zoo registry's train commands are plain words; (3) the printed ``.pth`` conversion really converts the
usual checkpoint nestings under a hostile name.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from captum_fau import errors, zoo
from captum_fau._utils import shell

PACKAGE = Path(shell.__file__).resolve().parents[1]
HOSTILE = [
    "w$(touch INJECTED).pth",
    "w`touch INJECTED`.pth",
    "a b; touch INJECTED; .pth",
    "x && touch INJECTED #.pth",
    "q'uote\"s.pth",
    "line\ntouch INJECTED\n.pth",
    "star*?[x].pth",
]

#: A command, as a person could paste it: the program name right after a start of text, a backtick,
#: a colon or an opening parenthesis.
_COMMAND = re.compile(
    r"(?:^|[\s`:(])((?:captum-fau\s+(?:analyze|demo|topn|fau-kl|train|evaluate|reproduce|zoo|data)\b"
    r"|python3?\s+(?:-[cm]\b|\S+\.py)|mogrify\s|magick\s|torchrun\s)[^\n`]*)",
    re.MULTILINE,
)
_VALUE = "\x00"


def _stub(bin_dir: Path, program: str, record: Path) -> None:
    """A program that appends its arguments (NUL-separated, one call per line) to ``record``."""
    path = bin_dir / program
    target = shlex.quote(str(record))
    path.write_text(f'#!/bin/bash\nprintf "%s\\0" "$@" >> {target}\necho >> {target}\n')
    path.chmod(0o755)


def _paste(line: str, cwd: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("builder", sorted(shell.BUILDERS))
@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_printed_command_runs_only_the_program(builder: str, name: str, tmp_path: Path) -> None:
    program, build = shell.BUILDERS[builder]
    bin_dir, record = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    _stub(bin_dir, program, record)
    line = build(name)
    done = _paste(line, tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "INJECTED").exists(), f"pasting {line!r} ran injected code"
    calls = record.read_text().split("\0\n")
    assert len([c for c in calls if c.strip("\n")]) == 1, f"{program} ran {len(calls)} times: {calls}"
    assert calls[0].split("\0") == shlex.split(line)[1:], "the stub got other arguments than the printed line holds"
    assert name in calls[0].split("\0") or any(a.endswith(name) for a in calls[0].split("\0"))


def _rendered(node: ast.JoinedStr) -> str:
    return "".join(v.value if isinstance(v, ast.Constant) else _VALUE for v in node.values)


def _templates(tree: ast.AST) -> list[tuple[int, str]]:
    """Every f-string (values as NUL) and every ``"...".format``/``%`` template of a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append((node.lineno, _rendered(node)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            if isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
                found.append((node.lineno, re.sub(r"\{[^}]*\}", _VALUE, node.func.value.value)))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
            if isinstance(node.left.value, str):
                found.append((node.lineno, re.sub(r"%[sdrf]", _VALUE, node.left.value)))
    return found


def hand_made_commands() -> list[str]:
    """``file:line: text`` of every printed command outside ``shell.py`` with a value formatted into it."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "shell.py" and path.parent.name == "_utils":
            continue
        for lineno, text in _templates(ast.parse(path.read_text(encoding="utf-8"))):
            for match in _COMMAND.finditer(text):
                if _VALUE in match.group(1):
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {match.group(1)!r}")
    return bad


def test_every_printed_command_goes_through_the_shell_module() -> None:
    bad = hand_made_commands()
    assert not bad, "commands built by hand (use captum_fau._utils.shell):\n" + "\n".join(bad)


def test_the_scan_finds_a_hand_made_command(tmp_path: Path) -> None:
    """The scan is not blind: it flags the very line the conversion message used to print."""
    tree = ast.parse('p = 1\nmsg = f"Regenerate: python scripts/publish.py {p} --write-card"\n')
    assert any(_VALUE in m.group(1) for _, text in _templates(tree) for m in _COMMAND.finditer(text))


def test_registry_train_commands_are_plain_words() -> None:
    from captum_fau.zoo import registry

    for name in registry.names():
        words = shlex.split(registry.info(name).train_command)
        assert shell.command(*words) == registry.info(name).train_command, name


def test_refusals_print_the_quoted_commands(tmp_path: Path) -> None:
    """The real messages carry the builders' lines: weights refusal and the image-format fix."""
    from captum_fau._utils.weights import require_safetensors
    from captum_fau.data.faces import check_image_files
    from helpers.real_formats import draw_face, write_png

    weights = tmp_path / HOSTILE[0]
    with pytest.raises(errors.WeightsError) as caught:
        require_safetensors(weights)
    assert shell.convert_weights(weights) in str(caught.value).splitlines()[1].strip()
    face = draw_face(shift=1)
    image = tmp_path / "w$(touch INJECTED).png"
    write_png(image, face.astype("uint16") * 257)
    with pytest.raises(errors.ImageFormatError) as caught:
        check_image_files([image], "folder:x")
    lines = [s.strip() for s in str(caught.value).splitlines()]
    assert shell.mogrify(["-depth", "8", "-auto-level"], [str(image)]) in lines


def _nestings(state: dict[str, torch.Tensor]) -> dict[str, object]:
    wrapped = {"module." + k: v for k, v in state.items()}
    return {
        "plain": state,
        "network": {"network": state, "epoch": 3},
        "state_dict": {"state_dict": state, "optimizer": {"lr": 0.1}},
        "model": {"model": state},
        "dataparallel": wrapped,
        "nested-dataparallel": {"model": {"state_dict": wrapped}, "epoch": 9},
    }


@pytest.mark.parametrize("kind", list(_nestings({})))
def test_printed_conversion_converts_usual_checkpoints(kind: str, tmp_path: Path) -> None:
    model = zoo.load("zerobias-synthfacs-8class")
    state = model.state_dict()
    folder = tmp_path / "my ckpts; $(touch INJECTED)"
    folder.mkdir()
    source = folder / f"w$(touch INJECTED) '{kind}'.pth"
    torch.save(_nestings(state)[kind], source)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/bash\nexec {shlex.quote(sys.executable)} "$@"\n')
    (bin_dir / "python").chmod(0o755)
    from captum_fau._utils.weights import require_safetensors

    with pytest.raises(errors.WeightsError) as caught:
        require_safetensors(source)
    line = str(caught.value).splitlines()[1].strip()
    done = _paste(line, tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.rglob("INJECTED"))
    again = zoo.load("zerobias-synthfacs-8class", weights=folder / "model.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(state.values(), again.state_dict().values()))


def test_printed_conversion_says_when_no_tensors(tmp_path: Path) -> None:
    torch.save({"weights_here": {"epoch": 1}}, tmp_path / "odd.pth")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/bash\nexec {shlex.quote(sys.executable)} "$@"\n')
    (bin_dir / "python").chmod(0o755)
    done = _paste(shell.convert_weights(tmp_path / "odd.pth"), tmp_path, bin_dir)
    assert done.returncode != 0 and "no tensors" in done.stderr
    assert not (tmp_path / "model.safetensors").exists()
