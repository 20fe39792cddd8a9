"""Where to look: crops where the methods disagree most and where fine colour detail is.

Each method's upright linear sRGB image is compared in a display-like encoding (clipped,
square root: differences in shadows count as the eye sees them). Two maps are scored per
pixel:

- **disagreement**: the mean absolute difference of each method from the per-pixel median of
  all methods (zero with one method);
- **fine colour detail**: the gradient magnitude of the chroma (each channel minus the mean of
  the three) of the methods' mean image: fences, foliage, fabric, text.

Each map is divided by its frame mean, so the two weigh alike on any photograph, and summed
over windows of the crop size on a grid of a quarter of it (cumulative sums, so a 24 MP frame
is cheap). The best windows are taken greedily with non-maximum suppression: a window that
overlaps one already chosen is dropped, which spreads the crops over the frame.

User crops (``x,y,w,h``, upright pixels) come first, checked against the frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

#: Crops chosen per file when the user gives none (``--crops auto``).
AUTO_CROPS = 6
#: Side of an automatic crop in px (``--crop-size``).
DEFAULT_CROP_SIZE = 192


@dataclass(frozen=True)
class Crop:
    """A rectangle of the upright image: ``x, y`` top-left, ``w, h`` size; ``why`` says where
    it came from (``"user"`` or ``"auto"``), ``score`` the automatic score."""

    x: int
    y: int
    w: int
    h: int
    why: str = "auto"
    score: float = 0.0

    def overlaps(self, other: Crop) -> bool:
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)

    def take(self, img: np.ndarray) -> np.ndarray:
        """``img[:, y:y+h, x:x+w]`` of a ``(C, H, W)`` array."""
        return img[:, self.y:self.y + self.h, self.x:self.x + self.w]


def parse_crop(text: str) -> Crop:
    """``"x,y,w,h"`` -> :class:`Crop` (``why="user"``).

    Raises:
        ConfigError: not four integers, or a negative offset or a size under 1.
    """
    parts = text.split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"crop {text!r}: give x,y,w,h in pixels, e.g. 100,200,256,256"
                          ) from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise ConfigError(f"crop {text!r}: x and y must be >= 0, w and h >= 1")
    return Crop(x, y, w, h, why="user")


def check_crop(crop: Crop, size: tuple[int, int], path: object) -> None:
    """Raise :class:`ConfigError` naming ``path`` when ``crop`` leaves the ``(H, W)`` frame."""
    h, w = size
    if crop.x + crop.w > w or crop.y + crop.h > h:
        raise ConfigError(f"{path}: crop {crop.x},{crop.y},{crop.w},{crop.h} leaves the "
                          f"{w}x{h} px frame (upright); give a crop inside it")


def _display(img: np.ndarray) -> np.ndarray:
    """A display-like encoding of linear sRGB for scoring: clipped to [0, 1], square root."""
    return np.sqrt(np.clip(img, np.float32(0.0), np.float32(1.0)))


def _median(shown: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median of the methods (two: their mean; three: sum - max - min, without
    :func:`numpy.median`'s sort of a 24 MP stack)."""
    if len(shown) == 2:
        return (shown[0] + shown[1]) * np.float32(0.5)
    if len(shown) == 3:
        a, b, c = shown
        return a + b + c - np.maximum(np.maximum(a, b), c) - np.minimum(np.minimum(a, b), c)
    return np.median(np.stack(shown), axis=0)


def score_maps(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(disagreement, colour detail)`` ``(H, W)`` float32 maps of the methods'
    ``(3, H, W)`` upright linear images (module docstring)."""
    shown = [_display(np.asarray(i, dtype=np.float32)) for i in images]
    h, w = shown[0].shape[1:]
    disagree = np.zeros((h, w), np.float32)
    if len(shown) > 1:
        median = _median(shown)
        for s in shown:
            disagree += np.abs(s - median).sum(0)
        disagree /= len(shown)
    mean = shown[0] if len(shown) == 1 else np.mean(shown, axis=0, dtype=np.float32)
    chroma = mean - mean.mean(0, keepdims=True)
    detail = np.zeros((h, w), np.float32)
    detail[:, 1:] += np.abs(np.diff(chroma, axis=2)).sum(0)
    detail[1:, :] += np.abs(np.diff(chroma, axis=1)).sum(0)
    return disagree, detail


def _window_sums(score: np.ndarray, size: int, step: int) -> np.ndarray:
    """Sums of ``score`` over ``size`` x ``size`` windows whose corners lie on a ``step`` grid:
    ``(ny, nx)``, window ``(i, j)`` at ``(i * step, j * step)``."""
    h, w = score.shape
    ii = np.zeros((h + 1, w + 1), np.float64)
    ii[1:, 1:] = score.cumsum(0, dtype=np.float64).cumsum(1)
    ys = np.arange(0, h - size + 1, step)
    xs = np.arange(0, w - size + 1, step)
    y0, x0 = ys[:, None], xs[None, :]
    return ii[y0 + size, x0 + size] - ii[y0, x0 + size] - ii[y0 + size, x0] + ii[y0, x0]


def choose_crops(images: list[np.ndarray], count: int = AUTO_CROPS,
                 size: int = DEFAULT_CROP_SIZE, keep: list[Crop] | None = None) -> list[Crop]:
    """The ``count`` best ``size`` px windows (module docstring) not overlapping each other
    nor the crops in ``keep`` (which come first in the result).

    Args:
        images: Each method's ``(3, H, W)`` upright linear sRGB image (same size).
        count: Automatic crops wanted (fewer when the frame has no more room).
        size: Their side; reduced to the frame's shorter side on a small frame.
        keep: The user's crops.
    """
    keep = list(keep or [])
    h, w = images[0].shape[1:]
    size = max(1, min(size, h, w))
    if count <= 0:
        return keep
    disagree, detail = score_maps(images)
    score = (disagree / (float(disagree.mean()) + 1e-6)
             + detail / (float(detail.mean()) + 1e-6))
    step = max(1, size // 4)
    sums = _window_sums(score, size, step)
    chosen = list(keep)
    found = 0
    for flat in np.argsort(sums, axis=None)[::-1]:
        i, j = np.unravel_index(flat, sums.shape)
        cand = Crop(int(j * step), int(i * step), size, size, "auto",
                    float(sums[i, j]) / (size * size))
        if any(cand.overlaps(c) for c in chosen):
            continue
        chosen.append(cand)
        found += 1
        if found == count:
            break
    log.debug("crops: %s", chosen)
    return chosen


__all__ = ["AUTO_CROPS", "DEFAULT_CROP_SIZE", "Crop", "check_crop", "choose_crops",
           "parse_crop", "score_maps"]
