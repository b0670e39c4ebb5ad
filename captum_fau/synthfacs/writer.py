"""Render a SynthFACS set to one compressed array file plus a contact sheet (``captum-fau data synthfacs``)."""

from __future__ import annotations

import os
import queue
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from captum_fau._utils.io import atomic_path, atomic_write_bytes
from captum_fau.data.base import CKPLUS_CLASSES
from captum_fau.synthfacs.sets import (
    SYNTHFACS_AUS,
    SynthBatch,
    _check_int,
    _check_params,
    render,
)
from captum_fau.errors import OutputError

#: Images per rendering chunk (bounds memory of the progress loop, not the output).
CHUNK = 512
_SHEET_SIDE = 8
_LABEL_ROWS = 4


def contact_sheet(batch: SynthBatch, count: int = 64) -> np.ndarray:
    """An 8-column grid of the first ``count`` images, each labelled with index, subject, emotion and AUs.

    Returns:
        np.ndarray: uint8 grayscale sheet.
    """
    count = min(count, len(batch))
    size = batch.images.shape[1]
    tile_w = max(size, 96)
    line_h = 11
    tile_h = tile_w + line_h * _LABEL_ROWS + 2
    rows = -(-count // _SHEET_SIDE)
    sheet = np.full((rows * tile_h, _SHEET_SIDE * tile_w), 255, dtype=np.uint8)
    for k in range(count):
        r, c = divmod(k, _SHEET_SIDE)
        y0, x0 = r * tile_h, c * tile_w
        image = (
            batch.images[k]
            if size == tile_w
            else cv2.resize(batch.images[k], (tile_w, tile_w), interpolation=cv2.INTER_NEAREST)
        )
        sheet[y0 : y0 + tile_w, x0 : x0 + tile_w] = image
        emotion = int(batch.emotions[k])
        name = CKPLUS_CLASSES[emotion] if emotion >= 0 else "unlabelled"
        present = [
            f"{SYNTHFACS_AUS[j].removeprefix('AU')}{'ABCDE'[min(4, max(0, int(round(v)) - 1))]}"
            for j, v in enumerate(batch.aus[k])
            if v > 0
        ]
        lines = [f"#{int(batch.indices[k])} s{int(batch.subjects[k])} {name}", ""]
        for token in present or ["no AUs"]:  # wrap the AU list over the remaining label rows
            if len(lines[-1]) + len(token) + 1 > 14 and len(lines) < _LABEL_ROWS:
                lines.append("")
            lines[-1] = f"{lines[-1]} {token}".strip()
        for li, text in enumerate(lines):
            cv2.putText(
                sheet,
                text[:15],
                (x0 + 2, y0 + tile_w + line_h * (li + 1) - 1),
                cv2.FONT_HERSHEY_PLAIN,
                0.62,
                0,
                1,
                cv2.LINE_AA,
            )
        sheet[y0 : y0 + tile_h, x0] = 255
    return sheet


class _ImageStream:
    """Writes ``images.npy`` into an open zip member from a background thread.

    zlib releases the GIL, so compressing chunk ``k`` overlaps rendering chunk ``k + 1``:
    on two cores the write costs almost nothing on top of the rendering.
    """

    def __init__(self, member, shape: tuple[int, ...]) -> None:  # noqa: ANN001 - a writable zip member
        np.lib.format.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False, "shape": shape})
        self._member = member
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._member.write(np.ascontiguousarray(chunk).data)
                except BaseException as err:  # re-raised in the caller's thread by close()
                    self._error = err

    def put(self, chunk: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def write_synthfacs(
    out_dir: str | os.PathLike,
    n: int,
    seed: int = 0,
    *,
    size: int = 96,
    mode: str = "prototype",
    n_subjects: int | None = None,
    masks: bool = False,
    progress: bool = True,
) -> dict[str, float]:
    """Render ``n`` images and write ``out_dir/synthfacs.npz`` and ``out_dir/contact_sheet.png`` atomically.

    The archive holds ``images``, ``emotions``, ``aus``, ``au_ids``, ``subjects``, ``class_names``,
    the parameters (``seed``, ``size``, ``mode``, ``n_subjects``; -1 = default) and, with
    ``masks=True``, ``masks``. Read it with ``np.load(path, allow_pickle=False)``.

    Args:
        out_dir (str or PathLike): Output folder, created if missing.
        n (int): Number of images.
        seed, size, mode, n_subjects: As for :func:`~captum_fau.synthfacs.sets.render`.
        masks (bool, optional): Also store the region masks (``n * 20 * size**2`` bytes before
            compression). Default: False
        progress (bool, optional): Show a progress bar. Default: True

    Returns:
        dict: ``n``, ``subjects``, ``seconds`` and ``images_per_s`` (rendering and writing).

    Examples::

        >>> import tempfile
        >>> from captum_fau.synthfacs.writer import write_synthfacs
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     stats = write_synthfacs(tmp, 16, progress=False)
        >>> int(stats["n"])
        16
    """
    start_time = time.perf_counter()
    # validate everything before touching the disk
    n = _check_int(n, "n", 1, "ask for at least one image (--n 1308 matches CK+).")
    seed, size, mode, n_subjects = _check_params(seed, size, mode, n_subjects)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"Cannot create output folder {out}: {err}. Pass a writable --out folder.") from err
    parts: list[SynthBatch] = []
    npz_path = out / "synthfacs.npz"
    try:
        with (
            atomic_path(npz_path) as tmp,
            open(tmp, "wb") as handle,
            zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as archive,
        ):
            with (
                archive.open("images.npy", "w", force_zip64=True) as member,
                tqdm(total=n, desc="SynthFACS", unit="img", disable=not progress) as bar,
            ):
                stream = _ImageStream(member, (n, size, size))
                try:
                    for first in range(0, n, CHUNK):
                        part = render(
                            min(CHUNK, n - first),
                            seed,
                            size=size,
                            mode=mode,
                            n_subjects=n_subjects,
                            start=first,
                            masks=masks,
                        )
                        stream.put(part.images)
                        if first > 0:  # keep the first chunk's images for the contact sheet only
                            part.images = part.images[:0]
                        parts.append(part)
                        bar.update(len(part.indices))
                finally:
                    stream.close()
            arrays: dict[str, np.ndarray] = {
                "emotions": np.concatenate([p.emotions for p in parts]),
                "aus": np.concatenate([p.aus for p in parts]),
                "au_ids": np.array(SYNTHFACS_AUS),
                "subjects": np.concatenate([p.subjects for p in parts]),
                "class_names": np.array(CKPLUS_CLASSES),
                "seed": np.int64(seed),
                "size": np.int64(size),
                "mode": np.array(mode),
                "n_subjects": np.int64(-1 if n_subjects is None else n_subjects),
            }
            if masks:
                arrays["masks"] = np.concatenate([p.masks for p in parts])
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
        first = parts[0]
        ok, png = cv2.imencode(".png", contact_sheet(first))
        if not ok:
            raise OutputError("OpenCV could not encode the contact sheet as PNG.")
        atomic_write_bytes(out / "contact_sheet.png", png.tobytes())
    except OSError as err:
        raise OutputError(f"Cannot write into {out}: {err}. Pass a writable --out folder with free space.") from err
    seconds = time.perf_counter() - start_time
    n_subj = len(np.unique(arrays["subjects"]))
    return {"n": float(n), "subjects": float(n_subj), "seconds": seconds, "images_per_s": n / max(seconds, 1e-9)}


__all__ = ["CHUNK", "contact_sheet", "write_synthfacs"]
