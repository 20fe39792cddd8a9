"""Writing a mosaic as a CFA DNG that LibRaw (and :func:`demosaic.io.raw.read_raw`) reads back.

:func:`write_dng` stores one uncompressed 16-bit CFA image in IFD 0 with the DNG tags LibRaw
needs (``CFARepeatPatternDim``, ``CFAPattern``, ``BlackLevel``, ``WhiteLevel``,
``ColorMatrix1`` with ``CalibrationIlluminant1`` = D65, ``AsShotNeutral``, ``ActiveArea``,
``DefaultCropOrigin``/``DefaultCropSize``, ``Make``/``Model``/``UniqueCameraModel``,
``Orientation``; optionally ``NoiseProfile``). A 6x6 pattern is read by LibRaw as X-Trans
(``filters == 9``: rawpy ``raw_pattern`` is 6x6, ``num_colors`` 3, all LibRaw demosaics work;
Markesteijn still needs >= 512 px per side), a 2x2 pattern as Bayer. :func:`read_noise_profile`
reads a DNG's ``NoiseProfile`` tag back (LibRaw does not report it).

How LibRaw 0.22 reads these files (checked with rawpy 0.28; the tests pin it):

- ``CFAPattern`` is relative to the top-left of the ``ActiveArea`` (as in the DNG SDK), so
  the tag holds the given ``layout`` unchanged whatever the margins.
- ``ActiveArea`` becomes LibRaw's margins: ``raw_image`` is the whole stored array,
  ``raw_image_visible`` exactly the active area, including odd and > 6 px margins for
  X-Trans. For **Bayer** files LibRaw rounds odd top/left margins up to even and drops that
  first row/column from the visible area (its reported colours stay consistent with the
  data); keep Bayer margins even to get the whole ``cfa`` back.
- The visible area must be at least 22 x 22 px, or LibRaw reports "not a raw file".
- ``DefaultCropOrigin/Size`` is not applied: it only shows up in rawpy's
  ``sizes.crop_*``. This writer sets it to the whole active area.
- LibRaw leaves rawpy's ``rgb_xyz_matrix`` all zero for DNG files and derives ``rgb_cam``
  (``color_matrix``) from ``ColorMatrix1`` the dcraw way; ``AsShotNeutral`` becomes
  ``camera_whitebalance = 1 / neutral``.

Quantisation: float input ``v`` (linear, 0 = black, 1 = white) is stored as
``round(black + v * (white - black))`` clipped to ``[0, 65535]``, i.e. a step of
``1 / (white - black)``; values above 1.0 survive up to ``(65535 - black) / (white - black)``
and are clipped beyond it, values below 0 down to ``-black / (white - black)``.
``uint16`` input is stored unchanged (raw data numbers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import tifffile
import torch

from demosaic.cfa import CFAPattern, align, get_pattern, rgb_layout
from demosaic.color import XYZ_TO_SRGB
from demosaic.errors import DemosaicError
from demosaic.io.atomic import atomic_path
from demosaic.io.metadata import write_exif
from demosaic.noise.profile import NoiseProfile

log = logging.getLogger(__name__)

#: DNG tag numbers used here.
TAGS = {
    "NewSubFileType": 254, "Make": 271, "Model": 272, "Orientation": 274,
    "CFARepeatPatternDim": 33421, "CFAPattern": 33422, "DNGVersion": 50706,
    "DNGBackwardVersion": 50707, "UniqueCameraModel": 50708, "CFAPlaneColor": 50710,
    "CFALayout": 50711, "BlackLevel": 50714, "WhiteLevel": 50717,
    "DefaultCropOrigin": 50719, "DefaultCropSize": 50720, "ColorMatrix1": 50721,
    "AsShotNeutral": 50728, "CalibrationIlluminant1": 50778, "ActiveArea": 50829,
    "NoiseProfile": 51041,
}
PHOTOMETRIC_CFA = 32803
PHOTOMETRIC_LINEAR_RAW = 34892
#: CalibrationIlluminant code of D65.
ILLUMINANT_D65 = 21
_DENOM = 1_000_000
#: LibRaw (like dcraw) refuses raw images whose visible area is under 22 px per side.
MIN_SIZE = 22


def _rationals(values: np.ndarray | Sequence[float], signed: bool) -> list[int]:
    """Flatten values to (numerator, denominator) pairs for (S)RATIONAL tags."""
    out: list[int] = []
    for v in np.ravel(np.asarray(values, dtype=np.float64)):
        f = Fraction(float(v)).limit_denominator(_DENOM)
        if not signed and f < 0:
            raise DemosaicError(f"DNG RATIONAL tag value must be >= 0, got {float(v)}")
        if abs(f.numerator) > 2**31 - 1 or f.denominator > 2**31 - 1:
            raise DemosaicError(f"value {float(v)} does not fit a DNG rational")
        out += [f.numerator, f.denominator]
    return out


def _layout_array(layout: np.ndarray | Sequence[Sequence[int]] | CFAPattern | str) -> np.ndarray:
    if isinstance(layout, (CFAPattern, str)):
        return get_pattern(layout).array
    return rgb_layout(layout)


def _quantise(cfa: np.ndarray, black: int, white: int) -> np.ndarray:
    if cfa.dtype == np.uint16:
        return cfa
    if np.issubdtype(cfa.dtype, np.integer):
        if cfa.min() < 0 or cfa.max() > 65535:
            raise DemosaicError(
                f"integer mosaic values must lie in 0..65535 (raw data numbers), got "
                f"{cfa.min()}..{cfa.max()}; pass float linear values in [0, 1] instead"
            )
        return cfa.astype(np.uint16)
    if not np.issubdtype(cfa.dtype, np.floating):
        raise DemosaicError(f"mosaic dtype {cfa.dtype} is neither float nor uint16")
    if not np.all(np.isfinite(cfa)):
        raise DemosaicError("mosaic holds NaN or infinite values; cannot store them in a DNG")
    scaled = np.rint(black + cfa.astype(np.float64) * (white - black))
    clipped = int(np.count_nonzero((scaled < 0) | (scaled > 65535)))
    if clipped:
        log.warning("DNG quantisation clipped %d of %d values to [0, 65535]", clipped, cfa.size)
    return np.clip(scaled, 0, 65535).astype(np.uint16)


def write_dng(
    path: str | os.PathLike[str],
    cfa: np.ndarray | torch.Tensor,
    layout: np.ndarray | Sequence[Sequence[int]] | CFAPattern | str,
    *,
    black_level: int = 0,
    white_level: int = 65535,
    as_shot_neutral: Sequence[float] = (1.0, 1.0, 1.0),
    color_matrix: np.ndarray | Sequence[Sequence[float]] | None = None,
    margins: tuple[int, int, int, int] = (0, 0, 0, 0),
    make: str = "demosaic",
    model: str = "Synthetic",
    orientation: int = 1,
    exif: dict[str, str] | None = None,
    noise_profile: Sequence[float] | None = None,
) -> Path:
    """Write a mosaic as an uncompressed 16-bit CFA DNG (atomically).

    Args:
        path: Output file (``.dng``).
        cfa: ``(H, W)`` (or ``(1, H, W)``) mosaic, numpy or torch, ``H, W >= 22``. Float: linear light with
            0 = black, 1 = white (quantised, see the module docstring: values above 1.0 are
            kept up to ``(65535 - black) / (white - black)`` and clipped at 65535). ``uint16``
            (or another integer type within 0..65535): raw data numbers, stored as is.
        layout: ``(P, P)`` channel indices (0 = R, 1 = G, 2 = B) of ``cfa``'s top-left
            pixels, or a pattern name/:class:`~demosaic.cfa.CFAPattern` (its own phase). Must
            be an X-Trans (6x6) or Bayer (2x2) phase.
        black_level: Black level in data numbers (one value for all pixels).
        white_level: Saturation level in data numbers, ``black_level < white_level <= 65535``.
        as_shot_neutral: Camera RGB of a neutral surface (``1 / white-balance multipliers``).
        color_matrix: ``(3, 3)`` XYZ -> camera (``ColorMatrix1``, D65). Default: XYZ -> linear
            sRGB, i.e. the "camera" sees linear sRGB, so LibRaw's ``rgb_cam`` is ~identity.
        margins: ``(top, left, bottom, right)`` masked border in pixels around ``cfa``,
            filled with ``black_level`` and excluded by ``ActiveArea``. Keep top/left even
            for Bayer (LibRaw crops odd ones by one more row/column).
        make, model: ``Make``/``Model`` strings (``UniqueCameraModel`` = "make model").
        orientation: TIFF ``Orientation`` code 1..8 (1 = upright as stored).
        exif: Extra EXIF / DNG tags as Exiv2 key -> value strings (e.g.
            ``{"Exif.Photo.ISOSpeedRatings": "800"}``,
            :meth:`demosaic.io.metadata.CaptureMetadata.exif`), written after the image.
        noise_profile: The DNG ``NoiseProfile`` tag (51041, DOUBLE): ``(S, O)`` for every
            CFA plane or ``(S_R, O_R, S_G, O_G, S_B, O_B)`` (planes in ``CFAPlaneColor``
            order, R G B here): variance ``S x + O`` of a pixel of mean ``x`` in
            normalised raw units (black 0, white 1). ``None``: no tag.

    Returns:
        ``Path(path)``.

    Raises:
        DemosaicError (CFAError for the layout): on invalid arguments.
    """
    noise_tags = _noise_profile_tags(noise_profile)
    arr = cfa.detach().cpu().numpy() if isinstance(cfa, torch.Tensor) else np.asarray(cfa)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise DemosaicError(f"write_dng expects a (H, W) or (1, H, W) mosaic, got shape {arr.shape}")
    lay, family = _cfa_layout(layout)
    h, w = arr.shape
    top, left, bottom, right = _check_frame(h, w, black_level, white_level, margins, family)
    cm = XYZ_TO_SRGB if color_matrix is None else np.asarray(color_matrix, dtype=np.float64)
    cm, neutral = _check_colour(cm, as_shot_neutral, orientation, "color_matrix",
                                "a finite 3x3 XYZ->camera matrix")
    data = _quantise(arr, int(black_level), int(white_level))
    full = np.full((top + h + bottom, left + w + right), int(black_level), dtype=np.uint16)
    full[top : top + h, left : left + w] = data
    tags = [*_colour_tags(make, model, f"{make} {model}".strip(), orientation, cm, neutral),
            *_cfa_tags(lay, int(black_level), int(white_level), (top, left, h, w)), *noise_tags]
    out = Path(path)
    with atomic_path(out) as tmp:
        tifffile.imwrite(
            tmp, full, photometric=PHOTOMETRIC_CFA, subfiletype=0, compression=None,
            extratags=tags, metadata=None, software="demosaic",
        )
        if exif:
            write_exif(tmp, exif)
    log.debug("wrote %s: %s %dx%d, margins %s, black %d, white %d", out,
             family, w, h, margins, black_level, white_level)
    return out


def _noise_profile_tags(values: Sequence[float] | None
                        ) -> list[tuple[int, str, int, object, bool]]:
    """The ``NoiseProfile`` tag of :func:`write_dng`'s ``noise_profile`` (none for ``None``).
    Raises DemosaicError for anything but 2 or 6 finite numbers >= 0."""
    if values is None:
        return []
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        vals = []
    if len(vals) not in (2, 6) or not all(np.isfinite(v) and v >= 0 for v in vals):
        raise DemosaicError(
            f"noise_profile must be 2 numbers >= 0 (S, O for every plane) or 6 "
            f"(S_R, O_R, S_G, O_G, S_B, O_B), got {values!r}")
    return [(TAGS["NoiseProfile"], "d", len(vals), tuple(vals), True)]


def read_noise_profile(path: str | os.PathLike[str]) -> NoiseProfile | None:
    """A DNG's ``NoiseProfile`` tag (51041) as a :class:`~demosaic.noise.profile.NoiseProfile`
    (``source="dng"``), or ``None``: not a ``.dng``, no tag, unreadable or invalid values
    (logged at debug level). The tag holds ``(S, O)`` pairs (variance ``S x + O`` at
    normalised raw mean ``x``, before white balance): one for all planes, or one per CFA
    plane in ``CFAPlaneColor`` order (R G B without that tag). Looked up in IFD 0, then in
    its SubIFDs (where converters keep the raw image)."""
    p = Path(path)
    if p.suffix.lower() != ".dng":
        return None
    try:
        with tifffile.TiffFile(p) as tif:
            page = tif.pages[0]
            for ifd in (page, *(getattr(page, "pages", None) or ())):
                tag = ifd.tags.get(TAGS["NoiseProfile"])
                if tag is not None:
                    plane = TAGS["CFAPlaneColor"]
                    planes = ifd.tags.get(plane) or page.tags.get(plane)
                    values = [float(v) for v in np.ravel(tag.value)]
                    pv = planes.value if planes else b"\x00\x01\x02"  # BYTE tags read as bytes
                    colours = list(pv) if isinstance(pv, bytes) else [int(v) for v in np.ravel(pv)]
                    break
            else:
                return None
    except Exception as exc:  # noqa: BLE001 - tifffile raises several types on odd files
        log.debug("%s: cannot read its DNG NoiseProfile tag (%s)", p, exc)
        return None
    ok = all(np.isfinite(v) and v >= 0 for v in values)
    if ok and len(values) == 2:
        return NoiseProfile.uniform(values[0], values[1], "dng")
    if ok and len(values) == 6 and sorted(colours) == [0, 1, 2]:
        scale, offset = [0.0] * 3, [0.0] * 3
        for k, c in enumerate(colours):
            scale[c], offset[c] = values[2 * k], values[2 * k + 1]
        return NoiseProfile(tuple(scale), tuple(offset), "dng")  # type: ignore[arg-type]
    log.debug("%s: ignoring its DNG NoiseProfile %s (planes %s): not 2 or 2 x 3 values >= 0",
              p, values, colours)
    return None


def _cfa_layout(layout: np.ndarray | Sequence[Sequence[int]] | CFAPattern | str
                ) -> tuple[np.ndarray, str]:
    """``((P, P) channel indices, CFA family)`` of a CFA DNG's layout argument.

    Raises:
        CFAError: anything but an X-Trans or Bayer phase.
    """
    lay = _layout_array(layout)
    alignment = align(lay)  # raises CFAError for anything but X-Trans / Bayer
    p_ = alignment.pattern.period
    if lay.shape != (p_, p_):
        lay = lay[:p_, :p_]
    return lay, alignment.pattern.family


def _cfa_tags(lay: np.ndarray, black: int, white: int, area: tuple[int, int, int, int]
              ) -> list[tuple[int, str, int, object, bool]]:
    """A CFA DNG's own tags: pattern, levels, crop and ``ActiveArea`` (``area``: top, left,
    height and width of the mosaic inside the stored frame)."""
    t, p_ = TAGS, lay.shape[0]
    top, left, h, w = area
    return [
        (t["CFARepeatPatternDim"], "H", 2, (p_, p_), True),
        # DNG colour codes 0 = red, 1 = green, 2 = blue equal our channel indices
        (t["CFAPattern"], "B", p_ * p_, tuple(int(c) for c in lay.ravel()), True),
        (t["CFAPlaneColor"], "B", 3, (0, 1, 2), True),
        (t["CFALayout"], "H", 1, 1, True),
        (t["BlackLevel"], "I", 1, black, True),
        (t["WhiteLevel"], "I", 1, white, True),
        (t["DefaultCropOrigin"], "I", 2, (0, 0), True),
        (t["DefaultCropSize"], "I", 2, (w, h), True),
        (t["ActiveArea"], "I", 4, (top, left, top + h, left + w), True),
    ]


def _check_frame(h: int, w: int, black_level: int, white_level: int,
                 margins: tuple[int, int, int, int], family: str) -> tuple[int, int, int, int]:
    """Validate a CFA DNG's size, levels and margins; ``(top, left, bottom, right)``.

    Raises:
        DemosaicError: under :data:`MIN_SIZE`, bad levels or margins.
    """
    if h < MIN_SIZE or w < MIN_SIZE:
        raise DemosaicError(
            f"mosaic of {h}x{w} px is too small: LibRaw rejects raw images under {MIN_SIZE} px "
            "per side (margins do not count); pad it, e.g. with demosaic.cfa.period_pad"
        )
    if not (0 <= black_level < white_level <= 65535):
        raise DemosaicError(
            f"need 0 <= black_level < white_level <= 65535, got black={black_level}, "
            f"white={white_level}"
        )
    if len(margins) != 4 or any(int(m) < 0 for m in margins):
        raise DemosaicError(f"margins must be 4 non-negative ints (top, left, bottom, right), got {margins}")
    top, left, bottom, right = (int(m) for m in margins)
    if family == "bayer" and (top % 2 or left % 2):
        log.warning("Bayer DNG with odd top/left margin (%d, %d): LibRaw will drop the first "
                    "row/column of the visible area", top, left)
    return top, left, bottom, right


def _check_colour(cm: np.ndarray, as_shot_neutral: Sequence[float], orientation: int,
                  matrix_key: str, matrix_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate the colour tags' values: ``(cm (3, 3) float64, neutral (3,) float64)``.

    Raises:
        DemosaicError: a neutral that is not 3 positive values, a matrix (named
            ``matrix_key``) that is not ``matrix_kind``, or an orientation outside 1..8.
    """
    neutral = np.asarray(as_shot_neutral, dtype=np.float64).ravel()
    if neutral.shape != (3,) or np.any(neutral <= 0) or not np.all(np.isfinite(neutral)):
        raise DemosaicError(f"as_shot_neutral must be 3 positive values, got {list(as_shot_neutral)}")
    if cm.shape != (3, 3) or not np.all(np.isfinite(cm)):
        raise DemosaicError(f"{matrix_key} must be {matrix_kind}, got shape {cm.shape}")
    if orientation not in range(1, 9):
        raise DemosaicError(f"orientation must be a TIFF Orientation code 1..8, got {orientation}")
    return cm, neutral


def _colour_tags(make: str, model: str, unique: str, orientation: int, cm: np.ndarray,
                 neutral: np.ndarray) -> list[tuple[int, str, int, object, bool]]:
    """The tags both DNG writers share: camera names, orientation, DNG version, colour matrix
    (D65) and as-shot neutral (tifffile ``extratags``)."""
    t = TAGS
    return [
        (t["Make"], "s", 0, make, True),
        (t["Model"], "s", 0, model, True),
        (t["Orientation"], "H", 1, orientation, True),
        (t["DNGVersion"], "B", 4, (1, 4, 0, 0), True),
        (t["DNGBackwardVersion"], "B", 4, (1, 1, 0, 0), True),
        (t["UniqueCameraModel"], "s", 0, unique, True),
        (t["ColorMatrix1"], "2i", 9, _rationals(cm, signed=True), True),
        (t["AsShotNeutral"], "2I", 3, _rationals(neutral, signed=False), True),
        (t["CalibrationIlluminant1"], "H", 1, ILLUMINANT_D65, True),
    ]


#: TIFF ``Orientation`` (1..8) of each LibRaw ``flip`` (the inverse of
#: :data:`demosaic.io.raw.TIFF_ORIENTATION_TO_FLIP`).
FLIP_TO_TIFF_ORIENTATION = {0: 1, 1: 2, 3: 3, 2: 4, 4: 5, 6: 6, 7: 7, 5: 8}


#: Black level of a linear DNG. Zero: darktable 4.2 renders a LinearRaw DNG with a non-zero
#: ``BlackLevel`` with a colour cast (measured with scripts/figures/darktable_compare.py), so small
#: negative values (noise in the blacks) are clipped to 0 instead of kept below a black level.
LINEAR_BLACK = 0
#: Most a linear DNG's white level is lowered to keep values above 1.0 (4x headroom).
LINEAR_MAX_HEADROOM = 4.0
#: Long side of the 8-bit sRGB preview stored in IFD 0 of a linear DNG.
PREVIEW_SIDE = 1024


def preview_image(rgb: np.ndarray, max_side: int = PREVIEW_SIDE) -> np.ndarray:
    """An 8-bit sRGB preview of a linear sRGB ``(3, H, W)`` image.

    Area-averaged over ``k x k`` blocks (``k = ceil(max(H, W) / max_side)``), sRGB-encoded,
    clipped to ``[0, 1]`` and quantised: ``(h, w, 3)`` uint8, same orientation as the input.
    """
    arr = np.asarray(rgb, dtype=np.float32)
    k = max(1, -(-max(arr.shape[1:]) // max_side))
    h, w = arr.shape[1] // k, arr.shape[2] // k
    small = arr[:, : h * k, : w * k].reshape(3, h, k, w, k).mean(axis=(2, 4))
    from demosaic.color import linear_to_srgb

    enc = linear_to_srgb(np.clip(np.nan_to_num(small), 0.0, 1.0))
    return np.ascontiguousarray(np.rint(enc * 255.0).astype(np.uint8).transpose(1, 2, 0))


def _linear_levels(v: np.ndarray) -> tuple[int, int]:
    """``(black, white)`` data numbers for a linear DNG: values up to the image's maximum (at
    most :data:`LINEAR_MAX_HEADROOM`) fit below 65535."""
    peak = float(np.max(v)) if v.size else 1.0
    headroom = min(max(1.0, peak), LINEAR_MAX_HEADROOM)
    white = LINEAR_BLACK + int((65535 - LINEAR_BLACK) / headroom)
    return LINEAR_BLACK, min(white, 65535)


def write_linear_dng(
    path: str | os.PathLike[str],
    rgb: np.ndarray | torch.Tensor,
    *,
    xyz_to_cam: np.ndarray | Sequence[Sequence[float]],
    as_shot_neutral: Sequence[float],
    make: str = "",
    model: str = "",
    orientation: int = 1,
    preview: np.ndarray | None = None,
    exif: dict[str, str] | None = None,
) -> Path:
    """Write a demosaicked image as a LinearRaw DNG (atomically) that raw converters develop
    like a raw file: white balance, exposure and camera profile stay adjustable.

    Layout (the DNG SDK's): IFD 0 holds the 8-bit sRGB ``preview`` (``NewSubFileType`` 1)
    and the DNG/colour tags; its SubIFD holds the full-resolution LinearRaw image
    (``NewSubFileType`` 0) with its ``BlackLevel``/``WhiteLevel``. Without a preview the
    LinearRaw image is IFD 0.

    Encoding: 16-bit, ``round(black + v * (white - black))`` with ``black`` =
    :data:`LINEAR_BLACK` (0: negatives clip to 0) and ``white`` lowered from 65535 so the
    image's largest value fits (up to :data:`LINEAR_MAX_HEADROOM` x the white level; beyond
    that values clip, with a log message). ``WhiteLevel`` records it: a converter reads
    ``(d - black) / (white - black)``, i.e. ``v``, values above 1.0 included (darktable does).

    Args:
        path: Output ``.dng``.
        rgb: ``(3, H, W)`` **unbalanced** camera RGB in sensor orientation, linear, white
            level 1.0 (what :func:`demosaic.inference.develop.develop` returns with
            ``white_balance="none"``).
        xyz_to_cam: ``(3, 3)`` XYZ (D65) -> camera (``ColorMatrix1``).
        as_shot_neutral: Camera RGB of a neutral (``AsShotNeutral``, ``1 / multipliers``).
        make, model: The source camera (``Make``, ``Model``, ``UniqueCameraModel``).
        orientation: TIFF ``Orientation`` 1..8 of the source (the pixels stay as stored).
        preview: ``(h, w, 3)`` uint8 sRGB preview in the same orientation
            (:func:`preview_image`), or ``None``.
        exif: Exiv2 key -> value strings written after the image (capture EXIF, DNG colour
            tags of a DNG source, which override ``ColorMatrix1`` and the like);
            :func:`demosaic.io.metadata.write_exif`.

    Returns:
        ``Path(path)``.

    Raises:
        DemosaicError: a bad shape, matrix, neutral, orientation or preview.
    """
    arr = rgb.detach().cpu().numpy() if isinstance(rgb, torch.Tensor) else np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise DemosaicError(f"write_linear_dng expects a (3, H, W) image, got shape {arr.shape}")
    cm, neutral = _check_colour(np.asarray(xyz_to_cam, dtype=np.float64), as_shot_neutral,
                                orientation, "xyz_to_cam", "a finite 3x3 matrix")
    if preview is not None and (preview.ndim != 3 or preview.shape[2] != 3
                                or preview.dtype != np.uint8):
        raise DemosaicError(f"preview must be (h, w, 3) uint8, got {preview.shape} {preview.dtype}")
    data, black, white = _linear_data(arr)
    t = TAGS
    main_tags = _colour_tags(make or "demosaic", model or "demosaic",
                             f"{make} {model}".strip() or "demosaic", orientation, cm, neutral)
    raw_tags = [
        (t["BlackLevel"], "I", 1, black, True),
        (t["WhiteLevel"], "I", 1, white, True),
    ]
    out = Path(path)
    common = dict(compression=None, metadata=None)
    with atomic_path(out) as tmp:
        with tifffile.TiffWriter(tmp) as tw:
            if preview is None:
                tw.write(data, photometric=PHOTOMETRIC_LINEAR_RAW, subfiletype=0,
                         extratags=main_tags + raw_tags, software="demosaic", **common)
            else:
                tw.write(preview, photometric="rgb", subfiletype=1, subifds=1,
                         extratags=main_tags, software="demosaic", **common)
                tw.write(data, photometric=PHOTOMETRIC_LINEAR_RAW, subfiletype=0,
                         extratags=raw_tags, software="demosaic", **common)
        if exif:
            write_exif(tmp, exif)
    log.debug("wrote linear DNG %s (%dx%d, black %d, white %d)", out, arr.shape[2], arr.shape[1],
              black, white)
    return out


def _linear_data(arr: np.ndarray) -> tuple[np.ndarray, int, int]:
    """A linear DNG's samples: ``((H, W, 3) uint16, black, white)`` of ``(3, H, W)`` linear
    values (NaN -> 0; :func:`_linear_levels`; values beyond the headroom clip, logged)."""
    v = np.nan_to_num(arr.astype(np.float32))
    black, white = _linear_levels(v)
    scaled = np.rint(black + v * np.float32(white - black))
    over = int(np.count_nonzero(scaled > 65535))
    if over:
        log.info("linear DNG: %d values above %.0fx the white level clipped", over,
                 LINEAR_MAX_HEADROOM)
    return np.clip(scaled, 0, 65535).astype(np.uint16).transpose(1, 2, 0), black, white


def is_own_linear_dng(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a linear DNG that :func:`write_linear_dng` wrote (``Software`` is
    ``demosaic`` and an image is LinearRaw): an earlier output of ``demosaic-infer``, not a
    camera raw. Any read error answers ``False``."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if page.software != "demosaic":
                return False
            photometrics = [page.photometric] + [p.photometric for p in page.pages or ()]
            return PHOTOMETRIC_LINEAR_RAW in [int(v) for v in photometrics]
    except Exception:  # noqa: BLE001 - any unreadable file is not one of ours
        return False
