"""Reading camera raw files with rawpy/LibRaw: :func:`read_raw` -> :class:`RawImage`.

This is the only module that reads raw files for their data. LibRaw's own development
(baselines, the raw teacher, the camera protocol) is :func:`demosaic.io.libraw.develop`, which
opens files with :func:`open_raw` (the same clear :class:`~demosaic.errors.RawReadError`
messages); :func:`visible_layout` gives the CFA of the visible area.

What :func:`read_raw` returns (all about the **visible area**, LibRaw's ``raw_image_visible``,
i.e. the sensor minus its masked margins; for DNG files that is the ``ActiveArea``):

- ``cfa``: ``(H, W)`` float32 linear light, ``(raw - black) / (white - black)`` with the
  black level of each pixel's own colour channel. **Not clipped**: noise below black gives
  small negatives, and nothing is clamped at 1.0.
- ``layout``: ``(P, P)`` channel indices (0 = R, 1 = G, 2 = B) of the visible area's top-left
  pixels, so pixel ``(y, x)`` has colour ``layout[y % P, x % P]``. It is derived pixel by
  pixel from LibRaw's colour of each visible pixel (``LibRaw::COLOR`` in visible
  coordinates), not from rawpy's ``raw_pattern``/``raw_colors_visible``: those evaluate the
  colour at full-sensor coordinates and, for X-Trans, index LibRaw's 6x6 table with negative
  numbers when the top or left margin exceeds 6 px, which returns garbage.
- ``alignment``: :func:`demosaic.cfa.align` of the layout: crop ``(dy, dx)`` to canonical phase.

Known limits: rawpy exposes 4 per-colour black levels only; a black-level pattern finer than
per colour (LibRaw's ``cblack[6+]``, e.g. a 6x6 ``BlackLevelRepeatDim`` in a DNG) is not
visible through rawpy and is ignored beyond its common part. A truncated losslessly
compressed raw may decode without any LibRaw error (LibRaw fills missing data); truncated
uncompressed data raises an I/O error, which becomes a :class:`RawReadError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import rawpy
import torch

from demosaic.cfa import Alignment, CFAPattern, align, crop_to_canonical
from demosaic.color import D65_XYZ, normalize_multipliers, xyz_to_cam_from_rgb_cam
from demosaic.errors import CFAError, DemosaicError, RawReadError
from demosaic.io.dng import read_noise_profile
from demosaic.io.metadata import CaptureMetadata, read_metadata
from demosaic.noise.profile import NoiseProfile

log = logging.getLogger(__name__)

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

_LIBRAW = ".".join(str(v) for v in rawpy.libraw_version)
#: Side of the block of LibRaw colour indices sampled at the visible top-left: a multiple
#: of every CFA period LibRaw describes (2, 6, and the 8-row ``filters`` bit pattern).
_BLOCK = 24

# --------------------------------------------------------------------------------------
# Orientation
# --------------------------------------------------------------------------------------

#: TIFF/EXIF ``Orientation`` (1..8) -> LibRaw ``sizes.flip`` (dcraw's table).
TIFF_ORIENTATION_TO_FLIP: dict[int, int] = {1: 0, 2: 1, 3: 3, 4: 2, 5: 4, 6: 6, 7: 7, 8: 5}


def apply_orientation(img: ArrayT, flip: int) -> ArrayT:
    """Turn an image stored in sensor orientation upright, as LibRaw's output would be.

    ``flip`` is LibRaw's ``sizes.flip`` (:attr:`RawImage.orientation`), a 3-bit field:
    bit 0 (1) mirrors left-right, bit 1 (2) mirrors top-bottom, then bit 2 (4) transposes
    (swaps rows and columns). Common values: 0 = as stored, 3 = rotate 180 degrees,
    5 = rotate 90 degrees counter-clockwise, 6 = rotate 90 degrees clockwise
    (:data:`TIFF_ORIENTATION_TO_FLIP` maps EXIF codes).

    Apply it to demosaicked **images** only; flipping a mosaic changes its CFA layout.

    Args:
        img: ``(..., H, W)``, numpy or torch.
        flip: 0..7.

    Returns:
        ``(..., H, W)`` or ``(..., W, H)`` when transposed; same type (numpy: contiguous).
    """
    if flip not in range(8):
        raise DemosaicError(f"orientation flip must be in 0..7 (LibRaw sizes.flip), got {flip!r}")
    if isinstance(img, torch.Tensor):
        out = img
        if flip & 1:
            out = torch.flip(out, dims=(-1,))
        if flip & 2:
            out = torch.flip(out, dims=(-2,))
        if flip & 4:
            out = out.transpose(-2, -1)
        return out.contiguous()
    out = img
    if flip & 1:
        out = out[..., ::-1]
    if flip & 2:
        out = out[..., ::-1, :]
    if flip & 4:
        out = np.swapaxes(out, -2, -1)
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_raw(path: str | os.PathLike[str]) -> Iterator[rawpy.RawPy]:
    """Open and unpack a raw file with rawpy, turning every LibRaw failure into a
    :class:`RawReadError` that names the file and what to do.

    The raw data is unpacked on entry, so truncated files fail here rather than later.
    LibRaw errors raised inside the ``with`` block (e.g. from ``postprocess``) are wrapped
    too. The sensor type is not checked here; see :func:`visible_layout`.

    Example (LibRaw's development itself is :func:`demosaic.io.libraw.develop`)::

        with open_raw("a.raf") as raw:
            layout, alignment = visible_layout(raw, "a.raf")
    """
    p = Path(path)
    if not p.exists():
        raise RawReadError(f"raw file {p} does not exist; check the path")
    if not p.is_file():
        raise RawReadError(f"raw path {p} is not a file; pass a camera raw file (.RAF, .DNG ...)")
    try:
        raw = rawpy.imread(str(p))
    except rawpy.LibRawFileUnsupportedError as exc:
        raise RawReadError(
            f"{p} is not a camera raw file LibRaw {_LIBRAW} can read ({_msg(exc)}); pass the "
            "original raw (.RAF, .DNG, .NEF, .CR2 ...), not a developed image or another file"
        ) from exc
    except (rawpy.LibRawIOError, rawpy.LibRawDataError) as exc:
        raise RawReadError(
            f"{p} is truncated or corrupt ({_msg(exc)}); copy the file again from its source"
        ) from exc
    except rawpy.LibRawError as exc:
        raise RawReadError(f"LibRaw {_LIBRAW} cannot open {p}: {_msg(exc)}") from exc
    except OSError as exc:
        raise RawReadError(f"cannot read raw file {p}: {exc}") from exc
    with raw:
        try:
            raw.unpack()
        except (rawpy.LibRawIOError, rawpy.LibRawDataError) as exc:
            raise RawReadError(
                f"{p} is truncated or corrupt: LibRaw could not unpack its raw data "
                f"({_msg(exc)}); copy the file again from its source"
            ) from exc
        except rawpy.LibRawError as exc:
            raise RawReadError(f"LibRaw {_LIBRAW} cannot unpack {p}: {_msg(exc)}") from exc
        try:
            yield raw
        except rawpy.LibRawError as exc:  # small X-Trans images: see demosaic.io.libraw
            raise RawReadError(f"LibRaw {_LIBRAW} failed while processing {p}: {_msg(exc)}") from exc


def _msg(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return f"{type(exc).__name__}: {text}"


# --------------------------------------------------------------------------------------
# CFA of the visible area
# --------------------------------------------------------------------------------------


def _colour_index_block(raw: rawpy.RawPy, height: int, width: int) -> np.ndarray:
    """LibRaw colour indices (0..3, meaning given by ``color_desc``) of the visible area's
    top-left ``min(24, H) x min(24, W)`` pixels, evaluated in visible coordinates."""
    s = raw.sizes
    ny, nx = min(_BLOCK, height), min(_BLOCK, width)
    return np.array(
        [[raw.raw_color(s.top_margin + y, s.left_margin + x) for x in range(nx)] for y in range(ny)],
        dtype=np.int64,
    )


def _check_flat(raw: rawpy.RawPy, path: Path) -> None:
    if raw.raw_type != rawpy.RawType.Flat or raw.raw_image.ndim != 2:
        raise RawReadError(
            f"{path} holds already demosaiced (linear/stacked, {raw.raw_type.name}) data, not a "
            "colour filter array mosaic; pass the camera's original raw file or a CFA DNG "
            "(a 'linear DNG' from a converter cannot be demosaicked again)"
        )


def _channel_map(raw: rawpy.RawPy, indices: np.ndarray, path: Path) -> np.ndarray:
    """Map LibRaw colour indices to channel indices 0..2 by the letters of ``color_desc``."""
    desc = raw.color_desc.decode(errors="replace")
    lut = np.full(4, -1, dtype=np.int64)
    for i, letter in enumerate(desc[:4]):
        if letter in "RGB":
            lut[i] = "RGB".index(letter)
    used = sorted(set(indices.ravel().tolist()))
    bad = [i for i in used if i >= len(desc) or lut[i] < 0]
    if bad:
        colours = "".join(desc[i] if i < len(desc) else "?" for i in used)
        raise RawReadError(
            f"{path}: the sensor's colour filters are {colours!r} (LibRaw color_desc {desc!r}), "
            "not red/green/blue; only X-Trans and Bayer RGB sensors are supported"
        )
    return lut[indices]


def visible_layout(raw: rawpy.RawPy, path: str | os.PathLike[str] = "<raw>"
                   ) -> tuple[np.ndarray, Alignment]:
    """CFA layout of the visible area of an opened raw file, and its alignment.

    Args:
        raw: From :func:`open_raw`.
        path: Used in error messages.

    Returns:
        ``(layout, alignment)``: ``(P, P)`` int64 channel indices (0 = R, 1 = G, 2 = B) of the
        visible area's top-left, and :func:`demosaic.cfa.align` of it.

    Raises:
        RawReadError: for stacked/linear data, non-RGB filters (CYGM, RGBE ...), or a layout
            that is neither X-Trans nor Bayer.
    """
    p = Path(path)
    _check_flat(raw, p)
    h, w = raw.sizes.height, raw.sizes.width
    channels = _channel_map(raw, _colour_index_block(raw, h, w), p)
    try:
        alignment = align(channels)
    except CFAError as exc:
        raise RawReadError(
            f"{p}: unsupported sensor: {exc}. Only X-Trans (6x6) and Bayer (2x2) RGB sensors "
            "can be demosaicked"
        ) from exc
    period = alignment.pattern.period
    return channels[:period, :period].copy(), alignment


# --------------------------------------------------------------------------------------
# RawImage
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RawImage:
    """The visible area of a raw file, normalised to linear light, and its metadata.

    Array fields are read-only.

    Attributes:
        path: The file read.
        cfa: ``(H, W)`` float32 mosaic, ``(raw - black[c]) / (white - black[c])`` with ``c``
            each pixel's colour; unclipped (negatives and values > 1 kept). Top-left pixel
            has colour ``layout[0, 0]``: **observed** phase (crop with :meth:`canonical_cfa`).
        layout: ``(P, P)`` int64 channel indices of the visible area's top-left.
        alignment: ``cfa.align(layout)``.
        family: ``"xtrans"`` or ``"bayer"``.
        wb_multipliers: As-shot white balance ``(R, G, B)``, G = 1 (daylight if the file
            has none).
        daylight_multipliers: Daylight (D65) balance ``(R, G, B)`` from the colour matrix, G = 1.
        xyz_to_cam: ``(3, 3)`` XYZ -> camera matrix (rawpy ``rgb_xyz_matrix[:3]``; for files
            where LibRaw leaves it empty, e.g. DNG, recovered from ``cam_to_srgb`` with rows
            normalised so D65 maps to 1).
        cam_to_srgb: ``(3, 3)`` white-balanced camera RGB -> linear sRGB (LibRaw ``rgb_cam``).
        black_levels: Black level per LibRaw colour index ``(R, G, B, G2)`` in raw units.
        white_level: Saturation level in raw units.
        make, model: Camera maker and model as the file's EXIF (or header) spells them
            ("" if unknown).
        visible_size: ``(H, W)`` of the visible area (= ``cfa.shape``).
        raw_size: ``(H, W)`` of the whole sensor data including masked margins.
        margins: ``(top, left)`` offset of the visible area in the sensor data.
        orientation: LibRaw ``sizes.flip``; :func:`apply_orientation` turns outputs upright.
        metadata: The capture's EXIF (:func:`demosaic.io.metadata.read_metadata`).
        noise_profile: Its DNG ``NoiseProfile`` tag or ``None`` (:func:`.dng.read_noise_profile`).
    """

    path: Path
    cfa: np.ndarray
    layout: np.ndarray
    alignment: Alignment
    family: Literal["xtrans", "bayer"]
    wb_multipliers: tuple[float, float, float]
    daylight_multipliers: tuple[float, float, float]
    xyz_to_cam: np.ndarray
    cam_to_srgb: np.ndarray
    black_levels: tuple[float, float, float, float]
    white_level: float
    make: str
    model: str
    visible_size: tuple[int, int]
    raw_size: tuple[int, int]
    margins: tuple[int, int]
    orientation: int
    metadata: CaptureMetadata = field(default_factory=CaptureMetadata)
    noise_profile: NoiseProfile | None = None

    @property
    def pattern(self) -> CFAPattern:
        """The canonical pattern of the sensor's family."""
        return self.alignment.pattern

    def canonical_cfa(self, multiple: int | None = None) -> np.ndarray:
        """The mosaic cropped to canonical phase (``(H', W')`` float32), optionally trimmed
        at the bottom/right to multiples of ``multiple``."""
        return crop_to_canonical(self.cfa, self.alignment, multiple)

    def __repr__(self) -> str:
        h, w = self.visible_size
        return (f"RawImage({self.path.name!r}, {self.make} {self.model}, {self.family} "
                f"{w}x{h}, crop=({self.alignment.dy},{self.alignment.dx}), flip={self.orientation})")


def _normalised(values: list[float]) -> np.ndarray | None:
    """``values[:3]`` as multipliers with G = 1, or ``None`` when they are not valid ones."""
    try:
        return normalize_multipliers(values[:3])
    except DemosaicError:
        return None


def _multipliers(values: list[float], fallback: tuple[float, float, float] | None,
                 what: str, path: Path) -> tuple[float, float, float]:
    m = _normalised(values)
    if m is None:
        if fallback is None:
            log.warning("%s: no valid %s white balance (%s); using (1, 1, 1)", path, what, values)
            return (1.0, 1.0, 1.0)
        log.warning("%s: no valid %s white balance (%s); using daylight %s", path, what, values,
                    fallback)
        return fallback
    return (float(m[0]), float(m[1]), float(m[2]))


#: DNG tags: the as-shot white as CIE xy chromaticity (the alternative to ``AsShotNeutral``),
#: the two colour matrices and their calibration illuminants.
AS_SHOT_WHITE_XY, COLOR_MATRIX_1, COLOR_MATRIX_2 = 50729, 50721, 50722
CALIBRATION_ILLUMINANT_1, CALIBRATION_ILLUMINANT_2 = 50778, 50779
#: EXIF LightSource codes of daylight-like illuminants, best first (D65, D55, D50, D75, daylight).
_DAYLIGHT_CODES = (21, 20, 23, 22, 1)


def _white_balances(raw: rawpy.RawPy, path: Path
                    ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(daylight, as_shot)`` multipliers (G = 1) of an open file.

    LibRaw's ``cam_mul`` is the as-shot balance and its ``pre_mul`` the daylight one, except
    for a DNG that gives its as-shot white as ``AsShotWhiteXY``: LibRaw then leaves
    ``cam_mul`` empty and puts that white's balance in ``pre_mul`` (what its own
    ``use_camera_wb`` falls back to). That is kept as the as-shot balance, and the daylight
    one is computed from the DNG's daylight colour matrix (``1 / (ColorMatrix @ XYZ(D65))``).
    """
    pre_mul = _multipliers(list(raw.daylight_whitebalance), None, "daylight", path)
    shot = list(raw.camera_whitebalance)
    tags = None if _normalised(shot) is not None else _dng_white_tags(path)
    if tags is None:
        return pre_mul, _multipliers(shot, pre_mul, "as-shot", path)
    (x, y), matrix = tags
    log.info("%s: as-shot white balance from AsShotWhiteXY (%.4f, %.4f): %s", path, x, y,
             np.round(pre_mul, 4).tolist())
    daylight = pre_mul
    if matrix is not None:
        neutral = matrix @ D65_XYZ
        if np.all(np.isfinite(neutral)) and np.all(neutral > 0):
            daylight = _multipliers((1.0 / neutral).tolist(), pre_mul, "daylight", path)
    return daylight, pre_mul


def _dng_white_tags(path: Path) -> tuple[tuple[float, float], np.ndarray | None] | None:
    """``((x, y), daylight ColorMatrix or None)`` of a DNG with ``AsShotWhiteXY``; ``None``
    for any other file (not a DNG, no such tag, unreadable)."""
    import tifffile

    if path.suffix.lower() != ".dng":
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            values = {code: _rationals(tags.get(code)) for code in
                      (AS_SHOT_WHITE_XY, COLOR_MATRIX_1, COLOR_MATRIX_2,
                       CALIBRATION_ILLUMINANT_1, CALIBRATION_ILLUMINANT_2)}
    except Exception as exc:  # noqa: BLE001 - tifffile raises several types on odd files
        log.debug("%s: cannot read its DNG white tags (%s)", path, exc)
        return None
    xy = values[AS_SHOT_WHITE_XY]
    if xy is None or len(xy) != 2 or not (0.0 < xy[0] < 1.0 and 0.0 < xy[1] < 1.0):
        return None
    matrices = [(values[ill], values[cm]) for cm, ill in ((COLOR_MATRIX_1, CALIBRATION_ILLUMINANT_1),
                                                         (COLOR_MATRIX_2, CALIBRATION_ILLUMINANT_2))
                if values[cm] is not None and len(values[cm]) == 9]
    rank = {code: i for i, code in enumerate(_DAYLIGHT_CODES)}
    matrices.sort(key=lambda m: rank.get(int(m[0][0]) if m[0] else -1, len(rank)))
    matrix = np.asarray(matrices[0][1], dtype=np.float64).reshape(3, 3) if matrices else None
    return (xy[0], xy[1]), matrix


def _rationals(tag: object) -> list[float] | None:
    """A TIFF tag's values as floats (``None`` without the tag); (S)RATIONAL pairs divided."""
    if tag is None:
        return None
    raw_values = [float(v) for v in np.ravel(getattr(tag, "value"))]
    if getattr(tag, "dtype", None) in (5, 10):  # RATIONAL, SRATIONAL: numerator, denominator
        pairs = zip(raw_values[0::2], raw_values[1::2])
        return [n / d if d else float("nan") for n, d in pairs]
    return raw_values


def _colour_matrices(raw: rawpy.RawPy, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(cam_to_srgb, xyz_to_cam)`` of an open file (both ``(3, 3)`` float64).

    LibRaw's ``rgb_xyz_matrix`` when it has one, else recovered from its ``rgb_cam`` (DNG
    files). A file with neither (a DNG without ``ColorMatrix1``, a camera LibRaw does not know)
    is treated as LibRaw treats it: its camera RGB is taken for linear sRGB (identity
    ``rgb_cam``), with a warning that names the file, since its colours cannot be right.
    """
    cam_to_srgb = np.asarray(raw.color_matrix, dtype=np.float64)[:3, :3].copy()
    xyz_to_cam = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3, :3].copy()
    if np.any(xyz_to_cam):
        return cam_to_srgb, xyz_to_cam
    if np.all(np.isfinite(cam_to_srgb)) and abs(float(np.linalg.det(cam_to_srgb))) > 1e-9:
        log.debug("%s: LibRaw has no rgb_xyz_matrix; recovering it from rgb_cam", path)
        return cam_to_srgb, xyz_to_cam_from_rgb_cam(cam_to_srgb)
    log.warning("%s: the file has no colour matrix (no DNG ColorMatrix1, or a camera LibRaw "
                "does not know); its camera RGB is taken for linear sRGB, as LibRaw does, so "
                "colours will be off (write --color-space camera to keep camera RGB as is)", path)
    identity = np.eye(3)
    return identity, xyz_to_cam_from_rgb_cam(identity)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def read_raw(path: str | os.PathLike[str]) -> RawImage:
    """Read a camera raw file's visible area as a normalised linear mosaic.

    Args:
        path: A camera raw LibRaw can read with an X-Trans or Bayer RGB sensor (.RAF, .DNG ...).

    Returns:
        :class:`RawImage` (see its attributes for shapes, units and phase).

    Raises:
        RawReadError: missing file, not a raw, truncated/corrupt data, a sensor that is
            neither X-Trans nor Bayer RGB (CYGM, monochrome, Foveon ...), or a linear
            (already demosaiced) DNG. The message names the file.
    """
    p = Path(path)
    with open_raw(p) as raw:
        layout, alignment = visible_layout(raw, p)
        s = raw.sizes
        h, w = s.height, s.width
        black4 = np.asarray(raw.black_level_per_channel, dtype=np.float64)
        white = float(raw.white_level)
        if not np.all(white > black4):
            raise RawReadError(
                f"{p}: white level {white:g} is not above the black levels {black4.tolist()}; "
                "the file's level metadata is corrupt"
            )
        visible = raw.raw_image_visible
        if visible.shape != (h, w):  # pragma: no cover - LibRaw invariant
            raise RawReadError(f"{p}: visible raw data {visible.shape} does not match sizes {h}x{w}")
        cfa = visible.astype(np.float32)  # copies: the buffer dies with the RawPy object
        if np.all(black4 == black4[0]):
            cfa -= np.float32(black4[0])
            cfa *= np.float32(1.0 / (white - black4[0]))
        else:
            block = _colour_index_block(raw, h, w)
            reps = (-(-h // block.shape[0]), -(-w // block.shape[1]))
            black = np.tile(black4[block], reps)[:h, :w].astype(np.float32)
            cfa -= black
            cfa /= np.float32(white) - black
        cam_to_srgb, xyz_to_cam = _colour_matrices(raw, p)
        daylight, as_shot = _white_balances(raw, p)
        meta = read_metadata(p)
        image = RawImage(
            path=p,
            cfa=_readonly(cfa),
            layout=_readonly(layout),
            alignment=alignment,
            family=alignment.pattern.family,
            wb_multipliers=as_shot,
            daylight_multipliers=daylight,
            xyz_to_cam=_readonly(xyz_to_cam),
            cam_to_srgb=_readonly(cam_to_srgb),
            black_levels=tuple(float(b) for b in black4),  # type: ignore[arg-type]
            white_level=white,
            make=meta.make,
            model=meta.model,
            visible_size=(h, w),
            raw_size=(s.raw_height, s.raw_width),
            margins=(s.top_margin, s.left_margin),
            orientation=int(s.flip),
            metadata=meta, noise_profile=read_noise_profile(p),
        )
    log.info("read %r", image)
    return image
