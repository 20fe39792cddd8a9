"""Synthetic test scenes: deterministic linear-light images with known truth, for checks that
need a picture but no files (export's INT8 measurement, benchmarks, tests)."""

from __future__ import annotations

import logging

import numpy as np

from demosaic import cfa as cfa_mod

log = logging.getLogger(__name__)


def synthetic_scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic linear-light test image with smooth colour, edges, fine texture and
    highlights above 1.0.

    Returns:
        ``(3, height, width)`` float32, mostly in ``[0, 1]``, a few highlights up to ~2.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= max(height - 1, 1)
    x /= max(width - 1, 1)
    img = np.empty((3, height, width), np.float32)
    for c in range(3):  # smooth colour field
        a, b, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 2 * np.pi)
        img[c] = 0.35 + 0.25 * np.sin(2 * np.pi * (a * x + b * y) + ph)
    r2 = ((x - 0.5) ** 2 + (y - 0.5) ** 2) * min(height, width)  # zone plate: fine texture
    zone = 0.5 + 0.5 * np.cos(np.pi * r2 * 0.9)
    sel = (x > 0.55) & (y < 0.45)
    img[:, sel] = img[:, sel] * 0.4 + 0.5 * zone[sel]
    for _ in range(12):  # sharp-edged coloured rectangles
        y0, x0 = rng.uniform(0, 0.9, 2)
        hh, ww = rng.uniform(0.05, 0.3, 2)
        m = (y >= y0) & (y < y0 + hh) & (x >= x0) & (x < x0 + ww)
        img[:, m] = rng.uniform(0.02, 0.95, (3, 1)).astype(np.float32)
    cy, cx = rng.uniform(0.2, 0.8, 2)  # a highlight above 1.0
    img += 1.2 * np.exp(-(((y - cy) ** 2 + (x - cx) ** 2) / 0.002))[None].astype(np.float32)
    return img


def scene_mosaic(pattern: cfa_mod.CFAPattern, h: int, w: int, seed: int, exposure: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`synthetic_scene` times ``exposure`` and its mosaic.

    Returns:
        ``(mosaic (1, h, w) float32 in the canonical phase of pattern, truth (3, h, w))``.
    """
    truth = synthetic_scene(h, w, seed) * np.float32(exposure)
    return cfa_mod.mosaic(truth, pattern)[None].astype(np.float32), truth


__all__ = ["scene_mosaic", "synthetic_scene"]
