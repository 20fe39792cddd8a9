"""Camera simulation: what a real raw file does to a linear picture before demosaicking.

A raw file is not linear sRGB. :func:`simulate_capture` turns a linear-sRGB truth image into
the mosaic a real camera would record, and into the target a demosaicker should produce, in
the order the physics happens (docs/CAMERA.md has the derivation and the numbers)::

    truth (linear sRGB, D65, white = 1)
      -> camera RGB         C = diag(1 / n_G) XYZ->camera @ sRGB->XYZ   (a real body's matrix)
      -> scene illuminant   per-channel gains g (light that is not D65)
      -> exposure           raw = headroom * g * C @ truth, clipped to [0, 1] (1 = white level)
      -> mosaic             one channel per pixel through the CFA layout
      -> sensor noise       Poisson-Gaussian in raw units: var = a * x + b^2 (a, b from ISO)
      -> black level, quantisation to 12/14-bit data numbers, clip at the white level
      -> white balance      the as-shot multipliers w = 1 / (n * g * e), e = the camera's WB error

The network sees ``w * mosaic`` (LibRaw's order: balance, then demosaic) and is trained to
output ``w * clip(raw_clean, 0, 1)``: the clean, clipped scene in **balanced camera RGB**, the
space :func:`demosaic.inference.develop.develop` feeds it at inference. Values above 1.0 survive
(a red channel with ``w_R = 2`` reaches 2.0 before it clips); fully clipped channels stay
at their bound ``w_c`` (magenta for a lamp that clips every channel: the highlight step of
inference, :mod:`demosaic.inference.highlights`, removes that cast).

Camera matrices come from ``assets/camera_matrices.csv`` (LibRaw's colour data, XYZ -> camera
for D65, rows as published), 27 X-Trans and 21 Bayer bodies.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from demosaic.cfa import tile_layout
from demosaic.color import D65_XYZ, SRGB_TO_XYZ, apply_matrix
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

#: The bundled table of camera colour matrices (copy of the shared data's camera_matrices.csv).
MATRICES_CSV = Path(__file__).resolve().parents[1] / "assets" / "camera_matrices.csv"


# --------------------------------------------------------------------------------------
# Camera bodies and their colour
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraBody:
    """One camera's colour data.

    Attributes:
        family: ``"xtrans"`` or ``"bayer"``.
        make, model: As LibRaw names them.
        xyz_to_cam: ``(3, 3)`` XYZ (D65) -> raw camera RGB, rows as published (DNG
            ``ColorMatrix`` convention).
    """

    family: str
    make: str
    model: str
    xyz_to_cam: np.ndarray = field(repr=False)

    @property
    def name(self) -> str:
        return f"{self.make} {self.model}"

    @property
    def neutral(self) -> np.ndarray:
        """Camera RGB of a D65 grey, normalised to G = 1 (a DNG ``AsShotNeutral``)."""
        return camera_neutral(self.xyz_to_cam)

    @property
    def srgb_to_camera(self) -> np.ndarray:
        """:func:`srgb_to_camera` of this body."""
        return srgb_to_camera(self.xyz_to_cam)


def camera_neutral(xyz_to_cam: np.ndarray) -> np.ndarray:
    """``(3,)`` camera RGB of the D65 white, divided by its green: ``M @ XYZ(D65) / G``.

    The as-shot multipliers of a daylight picture are its inverse (red and blue about 1.5-2.5
    for real bodies: they read about half of green for a grey).
    """
    n = np.asarray(xyz_to_cam, dtype=np.float64) @ D65_XYZ
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise ConfigError(f"camera matrix maps the D65 white to {n.tolist()}: not a camera "
                          "matrix (every channel must see a grey)")
    return n / n[1]


def srgb_to_camera(xyz_to_cam: np.ndarray) -> np.ndarray:
    """``(3, 3)`` linear sRGB (D65) -> raw (unbalanced) camera RGB, scaled so that sRGB white
    ``(1, 1, 1)`` gives :func:`camera_neutral` (green = 1)."""
    m = np.asarray(xyz_to_cam, dtype=np.float64) @ SRGB_TO_XYZ
    return m / (np.asarray(xyz_to_cam, dtype=np.float64) @ D65_XYZ)[1]


@lru_cache(maxsize=4)
def _read_table(path: str) -> tuple[CameraBody, ...]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"camera matrix table {p} does not exist; pass a CSV with columns "
                          "cfa,make,model,m11..m33 or null for the bundled one")
    bodies = []
    with open(p, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            try:
                m = np.array([[float(row[f"m{r}{c}"]) for c in (1, 2, 3)] for r in (1, 2, 3)])
                family = row["cfa"].strip().lower()
                make, model = row["make"].strip(), row["model"].strip()
            except (KeyError, ValueError, AttributeError) as exc:
                raise ConfigError(f"{p}: row {i + 2} is not cfa,make,model,m11..m33 ({exc})") from None
            if family not in ("xtrans", "bayer"):
                raise ConfigError(f"{p}: row {i + 2}: cfa {family!r} is neither xtrans nor bayer")
            m.flags.writeable = False
            bodies.append(CameraBody(family, make, model, m))
    if not bodies:
        raise ConfigError(f"camera matrix table {p} holds no rows")
    return tuple(bodies)


def load_bodies(family: str | None = None, path: str | Path | None = None,
                models: Sequence[str] | None = None) -> list[CameraBody]:
    """Camera bodies of the table, optionally of one CFA ``family`` and named ``models``.

    Args:
        family: ``"xtrans"``, ``"bayer"`` or ``None`` (all).
        path: CSV path; ``None`` = the bundled table.
        models: Restrict to these models (``"X-T3"`` or ``"Fujifilm X-T3"``).

    Raises:
        ConfigError: unknown file, bad rows, or no body left after filtering.
    """
    bodies = list(_read_table(str(path or MATRICES_CSV)))
    if family is not None:
        bodies = [b for b in bodies if b.family == family]
    if models:
        wanted = {m.strip().lower(): m for m in models}
        chosen = [b for b in bodies if b.model.lower() in wanted or b.name.lower() in wanted]
        found = {b.model.lower() for b in chosen} | {b.name.lower() for b in chosen}
        missing = [wanted[k] for k in wanted if k not in found]
        if missing:
            raise ConfigError(f"camera bodies {sorted(missing)} are not in the {family or ''} "
                              f"table {path or MATRICES_CSV}; known: "
                              f"{sorted(b.model for b in bodies)}")
        bodies = chosen
    if not bodies:
        raise ConfigError(f"no {family} camera body in {path or MATRICES_CSV}")
    return bodies


def body_by_name(name: str, family: str | None = None, path: str | Path | None = None) -> CameraBody:
    """The body called ``name`` (model or ``"make model"``)."""
    return load_bodies(family, path, [name])[0]


# --------------------------------------------------------------------------------------
# Sensor noise
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseModel:
    """Poisson-Gaussian noise of a modern APS-C sensor, in normalised raw units (white = 1).

    At ISO ``s`` the analogue gain is ``k = s / base_iso``; the white level then holds
    ``full_well / k`` electrons, so the shot-noise variance per unit signal is
    ``a = k / full_well``. Read noise has a part before the gain (``read_pre`` electrons) and
    one after it (``read_post`` electrons at base ISO), ``sigma_e = sqrt(read_pre^2 +
    (read_post / k)^2)``, giving ``b = sigma_e * k / full_well``. Defaults: 30,000 e- at the
    white level at ISO 100, 1.5 e- + 4 e- read noise (12.8 stops of dynamic range at base ISO),
    the ballpark of 24-26 MP APS-C sensors (Sony IMX571-class, Fujifilm X-Trans III/IV).
    """

    full_well: float = 30000.0
    read_pre: float = 1.5
    read_post: float = 4.0
    base_iso: float = 100.0

    def params(self, iso: Any) -> tuple[Any, Any]:
        """``(a, b)``: variance ``a * x + b^2`` of a pixel of mean ``x`` (white = 1).

        ``iso``: a number, or a numpy array / torch tensor of ISOs (element-wise results of
        the same type, e.g. one per sample of a batch)."""
        if isinstance(iso, (int, float)):
            if not iso > 0:
                raise ConfigError(f"ISO must be positive, got {iso}")
            iso = float(iso)
        k = iso / self.base_iso
        a = k / self.full_well
        sigma_e = (self.read_pre ** 2 + (self.read_post / k) ** 2) ** 0.5
        return a, sigma_e * k / self.full_well

    def sample(self, mosaic: np.ndarray, iso: float, rng: np.random.Generator) -> np.ndarray:
        """A noisy copy of a clean raw mosaic (any shape, float, white = 1): Poisson shot
        noise on ``max(x, 0)`` electrons plus Gaussian read noise. Unclipped."""
        a, b = self.params(iso)
        electrons = rng.poisson(np.maximum(mosaic, 0.0).astype(np.float64) / a)
        out = electrons * a + rng.normal(0.0, b, size=mosaic.shape)
        return out.astype(np.float32)


# --------------------------------------------------------------------------------------
# The capture
# --------------------------------------------------------------------------------------


@dataclass
class CameraSimConfig:
    """Keys of ``dataset.<split>.camera`` (and of the camera evaluation protocol).

    Attributes:
        enabled: Simulate a camera (off: the mosaic is linear sRGB, balanced by definition).
        matrices: CSV of camera matrices; null = the bundled table.
        models: Restrict to these bodies (null = every body of the CFA family).
        iso_range: ``[low, high]`` log-uniform ISO (100 = clean, 6400 = very noisy).
        illuminant_sigma: Std of the log of the red/blue gains of the scene light relative
            to D65 (0.2: about +-20 %, tungsten-to-shade is more; 0 = daylight).
        wb_error: Std of the log of the as-shot white balance's error on red and blue.
        headroom: Raw level of an sRGB white at exposure 1 (a camera meters mid-grey at
            about 10-15 % of the white level, so 1.0 sRGB lands near 0.6-0.8).
        bits: Bit depths drawn uniformly (12: black 256, white 4095; 14: 1024, 16383).
        noise: :class:`NoiseModel` keys.
        clean_prob: Probability that an item skips the camera: a clean, noise-free
            linear-sRGB mosaic (balanced by definition), so a model blind to the noise level
            also learns not to smooth clean data (0 = every item is a camera capture).
        level_error: Std of the log of the error of the noise level a training sample
            carries (:mod:`demosaic.sim.noise_level`; a real estimate is off by some percent).
    """

    enabled: bool = True
    matrices: Any = None
    models: Any = None
    iso_range: list[float] = field(default_factory=lambda: [100.0, 6400.0])
    illuminant_sigma: float = 0.2
    wb_error: float = 0.03
    headroom: float = 0.7
    bits: list[int] = field(default_factory=lambda: [12, 14])
    noise: dict[str, float] = field(default_factory=dict)
    clean_prob: float = 0.0
    level_error: float = 0.1


#: Black and white levels (data numbers) of each supported bit depth.
LEVELS = {12: (256, 4095), 14: (1024, 16383), 16: (4096, 65535)}


@dataclass
class Capture:
    """One simulated raw capture of a truth image.

    Attributes:
        cfa: ``(H, W)`` float32 white-balanced mosaic (what the network sees), top-left pixel
            of colour ``layout[0, 0]``; unclipped below 0 (noise), at most ``w_c`` above.
        target: ``(3, H, W)`` float32 balanced camera RGB truth (clean, raw-clipped).
        raw: ``(H, W)`` uint16 data numbers as a camera writes them (black level included).
        multipliers: ``(3,)`` as-shot white balance (G = 1).
        body: The camera; ``iso``; ``black``, ``white`` levels; ``noise`` = ``(a, b)``.
    """

    cfa: np.ndarray
    target: np.ndarray
    raw: np.ndarray
    multipliers: np.ndarray
    body: CameraBody
    iso: float
    black: int
    white: int
    noise: tuple[float, float]

    @property
    def as_shot_neutral(self) -> np.ndarray:
        """``1 / multipliers`` (a DNG ``AsShotNeutral``)."""
        return 1.0 / self.multipliers

    def meta(self) -> dict[str, Any]:
        return {"camera": self.body.name, "iso": round(self.iso, 1),
                "multipliers": [round(float(v), 5) for v in self.multipliers],
                "black": self.black, "white": self.white,
                "noise_a": self.noise[0], "noise_b": self.noise[1]}


def check_config(cfg: CameraSimConfig, key: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` for an invalid camera configuration."""
    iso = list(cfg.iso_range)
    if len(iso) != 2 or not 0 < iso[0] <= iso[1]:
        raise ConfigError(f"{key}.iso_range: need [low, high] with 0 < low <= high, got {iso}")
    for name in ("illuminant_sigma", "wb_error", "clean_prob", "level_error"):
        if not 0 <= float(getattr(cfg, name)) < 1:
            raise ConfigError(f"{key}.{name}: must be in [0, 1), got {getattr(cfg, name)}")
    if not 0 < float(cfg.headroom) <= 4:
        raise ConfigError(f"{key}.headroom: must be in (0, 4], got {cfg.headroom}")
    bad = [b for b in cfg.bits if int(b) not in LEVELS]
    if not cfg.bits or bad:
        raise ConfigError(f"{key}.bits: each must be one of {sorted(LEVELS)}, got {list(cfg.bits)}")
    try:
        NoiseModel(**dict(cfg.noise))
    except TypeError as exc:
        raise ConfigError(f"{key}.noise: {exc}; keys are full_well, read_pre, read_post, "
                          "base_iso") from None


def simulate_capture(
    rgb: np.ndarray,
    layout: np.ndarray,
    rng: np.random.Generator,
    cfg: CameraSimConfig,
    *,
    body: CameraBody | None = None,
    iso: float | None = None,
    family: str | None = None,
    light: Sequence[float] | np.ndarray | None = None,
) -> Capture:
    """Simulate a raw capture of a linear-sRGB image (see the module docstring for the order).

    Args:
        rgb: ``(3, H, W)`` float linear sRGB truth (white 1.0; may exceed it).
        layout: ``(P, P)`` channel indices of the mosaic's top-left pixels.
        rng: The item's generator (all draws come from it).
        cfg: :class:`CameraSimConfig`.
        body: A fixed camera (default: drawn from the table of ``family``).
        iso: A fixed ISO (default: log-uniform in ``cfg.iso_range``).
        family: CFA family for drawing a body (default: from the layout's period).
        light: ``(3,)`` fixed scene-light gains in camera RGB (green 1), e.g. tungsten;
            default: drawn from ``cfg.illuminant_sigma`` (no draw when it is 0).

    Returns:
        :class:`Capture`.
    """
    layout = np.asarray(layout, dtype=np.int64)
    fam = family or ("xtrans" if layout.shape[0] == 6 else "bayer")
    if body is None:
        bodies = load_bodies(fam, cfg.matrices, cfg.models)
        body = bodies[int(rng.integers(len(bodies)))]
    if iso is None:
        lo, hi = (float(v) for v in cfg.iso_range)
        iso = lo if lo == hi else float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    bits = int(cfg.bits[int(rng.integers(len(cfg.bits)))])
    black, white = LEVELS[bits]
    # Scene light and the camera's estimate of it (red/blue only; green is the reference).
    if light is not None:
        light = np.array(light, dtype=np.float64).reshape(3)
    elif cfg.illuminant_sigma:
        light = np.exp(rng.normal(0.0, float(cfg.illuminant_sigma), 3))
    else:
        light = np.ones(3)
    err = np.exp(rng.normal(0.0, float(cfg.wb_error), 3)) if cfg.wb_error else np.ones(3)
    light[1] = err[1] = 1.0
    m = (light[:, None] * body.srgb_to_camera) * float(cfg.headroom)
    raw_rgb = apply_matrix(np.asarray(rgb, dtype=np.float32), m)
    np.clip(raw_rgb, 0.0, 1.0, out=raw_rgb)
    neutral = body.neutral * light * err
    mult = (1.0 / neutral) / (1.0 / neutral[1])
    _, h, w = raw_rgb.shape
    tiled = tile_layout(layout, h, w)
    clean = np.take_along_axis(raw_rgb, tiled[None], axis=0)[0]
    model = NoiseModel(**dict(cfg.noise))
    noisy = model.sample(clean, iso, rng)
    dn = np.clip(np.rint(black + noisy.astype(np.float64) * (white - black)), 0, white).astype(np.uint16)
    norm = (dn.astype(np.float32) - np.float32(black)) / np.float32(white - black)
    gains = mult.astype(np.float32)
    balanced = norm * gains[tiled]
    target = raw_rgb * gains[:, None, None]
    return Capture(cfa=balanced.astype(np.float32), target=target.astype(np.float32), raw=dn,
                   multipliers=mult, body=body, iso=float(iso), black=black, white=white,
                   noise=model.params(iso))


__all__ = ["CameraBody", "CameraSimConfig", "Capture", "NoiseModel", "LEVELS", "MATRICES_CSV",
           "body_by_name", "camera_neutral", "check_config", "load_bodies", "simulate_capture",
           "srgb_to_camera"]
