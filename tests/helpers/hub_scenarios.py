"""Run Hub scenarios in a fresh interpreter whose environment (``HF_ENDPOINT``, ``HF_HOME``,
``HF_HUB_OFFLINE``...) was set before huggingface_hub was imported, as a user's would be.

Usage: ``python tests/helpers/hub_scenarios.py SPEC.json`` where the spec is
``{"registry": {name: {field: value}}, "steps": [{"op": ..., ...}, ...]}``. Registry entries
are copies of the SynthFACS entry with the given fields changed. Prints one JSON list with a
result per step. Several steps share one interpreter so that torch is imported once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from captum_fau import zoo  # noqa: E402
from captum_fau.zoo import registry as zoo_registry  # noqa: E402

PACKAGED = zoo.info("zerobias-synthfacs-8class").packaged_dir / zoo.WEIGHTS_FILENAME


def _patch_registry(entries: dict[str, dict[str, Any]]) -> None:
    base = zoo_registry.entry("zerobias-synthfacs-8class")
    registry = dict(zoo_registry._registry())
    for name, changes in entries.items():
        registry[name] = replace(base, name=name, metrics={}, **changes)
    zoo_registry._registry = lambda: registry  # type: ignore[assignment]


def _equal_to_packaged(model: torch.nn.Module) -> bool:
    reference = load_file(str(PACKAGED))
    state = model.state_dict()
    return state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)


def _load(step: dict[str, Any]) -> dict[str, Any]:
    try:
        model = zoo.load(step["name"], revision=step.get("revision"))
    except Exception as err:  # reported to the test, which asserts on it
        return {"ok": False, "error": type(err).__name__, "message": str(err)}
    path = Path(model.config["zoo"]["weights_file"])
    return {
        "ok": True,
        "source": model.config["zoo"]["source"],
        "weights_file": str(path),
        "commit": zoo.snapshot_commit(path),
        "blob": str(path.resolve()),
        "blob_mtime_ns": path.resolve().stat().st_mtime_ns,
        "equal_packaged": _equal_to_packaged(model),
    }


def _exec_card(step: dict[str, Any]) -> dict[str, Any]:
    text = Path(step["card"]).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict[str, Any] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, step["card"], "exec"), namespace)  # noqa: S102 - our own cards
    result: dict[str, Any] = {"ok": True, "blocks": len(blocks), "stdout": out.getvalue()}
    for key in ("model", "timm_model"):
        if key in namespace:
            result[f"{key}_equal_packaged"] = _equal_to_packaged(namespace[key])
    if "res" in namespace:
        result["topn_shape"] = list(namespace["res"].indices.shape)
    return result


def _publish(step: dict[str, Any]) -> dict[str, Any]:
    import publish_to_hub

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = publish_to_hub.main(step["argv"])
    return {"ok": rc == 0, "rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}


def _files(step: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "exists": {p: os.path.exists(p) for p in step["paths"]}}


OPS = {"load": _load, "exec_card": _exec_card, "publish": _publish, "files": _files}


def main(spec_file: str) -> int:
    spec = json.loads(Path(spec_file).read_text())
    _patch_registry(spec.get("registry", {}))
    results = [OPS[step["op"]](step) for step in spec["steps"]]
    print("HUB-SCENARIO-RESULTS " + json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
