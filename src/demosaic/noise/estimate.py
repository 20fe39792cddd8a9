"""Estimating a raw file's noise profile from its own data: :func:`estimate_noise`.

The model is the DNG ``NoiseProfile``'s (:mod:`demosaic.noise.profile`): a pixel of colour
``c`` and mean ``x`` (normalised raw units, black 0, white 1, **before** white balance) has
variance ``S_c x + O_c``. It is measured where the picture is flat:

1. **Residuals.** ``r = x_p + sum_k w_k x_{p + d_k}`` over the nearest pixels of ``p``'s
   colour, with weights that cancel every polynomial of degree 2 (flat areas, gradients,
   curvature) and let the least texture through (:func:`_filter_at`); ``r^2 / g`` (``g = 1 +
   sum w_k^2``, the filter's noise gain) estimates the pixel's variance where it is smooth.
2. **Tiles** of 12 px (X-Trans) or 8 px (Bayer), rows of them spread over the frame (at
   most ``max_pixels``): per colour the mean and the mean ``r^2 / g`` over the residuals
   whose filter lies inside the tile, so the noise of two tiles is independent.
3. **Flat tiles, no selection bias.** Texture only adds variance. A tile is measured when
   its 4 neighbours look flat (variance relative to the current model, of its colour and of
   all colours, among the lowest ``_KEEP`` or as low as most pure noise's): the choice
   never sees the noise it measures. Per intensity bin the median of the chosen tiles'
   variances over that of a flat tile (:func:`_noise_law`) estimates the variance; three
   passes refine the model the choice is judged by.
4. **Clipping.** Tiles with a pixel at the white level (``white``, or a plateau at the
   maximum) or a black floor (a plateau at the minimum), or a mean within ``_CLIP_SIGMAS``
   noise deviations of them, are not measured.
5. **Fit.** A weighted line ``var = S m + O`` through the bins (one-sided Huber weights
   against textured bins; ``S, O >= 0``; ``O = 0`` unless the bins show it), pooled over
   the colours; a colour whose own line fits clearly better (its noise differs) keeps it.

Accuracy on simulated captures (``tests/noise/test_estimate.py``): the standard deviation
at mid-grey within a few percent on flat and on busy 512 px scenes, ISO 100 to 12800.
Photographs with little flat area give an upper bound (texture counts as noise). Images
under ~128 px give a rough estimate (within ~30 % at 64 px); constant, black, all-clipped
images and those of fewer than ~4 tiles a zero profile (logged at debug). It never raises
for odd data. A 24-megapixel mosaic takes about 0.2 s.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from demosaic.noise.profile import NoiseProfile

log = logging.getLogger(__name__)

#: Tile side per CFA period; nugget (noise weight) of the filter design (:func:`_filter_at`).
_TILE, _NUGGET = {6: 12, 2: 8}, 0.1
#: Fraction of groups (the flattest) kept in every pass, the fewest kept, passes, and the
#: quantile of pure noise's flatness below which a group always counts as flat.
_KEEP, _MIN_KEEP, _ITERATIONS, _NULL_Q = 0.15, 30, 3, 0.75
#: Huber threshold (standard deviations above the fit), and the margin (noise deviations)
#: a measured tile's mean keeps from the clipping levels.
_HUBER, _CLIP_SIGMAS = 2.5, 4.0
#: Tiles per intensity bin (roughly), and the bounds on the number of bins per colour.
_PER_BIN, _BINS = 60, (3, 24)
#: Misfit (in units of over-dispersion) an offset ``O > 0`` must save (3 standard
#: deviations), and a colour's own fit to replace the pooled one (Akaike would ask 4; more
#: guards against a few noisy or textured bins extrapolated; twice the variance saves 100s).
_OFFSET_PRICE, _OWN_FIT_PRICE = 9.0, 25.0
#: Fewer groups than this: every tile is used without the flatness test; fewer bins: the
#: colour takes the pooled fit; fewer tiles: no bins.
_MIN_GROUPS, _MIN_BINS, _MIN_TILES = 40, 2, 4
#: Draws of the simulated law of a flat tile's variance (its median to ~0.3 %).
_DRAWS = 40_000
#: Default number of pixels sampled (24 MP frames use about a sixth of theirs).
MAX_PIXELS = 4_000_000


@dataclass(frozen=True)
class _Filter:
    """The residual filter of period position ``(i, j)``: ``offsets`` ``(K, 2)`` ``(dy, dx)``
    of its neighbours, their ``weights`` ``(K,)`` (the centre's is 1), noise ``gain``."""

    i: int
    j: int
    colour: int
    offsets: np.ndarray
    weights: np.ndarray
    gain: float


def _neighbours(layout: np.ndarray, i: int, j: int, r2: int) -> np.ndarray:
    """``(K, 2)`` offsets of the pixels of ``(i, j)``'s colour with ``0 < dy^2 + dx^2 <= r2``."""
    p, r = layout.shape[0], math.isqrt(r2)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    ok = ((dy * dy + dx * dx) <= r2) & ((dy != 0) | (dx != 0))
    ok &= layout[(i + dy) % p, (j + dx) % p] == layout[i, j]
    return np.stack([dy[ok], dx[ok]], 1).astype(np.int64)


def _monomials(d: np.ndarray) -> np.ndarray:
    """``(6, K)`` monomials of degree <= 2 of offsets ``d`` ``(K, 2)``."""
    dy, dx = d[:, 0], d[:, 1]
    return np.stack([np.ones_like(dy), dy, dx, dy * dy, dy * dx, dx * dx])


def _filter_at(layout: np.ndarray, i: int, j: int) -> _Filter:
    """The residual filter at period position ``(i, j)`` (module docstring, step 1).

    Its neighbours: the same-colour pixels within the smallest radius whose pixels can
    cancel every polynomial of degree 2. Its weights ``w`` (centre 1) minimise
    ``w^T (Phi + eta I) w`` under those constraints, ``Phi_kl = |x_k - x_l|^3``: universal
    kriging of the centre with the polyharmonic generalised covariance ``r^3`` plus a
    nugget ``eta`` for the noise, i.e. the least texture leaking into the residual.
    """
    p = layout.shape[0]
    for r2 in range(1, 2 * p * p + 1):  # (+-p, 0), (0, +-p), (+-p, +-p) always suffice
        d = _neighbours(layout, i, j, r2)
        if len(d) and np.linalg.matrix_rank(_monomials(d.astype(np.float64))) == 6:
            break
    pts = np.vstack([np.zeros((1, 2)), d.astype(np.float64)])
    n = len(pts)
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    cons = np.vstack([_monomials(pts), np.eye(n)[:1]])  # 6 monomials cancelled; centre = 1
    kkt = np.block([[2.0 * (dist ** 3 + _NUGGET * np.eye(n)), cons.T], [cons, np.zeros((7, 7))]])
    w = np.linalg.lstsq(kkt, np.eye(n + 7)[-1], rcond=None)[0][:n]
    return _Filter(i, j, int(layout[i, j]), d, w[1:], float((w ** 2).sum()))


@lru_cache(maxsize=16)
def _filters(layout_key: bytes, period: int) -> tuple[_Filter, ...]:
    """The filters of every position of a ``(P, P)`` int64 layout (given as bytes)."""
    layout = np.frombuffer(layout_key, dtype=np.int64).reshape(period, period)
    return tuple(_filter_at(layout, i, j) for i in range(period) for j in range(period))


def _tile_grid(cfa: np.ndarray, tile: int, max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(tiles (R, C, T, T) float32, centre (R,) bool)``: the ``T x T`` tiles at multiples
    of ``T`` (all with the mosaic's layout) of ``R`` tile rows, all of them or, beyond
    ``max_pixels``, evenly spread centre rows (``centre``) with the rows above and below."""
    h, w = cfa.shape
    nty, ntx = h // tile, w // tile
    row_px = ntx * tile * tile
    if nty * row_px <= max_pixels or nty < 3 or ntx < 3:
        rows = np.arange(nty)
        centre = (rows > 0) & (rows < nty - 1) & (ntx >= 3)
    else:
        n_c = int(np.clip(max_pixels // (3 * row_px), 1, nty // 3))
        c_rows = np.unique(np.linspace(1, nty - 2, n_c).round().astype(np.int64))
        rows = np.unique(np.concatenate([c_rows - 1, c_rows, c_rows + 1]))
        centre = np.isin(rows, c_rows)
    view = cfa[: nty * tile, : ntx * tile].reshape(nty, tile, ntx, tile)
    return np.ascontiguousarray(view[rows].transpose(0, 2, 1, 3), dtype=np.float32), centre


@dataclass
class _TileStats:
    """Per colour and tile (``(3, ...)``): mean, mean ``r^2 / g``, residuals, clipping."""

    mean: np.ndarray
    var: np.ndarray
    count: np.ndarray
    clipped: np.ndarray


def _tile_stats(tiles: np.ndarray, filters: tuple[_Filter, ...], period: int,
                lo: float, hi: float) -> _TileStats:
    """Statistics of ``tiles`` ``(..., T, T)`` (layout of ``filters``; pixels ``<= lo`` or
    ``>= hi`` clip)."""
    shape, t = tiles.shape[:-2], tiles.shape[-1]
    tiles = tiles.reshape(-1, t, t)
    m, k = tiles.shape[0], t // period
    # planes[i, j, tile, u, v] = tiles[tile, i + P u, j + P v]
    planes = np.ascontiguousarray(tiles.reshape(m, k, period, k, period).transpose(2, 4, 0, 1, 3))
    sums = np.zeros((2, 3, m), np.float64)  # signal sum, r^2/g sum
    counts = np.zeros((2, 3), np.float64)  # pixels, residuals (the same for every tile)
    clipped = np.zeros((3, m), bool)
    for f in filters:
        q = planes[f.i, f.j]
        sums[0, f.colour] += q.sum(axis=(1, 2), dtype=np.float64)
        counts[0, f.colour] += k * k
        clipped[f.colour] |= (q.max(axis=(1, 2)) >= hi) | (q.min(axis=(1, 2)) <= lo)
        res = _residual(planes, f, period, k)
        if res is not None:
            sums[1, f.colour] += np.einsum("tuv,tuv->t", res, res, dtype=np.float64) / f.gain
            counts[1, f.colour] += res.shape[1] * res.shape[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean, var = sums[0] / counts[0][:, None], sums[1] / counts[1][:, None]
    count = np.broadcast_to(counts[1][:, None], (3, m))
    return _TileStats(*(a.reshape(3, *shape) for a in (mean, var, count, clipped)))


def _residual(planes: np.ndarray, f: _Filter, period: int, k: int) -> np.ndarray | None:
    """``(m, ku, kv)`` residuals of filter ``f`` at the cells of every tile whose whole
    filter lies inside the tile (``None`` if there are none)."""
    ii, a = np.divmod(f.i + f.offsets[:, 0], period)[::-1]
    jj, b = np.divmod(f.j + f.offsets[:, 1], period)[::-1]
    u0, u1 = max(0, -int(a.min())), k - max(0, int(a.max()))
    v0, v1 = max(0, -int(b.min())), k - max(0, int(b.max()))
    if u1 <= u0 or v1 <= v0:
        return None
    res = planes[f.i, f.j, :, u0:u1, v0:v1].astype(np.float32, copy=True)
    for n in range(len(f.weights)):
        au, bv = int(a[n]), int(b[n])
        res += np.float32(f.weights[n]) * planes[ii[n], jj[n], :, u0 + au:u1 + au, v0 + bv:v1 + bv]
    return res


@lru_cache(maxsize=16)
def _noise_law(layout_key: bytes, period: int, tile: int) -> tuple[tuple[float, ...], ...]:
    """``(dof, median)`` per colour of a tile's mean ``r^2 / g`` for white noise of
    variance 1: a weighted sum ``sum_i l_i chi2_1`` (``l`` the eigenvalues of ``M = mean_r
    f_r f_r^T / g_r``), so ``dof = 1 / sum l^2`` (Satterthwaite) and its median is drawn by
    a seeded simulation. ``(0, 1)`` for a colour without residuals."""
    dof, med = [], []
    for c in range(3):
        rows = []
        for f in (f for f in _filters(layout_key, period) if f.colour == c):
            for y in range(f.i, tile, period):
                for x in range(f.j, tile, period):
                    yy, xx = y + f.offsets[:, 0], x + f.offsets[:, 1]
                    if yy.min() < 0 or xx.min() < 0 or yy.max() >= tile or xx.max() >= tile:
                        continue
                    row = np.zeros((tile, tile))
                    row[y, x] = 1.0
                    np.add.at(row, (yy, xx), f.weights)
                    rows.append(row.ravel() / math.sqrt(f.gain))
        if not rows:
            dof.append(0.0)
            med.append(1.0)
            continue
        fr = np.stack(rows) / math.sqrt(len(rows))
        lam = np.clip(np.linalg.eigvalsh(fr @ fr.T), 0.0, None)
        normal = np.random.default_rng(0).standard_normal((_DRAWS, len(lam)), dtype=np.float32)
        dof.append(float(1.0 / np.sum(lam ** 2)))
        med.append(float(np.median(np.square(normal) @ lam.astype(np.float32))))
    return tuple(dof), tuple(med)


@dataclass
class _Groups:
    """Centre tiles and their 4 neighbours: per colour ``(3, n)`` mean, variance and
    clipping of the centre; ``(3, 4, n)`` mean and variance of the neighbours (up, down,
    left, right) and whether they clip; ``(3,)`` residuals per tile."""

    mean: np.ndarray
    var: np.ndarray
    clipped: np.ndarray
    n_mean: np.ndarray
    n_var: np.ndarray
    n_clipped: np.ndarray
    count: np.ndarray


def _groups(stats: _TileStats, centre: np.ndarray) -> _Groups:
    """The centre tiles (rows ``centre``, columns 1..C-2) with their 4 neighbours."""
    rows = np.flatnonzero(centre)

    def take(a: np.ndarray, dr: int, dc: int) -> np.ndarray:
        return a[:, rows + dr, 1 + dc: a.shape[2] - 1 + dc].reshape(3, -1)

    near = ((-1, 0), (1, 0), (0, -1), (0, 1))
    return _Groups(take(stats.mean, 0, 0), take(stats.var, 0, 0), take(stats.clipped, 0, 0),
                   np.stack([take(stats.mean, *d) for d in near], 1),
                   np.stack([take(stats.var, *d) for d in near], 1),
                   np.stack([take(stats.clipped, *d) for d in near], 1),
                   stats.count[:, 0, 0].copy())


def _lone_tiles(stats: _TileStats) -> _Groups:
    """Every tile as a centre whose (absent) neighbours all look flat: small images."""
    mean, var, clip = (a.reshape(3, -1) for a in (stats.mean, stats.var, stats.clipped))
    n = mean.shape[1]
    return _Groups(mean, var, clip, np.zeros((3, 1, n)), np.zeros((3, 1, n)),
                   np.zeros((3, 1, n), bool), stats.count.reshape(3, -1)[:, 0].copy())


def _usable(g: _Groups, colour: int, model: np.ndarray | None, lo: float, hi: float
            ) -> np.ndarray:
    """``(n,)`` centres of ``colour`` to measure: finite, unclipped, with a mean
    ``_CLIP_SIGMAS`` noise deviations (the model's, else the median tile's) inside the
    clipping levels (flat tiles of that mean never clip: no truncated draws)."""
    m, v = g.mean[colour], g.var[colour]
    ok = np.isfinite(m) & np.isfinite(v) & ~g.clipped[colour]
    if model is None:
        sd = math.sqrt(float(np.median(v[ok]))) if ok.any() else 0.0
    else:
        sd = np.sqrt(np.maximum(model[0, colour] * np.maximum(m, 0) + model[1, colour], 0))
    return ok & (m + _CLIP_SIGMAS * sd < hi) & (m - _CLIP_SIGMAS * sd > lo)


def _flatness(g: _Groups, model: np.ndarray | None) -> np.ndarray:
    """``(3, n)`` flatness of each group per colour (lower = flatter): the largest over the
    neighbours of their variance relative to the model's (else the colour's median), of
    the colour or pooled over unclipped colours, whichever is larger; inf where the colour
    of a neighbour clips."""
    if model is None:
        ref = np.array([np.median(v[np.isfinite(v)]) if np.isfinite(v).any() else 1.0
                        for v in g.n_var.reshape(3, -1)])[:, None, None]
    else:
        ref = model[0][:, None, None] * np.maximum(g.n_mean, 0) + model[1][:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = g.n_var / np.maximum(ref, 1e-30)
        valid = np.isfinite(z) & ~g.n_clipped
        w = np.where(valid, g.count[:, None, None], 0.0)
        pooled = (w * np.where(valid, z, 0.0)).sum(0) / w.sum(0)
        z = np.where(valid, np.maximum(z, pooled[None]), np.inf)
    return np.where(np.isfinite(z), z, np.inf).max(axis=1)


@lru_cache(maxsize=16)
def _null_quantile(dof: tuple[float, ...], count: tuple[float, ...]) -> tuple[float, ...]:
    """Per colour, the ``_NULL_Q`` quantile of the flatness (:func:`_flatness`) of groups of
    pure noise under the right model, each tile's variance drawn as ``chi2(dof) / dof``."""
    nu = np.maximum(np.asarray(dof), 0.5)[:, None, None]
    z = np.random.default_rng(0).chisquare(nu, size=(3, 4, 4000)) / nu
    w = np.asarray(count, dtype=np.float64)[:, None, None]
    pooled = (w * z).sum(0) / max(w.sum(), 1e-9)
    return tuple(float(v) for v in np.quantile(np.maximum(z, pooled[None]).max(1), _NULL_Q, axis=1))


@dataclass
class _Bins:
    """Per intensity bin of a colour (``(n_bins,)``): mean, variance, weight (its dof)."""

    mean: np.ndarray
    var: np.ndarray
    weight: np.ndarray

    @classmethod
    def concat(cls, parts: list[_Bins]) -> _Bins:
        return cls(*(np.concatenate([getattr(p, f) for p in parts] or [np.zeros(0)])
                     for f in ("mean", "var", "weight")))


def _bins(g: _Groups, colour: int, keep: np.ndarray, dof: float, corr: float) -> _Bins:
    """Per intensity bin (quantiles) of the kept centres of ``colour``: their median
    variance over ``corr`` (a flat tile's median variance over its mean)."""
    m, v = g.mean[colour][keep], g.var[colour][keep]
    out = []
    if len(m) >= _MIN_TILES:
        nbins = int(np.clip(len(m) // _PER_BIN, min(_BINS[0], len(m) // 3), _BINS[1]))
        edges = np.quantile(m, np.linspace(0.0, 1.0, nbins + 1))
        which = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, nbins - 1)
        for b in range(nbins):
            inb = which == b
            if inb.sum() >= min(3, len(m)):  # 0.64: the efficiency of a median
                out.append((m[inb].mean(), np.median(v[inb]) / corr, inb.sum() * dof * 0.64))
    cols = zip(*out) if out else ((), (), ())
    return _Bins(*(np.asarray(x, np.float64).reshape(-1) for x in cols))


def _fit_line(bins: _Bins) -> tuple[float, float, np.ndarray]:
    """Robust weighted fit ``(S, O, bin weights)`` of ``var = S mean + O``, ``S, O >= 0``;
    ``O = 0`` unless it lowers the misfit by ``_OFFSET_PRICE`` (times the over-dispersion):
    a read noise the bins cannot tell from shot noise is not extrapolated."""
    s, o, w = _irls(bins, free_offset=True)
    if o > 0:
        s1, _, w1 = _irls(bins, free_offset=False)
        full = _chi2(bins, w, s, o)
        phi = max(1.0, full / max(len(bins.mean) - 2, 1))  # over-dispersion
        if _chi2(bins, w, s1, 0.0) <= full + _OFFSET_PRICE * phi:
            return s1, 0.0, w1
    return s, o, w


def _irls(bins: _Bins, free_offset: bool) -> tuple[float, float, np.ndarray]:
    """Iteratively reweighted least squares: a bin's ``sd = model sqrt(2 / weight)``,
    one-sided Huber weights above the line (texture only raises a bin)."""
    m, v, n = bins.mean, bins.var, bins.weight
    model = np.maximum(v, 1e-30)
    s, o, w = 0.0, 0.0, np.zeros_like(m)
    for _ in range(8):
        sd = model * np.sqrt(2.0 / np.maximum(n, 1.0))
        z = (v - model) / sd
        w = np.where(z > _HUBER, _HUBER / np.maximum(z, _HUBER), 1.0) / sd ** 2
        if free_offset:
            s, o = _wls_nonneg(m, v, w)
        else:
            s, o = max(float((w * m * v).sum() / max((w * m * m).sum(), 1e-300)), 0.0), 0.0
        model = np.maximum(s * m + o, 1e-30)
    return s, o, w


def _chi2(bins: _Bins, w: np.ndarray, s: float, o: float) -> float:
    """Weighted squared misfit of the line ``(s, o)`` to ``bins``."""
    return float((w * (bins.var - (s * bins.mean + o)) ** 2).sum())


def _wls_nonneg(m: np.ndarray, v: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted least squares ``v ~ S m + O`` under ``S, O >= 0``."""
    sw, sm, sv = w.sum(), (w * m).sum(), (w * v).sum()
    smm, smv = (w * m * m).sum(), (w * m * v).sum()
    det = sw * smm - sm * sm
    if det > 1e-9 * sw * smm:
        s, o = (sw * smv - sm * sv) / det, (smm * sv - sm * smv) / det
        if s >= 0 and o >= 0:
            return float(s), float(o)
    s_only = max(smv / smm, 0.0) if smm > 0 else 0.0
    o_only = max(sv / sw, 0.0) if sw > 0 else 0.0
    better_s = (w * (v - s_only * m) ** 2).sum() <= (w * (v - o_only) ** 2).sum()
    return (float(s_only), 0.0) if better_s else (0.0, float(o_only))


def _clip_levels(cfa: np.ndarray, white: float) -> tuple[float, float]:
    """``(lo, hi)``: values at or beyond count as clipped (a plateau at the minimum = a
    black floor; the white level, or a plateau at the maximum below it)."""
    sample = cfa[:: max(1, cfa.shape[0] // 512), :: max(1, cfa.shape[1] // 512)]
    vmin, vmax = float(sample.min()), float(sample.max())
    tol = 1e-6 * max(abs(white), 1.0)
    lo = vmin + tol if np.mean(sample <= vmin + tol) > 1e-3 else -np.inf
    hi = min(white, vmax) - tol if np.mean(sample >= vmax - tol) > 1e-3 else white - tol
    return lo, hi


def estimate_noise(cfa: np.ndarray, layout: np.ndarray, *, white: float = 1.0,
                   max_pixels: int = MAX_PIXELS) -> NoiseProfile:
    """Estimate the noise profile of a raw mosaic from its flat areas (module docstring).

    Args:
        cfa: ``(H, W)`` float mosaic in normalised raw units (black 0, white 1), **not**
            white-balanced (:attr:`demosaic.io.raw.RawImage.cfa`), any phase. NaN and
            infinite values count as clipped.
        layout: ``(P, P)`` channel indices (0 R, 1 G, 2 B; LibRaw's 3 = G) of ``cfa``'s
            top-left pixels: X-Trans 6x6 or Bayer 2x2, any phase.
        white: The clipping level in the same units (pixels at it are not measured).
        max_pixels: Pixels sampled at most (rows of tiles spread over the frame).

    Returns:
        :class:`NoiseProfile` (``source="estimated"``): ``S_c`` (variance per unit signal),
        ``O_c`` (variance at black), all ``>= 0``; zero without a measurable area.
    """
    arr = np.asarray(cfa, dtype=np.float32)
    lay = np.asarray(layout, dtype=np.int64)
    lay = np.where(lay == 3, 1, lay)
    if (arr.ndim != 2 or lay.ndim != 2 or lay.shape[0] != lay.shape[1] or arr.size == 0
            or not np.isin(lay, (0, 1, 2)).all()):
        log.debug("estimate_noise: mosaic %s / layout %s unusable; zero profile",
                  arr.shape, lay.shape)
        return NoiseProfile.uniform(0.0, 0.0, "estimated")
    period = lay.shape[0]
    tile = _TILE.get(period, period * -(-12 // period))
    key = np.ascontiguousarray(lay).tobytes()
    arr = np.where(np.isfinite(arr), arr, np.float32(white))
    lo, hi = _clip_levels(arr, float(white))
    tiles, centre = _tile_grid(arr, tile, int(max_pixels))
    if tiles.size == 0:
        log.debug("estimate_noise: %s mosaic smaller than a %d px tile; zero profile",
                  arr.shape, tile)
        return NoiseProfile.uniform(0.0, 0.0, "estimated")
    stats = _tile_stats(tiles, _filters(key, period), period, lo, hi)
    groups = _groups(stats, centre)
    if groups.mean.shape[1] < _MIN_GROUPS:
        log.debug("estimate_noise: %s mosaic gives %d tile groups; using every tile without "
                  "the flatness test (a rough estimate)", arr.shape, groups.mean.shape[1])
        groups = _lone_tiles(stats)
    return _fit_groups(groups, _noise_law(key, period, tile), lo, hi)[0]


def _fit_groups(groups: _Groups, law: tuple[tuple[float, ...], ...], lo: float, hi: float
                ) -> tuple[NoiseProfile, list[_Bins]]:
    """The profile (and last bins) after ``_ITERATIONS`` passes. A group counts for colour
    ``c`` when its centre is :func:`_usable` and its flatness is among the lowest ``_KEEP``
    (``_MIN_KEEP`` at least) or, given a model, below pure noise's ``_NULL_Q`` quantile."""
    model = None
    dof, corr = law
    null = _null_quantile(dof, tuple(float(v) for v in groups.count))
    for _ in range(_ITERATIONS):
        z = _flatness(groups, model)
        bins = []
        for c in range(3):
            ok = np.isfinite(z[c]) & _usable(groups, c, model, lo, hi)
            q = max(_KEEP, min(1.0, _MIN_KEEP / max(int(ok.sum()), 1)))
            cut = np.quantile(z[c][ok], q) if ok.any() else -np.inf
            if model is not None:
                cut = max(cut, null[c])
            bins.append(_bins(groups, c, ok & (z[c] <= cut), dof[c], corr[c]))
        prof = _profile(bins)
        model = np.array([prof.scale, prof.offset])
    return prof, bins


def _profile(bins: list[_Bins]) -> NoiseProfile:
    """One fit of the colours pooled (one sensor, one gain: the usual case before white
    balance), left by colours one at a time, the worst first, while their own fit lowers
    their misfit by more than ``_OWN_FIT_PRICE`` times the own fits' over-dispersion."""
    if not any(len(b.mean) for b in bins):
        log.debug("estimate_noise: no flat area found (constant, clipped or tiny image); "
                  "zero profile")
        return NoiseProfile.uniform(0.0, 0.0, "estimated")
    own = {c: _fit_line(b) for c, b in enumerate(bins) if len(b.mean) >= _MIN_BINS}
    misfit = {c: _chi2(bins[c], f[2], f[0], f[1]) for c, f in own.items()}
    phi = max(1.0, sum(misfit.values()) / max(sum(len(bins[c].mean) - 2 for c in own), 1))
    pool = [c for c in range(3) if len(bins[c].mean)]
    while True:
        ps, po, _ = _fit_line(_Bins.concat([bins[c] for c in pool]))
        gain = {c: _chi2(bins[c], own[c][2], ps, po) - misfit[c] for c in pool if c in own}
        worst = max(gain, key=lambda c: gain[c], default=None)
        if worst is None or len(pool) == 1 or gain[worst] <= _OWN_FIT_PRICE * phi:
            break
        pool.remove(worst)
    for c in range(3):
        if c not in own:
            log.debug("estimate_noise: colour %s has %d bins; using the pooled fit", "RGB"[c],
                      len(bins[c].mean))
    fits = [(ps, po) if c in pool or c not in own else own[c][:2] for c in range(3)]
    scale, offset = (tuple(float(np.nan_to_num(f[k], posinf=0.0)) for f in fits) for k in (0, 1))
    return NoiseProfile(scale, offset, "estimated")  # type: ignore[arg-type]
