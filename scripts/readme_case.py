"""The README's own-model case on disk: a timm resnet18 checkpoint, a folder of faces, an OpenFace AU csv.

Used by ``bench_topn.py --json`` (the ``resnet18_layer3_*`` figures). The weights are timm's random
initialisation (``pretrained=False``, seeded): nothing is downloaded. The faces are SynthFACS renders
saved as 8-bit PNGs, their AU intensities written in OpenFace 2.0's single-csv form
(``file, frame, face_id, timestamp, confidence, success, AUxx_r..., AUxx_c...``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch


def _openface_name(au: str) -> str:
    return f"AU{int(au[2:]):02d}"


def write_readme_case(root: Path, count: int = 60, seed: int = 0) -> dict[str, Path]:
    """Write ``root/my_model.safetensors``, ``root/my_faces/*.png`` and ``root/openface_output.csv``.

    Args:
        root (Path): Folder to write into (created).
        count (int, optional): Faces. Default: 60
        seed (int, optional): Seeds the weights and the renderer. Default: 0

    Returns:
        dict: ``{"checkpoint", "faces", "au_csv"}`` paths.
    """
    import timm
    from safetensors.torch import save_file

    from captum_fau.data.synthfacs import load_synthfacs

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = timm.create_model("resnet18", pretrained=False)
    checkpoint = root / "my_model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    faces = load_synthfacs(count, seed=seed, size=128)
    folder = root / "my_faces"
    folder.mkdir(exist_ok=True)
    keep = [j for j, au in enumerate(faces.au_ids) if au.startswith("AU")]  # OpenFace has no R/L units
    names = [_openface_name(faces.au_ids[j]) for j in keep]
    header = ["file", "frame", "face_id", "timestamp", "confidence", "success"]
    header += [f"{a}_r" for a in names] + [f"{a}_c" for a in names]
    rows = [", ".join(header)]
    for i, image in enumerate(faces.images):
        pixels = np.asarray(image)
        pixels = (pixels * 255).round().clip(0, 255).astype(np.uint8) if pixels.dtype != np.uint8 else pixels
        if not cv2.imwrite(str(folder / f"face{i:03d}.png"), pixels):
            raise OSError(f"could not write {folder / f'face{i:03d}.png'}")
        aus = np.nan_to_num(np.asarray(faces.aus[i], dtype=float))[keep]
        values = [f"{min(5.0, float(v)):.2f}" for v in aus] + [str(int(v > 0)) for v in aus]
        rows.append(", ".join([f"face{i:03d}.png", "1", "0", "0", "0.98", "1", *values]))
    au_csv = root / "openface_output.csv"
    au_csv.write_text("\n".join(rows) + "\n")
    return {"checkpoint": checkpoint, "faces": folder, "au_csv": au_csv}


__all__ = ["write_readme_case"]
