"""The camera protocol of ``demosaic-eval``: methods measured on simulated raw files.

The clean protocol (:mod:`demosaic.evaluation.clean`) mosaics linear sRGB without noise at
the canonical phase. Real files differ: camera colour, white balance, sensor noise, black
level and quantisation, masked margins and any CFA phase. This protocol measures every
method on the **same DNG file** a camera would write, going through the same code a user's
raw goes through:

1. **Capture** (:func:`prepare_case`). For truth image number ``index`` (linear sRGB
   ``(3, H, W)``, white 1.0) a CFA phase ``(dy, dx)`` in ``[0, P)`` and sensor margins
   ``(top, left, bottom, right)`` in ``[0, max_margin]`` px (Bayer top/left even, see
   :mod:`demosaic.io.dng`) are drawn from ``SeedSequence([seed, index])`` (the same at every
   ISO); the mosaic layout is ``canonical.shifted(dy, dx)`` (the truth's pixel ``(0, 0)``
   sits at ``(dy, dx)`` of the canonical pattern). :func:`demosaic.sim.camera.simulate_capture`
   then runs with a named body (default X-T3 / ILCE-7M3), a fixed ISO, daylight
   (``illuminant_sigma=0``), exact as-shot white balance (``wb_error=0``), 14 bits and the
   default headroom and noise model, its noise drawn from ``SeedSequence([seed, index,
   round(10 * iso)])``. The raw data numbers are written as a DNG (``make="demosaic"``,
   ``model="camera-protocol <body>"``, the body's ``ColorMatrix1``, ``AsShotNeutral``) into
   ``cache_dir/<name>.dng`` with a JSON sidecar; a file whose sidecar matches (same
   settings, same truth and raw hashes) is reused. When a side is under 512 px a second,
   phase-preserving padded copy (``<name>.pad512.dng``) is written for LibRaw, whose
   Markesteijn refuses smaller images.
2. **Truth**: ``capture.target``, the clean raw-clipped scene in **balanced camera RGB**
   (``multipliers * clip(raw_clean, 0, 1)``; green 1.0 at the white level, red/blue may
   exceed 1). It is recomputed (deterministically) on every run, never read from disk.
3. **Methods** (:func:`make_runner`), each returning balanced camera RGB of the visible area:

   - a model (checkpoint, packaged default, ``bilinear``...): :func:`demosaic.io.raw.read_raw`
     then :func:`demosaic.inference.develop.develop` with ``highlights="none"`` -- exactly
     ``demosaic-infer``'s path, minus the highlight step, so the metric sees the network
     itself (clipped regions are where highlight handling, not demosaicking, decides);
   - LibRaw baselines (``markesteijn3``, ``markesteijn1``, ``vng``, ``libraw_linear``,
     ``ahd``, ``dht``): LibRaw's ``postprocess`` of the same DNG (or its padded copy) with
     the camera's white balance (``use_camera_wb``), raw colour, linear 16-bit output,
     highlight clip and no flip; LibRaw divides the multipliers by their minimum, so the
     output is ``rgb16 / 65535 * min(multipliers)`` (checked: a neutral comes out equal in
     all channels). LibRaw clips each channel at that minimum's level, so balanced values
     above ``min(multipliers)`` (usually 1.0: green) are lost, which the metric counts;
   - other baselines (``demosaicnet``, colour-demosaicing): the balanced mosaic of
     ``read_raw`` (``white_balance_mosaic``), padded to canonical phase
     (:func:`~demosaic.inference.tiling.pad_to_canonical`), ``method.demosaic``, cropped back.
4. **Metrics** (:func:`camera_metrics`), ``border`` px excluded: ``psnr`` is PSNR of the
   balanced camera RGB (peak 1.0, unclipped); the other metrics of
   :func:`demosaic.metrics.compute_all` (``psnr_srgb``, SSIM, texture, periodic score,
   false colour) and :func:`~demosaic.evaluation.clean.periodic_error_levels` are computed
   on both images converted to linear sRGB with the body's matrix
   (:func:`demosaic.color.camera_to_output_matrix`), i.e. on what a viewer sees
   (``psnr_linear_srgb`` is the linear PSNR there).

The result is an :class:`~demosaic.evaluation.clean.EvalResult` (``info["protocol"] ==
"camera"``, ``iso``, ``camera``, ``seed``), written as ``results.json``/``results.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import demosaic
from demosaic.sim.camera import CameraBody, CameraSimConfig, Capture, body_by_name, simulate_capture
from demosaic.cfa import CANONICAL, CFAPattern
from demosaic.color import camera_to_output_matrix, normalize_multipliers, white_balance_mosaic
from demosaic.evaluation.clean import ReportSpec
from demosaic.errors import ConfigError, DemosaicError
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: Bumped when the capture recipe changes (invalidates cached DNGs).
PROTOCOL_VERSION = 1
#: Camera body per CFA family when none is named.
DEFAULT_BODIES: dict[str, str] = {"xtrans": "X-T3", "bayer": "ILCE-7M3"}
#: LibRaw's Markesteijn fails (I/O error) on images with a side under this many px.
LIBRAW_MIN_SIDE = 512
#: ISO of the camera protocol when none is given.
DEFAULT_ISO = 800.0
#: Scene light of :class:`CaptureConditions` as red and blue gains in camera RGB relative to
#: daylight (D65). Tungsten (about 2850 K) moves a typical X-Trans body's as-shot multipliers
#: from about (2.1, 1, 1.5) to about (1.3, 1, 2.7); shade (about 7500 K) the other way, less.
ILLUMINANTS: dict[str, tuple[float, float]] = {"daylight": (1.0, 1.0), "tungsten": (1.6, 0.55),
                                               "shade": (0.85, 1.15)}


# --------------------------------------------------------------------------------------
# Settings and captures
# --------------------------------------------------------------------------------------


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


def _sha1(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr)
    return hashlib.sha1(str((a.dtype.str, a.shape)).encode() + a.tobytes()).hexdigest()


def safe_name(name: str) -> str:
    """A file-name-safe version of an image name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "image"


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
    from demosaic.io.dng import write_dng
    from demosaic.cfa import phase_extend

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
    cap: Capture = simulate_capture(arr, layout, capture_rng(protocol, index), cfg,
                                    body=body, iso=float(protocol.iso), light=protocol.conditions.light)
    folder = Path(cache_dir)
    stem = safe_name(name)
    dng, side = folder / f"{stem}.dng", folder / f"{stem}.json"
    need_pad = min(h, w) < LIBRAW_MIN_SIDE
    padded = folder / f"{stem}.pad{LIBRAW_MIN_SIDE}.dng" if need_pad else None
    meta: dict[str, Any] = {
        "protocol_version": PROTOCOL_VERSION, "name": str(name), "index": int(index),
        "seed": int(protocol.seed), "iso": float(protocol.iso), "family": protocol.family,
        "camera": body.name, "phase": [dy, dx], "margins": list(margins),
        "layout": layout.tolist(), "size": [h, w],
        "multipliers": [float(v) for v in cap.multipliers], "black": cap.black, "white": cap.white,
        "headroom": cfg.headroom, "bits": int(cfg.bits[0]), "noise": [float(v) for v in cap.noise],
        "conditions": dataclasses.asdict(protocol.conditions),
        "truth_sha1": _sha1(arr), "raw_sha1": _sha1(cap.raw),
        "padded_to": [max(h, LIBRAW_MIN_SIDE), max(w, LIBRAW_MIN_SIDE)] if need_pad else None,
    }
    old = _read_json(side)
    fresh = old == meta and dng.is_file() and (padded is None or padded.is_file())
    if not fresh:
        folder.mkdir(parents=True, exist_ok=True)
        common = dict(black_level=cap.black, white_level=cap.white,
                      as_shot_neutral=cap.as_shot_neutral, color_matrix=body.xyz_to_cam,
                      make="demosaic", model=f"camera-protocol {body.model}")
        write_dng(dng, cap.raw, layout, margins=margins, **common)
        if padded is not None:
            big = phase_extend(cap.raw, p, bottom=max(0, LIBRAW_MIN_SIDE - h),
                               right=max(0, LIBRAW_MIN_SIDE - w))
            write_dng(padded, big, layout, **common)
        with atomic_path(side) as tmp:
            tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        log.debug("wrote %s (%s, ISO %g, phase %s, margins %s)", dng, body.name, protocol.iso,
                  (dy, dx), margins)
    return CameraCase(str(name), int(index), dng, padded, cap.target, body,
                      np.asarray(cap.multipliers, dtype=np.float64), (dy, dx), margins, layout, meta)


# --------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------


def libraw_develop(path: str | os.PathLike[str], algorithm: str, size: tuple[int, int] | None = None
                   ) -> np.ndarray:
    """LibRaw's demosaic of a raw file as balanced camera RGB ``(3, H, W)`` float32.

    Args:
        path: The raw file (visible area used; LibRaw's own margins handling).
        algorithm: ``rawpy.DemosaicAlgorithm`` member name (``"AHD"``: Markesteijn 3-pass on
            X-Trans, ``"PPG"``: 1-pass, ``"VNG"``, ``"LINEAR"`` ...).
        size: Crop the output to ``(H, W)`` at the top-left (for a padded copy).

    Returns:
        ``rgb16 / 65535 * min(multipliers)``: white level 1.0 for the channel with the
        smallest multiplier (green for daylight), as :func:`demosaic.inference.develop.develop`.

    Raises:
        RawReadError: LibRaw fails; DemosaicError: output smaller than ``size``.
    """
    from demosaic.io.libraw import libraw_params, libraw_single_thread
    from demosaic.io.raw import open_raw

    with libraw_single_thread(), open_raw(path) as raw:
        mult = normalize_multipliers(list(raw.camera_whitebalance)[:3])
        rgb = raw.postprocess(params=libraw_params(algorithm, white_balance="camera"))
    out = rgb.transpose(2, 0, 1).astype(np.float32) * np.float32(float(mult.min()) / 65535.0)
    if size is not None:
        h, w = size
        if out.shape[1] < h or out.shape[2] < w:
            raise DemosaicError(f"LibRaw ({algorithm}) returned {out.shape[1]}x{out.shape[2]} px "
                                f"for {path}, expected at least {h}x{w}")
        out = out[:, :h, :w]
    return np.ascontiguousarray(out)


def make_runner(method: Any, device: str | torch.device = "cpu", tile: int | None = None,
                highlights: str = "none") -> tuple[Callable[[CameraCase], np.ndarray], str]:
    """How ``method`` develops a :class:`CameraCase`: ``(runner, route)``.

    ``route`` is ``"develop"`` (a model: ``read_raw`` + :func:`~demosaic.inference.develop.develop`
    with ``highlights``, off by default), ``"libraw"`` (a :class:`~demosaic.models.baselines.LibRawBaseline`: LibRaw
    on the DNG) or ``"mosaic"`` (any other baseline: its ``demosaic`` on the balanced mosaic).
    Each runner returns ``(3, H, W)`` float32 balanced camera RGB of the visible area.
    """
    from demosaic.io.raw import read_raw
    from demosaic.models.baselines import LIBRAW_ALGORITHMS, LibRawBaseline

    dev = torch.device(device)
    if isinstance(method, LibRawBaseline):
        algorithm = LIBRAW_ALGORITHMS[method.name][0]

        def run_libraw(case: CameraCase) -> np.ndarray:
            path = case.padded if case.padded is not None else case.dng
            return libraw_develop(path, algorithm, size=tuple(case.target.shape[1:]))  # type: ignore[arg-type]

        return run_libraw, "libraw"
    if isinstance(method, torch.nn.Module):
        from demosaic.inference.develop import DEFAULT_TILE, develop

        net = method.to(dev).eval()

        def run_develop(case: CameraCase) -> np.ndarray:
            raw = read_raw(case.dng)
            with torch.inference_mode():
                rgb = develop(raw, net, device=dev, tile=tile if tile is not None else DEFAULT_TILE,
                              highlights=highlights)
            return rgb.float().cpu().numpy()

        return run_develop, "develop"
    if not hasattr(method, "demosaic"):
        raise ConfigError(f"cannot evaluate {type(method).__name__} under the camera protocol: "
                          "it needs .pattern and .demosaic()")
    from demosaic.inference.tiling import pad_to_canonical

    def run_mosaic(case: CameraCase) -> np.ndarray:
        raw = read_raw(case.dng)
        bal = white_balance_mosaic(np.asarray(raw.cfa, dtype=np.float32), raw.layout, raw.wb_multipliers)
        padded, (a, b) = pad_to_canonical(torch.from_numpy(np.ascontiguousarray(bal)), raw.alignment)
        with torch.inference_mode():
            out = method.demosaic(padded[None].to(dev))
        return np.ascontiguousarray(out[..., a:, b:].float().cpu().numpy())

    return run_mosaic, "mosaic"


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def to_srgb_linear(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``matrix @ rgb`` per pixel: ``(3, H, W)`` float32 (balanced camera RGB -> linear sRGB)."""
    return np.einsum("ck,khw->chw", np.asarray(matrix, np.float32), np.asarray(rgb, np.float32))


def camera_metrics(pred: np.ndarray, target: np.ndarray, pred_srgb: np.ndarray,
                   target_srgb: np.ndarray, border: int, period: int) -> dict[str, float]:
    """Metrics of one developed image (see the module docstring, step 4).

    Args:
        pred, target: ``(3, H, W)`` balanced camera RGB (white 1.0 in green).
        pred_srgb, target_srgb: The same in linear sRGB through the body's matrix
            (:func:`to_srgb_linear` with :attr:`CameraCase.srgb_matrix`).
        border: px excluded per side; period: CFA period (periodic metrics).

    Returns:
        ``psnr`` (balanced camera RGB, peak 1), ``psnr_linear_srgb``, ``psnr_srgb``, ``ssim``,
        ``texture_score``, ``periodic_artifact_score``, ``false_colour_score``, ``hdr_error``,
        ``periodic_levels`` (all but ``psnr`` on the linear-sRGB view).
    """
    from demosaic.evaluation.clean import _metrics_of, periodic_error_levels
    from demosaic.metrics import psnr

    out = _metrics_of(torch.from_numpy(pred_srgb), torch.from_numpy(target_srgb), border, period)
    out["psnr_linear_srgb"] = out["psnr"]
    out["psnr"] = float(psnr(pred, target, peak=1.0, border=border))
    out["periodic_levels"] = periodic_error_levels(pred_srgb, target_srgb, border, period)
    return out


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


def evaluate_camera(
    method: Any,
    images: Iterable[Any],
    *,
    iso: float = DEFAULT_ISO,
    camera: str | None = None,
    seed: int = 0,
    conditions: CaptureConditions | None = None,
    highlights: str = "none",
    cache_dir: str | os.PathLike[str],
    border: int = 12,
    max_margin: int = 12,
    report: ReportSpec | None = None,
    device: str | torch.device = "cpu",
    tile: int | None = None,
) -> Any:
    """Evaluate a model or baseline under the camera protocol (module docstring).

    Args:
        method: A model (``nn.Module`` with ``pattern``), a LibRaw baseline or any baseline
            with ``pattern`` and ``demosaic``; its CFA family picks the simulated sensor.
        images: ``(name, rgb_linear)`` or ``(name, rgb_linear, info)`` items, as
            :func:`demosaic.evaluation.clean.evaluate` takes (e.g. ``images_from_dataset``).
        iso, camera, seed, max_margin, conditions: Capture settings (:class:`CameraProtocol`).
        highlights: Highlight mode of the models' ``develop`` (default ``"none"``: the metric
            sees the network; ``"clip"`` is ``demosaic-infer``'s default). LibRaw always clips.
        cache_dir: Folder of the DNGs (reused across methods and runs).
        border: px excluded by the metrics.
        report: :class:`~demosaic.evaluation.clean.ReportSpec` (names, output folder,
            progress bar, extra ``results.json`` fields); its worst crops are PNGs of truth |
            output in the sRGB view under ``out_dir/crops``, and the worst window of every
            image is recorded in ``info["worst_windows"]`` anyway as ``[score, y, x]``.
            Default: nothing written, no crops.
        device, tile: Torch device and tile size of models.

    Returns:
        :class:`~demosaic.evaluation.clean.EvalResult` with ``info["protocol"] == "camera"``.
    """
    from tqdm import tqdm

    from demosaic.evaluation.clean import (
        EvalResult, ImageResult, _mean, _normalise_item, _worst_window, push_worst,
    )

    pattern = getattr(method, "pattern", None)
    if not isinstance(pattern, CFAPattern):
        raise ConfigError(f"cannot evaluate {type(method).__name__}: it has no CFA pattern")
    protocol = CameraProtocol(family=pattern.family, iso=iso, camera=camera, seed=seed,
                              max_margin=max_margin, border=border,
                              conditions=conditions or CaptureConditions())
    protocol.check()
    p = pattern.period
    rep = report or ReportSpec(worst_crops=0)
    crop_size, worst_crops, evalset = rep.crop_size // p * p, rep.worst_crops, rep.evalset
    runner, route = make_runner(method, device, tile, highlights)
    label, kind, out_path = rep.label(method), rep.kind_of(method), rep.out_path

    results: list[ImageResult] = []
    windows: dict[str, list[float]] = {}
    cases: list[dict[str, Any]] = []
    candidates: list[tuple[float, int, dict[str, Any]]] = []
    total_px, total_s = 0, 0.0
    items = (_normalise_item(it, i) for i, it in enumerate(images))
    for index, (img_name, rgb, extra) in enumerate(tqdm(items, desc=f"camera {label}", unit="img",
                                                       disable=not rep.progress)):
        case = prepare_case(img_name, rgb, index, protocol, cache_dir)
        metrics, ps, ts, dt = _measure_case(runner, case, label, img_name, border, p)
        h, w = case.target.shape[1:]
        total_px += h * w
        total_s += dt
        results.append(ImageResult(img_name, h, w, dt, metrics, extra.get("type_id"),
                                   extra.get("type_name")))
        cases.append({"name": img_name, "dng": str(case.dng), "phase": list(case.phase),
                      "margins": list(case.margins),
                      "multipliers": [round(float(v), 6) for v in case.multipliers]})
        found = _worst_window(ps, ts, crop_size, border, p) if crop_size >= p else None
        if found is not None:
            score, y, x = found
            windows[img_name] = [score, float(y), float(x)]
            if out_path is not None and worst_crops > 0:
                push_worst(candidates, worst_crops, score, index,
                           {"name": img_name, "y": y, "x": x,
                            "truth": ts[:, y:y + crop_size, x:x + crop_size].copy(),
                            "pred": ps[:, y:y + crop_size, x:x + crop_size].copy()})
        log.debug("%s %s: PSNR %.3f dB (%.2f s)", label, img_name, metrics["psnr"], dt)
    if not results:
        raise ConfigError(f"evaluation set {evalset or '?'} has no images")

    mean = _mean([r.metrics for r in results])
    mps = total_px / total_s / 1e6 if total_s > 0 else float("nan")
    meta = _camera_meta(protocol, route, highlights, device, cache_dir, results, mean, p, windows,
                        crop_size, cases, rep.info)
    result = EvalResult(label, kind, pattern.name, evalset, border, results, mean, mps, {}, [], meta,
                        str(out_path) if out_path is not None else None)
    if out_path is not None:
        if candidates:
            result.crops = _save_crops(sorted(candidates, key=lambda c: -c[0]), label, crop_size,
                                       rep.zoom, out_path)
        write_camera_results(result, out_path)
    log.info("%s on %s, camera protocol (%s, ISO %g, %d images): PSNR %.3f dB (camera RGB), "
             "sRGB PSNR %.3f dB", label, evalset or "images", meta["camera"], float(iso),
             len(results), mean.get("psnr", float("nan")), mean.get("psnr_srgb", float("nan")))
    return result


def _measure_case(runner: Any, case: CameraCase, label: str, img_name: str, border: int,
                  period: int) -> tuple[dict[str, float], np.ndarray, np.ndarray, float]:
    """Develop one capture (timed) and measure it.

    Returns:
        ``(metrics, prediction as linear sRGB, truth as linear sRGB, seconds)``.
    """
    from demosaic.evaluation.clean import artifact_flag
    from demosaic.metrics import PERIODIC_ARTIFACT_THRESHOLD

    t0 = time.perf_counter()
    pred = runner(case)
    dt = time.perf_counter() - t0
    if pred.shape != case.target.shape:
        raise DemosaicError(f"{label} returned {pred.shape} for the {case.target.shape} "
                            f"capture of {img_name!r} ({case.dng})")
    mat = case.srgb_matrix
    ps, ts = to_srgb_linear(pred, mat), to_srgb_linear(case.target, mat)
    metrics = camera_metrics(pred, case.target, ps, ts, border, period)
    metrics["periodic_artifact_flag"] = float(artifact_flag(
        metrics.get("periodic_artifact_score", 0.0), metrics["periodic_levels"],
        PERIODIC_ARTIFACT_THRESHOLD))
    return metrics, ps, ts, dt


def _camera_meta(protocol: CameraProtocol, route: str, highlights: str, device: str | torch.device,
                 cache_dir: str | os.PathLike[str], results: list[Any], mean: dict[str, float],
                 period: int, windows: dict[str, list[float]], crop_size: int,
                 cases: list[dict[str, Any]], info: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``info`` of a camera-protocol :class:`~demosaic.evaluation.clean.EvalResult`."""
    from demosaic.evaluation.clean import set_verdicts

    body = protocol.body()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device), "torch_threads": torch.get_num_threads(),
        "versions": {"demosaic": demosaic.__version__, "torch": torch.__version__},
        "protocol": "camera",
        "camera_protocol": {
            "version": PROTOCOL_VERSION, "iso": float(protocol.iso), "camera": body.name,
            "seed": int(protocol.seed), "border": protocol.border,
            "max_margin": protocol.max_margin, "route": route,
            "highlights": "libraw clip" if route == "libraw" else highlights,
            "capture": ("daylight, exact as-shot WB, 14 bit, default headroom/noise"
                        if protocol.conditions == CaptureConditions()
                        else protocol.conditions.label() + ", default noise model"),
            "conditions": dataclasses.asdict(protocol.conditions),
            "metrics": "psnr: balanced camera RGB (peak 1); others: linear sRGB via the body matrix",
            "cache_dir": str(cache_dir),
        },
        "iso": float(protocol.iso), "camera": body.name, "seed": int(protocol.seed),
        "flagged_images": [r.name for r in results if r.metrics.get("periodic_artifact_flag")],
        "verdicts": set_verdicts(mean, period), "worst_windows": windows, "crop_size": crop_size,
        "cases": cases,
        **dict(info or {}),
    }


def _save_crops(ranked: list[tuple[float, int, dict[str, Any]]], label: str, size: int, zoom: int,
                out_dir: Path) -> list[Any]:
    from demosaic.evaluation.clean import CropResult
    from demosaic.io.images import write_png

    crops = []
    for rank, (score, _, e) in enumerate(ranked, start=1):
        gap = np.ones((3, size * zoom, 4), np.float32)
        big = [np.repeat(np.repeat(a, zoom, axis=1), zoom, axis=2) for a in (e["truth"], e["pred"])]
        rel = Path("crops") / f"worst{rank:02d}_{safe_name(e['name'])}_y{e['y']}_x{e['x']}.png"
        write_png(out_dir / rel, np.concatenate([big[0], gap, big[1]], axis=2))
        crops.append(CropResult(e["name"], e["y"], e["x"], size, score, rel.as_posix(), ["truth", label]))
    return crops


def render_camera_markdown(result: Any) -> str:
    """``results.md`` of a camera-protocol result: the clean protocol's tables plus a line
    stating the capture settings and metric spaces."""
    from demosaic.evaluation.clean import render_markdown

    cp = result.info.get("camera_protocol", {})
    text = render_markdown(result)
    head, sep, rest = text.partition("\n\n")
    line = (f"- Camera protocol: {cp.get('camera', '?')}, ISO {cp.get('iso', '?'):g}, seed "
            f"{cp.get('seed', '?')}, random CFA phase and margins <= {cp.get('max_margin', '?')} px, "
            f"route `{cp.get('route', '?')}` (highlights {cp.get('highlights', '?')}); PSNR in "
            "balanced camera RGB (peak 1.0), sRGB PSNR / SSIM / periodic / false colour on the "
            "body-matrix sRGB view\n")
    return head + sep + line + rest if sep else text + line


def write_camera_results(result: Any, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` (atomically) into ``out_dir``."""
    from demosaic.evaluation.clean import write_results

    return write_results(result, out_dir, render=render_camera_markdown)


__all__ = ["CameraCase", "CameraProtocol", "CaptureConditions", "DEFAULT_BODIES", "DEFAULT_ISO",
           "ILLUMINANTS", "LIBRAW_MIN_SIDE",
           "PROTOCOL_VERSION", "camera_metrics", "capture_rng", "evaluate_camera", "geometry",
           "libraw_develop", "make_runner", "prepare_case",
           "render_camera_markdown", "safe_name", "sim_config", "to_srgb_linear",
           "write_camera_results"]
