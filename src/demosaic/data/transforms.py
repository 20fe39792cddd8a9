"""Photometric augmentations of the datasets (all numpy, all seeded by the caller's RNG).

Geometric augmentation lives in :mod:`demosaic.cfa` (``transform_image`` on RGB before
mosaicking). The functions here work on linear-light images ``(3, H, W)`` float32 or on
mosaics ``(1, H, W)``; none of them clamps unless it says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from demosaic.color import linear_to_srgb
from demosaic.data.common import log_uniform

log = logging.getLogger(__name__)


def _gaussian_blob(h: int, w: int, cy: float, cx: float, sigma: float) -> np.ndarray:
    """``(H, W)`` float32 Gaussian bump of peak 1 at ``(cy, cx)``."""
    yy = (np.arange(h, dtype=np.float32) - np.float32(cy)) ** 2
    xx = (np.arange(w, dtype=np.float32) - np.float32(cx)) ** 2
    s = np.float32(2.0 * sigma * sigma)
    return np.exp(-yy[:, None] / s) * np.exp(-xx[None, :] / s)


def add_highlights(rgb: np.ndarray, rng: np.random.Generator,
                   gain_range: Sequence[float]) -> np.ndarray:
    """Push part of a linear image above 1.0, the way highlights look in a raw file.

    Two effects, both with gain ``g`` drawn log-uniformly from ``gain_range``:

    1. a bright region: the image is multiplied by ``1 + (g - 1) * w`` where ``w`` is a
       Gaussian bump (peak 1, sigma 8-30 % of the patch side) at a random position, so an
       already bright area ends up around ``g`` times brighter;
    2. one to three specular spots: near-white Gaussian spots (sigma 0.5-3 px, centred on a
       pixel, per-channel tint 0.9-1.0 of the brightest channel) of peak amplitude
       ``0.7 g .. g`` added on top.

    On a non-negative image with ``gain_range[0] >= 1.5`` every highlighted patch therefore
    has a maximum of at least ``0.7 * 1.5 = 1.05``, above 1.0. The result is unclamped.

    Args:
        rgb: ``(3, H, W)`` float32 linear light (not modified).
        rng: The item's generator.
        gain_range: ``[low, high]``, ``1 <= low <= high``.

    Returns:
        A new ``(3, H, W)`` float32 array.
    """
    _, h, w = rgb.shape
    gain = log_uniform(rng, gain_range)
    side = float(min(h, w))
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    sigma = rng.uniform(0.08, 0.30) * side
    out = rgb * (1.0 + np.float32(gain - 1.0) * _gaussian_blob(h, w, cy, cx, sigma))[None]
    for _ in range(int(rng.integers(1, 4))):
        sy, sx = int(rng.integers(h)), int(rng.integers(w))
        amp = gain * rng.uniform(0.7, 1.0)
        tint = rng.uniform(0.9, 1.0, size=3).astype(np.float32)
        tint /= tint.max()
        spot = _gaussian_blob(h, w, sy, sx, rng.uniform(0.5, 3.0))
        out = out + (np.float32(amp) * tint)[:, None, None] * spot[None]
    return out.astype(np.float32, copy=False)


def add_poisson_gaussian(mosaic: np.ndarray, rng: np.random.Generator,
                         shot_range: Sequence[float], read_range: Sequence[float]
                         ) -> tuple[np.ndarray, float, float]:
    """Sensor noise on a mosaic: ``a * Poisson(x / a) + N(0, b^2)``.

    ``a`` (shot-noise gain, variance per unit signal) and ``b`` (read-noise sigma) are drawn
    log-uniformly from their ranges. Negative values of ``x`` get no shot noise. The output
    may be negative (read noise) and is unclamped. Only the mosaic gets noise: the target
    stays clean, so a denoising demosaicker can be trained.

    Args:
        mosaic: ``(1, H, W)`` float32 linear mosaic.

    Returns:
        ``(noisy mosaic, a, b)``.
    """
    a = log_uniform(rng, shot_range)
    b = log_uniform(rng, read_range)
    lam = np.maximum(mosaic, 0.0) / a
    shot = rng.poisson(lam).astype(np.float32) * np.float32(a)
    read = rng.normal(0.0, b, size=mosaic.shape).astype(np.float32)
    return shot + read + np.minimum(mosaic, 0.0), a, b


#: Rec. 709 / sRGB luminance weights of linear R, G, B.
LUMA_709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def adjust_saturation(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Scale the chroma of a linear image about its luminance: ``Y + factor * (rgb - Y)``.

    ``Y`` is the Rec. 709 luminance of each pixel, so luminance is unchanged wherever no
    channel would go negative; channels that would are set to 0 (the most saturated colour
    physically possible at that luminance). ``factor > 1`` makes the vivid, strongly
    chromatic scenes a photograph set like BSDS has few of (McMaster-like colour edges);
    ``factor < 1`` desaturates. Highlights above 1.0 are kept (no upper clamp).

    Args:
        rgb: ``(3, H, W)`` float32 linear light (not modified).
        factor: Chroma gain, ``> 0``.

    Returns:
        A new ``(3, H, W)`` float32 array, non-negative where ``rgb`` is.
    """
    luma = np.tensordot(LUMA_709, rgb, axes=1)[None]
    out = luma + np.float32(factor) * (rgb - luma)
    return np.maximum(out, 0.0).astype(np.float32, copy=False)


def to_srgb_clipped(rgb: np.ndarray) -> np.ndarray:
    """The v3 experiment's space: sRGB-encode a linear image and clip it to ``[0, 1]``.

    Kept only to reproduce the research log; it destroys highlights (the reason v4 moved to
    linear light).
    """
    return np.clip(linear_to_srgb(rgb), 0.0, 1.0).astype(np.float32, copy=False)
