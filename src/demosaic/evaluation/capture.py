"""The camera protocol's captures: each truth image becomes the DNG a camera would write.

The camera protocol (:mod:`demosaic.evaluation.camera`) measures every method on these files.
:func:`prepare_case` makes one (step 1 of that protocol):

For truth image number ``index`` (linear sRGB ``(3, H, W)``, white 1.0) a CFA phase
``(dy, dx)`` in ``[0, P)`` and sensor margins ``(top, left, bottom, right)`` in
``[0, max_margin]`` px (Bayer top/left even, see :mod:`demosaic.io.dng`) are drawn from
``SeedSequence([seed, index])`` (the same at every ISO, :func:`geometry`); the mosaic layout
is ``canonical.shifted(dy, dx)`` (the truth's pixel ``(0, 0)`` sits at ``(dy, dx)`` of the
canonical pattern). :func:`demosaic.sim.raw_files.capture_scene` then simulates the capture
with a named body (default X-T3 / ILCE-7M3), a fixed ISO, the scene light and white balance
of :class:`CaptureConditions` (default daylight, ``illuminant_sigma=0``, exact as-shot white
balance), 14 bits and the default headroom and noise model, its noise drawn from
``SeedSequence([seed, index, round(10 * iso)])`` (:func:`capture_rng`). The raw data numbers
are written by :func:`demosaic.sim.raw_files.write_capture` as a DNG (``make="demosaic"``,
``model="camera-protocol <body>"``, the body's ``ColorMatrix1``, ``AsShotNeutral``) into
``cache_dir/<name>.dng`` with a JSON sidecar; a file whose sidecar matches (same settings,
same truth and raw hashes) is reused. When a side is under
:data:`~demosaic.io.libraw.MIN_SIDE` (512) px a second, phase-preserving padded copy
(``<name>.pad512.dng``) is written for LibRaw, whose Markesteijn refuses smaller images.

The truth of a case, ``capture.target``, is the clean raw-clipped scene in **balanced camera
RGB** (``multipliers * clip(raw_clean, 0, 1)``; green 1.0 at the white level, red/blue may
exceed 1). It is recomputed (deterministically) on every run, never read from disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from demosaic.cfa import CANONICAL, CFAPattern, phase_extend
from demosaic.color import camera_to_output_matrix
from demosaic.errors import ConfigError
from demosaic.evaluation.report import safe_name
from demosaic.io.atomic import atomic_path
from demosaic.io.libraw import MIN_SIDE
from demosaic.sim.camera import CameraBody, CameraSimConfig, body_by_name
from demosaic.sim.raw_files import capture_scene, write_capture

log = logging.getLogger(__name__)

#: Bumped when the capture recipe changes (invalidates cached DNGs).
PROTOCOL_VERSION = 1
#: Camera body per CFA family when none is named.
DEFAULT_BODIES: dict[str, str] = {"xtrans": "X-T3", "bayer": "ILCE-7M3"}
#: ISO of the camera protocol when none is given.
DEFAULT_ISO = 800.0
#: Scene light of :class:`CaptureConditions` as red and blue gains in camera RGB relative to
#: daylight (D65). Tungsten (about 2850 K) moves a typical X-Trans body's as-shot multipliers
#: from about (2.1, 1, 1.5) to about (1.3, 1, 2.7); shade (about 7500 K) the other way, less.
ILLUMINANTS: dict[str, tuple[float, float]] = {"daylight": (1.0, 1.0), "tungsten": (1.6, 0.55),
                                               "shade": (0.85, 1.15)}



@dataclasses.dataclass(frozen=True)
class CaptureConditions:
    """How the protocol's camera shoots, beyond ISO and body (defaults: the published tables).

    Attributes:
        illuminant: Scene light, a key of :data:`ILLUMINANTS`; the as-shot white balance
            follows it (exactly, unless ``wb_error``).
        wb_error: Std of the log of the as-shot white balance's error on red and blue (0:
            exact); drawn per image from the capture's generator.
        bits: Raw bit depth, a key of :data:`demosaic.sim.camera.LEVELS` (black/white levels).
        exposure: Factor on the default headroom (0.7 of the white level for an sRGB white):
            0.25 is two stops under (shadows, more visible noise), 2.0 one stop over (clipped
            highlights).
    """

    illuminant: str = "daylight"
    wb_error: float = 0.0
    bits: int = 14
    exposure: float = 1.0

    def check(self, prefix: str = "conditions.") -> None:
        """Raise :class:`ConfigError` naming the setting (``prefix`` + field) that is out of
        range or of the wrong type."""
        from demosaic.sim.camera import LEVELS
        from demosaic.schema import check_choice

        check_choice(self.illuminant, tuple(ILLUMINANTS), f"{prefix}illuminant")
        for key, low, high in (("wb_error", 0.0, 1.0), ("exposure", 1e-6, 16.0), ("bits", 0, 64)):
            value = getattr(self, key)
            try:
                ok = math.isfinite(float(value)) and low <= float(value) <= high
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ConfigError(f"{prefix}{key}={value!r} must be a number in [{low:g}, {high:g}]")
        if int(self.bits) not in LEVELS:
            raise ConfigError(f"{prefix}bits={self.bits!r} must be one of {sorted(LEVELS)}")

    @property
    def light(self) -> np.ndarray:
        """``(3,)`` scene-light gains in camera RGB (green 1)."""
        r, b = ILLUMINANTS[self.illuminant]
        return np.array([r, 1.0, b])

    def tag(self) -> str:
        """File-name suffix of non-default conditions (``""`` for the defaults), e.g.
        ``"_tungsten_12bit_wb0.1_exp2"``."""
        d = CaptureConditions()
        parts = [self.illuminant] if self.illuminant != d.illuminant else []
        parts += [f"{int(self.bits)}bit"] if int(self.bits) != d.bits else []
        parts += [f"wb{float(self.wb_error):g}"] if float(self.wb_error) != d.wb_error else []
        parts += [f"exp{float(self.exposure):g}"] if float(self.exposure) != d.exposure else []
        return "".join(f"_{p}" for p in parts)

    def label(self) -> str:
        """Short text for reports, e.g. ``"tungsten, 12 bit, WB error 0.1, exposure x2"``."""
        parts = [self.illuminant, f"{int(self.bits)} bit"]
        if self.wb_error:
            parts.append(f"WB error {float(self.wb_error):g}")
        if self.exposure != 1.0:
            parts.append(f"exposure x{float(self.exposure):g}")
        return ", ".join(parts)


@dataclasses.dataclass(frozen=True)
class CameraProtocol:
    """Settings of the camera protocol.

    Attributes:
        family: ``"xtrans"`` or ``"bayer"`` (the method's CFA family).
        iso: Fixed ISO of every capture (> 0).
        camera: Body name (model or "make model"); ``None`` = :data:`DEFAULT_BODIES`.
        seed: Base seed; phases/margins depend on ``(seed, index)``, noise on
            ``(seed, index, iso)``.
        max_margin: Largest masked margin per side (px).
        border: px excluded by the metrics on every side.
        conditions: Light, white-balance error, bit depth and exposure
            (:class:`CaptureConditions`; the defaults are the published tables' daylight).
    """

    family: str = "xtrans"
    iso: float = DEFAULT_ISO
    camera: str | None = None
    seed: int = 0
    max_margin: int = 12
    border: int = 12
    conditions: CaptureConditions = CaptureConditions()

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the key of an invalid setting."""
        if self.family not in CANONICAL:
            raise ConfigError(f"camera protocol: CFA family {self.family!r} is neither xtrans nor bayer")
        try:
            iso = float(self.iso)
        except (TypeError, ValueError):
            raise ConfigError(f"iso={self.iso!r} is not a number; use e.g. iso=800") from None
        if not (math.isfinite(iso) and iso > 0):
            raise ConfigError(f"iso={self.iso!r} must be a positive number, e.g. iso=800")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"protocol_seed={self.seed!r} must be an integer >= 0")
        if self.camera is not None and not str(self.camera).strip():
            raise ConfigError("camera= is empty; give a body name such as camera=X-T3, or null")
        if not 0 <= int(self.max_margin) <= 64:
            raise ConfigError(f"max_margin={self.max_margin} must be in [0, 64] px")
        if self.border < 0:
            raise ConfigError(f"border={self.border} must be >= 0")
        self.conditions.check()
        self.body()

    def body(self) -> CameraBody:
        """The camera body (raises ConfigError naming ``camera`` when unknown)."""
        name = self.camera or DEFAULT_BODIES[self.family]
        try:
            return body_by_name(name, self.family)
        except ConfigError as exc:
            raise ConfigError(f"camera={name!r}: {exc}; use camera=null for the default "
                              f"{DEFAULT_BODIES[self.family]}") from None

    @property
    def pattern(self) -> CFAPattern:
        return CANONICAL[self.family]


@dataclasses.dataclass
class CameraCase:
    """One truth image captured as a DNG.

    Attributes:
        name, index: Image name and position in the set.
        dng: The DNG (visible area ``H x W`` = the truth's size, inside ``margins``).
        padded: Padded copy for LibRaw (bottom/right to >= 512 px, same phase) or ``None``.
        target: ``(3, H, W)`` float32 truth in balanced camera RGB (see the module doc).
        body: The camera; ``multipliers``: ``(3,)`` as-shot white balance (G = 1).
        phase: ``(dy, dx)`` of the canonical pattern at the truth's pixel ``(0, 0)``.
        margins: ``(top, left, bottom, right)`` px; ``layout``: ``(P, P)`` visible top-left CFA.
        meta: The sidecar's content.
    """

    name: str
    index: int
    dng: Path
    padded: Path | None
    target: np.ndarray
    body: CameraBody
    multipliers: np.ndarray
    phase: tuple[int, int]
    margins: tuple[int, int, int, int]
    layout: np.ndarray
    meta: dict[str, Any]

    @property
    def srgb_matrix(self) -> np.ndarray:
        """``(3, 3)`` balanced camera RGB -> linear sRGB of the body."""
        return camera_to_output_matrix(self.body.xyz_to_cam, "srgb")


def geometry(protocol: CameraProtocol, index: int) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Deterministic ``((dy, dx), (top, left, bottom, right))`` of image ``index``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(protocol.seed), int(index)]))
    p = protocol.pattern.period
    dy, dx = (int(v) for v in rng.integers(0, p, size=2))
    top, left, bottom, right = (int(v) for v in rng.integers(0, int(protocol.max_margin) + 1, size=4))
    if protocol.family == "bayer":  # LibRaw drops a row/column after odd Bayer margins
        top, left = top - top % 2, left - left % 2
    return (dy, dx), (top, left, bottom, right)


def capture_rng(protocol: CameraProtocol, index: int) -> np.random.Generator:
    """The generator of image ``index``'s capture (noise) at the protocol's ISO."""
    key = int(round(10.0 * float(protocol.iso)))
    return np.random.default_rng(np.random.SeedSequence([int(protocol.seed), int(index), key]))


def sim_config(conditions: CaptureConditions | None = None) -> CameraSimConfig:
    """The simulation settings of ``conditions`` (default: daylight, exact white balance, 14
    bits, default headroom). The light itself is passed to ``simulate_capture`` as ``light``."""
    c = conditions or CaptureConditions()
    return CameraSimConfig(enabled=True, illuminant_sigma=0.0, wb_error=float(c.wb_error),
                           bits=[int(c.bits)], headroom=CameraSimConfig.headroom * float(c.exposure))


def array_sha1(arr: np.ndarray) -> str:
    """SHA-1 of an array's dtype, shape and bytes (the sidecar's truth and raw hashes)."""
    a = np.ascontiguousarray(arr)
    return hashlib.sha1(str((a.dtype.str, a.shape)).encode() + a.tobytes()).hexdigest()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def prepare_case(name: str, rgb: np.ndarray, index: int, protocol: CameraProtocol,
                 cache_dir: str | os.PathLike[str]) -> CameraCase:
    """Simulate image ``index``'s capture and write (or reuse) its DNG in ``cache_dir``.

    Args:
        name: Image name (file stem; made file-name safe).
        rgb: ``(3, H, W)`` linear sRGB truth (white 1.0), ``H, W >= 22``.
        index: Position in the set (seeds).
        protocol: The settings.
        cache_dir: Folder of the DNGs and their ``.json`` sidecars.

    Returns:
        :class:`CameraCase`.
    """
    arr = np.ascontiguousarray(np.asarray(rgb, dtype=np.float32))
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ConfigError(f"camera protocol image {name!r}: expected (3, H, W) linear sRGB, got {arr.shape}")
    h, w = arr.shape[1:]
    if min(h, w) < 22:
        raise ConfigError(f"camera protocol image {name!r} is {h}x{w} px; raw files need at "
                          "least 22 px per side (LibRaw's limit)")
    body = protocol.body()
    pattern = protocol.pattern
    p = pattern.period
    (dy, dx), margins = geometry(protocol, index)
    layout = pattern.shifted(dy, dx)
    cfg = sim_config(protocol.conditions)
    _, cap = capture_scene(arr, layout, iso=float(protocol.iso), body=body,
                           rng=capture_rng(protocol, index), cfg=cfg, light=protocol.conditions.light)
    folder = Path(cache_dir)
    stem = safe_name(name)
    dng, side = folder / f"{stem}.dng", folder / f"{stem}.json"
    need_pad = min(h, w) < MIN_SIDE
    padded = folder / f"{stem}.pad{MIN_SIDE}.dng" if need_pad else None
    meta: dict[str, Any] = {
        "protocol_version": PROTOCOL_VERSION, "name": str(name), "index": int(index),
        "seed": int(protocol.seed), "iso": float(protocol.iso), "family": protocol.family,
        "camera": body.name, "phase": [dy, dx], "margins": list(margins),
        "layout": layout.tolist(), "size": [h, w],
        "multipliers": [float(v) for v in cap.multipliers], "black": cap.black, "white": cap.white,
        "headroom": cfg.headroom, "bits": int(cfg.bits[0]), "noise": [float(v) for v in cap.noise],
        "conditions": dataclasses.asdict(protocol.conditions),
        "truth_sha1": array_sha1(arr), "raw_sha1": array_sha1(cap.raw),
        "padded_to": [max(h, MIN_SIDE), max(w, MIN_SIDE)] if need_pad else None,
    }
    old = _read_json(side)
    fresh = old == meta and dng.is_file() and (padded is None or padded.is_file())
    if not fresh:
        folder.mkdir(parents=True, exist_ok=True)
        model = f"camera-protocol {body.model}"
        write_capture(dng, cap, layout, margins=margins, model=model)
        if padded is not None:
            big = phase_extend(cap.raw, p, bottom=max(0, MIN_SIDE - h), right=max(0, MIN_SIDE - w))
            write_capture(padded, cap, layout, model=model, raw=big)
        with atomic_path(side) as tmp:
            tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        log.debug("wrote %s (%s, ISO %g, phase %s, margins %s)", dng, body.name, protocol.iso,
                  (dy, dx), margins)
    return CameraCase(str(name), int(index), dng, padded, cap.target, body,
                      np.asarray(cap.multipliers, dtype=np.float64), (dy, dx), margins, layout, meta)


__all__ = ["CameraCase", "CameraProtocol", "CaptureConditions", "DEFAULT_BODIES", "DEFAULT_ISO",
           "ILLUMINANTS", "PROTOCOL_VERSION", "array_sha1", "capture_rng", "geometry", "prepare_case",
           "sim_config"]
