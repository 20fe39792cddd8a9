"""The pattern fields of torture v2 (:mod:`.torture`): thirteen procedural scalar fields
that provoke demosaicking failures, numbered as in the research log.

Each renderer takes a seeded ``numpy.random.Generator`` and a side ``size`` in px and returns
a ``(size, size)`` float32 field ``t`` in ``[0, 1]``, point-sampled at pixel centres (no
CFA alignment: the dataset mosaics the coloured field afterwards). :data:`RENDERERS` is
indexed by type id, :data:`TYPE_NAMES` names them; the table of what each draws is in
:mod:`.torture`'s docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

TYPE_NAMES: tuple[str, ...] = (
    "stripes", "checkers", "circles", "zone_plate", "edges", "thin_lines", "siemens_star",
    "dots", "crosshatch", "rectangles", "pixel_noise", "julia", "perlin_fbm",
)
NUM_TYPES = len(TYPE_NAMES)

Field = np.ndarray  # (H, W) float32 in [0, 1]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(y, x)``, each ``(size, size)`` float32."""
    c = np.arange(size, dtype=np.float32) + np.float32(0.5)
    return np.broadcast_to(c[:, None], (size, size)), np.broadcast_to(c[None, :], (size, size))


def _rotated(rng: np.random.Generator, size: int, axis_prob: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates ``(u, v)`` rotated by a random angle (axis-aligned with ``axis_prob``),
    shifted by a random offset."""
    y, x = _grid(size)
    theta = 0.0 if rng.random() < axis_prob else rng.uniform(0, np.pi)
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    off = rng.uniform(0, 64, size=2).astype(np.float32)
    return x * c + y * s + off[0], -x * s + y * c + off[1]


def _profile(rng: np.random.Generator, phase: np.ndarray) -> Field:
    """Sine or square wave (50 % each) of ``phase`` (in cycles) mapped to ``[0, 1]``."""
    wave = 0.5 + 0.5 * np.cos(2 * np.pi * phase)
    if rng.random() < 0.5:
        wave = (wave >= 0.5).astype(np.float32)
    return wave.astype(np.float32)


def _stripes(rng: np.random.Generator, size: int) -> Field:
    u, _ = _rotated(rng, size, axis_prob=0.25)
    freq = np.exp(rng.uniform(np.log(0.02), np.log(0.5)))
    return _profile(rng, u * np.float32(freq))


def _checkers(rng: np.random.Generator, size: int) -> Field:
    u, v = _rotated(rng, size, axis_prob=0.5)
    cell = np.float32(np.exp(rng.uniform(0.0, np.log(16.0))))
    return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)


def _centre(rng: np.random.Generator, size: int, spread: float = 1.0) -> tuple[float, float]:
    lo, hi = size * (0.5 - spread / 2), size * (0.5 + spread / 2)
    return rng.uniform(lo, hi), rng.uniform(lo, hi)


def _circles(rng: np.random.Generator, size: int) -> Field:
    y, x = _grid(size)
    cy, cx = _centre(rng, size, 1.5)
    period = np.float32(np.exp(rng.uniform(np.log(2.0), np.log(24.0))))
    r = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    return ((r / period) % 1.0 < 0.5).astype(np.float32)


def _zone_plate(rng: np.random.Generator, size: int) -> Field:
    y, x = _grid(size)
    cy, cx = _centre(rng, size, 0.5)
    r2 = (y - cy) ** 2 + (x - cx) ** 2
    r_max = float(np.sqrt(r2.max()))
    f_max = rng.uniform(0.25, 0.5)  # local frequency k * r in cycles/px at the far corner
    k = np.float32(f_max / r_max)
    return (0.5 + 0.5 * np.cos(np.pi * k * r2)).astype(np.float32)


def _edges(rng: np.random.Generator, size: int) -> Field:
    y, x = _grid(size)
    out = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(1, 5))):
        theta = rng.uniform(0, 2 * np.pi)
        py, px = rng.uniform(0, size, size=2)
        out ^= ((x - px) * np.cos(theta) + (y - py) * np.sin(theta)) > 0
    return out.astype(np.float32)


def _thin_lines(rng: np.random.Generator, size: int) -> Field:
    u, v = _rotated(rng, size, axis_prob=0.3)
    spacing = rng.uniform(3, 16)
    width = rng.uniform(0.5, 2.0)
    du = np.abs((u % spacing) - spacing / 2)
    dv = np.abs((v % spacing) - spacing / 2)
    lines = du < width / 2
    if rng.random() < 0.5:  # a grid rather than parallel lines
        lines |= dv < width / 2
    return lines.astype(np.float32)


def _siemens_star(rng: np.random.Generator, size: int) -> Field:
    y, x = _grid(size)
    cy, cx = _centre(rng, size, 0.6)
    spokes = int(rng.integers(8, 65))
    phi = np.arctan2(y - cy, x - cx)
    return _profile(rng, phi * np.float32(spokes / (2 * np.pi)))


def _dots(rng: np.random.Generator, size: int) -> Field:
    u, v = _rotated(rng, size, axis_prob=0.3)
    spacing = rng.uniform(3, 16)
    radius = rng.uniform(0.2, 0.45) * spacing
    du = (u % spacing) - spacing / 2
    dv = (v % spacing) - spacing / 2
    return (du * du + dv * dv < radius * radius).astype(np.float32)


def _crosshatch(rng: np.random.Generator, size: int) -> Field:
    y, x = _grid(size)
    f = np.exp(rng.uniform(np.log(0.08), np.log(0.45)))
    theta = rng.uniform(0, np.pi)
    total = np.zeros((size, size), dtype=np.float32)
    for df, dt in ((1.0, 0.0), (rng.uniform(0.9, 1.1), rng.uniform(-0.15, 0.15))):
        ff, tt = f * df, theta + dt
        total += 0.5 + 0.5 * np.cos(2 * np.pi * ff * (x * np.cos(tt) + y * np.sin(tt)))
    return (total / 2).astype(np.float32)


def _rectangles(rng: np.random.Generator, size: int) -> Field:
    y, x = _grid(size)
    out = np.full((size, size), rng.random(), dtype=np.float32)
    for _ in range(int(rng.integers(4, 25))):
        y0, x0 = rng.uniform(-0.2 * size, size, size=2)
        h, w = rng.uniform(2, 0.6 * size, size=2)
        level = np.float32(rng.integers(2) if rng.random() < 0.5 else rng.random())
        out[(y >= y0) & (y < y0 + h) & (x >= x0) & (x < x0 + w)] = level
    return out


def _pixel_noise(rng: np.random.Generator, size: int) -> Field:
    block = int(rng.integers(1, 4))
    n = -(-size // block)
    bits = (rng.random((n, n)) < 0.5).astype(np.float32)
    return np.repeat(np.repeat(bits, block, 0), block, 1)[:size, :size]


_JULIA_C = (complex(-0.8, 0.156), complex(0.285, 0.01), complex(-0.4, 0.6),
            complex(-0.70176, -0.3842), complex(0.355, 0.355), complex(-0.835, -0.2321),
            complex(0.37, 0.1), complex(-0.54, 0.54))
_JULIA_ITERS = 96


def _julia_escape(z: np.ndarray, c: complex, iters: int) -> np.ndarray:
    """Smooth escape count of each start point (``iters`` for points that never escape).

    Iterates only the points still bounded (compacted arrays), so escaped points cost
    nothing."""
    flat = z.astype(np.complex64).ravel()
    nu = np.full(flat.shape, float(iters), dtype=np.float32)
    idx = np.arange(flat.size)
    cc = np.complex64(c)
    for i in range(iters):
        flat = flat * flat + cc
        mag = np.abs(flat)
        esc = mag > 4.0
        if esc.any():
            nu[idx[esc]] = i + 1 - np.log2(np.log2(mag[esc]))
            keep = ~esc
            flat, idx = flat[keep], idx[keep]
            if not idx.size:
                break
    return nu.reshape(z.shape)


def _julia(rng: np.random.Generator, size: int) -> Field:
    c = _JULIA_C[int(rng.integers(len(_JULIA_C)))] + complex(*rng.normal(0, 0.005, size=2))
    half = 1.5  # the whole set fits in [-1.5, 1.5]^2
    # Find boundary points on a coarse view of the whole set, then zoom 50 % onto one.
    coarse = np.linspace(-half, half, 48, dtype=np.float32)
    nu = _julia_escape(coarse[None, :] + 1j * coarse[:, None], c, _JULIA_ITERS // 2)
    edge = np.argwhere((nu > 3) & (nu < _JULIA_ITERS // 2))
    cy, cx = (edge[int(rng.integers(len(edge)))] if len(edge) else (24, 24))
    centre = complex(coarse[cx], coarse[cy])
    zoom_half = 0.5 * half
    axis = np.linspace(-zoom_half, zoom_half, size, dtype=np.float32)
    z = centre + axis[None, :] + 1j * axis[:, None]
    nu = _julia_escape(z, c, _JULIA_ITERS)
    cycle = rng.uniform(6, 24)  # escape counts per colour cycle
    t = 0.5 + 0.5 * np.cos(2 * np.pi * nu / cycle + rng.uniform(0, 2 * np.pi))
    t[nu >= _JULIA_ITERS] = 0.0  # the set itself
    return t.astype(np.float32)


def _perlin(rng: np.random.Generator, size: int, freq: float) -> np.ndarray:
    """One octave of 2-D Perlin gradient noise on the pixel grid, roughly ``[-0.7, 0.7]``."""
    n = int(np.ceil(size * freq)) + 2
    angles = rng.uniform(0, 2 * np.pi, size=(n, n))
    gy, gx = np.sin(angles).astype(np.float32), np.cos(angles).astype(np.float32)
    c = (np.arange(size, dtype=np.float32) + 0.5) * np.float32(freq) + np.float32(rng.random())
    i0 = np.floor(c).astype(np.int64)  # lattice cell of each row (and column)
    f = c - i0                          # position inside the cell, [0, 1)
    w = f * f * f * (f * (f * 6 - 15) + 10)  # quintic fade

    def corner(dy: int, dx: int) -> np.ndarray:
        # Rows and columns index the lattice independently: two 1-D takes, no 2-D gather.
        a = gy.take(i0 + dy, axis=0).take(i0 + dx, axis=1)
        b = gx.take(i0 + dy, axis=0).take(i0 + dx, axis=1)
        return a * (f - dy)[:, None] + b * (f - dx)[None, :]

    c00, c01, c10, c11 = corner(0, 0), corner(0, 1), corner(1, 0), corner(1, 1)
    top = c00 + w[None, :] * (c01 - c00)
    bottom = c10 + w[None, :] * (c11 - c10)
    return top + w[:, None] * (bottom - top)


def _perlin_fbm(rng: np.random.Generator, size: int) -> Field:
    octaves = int(rng.integers(4, 7))
    freq = np.exp(rng.uniform(np.log(1 / 64), np.log(1 / 8)))
    total = np.zeros((size, size), dtype=np.float32)
    amp = 1.0
    for _ in range(octaves):
        total += np.float32(amp) * _perlin(rng, size, freq)
        freq *= 2.0
        amp *= 0.5
    lo, hi = float(total.min()), float(total.max())
    return ((total - lo) / max(hi - lo, 1e-6)).astype(np.float32)


RENDERERS: tuple[Callable[[np.random.Generator, int], Field], ...] = (
    _stripes, _checkers, _circles, _zone_plate, _edges, _thin_lines, _siemens_star, _dots,
    _crosshatch, _rectangles, _pixel_noise, _julia, _perlin_fbm,
)


__all__ = ["TYPE_NAMES", "NUM_TYPES", "RENDERERS", "Field"]
