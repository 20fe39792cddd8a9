"""Minimal line plots drawn with Pillow, so research reports need no plotting dependency.

matplotlib is not a dependency of ``demosaic`` and not installed here; the plots the toolbox
needs (a few overlaid curves with axes, ticks and a legend) are simple enough to draw
directly. Output: an 8-bit RGB PNG written atomically.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: Line colours, cycled over series.
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
           (23, 190, 207), (140, 86, 75), (127, 127, 127)]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def line_plot(path: str | os.PathLike[str], series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
              *, title: str = "", xlabel: str = "", ylabel: str = "", logy: bool = False,
              vlines: Sequence[float] = (), size: tuple[int, int] = (720, 420)) -> Path:
    """Draw ``{label: (x, y)}`` curves on shared axes and write a PNG.

    Args:
        path: Output ``.png``.
        series: Curves; non-finite points are skipped (and non-positive ones when ``logy``).
        title, xlabel, ylabel: Text; ``logy``: log10 y axis.
        vlines: x positions of dashed grey reference lines (e.g. CFA harmonics).
        size: ``(width, height)`` in px.
    """
    w, h = size
    left, right, top, bottom = 70, 20, 30, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    pts = {}
    for name, (x, y) in series.items():
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        ok = np.isfinite(x) & np.isfinite(y)
        if logy:
            ok &= y > 0
            y = np.where(ok, np.log10(np.where(y > 0, y, 1)), np.nan)
        pts[name] = (x[ok], y[ok])
    xs = np.concatenate([p[0] for p in pts.values()] + [np.asarray(vlines, dtype=np.float64)]) \
        if pts else np.zeros(1)
    ys = np.concatenate([p[1] for p in pts.values()]) if pts else np.zeros(1)
    xs, ys = (xs, ys) if xs.size and ys.size else (np.zeros(1), np.zeros(1))
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    if x1 <= x0:
        x1 = x0 + 1
    if y1 <= y0:
        y1 = y0 + 1
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (w - left - right),
                h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom))

    d.rectangle([left, top, w - right, h - bottom], outline="black")
    for tx in _ticks(x0, x1):
        X, _ = px(tx, y0)
        d.line([X, h - bottom, X, h - bottom + 4], fill="black")
        d.text((X - 12, h - bottom + 6), f"{tx:.3g}", fill="black", font=font)
    for ty in _ticks(y0, y1):
        _, Y = px(x0, ty)
        d.line([left - 4, Y, left, Y], fill="black")
        label = f"1e{ty:.2g}" if logy else f"{ty:.3g}"
        d.text((4, Y - 6), label, fill="black", font=font)
    for vx in vlines:
        X, _ = px(vx, y0)
        for yy in range(top, h - bottom, 8):
            d.line([X, yy, X, min(yy + 4, h - bottom)], fill=(160, 160, 160))
    for i, (name, (x, y)) in enumerate(pts.items()):
        colour = COLOURS[i % len(COLOURS)]
        if len(x) > 1:
            d.line([px(a, b) for a, b in zip(x, y)], fill=colour, width=2)
        elif len(x) == 1:
            X, Y = px(x[0], y[0])
            d.ellipse([X - 2, Y - 2, X + 2, Y + 2], fill=colour)
        d.line([w - right - 150, top + 10 + 14 * i, w - right - 130, top + 10 + 14 * i], fill=colour, width=2)
        d.text((w - right - 125, top + 4 + 14 * i), name[:22], fill="black", font=font)
    d.text((left, 8), title, fill="black", font=font)
    d.text(((w - len(xlabel) * 6) // 2, h - 18), xlabel, fill="black", font=font)
    d.text((4, 16), ylabel + (" (log10)" if logy else ""), fill="black", font=font)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        img.save(tmp, format="PNG")
    log.info("wrote plot %s", out)
    return out


__all__ = ["line_plot", "COLOURS"]
