#!/usr/bin/env python
"""Contact sheet of the SynthFACS photo style: every AU at intensities A, C and E on three identities.

Rows are the AUs of ``SYNTHFACS_AUS``; for each of three subjects the columns show the face with no
AU, then the row's AU alone at A (1), C (3) and E (5), all with the same pose, light and camera
(``render_with_aus``). Written to ``docs/synthfacs_photo_aus.png`` by default::

    python scripts/synthfacs_contact_sheet.py [--style photo] [--size 96] [--out docs/synthfacs_photo_aus.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from captum_fau.synthfacs import SYNTHFACS_AUS, render_with_aus  # noqa: E402

#: Image indices of the three identities shown (subjects 0, 5 and 9 of seed 0).
INDICES = (0, 57, 101)
LEVELS = ((0.0, "-"), (1.0, "A"), (3.0, "C"), (5.0, "E"))


def sheet(style: str, size: int, seed: int = 0) -> np.ndarray:
    """The contact sheet as a uint8 grey image."""
    label_w, head_h, gap = 70, 22, 6
    cols = len(INDICES) * len(LEVELS)
    width = label_w + cols * size + (len(INDICES) - 1) * gap
    out = np.full((head_h + len(SYNTHFACS_AUS) * size, width), 255, dtype=np.uint8)
    for i in range(len(INDICES)):
        for k, (_, name) in enumerate(LEVELS):
            x = label_w + i * (len(LEVELS) * size + gap) + k * size
            cv2.putText(out, name, (x + size // 2 - 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1, cv2.LINE_AA)
    for j, au in enumerate(SYNTHFACS_AUS):
        y = head_h + j * size
        cv2.putText(out, au, (6, y + size // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 0, 1, cv2.LINE_AA)
        for i, index in enumerate(INDICES):
            for k, (level, _) in enumerate(LEVELS):
                vector = np.zeros(len(SYNTHFACS_AUS), np.float32)
                vector[j] = level
                image, _ = render_with_aus(seed, index, vector, size=size, style=style)
                x = label_w + i * (len(LEVELS) * size + gap) + k * size
                out[y : y + size, x : x + size] = image
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--style", default="photo")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--out", default=str(REPO / "docs" / "synthfacs_photo_aus.png"))
    args = parser.parse_args()
    image = sheet(args.style, args.size)
    if not cv2.imwrite(args.out, image, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise SystemExit(f"could not write {args.out}")
    print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]})")


if __name__ == "__main__":
    main()
