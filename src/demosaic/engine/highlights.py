"""Clipped highlights: what to do where a raw channel reached the sensor's white level.

After white balance a raw channel ``c`` that clipped reads ``w_c`` (its multiplier) instead of
its true, larger value. A lamp that clips every channel therefore reads ``(w_R, 1, w_B)``,
about ``(2.1, 1, 1.5)`` for a Fujifilm body: magenta. The modes (``demosaic-infer
--highlights``, docs/CAMERA.md shows each on the same picture):

``clip`` (default)
    LibRaw's clip mode where the raw data clipped, and nothing elsewhere. Every channel is
    known exactly up to ``S = min_c w_c`` (the level where the first channel clips, 1.0 with
    green = 1). Near clipped raw pixels (within about one CFA period, blended over another)
    the output is limited to ``S`` in every channel, so a fully clipped area is neutral
    ``(S, S, S)``. Away from clipping nothing changes: a red channel that the multipliers
    pushed above 1.0 without clipping in the raw data survives in EXR.

``reconstruct``
    Recovers clipped channels from the unclipped ones (in the spirit of darktable's
    "inpaint opposed"): where one channel clipped, its ratio to the mean of the other two is
    measured on nearby unclipped pixels (normalised convolution over a window of 4 CFA
    periods) and applied to those two, never going below the channel's clipped bound. Where
    two or three channels clipped there is no colour left to recover: the pixel becomes
    neutral at its brightest channel, so lamps keep their brightness (``max_c w_c`` and
    more) instead of being capped at ``S``.

``none``
    The network's output as is: clipped channels stay at their bounds (colour casts
    included). For measurements and for users who handle highlights downstream.

All functions take balanced camera RGB ``(3, H, W)`` float32 and a raw clip mask in the same
pixel grid; nothing is clamped except what a mode says.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

HIGHLIGHT_MODES = ("clip", "reconstruct", "none")
#: A raw pixel counts as clipped at or above this fraction of the white level (normalised
#: units, black = 0, white = 1): sensors saturate a little below the nominal white level.
CLIP_THRESHOLD = 0.99


def raw_clip_mask(cfa: np.ndarray | torch.Tensor, threshold: float = CLIP_THRESHOLD) -> torch.Tensor:
    """``(H, W)`` bool: raw pixels at or above ``threshold`` (unbalanced, white = 1)."""
    if isinstance(cfa, torch.Tensor):
        return cfa.reshape(cfa.shape[-2], cfa.shape[-1]) >= threshold
    a = np.asarray(cfa)
    return torch.from_numpy(a.reshape(a.shape[-2], a.shape[-1]) >= threshold)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of ``(..., H, W)`` float masks by a square of side ``2 radius + 1``."""
    if radius <= 0:
        return mask
    x = mask.reshape(-1, 1, *mask.shape[-2:])
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius).reshape(mask.shape)


def _blur(mask: torch.Tensor, radius: int) -> torch.Tensor:
    if radius <= 0:
        return mask
    x = mask.reshape(-1, 1, *mask.shape[-2:])
    k = 2 * radius + 1
    out = F.avg_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), k, stride=1)
    return out.reshape(mask.shape)


def clip_weight(clipped: torch.Tensor, period: int) -> torch.Tensor:
    """``(H, W)`` float in ``[0, 1]``: 1 within ``period`` px of a clipped raw pixel, falling
    to 0 over the next ``period + 2`` px (a smooth edge for the ``clip`` mode)."""
    r = period // 2 + 1
    m = _dilate(clipped.float(), period + r)
    return _blur(m, r).clamp_(0.0, 1.0)


def _channel_masks(clipped: torch.Tensor, layout: np.ndarray, radius: int) -> torch.Tensor:
    """``(3, H, W)`` bool: where each channel's value rests on clipped raw pixels of that
    colour (the clipped pixels of colour ``c``, dilated by ``radius``)."""
    h, w = clipped.shape
    p = layout.shape[0]
    tiled = torch.from_numpy(np.tile(np.where(layout == 3, 1, layout), (-(-h // p), -(-w // p)))[:h, :w])
    per = torch.stack([(clipped & (tiled == c)).float() for c in range(3)])
    return _dilate(per, radius) > 0


def apply_highlights(rgb: torch.Tensor, clipped: torch.Tensor, layout: np.ndarray,
                     multipliers: np.ndarray, mode: str) -> torch.Tensor:
    """Apply a highlight mode to a demosaicked image.

    Args:
        rgb: ``(3, H, W)`` float32 balanced camera RGB (the network's output), CPU.
        clipped: ``(H, W)`` bool raw clip mask in the same pixel grid (:func:`raw_clip_mask`).
        layout: ``(P, P)`` channel indices of the grid's top-left pixels.
        multipliers: ``(3,)`` the white balance applied before the network (G = 1).
        mode: One of :data:`HIGHLIGHT_MODES`.

    Returns:
        ``(3, H, W)`` float32 (``rgb`` itself when nothing is clipped or ``mode="none"``).
    """
    if mode not in HIGHLIGHT_MODES:
        raise ConfigError(f"highlights={mode!r} is not valid; choose one of {list(HIGHLIGHT_MODES)}")
    if mode == "none" or not bool(clipped.any()):
        return rgb
    period = int(np.asarray(layout).shape[0])
    mult = np.asarray(multipliers, dtype=np.float64)
    if mode == "clip":
        level = float(mult.min())
        weight = clip_weight(clipped, period)
        return rgb - weight[None] * torch.relu(rgb - level)
    return _reconstruct(rgb, clipped, np.asarray(layout), mult, period)


def _local_ratio(num: torch.Tensor, den: torch.Tensor, valid: torch.Tensor, radius: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised convolution: ``sum(num) / sum(den)`` over the ``valid`` pixels of a
    ``(2 radius + 1)^2`` window, and the fraction of valid pixels there."""
    v = valid.float()
    k = 2 * radius + 1
    stack = torch.stack([num * v, den * v, v])[:, None]
    sums = F.avg_pool2d(F.pad(stack, (radius,) * 4, mode="replicate"), k, stride=1)[:, 0]
    return sums[0] / sums[1].clamp_min(1e-6), sums[2]


def _reconstruct(rgb: torch.Tensor, clipped: torch.Tensor, layout: np.ndarray, mult: np.ndarray,
                 period: int) -> torch.Tensor:
    radius = max(1, period // 2)
    masks = _channel_masks(clipped, layout, radius)            # (3, H, W) channel unreliable
    bounds = torch.as_tensor(mult, dtype=rgb.dtype).view(3, 1, 1)
    out = torch.where(masks, torch.maximum(rgb, bounds), rgb)  # a clipped channel >= its bound
    n_clipped = masks.sum(dim=0)
    window = 4 * period
    for c in range(3):
        others = [k for k in range(3) if k != c]
        single = masks[c] & (n_clipped == 1)
        if not bool(single.any()):
            continue
        opposed = rgb[others].mean(dim=0)
        # the channel's ratio to the opposed channels, measured on nearby unclipped pixels
        ring = (_dilate(masks[c].float(), window) > 0) & (n_clipped == 0) & (opposed > 1e-3)
        ratio, support = _local_ratio(rgb[c], opposed, ring, window)
        est = opposed * ratio
        known = support > 0.02
        fill = torch.where(known, torch.maximum(out[c], est), out[others].amax(dim=0).clamp_min(out[c]))
        out[c] = torch.where(single, fill, out[c])
    # Two or three channels clipped: no colour is left to recover; neutral at the brightest.
    many = n_clipped >= 2
    if bool(many.any()):
        peak = out.amax(dim=0)
        out = torch.where(many[None], peak[None].expand_as(out), out)
    log.debug("highlights reconstruct: %d px with clipped channels", int(masks.any(dim=0).sum()))
    return out


__all__ = ["HIGHLIGHT_MODES", "CLIP_THRESHOLD", "apply_highlights", "clip_weight", "raw_clip_mask"]
