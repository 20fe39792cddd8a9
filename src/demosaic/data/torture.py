"""Torture v2: procedural patterns that provoke demosaicking failures (``name: torture``).

Thirteen pattern types, numbered as in the research log:

===  ================  ==============================================================
id   name              scalar field ``t`` in ``[0, 1]`` (point-sampled at pixel centres)
===  ================  ==============================================================
0    ``stripes``       grating, 0.02-0.5 cycles/px at any angle, sine or square profile
1    ``checkers``      checkerboard, cells 1-16 px, axis-aligned or rotated
2    ``circles``       concentric square-wave rings, period 2-24 px, random centre
3    ``zone_plate``    ``cos(pi k r^2)`` chirp reaching 0.25-0.5 cycles/px at the corner
4    ``edges``         1-4 straight hard edges at arbitrary angles (parity of half-planes)
5    ``thin_lines``    grid of 0.5-2 px lines every 3-16 px, any angle
6    ``siemens_star``  8-64 spokes around a random centre, sine or square profile
7    ``dots``          halftone grid of discs, spacing 3-16 px, any angle
8    ``crosshatch``    two gratings at close frequencies and angles (moire beats)
9    ``rectangles``    4-24 overlapping rectangles at random levels (Mondrian)
10   ``pixel_noise``   random binary blocks of 1-3 px (CFA-scale detail)
11   ``julia``         Julia set (smooth escape time), view zoomed 50 % onto its boundary
12   ``perlin_fbm``    Perlin gradient noise, 4-6 octaves (fBm), min-max normalised
===  ================  ==============================================================

Colour: each sample blends two colours, ``target = c0 + (c1 - c0) * t``, in linear light.
The pair is drawn in HSV (sRGB-encoded, then decoded exactly to linear) by one of four
policies, chosen uniformly, so that colour aliasing is provoked:

- ``complementary``: saturated (S 0.7-1, V 0.5-1) hues 180 degrees apart;
- ``near_neutral``: S <= 0.12, one dark (V 0.1-0.5) and one light (V 0.6-1) grey-ish colour:
  any colour in the output is false colour;
- ``dark``: V 0.02-0.25, S 0.3-1, hues 90-270 degrees apart (noise-floor contrast);
- ``bright``: V 0.85-1, S 0-0.6, then scaled by a gain of 1-2 in linear light: highlights.

**Value range:** targets lie in ``[0, 2]`` (``[0, 1]`` for every policy but ``bright``),
linear light, float32. Every sample is a pure function of ``(seed, index)`` and the type
list: item ``i`` has type ``types[i % len(types)]``. Samples are rendered on the fly (no
files) or read from a folder written by :func:`export_torture`
(``demosaic-prepare torture out=DIR count=5000``), whose manifest records each type.
"""

from __future__ import annotations

import colorsys
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from torch.utils.data import Dataset

from demosaic import cfa as cfa_mod
from demosaic.sim.camera import CameraSimConfig
from demosaic.cfa import CFAPattern
from demosaic.color import srgb_to_linear
from demosaic.data import DATASETS
from demosaic.data.capture import camera_config, camera_sample
from demosaic.data.common import Sample, check_patch, make_rng, make_sample, resolve_folder
from demosaic.errors import ConfigError
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

TYPE_NAMES: tuple[str, ...] = (
    "stripes", "checkers", "circles", "zone_plate", "edges", "thin_lines", "siemens_star",
    "dots", "crosshatch", "rectangles", "pixel_noise", "julia", "perlin_fbm",
)
NUM_TYPES = len(TYPE_NAMES)
POLICIES: tuple[str, ...] = ("complementary", "near_neutral", "dark", "bright")
#: Documented bounds of every target value (``bright`` policy gain up to 2).
VALUE_RANGE = (0.0, 2.0)
MANIFEST = "manifest.json"
TARGETS = "targets.npy"
FORMAT = "demosaic-torture/1"

Field = np.ndarray  # (H, W) float32 in [0, 1]


# --------------------------------------------------------------------------------------
# Pattern fields
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (h in turns) to sRGB-encoded RGB ``(3,)`` in ``[0, 1]`` (``colorsys``)."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float64)


def pick_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Two linear-light colours ``(3,)`` float32 by a random policy (see module docstring)."""
    policy = POLICIES[int(rng.integers(len(POLICIES)))]
    h = rng.random()
    gain = 1.0
    if policy == "complementary":
        hsv = [(h, rng.uniform(0.7, 1), rng.uniform(0.5, 1)),
               (h + 0.5, rng.uniform(0.7, 1), rng.uniform(0.5, 1))]
    elif policy == "near_neutral":
        hsv = [(h, rng.uniform(0, 0.12), rng.uniform(0.1, 0.5)),
               (rng.random(), rng.uniform(0, 0.12), rng.uniform(0.6, 1.0))]
    elif policy == "dark":
        hsv = [(h, rng.uniform(0.3, 1), rng.uniform(0.02, 0.25)),
               (h + rng.uniform(0.25, 0.75), rng.uniform(0.3, 1), rng.uniform(0.02, 0.25))]
    else:  # bright
        hsv = [(h, rng.uniform(0, 0.6), rng.uniform(0.85, 1)),
               (rng.random(), rng.uniform(0, 0.6), rng.uniform(0.85, 1))]
        gain = rng.uniform(1.0, VALUE_RANGE[1])
    if rng.random() < 0.5:
        hsv.reverse()
    c0, c1 = (np.asarray(srgb_to_linear(_hsv_to_rgb(*c)), dtype=np.float32) * np.float32(gain)
              for c in hsv)
    return c0, c1, policy


def render(type_id: int, seed: int | None, index: int, size: int) -> tuple[np.ndarray, str]:
    """Render one torture sample.

    Args:
        type_id: Pattern type, 0-12 (see :data:`TYPE_NAMES`).
        seed, index: The sample is a pure function of ``(seed, index, type_id, size)``.
        size: Side in px.

    Returns:
        ``(target, policy)``: ``(3, size, size)`` float32 linear light within
        :data:`VALUE_RANGE`, and the colour policy used.
    """
    if not 0 <= type_id < NUM_TYPES:
        raise ConfigError(f"torture type {type_id} is not in 0..{NUM_TYPES - 1}")
    rng = make_rng(seed, index)
    c0, c1, policy = pick_colours(rng)
    t = RENDERERS[type_id](rng, size)
    target = c0[:, None, None] + (c1 - c0)[:, None, None] * t[None]
    return target.astype(np.float32, copy=False), policy


def _check_types(types: Sequence[int] | None, key: str) -> list[int]:
    if types is None:
        return list(range(NUM_TYPES))
    out = [int(t) for t in types]
    bad = [t for t in out if not 0 <= t < NUM_TYPES]
    if not out or bad:
        raise ConfigError(f"{key}: types {list(types)} must be a non-empty list of ids in "
                          f"0..{NUM_TYPES - 1} ({', '.join(f'{i}={n}' for i, n in enumerate(TYPE_NAMES))})")
    return out


# --------------------------------------------------------------------------------------
# Export and dataset
# --------------------------------------------------------------------------------------


def export_torture(out: str | Path, *, count: int = 5000, patch_size: int = 96,
                   seed: int = 0, types: Sequence[int] | None = None,
                   progress: bool = True) -> Path:
    """Render ``count`` samples to ``out/targets.npy`` (``(N, 3, S, S)`` float16) and
    ``out/manifest.json`` (per item: index, type id and name, colour policy).

    Item ``i`` equals ``render(types[i % len(types)], seed, i, patch_size)`` (rounded to
    float16). Both files are written atomically. Returns the manifest path.
    """
    from tqdm import tqdm

    types = _check_types(types, "torture.types")
    if count <= 0:
        raise ConfigError(f"torture export: count must be positive, got {count}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    with atomic_path(out / TARGETS) as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                        shape=(count, 3, patch_size, patch_size))
        for i in tqdm(range(count), desc="torture", disable=not progress, unit="img"):
            tid = types[i % len(types)]
            target, policy = render(tid, seed, i, patch_size)
            arr[i] = target
            items.append({"index": i, "type": tid, "type_name": TYPE_NAMES[tid], "policy": policy})
        arr.flush()
        del arr
    manifest = {"format": FORMAT, "count": count, "patch_size": patch_size, "seed": seed,
                "types": types, "type_names": list(TYPE_NAMES), "value_range": list(VALUE_RANGE),
                "items": items}
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    log.info("wrote %d torture samples to %s", count, out)
    return out / MANIFEST


@dataclass
class TortureConfig:
    """Keys of ``name: torture``.

    Attributes:
        root: Folder written by ``demosaic-prepare torture``; null = render on the fly.
        count: Samples per epoch when rendering on the fly (ignored with ``root``).
        patch_size: Side in px when rendering (multiple of the period); with ``root`` it must
            match the exported size.
        types: Type ids to use (null = all 13).
        sample_seed: Generation seed (null = the run's seed). Default 0: the same fixed set
            of samples in every run, like an exported set.
        camera: Camera simulation (:class:`demosaic.sim.camera.CameraSimConfig`), on by default:
            the patterns are the truth, the camera (body, ISO, noise) is drawn anew each
            epoch.
    """

    root: Optional[str] = None
    count: int = 5000
    patch_size: int = 96
    types: Optional[list[int]] = None
    sample_seed: Optional[int] = 0
    camera: CameraSimConfig = field(default_factory=CameraSimConfig)


class TortureDataset(Dataset):
    """Torture v2 samples, rendered on the fly or read from an export.

    Items follow the sample contract with ``H = W = patch_size``; targets in
    :data:`VALUE_RANGE`. Samples do not change with the epoch.
    """

    def __init__(self, pattern: CFAPattern, *, root: Path | None = None, count: int = 5000,
                 patch_size: int = 96, types: Sequence[int] | None = None,
                 seed: int | None = 0, key: str = "dataset",
                 camera: CameraSimConfig | Mapping[str, Any] | None = None) -> None:
        check_patch(patch_size, pattern, f"{key}.patch_size")
        self.camera = camera_config(camera, f"{key}.camera", pattern=pattern)
        self.epoch = 0
        self.pattern = pattern
        self.types = _check_types(types, f"{key}.types")
        self.patch_size = patch_size
        self.seed = seed
        self._targets: np.ndarray | None = None
        self.root = root
        if root is not None:
            manifest = _read_manifest(root, key)
            if manifest["patch_size"] != patch_size:
                raise ConfigError(
                    f"{key}.patch_size: {patch_size} differs from the export in {root} "
                    f"({manifest['patch_size']} px); set {key}.patch_size="
                    f"{manifest['patch_size']}")
            wanted = set(self.types)
            self.items = [it for it in manifest["items"] if it["type"] in wanted]
            if not self.items:
                raise ConfigError(f"{key}.types: none of {self.types} is in the export {root}")
        else:
            if count <= 0:
                raise ConfigError(f"{key}.count: must be positive, got {count}")
            self.items = [{"index": i, "type": self.types[i % len(self.types)]}
                          for i in range(count)]

    def set_epoch(self, epoch: int) -> None:
        """The pattern targets do not depend on the epoch; the simulated camera does."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def type_of(self, index: int) -> int:
        """Pattern type id of item ``index``."""
        return int(self.items[index]["type"])

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.items):
            raise IndexError(index)
        item = self.items[index]
        if self.root is None:
            target, _ = render(item["type"], self.seed, item["index"], self.patch_size)
        else:
            if self._targets is None:  # opened lazily: one memory map per loader worker
                self._targets = np.load(self.root / TARGETS, mmap_mode="r")
            target = np.asarray(self._targets[item["index"]], dtype=np.float32)
        if self.camera is not None:
            rng = make_rng(self.seed, 0x7C, self.epoch, item["index"])
            return camera_sample(target, self.pattern, rng, self.camera)
        return make_sample(target, self.pattern)


def _read_manifest(root: Path, key: str) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}.root: cannot read the torture manifest {path} ({exc}); "
                          "create it with `demosaic-prepare torture out=DIR`") from None
    if manifest.get("format") != FORMAT or not (root / TARGETS).is_file():
        raise ConfigError(f"{key}.root: {root} is not a torture export ({FORMAT} manifest and "
                          f"{TARGETS}); create it with `demosaic-prepare torture out=DIR`")
    return manifest


@DATASETS.register("torture", TortureConfig)
def make_torture(*, pattern: str, split: str, seed: int | None, root: str | None = None,
                 sample_seed: int | None = 0, **kwargs: Any) -> TortureDataset:
    """Registry factory of ``name: torture`` (keys: :class:`TortureConfig`)."""
    key = f"dataset.{split}"
    folder = resolve_folder(root, f"{key}.root") if root is not None else None
    return TortureDataset(cfa_mod.get_pattern(pattern), root=folder,
                          seed=seed if sample_seed is None else sample_seed, key=key, **kwargs)


__all__ = ["TYPE_NAMES", "NUM_TYPES", "POLICIES", "VALUE_RANGE", "render", "pick_colours",
           "export_torture", "TortureDataset", "TortureConfig"]
