"""Clipped highlights: what to do where a raw channel reached the sensor's white level.

After white balance a raw channel ``c`` that clipped reads ``w_c`` (its multiplier) instead of
its true, larger value. A lamp that clips every channel therefore reads ``(w_R, 1, w_B)``,
about ``(2.1, 1, 1.5)`` for a Fujifilm body: magenta. The modes (``demosaic-infer
--highlights``, docs/CAMERA.md shows each on the same picture):

``clip`` (default)
    LibRaw's clip mode where the raw data clipped, and nothing elsewhere. Every channel is
    known exactly up to ``S = min_c w_c`` (the level where the first channel clips, 1.0 with
    green = 1). Clipped raw pixels are set to ``S`` in the balanced mosaic before the network
    (:func:`clip_mosaic`, so no magenta bound bleeds into the neighbours' interpolation), and
    near them (within about one CFA period, blended over another) the output is limited to
    ``S`` in every channel, so a fully clipped area is neutral ``(S, S, S)``. Away from
    clipping nothing changes: a red channel that the multipliers pushed above 1.0 without
    clipping in the raw data survives in EXR.

``reconstruct``
    Recovers clipped channels from the unclipped surroundings (in the spirit of darktable's
    "inpaint opposed"): the chroma (each channel over the sum) of unclipped pixels is spread
    into the clipped areas by a normalised convolution (about 12 CFA periods wide, computed
    at quarter resolution; neutral where no unclipped pixel is near), and each clipped
    channel becomes ``L * chroma_c``, with ``L`` the smallest brightness that respects every
    channel's value (exact where unclipped, a lower bound ``w_c`` where clipped). A channel
    counts as clipped near a clipped raw pixel of its colour where the network's value is
    within 10 % of the bound. Unclipped channels keep their values; a clipped one never drops
    below its bound, so a lamp keeps at least ``max_c w_c`` instead of being capped at ``S``.
    A clipped area takes the colour of what surrounds it (a lamp in its own glow: the glow's
    colour).

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

from demosaic.cfa import rgb_layout, tile_layout
from demosaic.inference.filters import box_mean
from demosaic.schema import check_choice

log = logging.getLogger(__name__)

HIGHLIGHT_MODES = ("clip", "reconstruct", "none")
#: A raw pixel counts as clipped at or above this fraction of the white level (normalised
#: units, black = 0, white = 1): sensors saturate a little below the nominal white level.
CLIP_THRESHOLD = 0.99


#: A file whose data peaks below the nominal white level but at least this fraction of it,
#: with a plateau of pixels at that peak, saturates there (LibRaw's ``adjust_maximum_thr``
#: idea, used here only to find clipped pixels, never to rescale the data).
PLATEAU_MIN = 0.75


def clip_threshold(cfa: np.ndarray, nominal: float = CLIP_THRESHOLD) -> float:
    """The level (normalised, white = 1) at or above which a raw pixel counts as clipped.

    ``nominal`` unless the data stops short of the white level with a plateau: sensors often
    saturate a little below the white level their files state, and clipped pixels then pile
    up at the data's maximum, all with the same data number. When the maximum ``m`` lies in
    ``[PLATEAU_MIN, nominal)`` and at least 16 pixels (and 1 in 10,000) hold exactly that value,
    the threshold is ``0.99 m``.
    """
    a = np.asarray(cfa)
    top = float(np.max(a))
    if not np.isfinite(top) or top >= nominal or top < PLATEAU_MIN:
        return nominal
    near = int(np.count_nonzero(a == a.dtype.type(top)))
    if near >= max(16, a.size // 10_000):
        log.info("raw data saturates at %.4f of the stated white level (%d px there); clip "
                 "threshold %.4f", top, near, 0.99 * top)
        return 0.99 * top
    return nominal


def raw_clip_mask(cfa: np.ndarray | torch.Tensor, threshold: float = CLIP_THRESHOLD) -> torch.Tensor:
    """``(H, W)`` bool: raw pixels at or above ``threshold`` (unbalanced, white = 1)."""
    if isinstance(cfa, torch.Tensor):
        return cfa.reshape(cfa.shape[-2], cfa.shape[-1]) >= threshold
    a = np.asarray(cfa)
    return torch.from_numpy(a.reshape(a.shape[-2], a.shape[-1]) >= threshold)


#: Noisy plateaus (:func:`clip_mask`). A pixel below the threshold joins a clipped area when,
#: among the pixels of its colour within this radius (9 x 9: about 45 green and 18 red/blue
#: X-Trans pixels) ...
PLATEAU_RADIUS = 4
#: ... at least this share is clipped (a saturated area with noise has half or more of them at
#: the white level; an unclipped area 2 % below white at ISO 3200 about a third) ...
PLATEAU_SHARE = 0.35
#: ... and they surround it: their mean offset from it is at most this fraction of the radius
#: (noise scatters them all round; at the edge of a clipped area, or of a smooth highlight in
#: a noise-free image, they lie on one side) ...
PLATEAU_CENTRED = 0.5
#: ... and the unclipped ones lie, on average, at most this far (white = 1) below the
#: threshold: the noise of a saturated area (about 0.7 sigma: 0.045 at ISO 12800 in the noise
#: model of :mod:`demosaic.sim.camera`), not an edge to a darker area ...
PLATEAU_MAX_DEPTH = 0.08
#: ... and at most this many times the file's own noise at white (:func:`noise_at_white`), so
#: a noise-free file keeps its near-white detail ...
PLATEAU_NOISE_DEPTH = 1.5
#: ... and the pixel itself lies within this many times that mean depth of the threshold
#: (about 3 sigma of the noise).
PLATEAU_SPAN = 5.0


def clip_mask(cfa: np.ndarray, layout: np.ndarray, threshold: float | None = None
              ) -> torch.Tensor:
    """``(H, W)`` bool: the raw pixels that saturated, noisy plateaus included.

    A pixel at or above ``threshold`` (default :func:`clip_threshold`) is clipped. When noise
    is added to a saturated area before the data is cut at the white level (read noise after
    the photosite fills, or a simulation that adds noise to clipped values), many of its
    pixels read below the threshold; left out of the mask they reach the network as
    unbalanced colour (a magenta, speckled lamp at high ISO). Such a pixel joins the mask
    when, among the pixels **of its colour** in its ``(2 PLATEAU_RADIUS + 1)^2`` window, at
    least :data:`PLATEAU_SHARE` are clipped, scattered all round it (:data:`PLATEAU_CENTRED`),
    the others sit on average at most :data:`PLATEAU_MAX_DEPTH` below the threshold and at
    most :data:`PLATEAU_NOISE_DEPTH` times the file's noise at white (noise, not an edge to a
    darker area), and the pixel lies within :data:`PLATEAU_SPAN` times that mean depth of the
    threshold. Files whose clipped areas read exactly at the white level (most cameras) get
    the plain threshold mask plus, at most, pixels within a few per cent of white inside a
    highlight's texture. Only pixels near a clipped one are examined.

    Args:
        cfa: ``(H, W)`` normalised raw mosaic (black 0, white 1), unbalanced.
        layout: ``(P, P)`` channel indices of its top-left pixels (3 = second green).
        threshold: Clip level; ``None`` = :func:`clip_threshold` of ``cfa``.

    Returns:
        ``(H, W)`` bool CPU tensor.
    """
    a = np.asarray(cfa)
    a = a.reshape(a.shape[-2], a.shape[-1])
    thr = clip_threshold(a) if threshold is None else float(threshold)
    sat = raw_clip_mask(a, thr)
    if not bool(sat.any()):
        return sat
    k = PLATEAU_RADIUS
    sigma = noise_at_white(a, np.asarray(layout).shape[0], thr)
    max_depth = PLATEAU_MAX_DEPTH
    if sigma is not None:
        max_depth = min(max_depth, PLATEAU_NOISE_DEPTH * sigma)
    ys, xs = _candidates(a, sat, thr - PLATEAU_SPAN * max_depth, k)
    if ys.size == 0:
        return sat
    colour = rgb_layout(layout).astype(np.int8)
    out = sat.clone()
    keep = _plateau_listed(a, colour, ys, xs, thr, max_depth)
    out[torch.from_numpy(ys[keep]), torch.from_numpy(xs[keep])] = True
    added = int(keep.sum())
    if added:
        log.debug("clip mask: %d px at or above %.4f, %d more on noisy plateaus", int(sat.sum()),
                  thr, added)
    return out


def _plateau_listed(a: np.ndarray, colour: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                    thr: float, max_depth: float, batch: int = 1 << 17) -> np.ndarray:
    """The plateau rule of :func:`clip_mask` on the candidates ``(ys, xs)``: ``(N,)`` bool.

    The candidates are taken by CFA phase: for each phase the offsets of the same-colour
    pixels in the window are fixed (about 45 of 81 for X-Trans green, 18 for red and blue), so
    only those are gathered, with no colour test per pixel; windows inside the frame are read
    by flat index, the few at its border with a bounds mask."""
    k = PLATEAU_RADIUS
    p = colour.shape[0]
    h, w = a.shape
    flat_a = a.reshape(-1)
    dy_all, dx_all = (d.ravel() for d in np.mgrid[-k:k + 1, -k:k + 1])
    phase = (ys % p) * p + (xs % p)
    keep = np.zeros(ys.size, dtype=bool)
    for ph in np.unique(phase):
        py, px = divmod(int(ph), p)
        same = colour[(py + dy_all) % p, (px + dx_all) % p] == colour[py, px]
        dy, dx = dy_all[same], dx_all[same]
        members = np.nonzero(phase == ph)[0]
        step = max(1, batch // dy.size)
        for s in range(0, members.size, step):
            sel = members[s:s + step]
            y, x = ys[sel], xs[sel]
            border = (y < k) | (y >= h - k) | (x < k) | (x >= w - k)
            if border.any():
                yy, xx = y[:, None] + dy, x[:, None] + dx
                inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
                v = a[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
            else:
                inside = None
                v = flat_a[(y * w + x)[:, None] + (dy * w + dx)]
            keep[sel] = _plateau_rule(v, inside, thr - a[y, x], dy, dx, thr, max_depth)
    return keep


def _plateau_rule(v: np.ndarray, inside: np.ndarray | None, gap: np.ndarray, dy: np.ndarray,
                  dx: np.ndarray, thr: float, max_depth: float) -> np.ndarray:
    """:func:`clip_mask`'s rule for ``N`` candidates from their same-colour window values
    ``v`` ``(N, n)`` at offsets ``(dy, dx)`` (``inside``: which lie in the frame; ``None``:
    all) and their own distance ``gap`` below the threshold: ``(N,)`` bool."""
    is_sat = v >= thr
    depth = np.maximum(thr - v, 0.0)  # clipped pixels add nothing
    if inside is not None:
        is_sat &= inside
        depth *= inside
    n_sat = np.count_nonzero(is_sat, axis=1)
    n_own = v.shape[1] if inside is None else np.maximum(np.count_nonzero(inside, axis=1), 1)
    share = n_sat / n_own
    mean_depth = depth.sum(1) / np.maximum(n_own - n_sat, 1)
    # the clipped pixels surround the candidate (an edge has them on one side)
    sat_f = is_sat.astype(np.float32)
    cy = sat_f @ dy.astype(np.float32) / np.maximum(n_sat, 1)
    cx = sat_f @ dx.astype(np.float32) / np.maximum(n_sat, 1)
    return ((share >= PLATEAU_SHARE) & (mean_depth <= max_depth)
            & (gap <= PLATEAU_SPAN * mean_depth)
            & (np.hypot(cy, cx) <= PLATEAU_CENTRED * PLATEAU_RADIUS))


def noise_at_white(cfa: np.ndarray, period: int, threshold: float = CLIP_THRESHOLD,
                   step: int | None = None, min_samples: int = 1000) -> float | None:
    """Standard deviation of the raw noise at the white level, estimated from the data.

    Each pixel is compared with the mean of the same-colour pixels one CFA period to its left
    and right (a second difference: flat and linear content cancel, noise remains with
    variance ``1.5 sigma^2``) over unclipped pixels between 0.3 and 0.9 of white on every
    ``step``-th row; the 10th percentile of the absolute values (``0.1257 sqrt(1.5) sigma``
    for Gaussian noise; a low percentile, so the smooth parts of a picture decide, not its
    texture) gives ``sigma`` at their mean level ``m``, and shot noise (variance proportional
    to the signal) scales it to white: ``sigma(1) = sigma(m) / sqrt(m)`` (an over-estimate
    where read noise dominates). Texture can only raise the estimate.

    Args:
        cfa: ``(H, W)`` normalised raw mosaic (black 0, white 1), unbalanced.
        period: CFA period (2 or 6).
        threshold: Clip level; pixels at or above it are left out.
        step: Row subsampling; ``None``: every ``H // 512``-th row (about 0.05 s on 24 MP).
        min_samples: Fewer usable pixels: ``None`` (unknown).

    Returns:
        ``sigma`` at white (white = 1), or ``None``.
    """
    a = np.asarray(cfa)
    a = a[::step or max(1, a.shape[0] // 512)]
    if a.shape[1] <= 2 * period:
        return None
    left, mid, right = a[:, :-2 * period], a[:, period:-period], a[:, 2 * period:]
    use = (mid >= 0.3) & (mid <= 0.9) & (left < threshold) & (right < threshold)
    n = int(np.count_nonzero(use))
    if n < min_samples:
        return None
    m = mid[use]
    e = m - 0.5 * (left[use] + right[use])
    sigma = float(np.quantile(np.abs(e), 0.1)) / 0.12566 / np.sqrt(1.5)
    return sigma / float(np.sqrt(max(float(m.mean()), 1e-3)))


def _candidates(a: np.ndarray, sat: torch.Tensor, low: float, radius: int,
                sparse_limit: int = 1 << 23) -> tuple[np.ndarray, np.ndarray]:
    """``(ys, xs)`` of the unclipped pixels at or above ``low`` within ``radius`` of a clipped
    one, row-major. Few clipped pixels: their neighbourhoods are listed directly (cost follows
    the clipped count); many (more than ``sparse_limit`` neighbourhood entries): the mask is
    dilated over the frame. Both give the same set."""
    h, w = a.shape
    sy, sx = (t.numpy() for t in torch.nonzero(sat, as_tuple=True))
    n = (2 * radius + 1) ** 2
    if sy.size * n <= sparse_limit:
        dy, dx = (d.ravel() for d in np.mgrid[-radius:radius + 1, -radius:radius + 1])
        yy, xx = (sy[:, None] + dy).ravel(), (sx[:, None] + dx).ravel()
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        flat = yy[ok].astype(np.int64) * w + xx[ok]
        flat = flat[(a.reshape(-1)[flat] >= low) & ~sat.numpy().reshape(-1)[flat]]
        flat = np.unique(flat)  # filtered first: usually few are left to sort
        return flat // w, flat % w
    rows = torch.nonzero(sat.any(dim=1))[:, 0]  # only the band of rows near clipped ones
    r0, r1 = max(0, int(rows[0]) - radius), min(h, int(rows[-1]) + radius + 1)
    band = sat[r0:r1]
    near = _dilate(band.float(), radius).bool().numpy()
    ys, xs = np.nonzero(near & ~band.numpy() & (a[r0:r1] >= low))
    return ys + r0, xs


def clip_mosaic(balanced: np.ndarray, clipped: torch.Tensor, multipliers: np.ndarray, *,
                copy: bool = True) -> np.ndarray:
    """The ``clip`` mode's input step: clipped raw pixels of a balanced mosaic set to
    ``S = min(multipliers)``. ``balanced``: ``(H, W)`` float32; ``copy=False`` writes into it."""
    out = np.array(balanced, dtype=np.float32, copy=True) if copy else balanced
    out[clipped.numpy()] = np.float32(np.min(multipliers))
    return out


def _any_within(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """1 where a 0/1 float ``x`` holds a 1 within ``radius`` steps along ``dim`` (< 0), from
    running sums: O(1) per pixel whatever the radius. The sums are integers below 2^24, exact
    in float32, so this equals a max filter bit for bit."""
    n = x.shape[dim]
    first = list(x.shape)
    first[dim] = 1
    c = torch.cat([x.new_zeros(first), torch.cumsum(x, dim=dim)], dim=dim)  # c[i] = sum x[:i]
    steps = torch.arange(n, device=x.device)
    hi = c.index_select(dim, (steps + radius + 1).clamp_(max=n))
    lo = c.index_select(dim, (steps - radius).clamp_(min=0))
    return (hi - lo > 0.5).to(x.dtype)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of ``(..., H, W)`` 0/1 float masks by a square of side
    ``2 radius + 1`` (separable: a row pass, then a column pass; the square's maximum)."""
    if radius <= 0:
        return mask
    return _any_within(_any_within(mask, radius, -1), radius, -2)


def _blur(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Box mean over ``(2 radius + 1)^2`` with replicated edges (separable)."""
    if radius <= 0:
        return mask
    return box_mean(mask.reshape(-1, *mask.shape[-2:]), radius).reshape(mask.shape)


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
    tiled = torch.from_numpy(tile_layout(rgb_layout(layout), h, w))
    per = torch.stack([(clipped & (tiled == c)).float() for c in range(3)])
    return _dilate(per, radius) > 0


def apply_highlights(rgb: torch.Tensor, clipped: torch.Tensor | None, layout: np.ndarray,
                     multipliers: np.ndarray, mode: str) -> torch.Tensor:
    """Apply a highlight mode to a demosaicked image.

    Args:
        rgb: ``(3, H, W)`` float32 balanced camera RGB (the network's output), CPU.
        clipped: ``(H, W)`` bool raw clip mask in the same pixel grid (:func:`clip_mask`);
            ``None`` with ``mode="none"``.
        layout: ``(P, P)`` channel indices of the grid's top-left pixels.
        multipliers: ``(3,)`` the white balance applied before the network (G = 1).
        mode: One of :data:`HIGHLIGHT_MODES`.

    Returns:
        ``(3, H, W)`` float32: ``rgb`` itself when nothing is clipped or ``mode="none"``, and
        ``rgb`` modified in place by ``clip``; a new tensor from ``reconstruct``.
    """
    check_choice(mode, HIGHLIGHT_MODES, "highlights")
    if mode == "none" or clipped is None or not bool(clipped.any()):
        return rgb
    period = int(np.asarray(layout).shape[0])
    mult = np.asarray(multipliers, dtype=np.float64)
    if mode == "clip":
        return clip_in_place(rgb, clipped, float(mult.min()), period)
    return _reconstruct(rgb, clipped, np.asarray(layout), mult, period)


def clip_in_place(rgb: torch.Tensor, clipped: torch.Tensor, level: float, period: int,
                  rows: int = 32) -> torch.Tensor:
    """The ``clip`` mode's output step, in place and in row chunks (bounded memory on a 40 MP
    frame): ``rgb -= clip_weight * relu(rgb - level)``. Chunks without a clipped raw pixel
    within the weight's reach are skipped; each chunk computes the weight on a halo wide
    enough to give exactly the whole-image result, and only on the columns the weight reaches.
    Small chunks stay in the caches and skip more rows (the highlight stage of a 24 MP frame:
    0.35 s with 256-row chunks, 0.14 s now; docs/lab/speed-work.md, "Whole process ...").

    Returns ``rgb`` (modified)."""
    h, w = rgb.shape[1], rgb.shape[2]
    r = period // 2 + 1
    halo = period + 2 * r + 1  # past it the weight is 0, and a window's edge does not reach in
    busy = clipped.any(dim=1)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        a, b = max(0, r0 - halo), min(h, r1 + halo)
        if not bool(busy[a:b].any()):
            continue
        # Columns too: only where the weight can be non-zero, computed with a halo around them
        # (a photograph's highlights are small; x - 0 * relu(x - level) = x for finite x).
        cols = torch.nonzero(clipped[a:b].any(dim=0)).flatten()
        c0, c1 = max(0, int(cols[0]) - halo), min(w, int(cols[-1]) + 1 + halo)
        ca, cb = max(0, c0 - halo), min(w, c1 + halo)
        weight = clip_weight(clipped[a:b, ca:cb], period)[r0 - a:r1 - a, c0 - ca:c1 - ca]
        chunk = rgb[:, r0:r1, c0:c1]
        chunk -= weight[None] * torch.relu(chunk - level)
    return rgb


def _reconstruct(rgb: torch.Tensor, clipped: torch.Tensor, layout: np.ndarray, mult: np.ndarray,
                 period: int) -> torch.Tensor:
    radius = max(1, period // 2)
    bounds = torch.as_tensor(mult, dtype=rgb.dtype).view(3, 1, 1)
    # A channel is clipped where a clipped raw pixel of its colour is near AND the network's
    # value is near that colour's bound (a dark pixel next to a clipped one is not clipped).
    masks = _channel_masks(clipped, layout, radius) & (rgb >= 0.9 * bounds)
    out = torch.where(masks, torch.maximum(rgb, bounds), rgb)  # a clipped channel >= its bound
    any_clipped = masks.any(dim=0)
    # Chroma (each channel over the sum) of the unclipped pixels, spread into the clipped areas
    # by normalised convolution at 1/4 resolution; no unclipped pixel near: neutral.
    h, w = rgb.shape[1:]
    f = 4
    total = rgb.sum(dim=0, keepdim=True)
    good = (~_dilate(any_clipped.float(), period) .bool() & (total[0] > 1e-3)).float()[None]
    chroma = torch.where(total > 1e-3, rgb / total.clamp_min(1e-3), torch.full_like(rgb, 1 / 3))
    stack = torch.cat([chroma * good, good])
    small = F.avg_pool2d(F.pad(stack, (0, -w % f, 0, -h % f), mode="replicate")[None], f)[0]
    spread = box_mean(small, 6 * period // f + 1)
    prior = 1e-3
    est = (spread[:3] + prior / 3) / (spread[3:] + prior)
    est = F.interpolate(est[None], scale_factor=f, mode="bilinear", align_corners=False)[0][:, :h, :w]
    est = est / est.sum(dim=0, keepdim=True)
    # Brightness: the smallest that respects every channel (exact where unclipped, a lower
    # bound where clipped); only the clipped channels take it.
    level = (out / est.clamp_min(1e-3)).amax(dim=0, keepdim=True)
    filled = torch.where(masks, torch.maximum(out, level * est), out)
    out = torch.where(any_clipped[None], filled, out)
    log.debug("highlights reconstruct: %d px with clipped channels", int(any_clipped.sum()))
    return out


__all__ = ["CLIP_THRESHOLD", "HIGHLIGHT_MODES", "PLATEAU_CENTRED", "PLATEAU_MAX_DEPTH",
           "PLATEAU_MIN", "PLATEAU_NOISE_DEPTH", "PLATEAU_RADIUS", "PLATEAU_SHARE",
           "PLATEAU_SPAN", "apply_highlights", "clip_in_place", "clip_mask", "clip_mosaic",
           "clip_threshold", "clip_weight", "noise_at_white", "raw_clip_mask"]
