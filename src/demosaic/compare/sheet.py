"""A PNG contact sheet of a comparison's crops, for sharing and for docs: one row per crop
(file and crop number on the left), one column per method (name on top), each crop at 1:1
(or 2:1 with ``scale=2``, nearest neighbour), on a dark ground."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from demosaic.compare.page import FileComparison, encode_srgb8
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

_LABEL_W, _HEAD_H, _GAP = 150, 20, 4


def contact_sheet(files: list[FileComparison], *, exposure: float = 0.0, scale: int = 1
                  ) -> np.ndarray:
    """The sheet as ``(H, W, 3)`` uint8."""
    from PIL import Image, ImageDraw

    rows = [(fc, i, c) for fc in files for i, c in enumerate(fc.crops)]
    pieces = [fc.pieces[i] for fc, i, _ in rows]
    names = [m.name for m in files[0].methods] if files else []
    cell_w = max([c.w * scale for _, _, c in rows] or [64])
    heights = [c.h * scale for _, _, c in rows]
    width = _LABEL_W + len(names) * (cell_w + _GAP)
    sheet = Image.new("RGB", (width, _HEAD_H + sum(h + _GAP for h in heights)), (34, 34, 34))
    draw = ImageDraw.Draw(sheet)
    for j, name in enumerate(names):
        draw.text((_LABEL_W + j * (cell_w + _GAP), 4), f"{j + 1} {name}", fill=(230, 230, 230))
    y = _HEAD_H
    for (fc, i, crop), h, row in zip(rows, heights, pieces):
        draw.text((4, y + 2), f"{fc.path.name}\ncrop {i + 1}\n{crop.x},{crop.y}",
                  fill=(230, 230, 230))
        for j, piece in enumerate(row):
            tile = Image.fromarray(encode_srgb8(piece, exposure))
            if scale != 1:
                tile = tile.resize((crop.w * scale, crop.h * scale), Image.NEAREST)
            sheet.paste(tile, (_LABEL_W + j * (cell_w + _GAP), y))
        y += h + _GAP
    return np.asarray(sheet)


def write_sheet(path: str | os.PathLike[str], files: list[FileComparison], *,
                exposure: float = 0.0, scale: int = 1) -> Path:
    """Write :func:`contact_sheet` as a PNG, atomically."""
    from PIL import Image

    out = Path(path)
    pixels = contact_sheet(files, exposure=exposure, scale=scale)
    with atomic_path(out) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    log.info("wrote %s (%dx%d px)", out, pixels.shape[1], pixels.shape[0])
    return out


__all__ = ["contact_sheet", "write_sheet"]
