"""Reading and writing ordinary images: PNG, JPEG, TIFF and OpenEXR.

Conventions:

- :func:`read_image` returns ``(H, W, 3)`` float32: for integer formats the stored
  **sRGB-encoded** values scaled to ``[0, 1]`` (8-bit / 255, 16-bit / 65535), grey expanded
  to 3 channels, alpha dropped; float TIFFs as stored; EXR files their **linear** values.
  EXIF orientation is not applied (pixels come back as stored).
- :func:`read_image_linear` returns ``(3, H, W)`` float32 linear light: integer and float
  TIFF/PNG/JPEG values are decoded with the exact sRGB curve, EXR values are taken as is.
- Writers take channels-first linear-light ``(3, H, W)`` arrays (numpy or torch) and write
  atomically (:func:`demosaic.io.atomic.atomic_path`). Only the integer writers clip, and
  only at quantisation: :func:`write_exr` keeps values above 1.0 and negatives.
- 16-bit PNGs are decoded here (Pillow truncates 16-bit RGB PNGs to 8 bits); Adam7
  interlaced 16-bit PNGs are not supported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
import tifffile
import torch

from demosaic.color import SRGB_TO_XYZ, linear_to_srgb, srgb_to_linear
from demosaic.errors import ImageIOError
from demosaic.io.atomic import atomic_path
from demosaic.io.icc import matrix_trc_profile
from demosaic.io.metadata import write_exif

log = logging.getLogger(__name__)

READ_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Header attributes every EXR file has; not user metadata.
_EXR_STANDARD = frozenset({
    "channels", "compression", "dataWindow", "displayWindow", "lineOrder",
    "pixelAspectRatio", "screenWindowCenter", "screenWindowWidth", "type", "tiles",
    "chunkCount", "name", "version", "chromaticities",
})
_HALF_MAX = 65504.0


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise ImageIOError(f"image file {p} does not exist; check the path")
    if not p.is_file():
        raise ImageIOError(f"image path {p} is not a file")
    ext = p.suffix.lower()
    if ext not in READ_EXTENSIONS:
        raise ImageIOError(
            f"cannot read {p}: unknown image extension {p.suffix!r}; supported: "
            f"{', '.join(READ_EXTENSIONS)} (camera raws: demosaic.io.raw.read_raw)"
        )
    return p


def _to_numpy_chw(rgb: np.ndarray | torch.Tensor, what: str, path: Path) -> np.ndarray:
    arr = rgb.detach().cpu().numpy() if isinstance(rgb, torch.Tensor) else np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ImageIOError(f"{what} {path}: expected a (3, H, W) image, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return arr


def _check_suffix(path: Path, allowed: tuple[str, ...], what: str) -> None:
    if path.suffix.lower() not in allowed:
        raise ImageIOError(
            f"{what} cannot write {path}: extension {path.suffix!r} does not match the format; "
            f"use {' or '.join(allowed)}"
        )


def _to_rgb(arr: np.ndarray, path: Path) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1..4)`` -> ``(H, W, 3)``: grey repeated, alpha dropped."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ImageIOError(f"{path}: unsupported image shape {arr.shape}")
    c = arr.shape[-1]
    if c in (1, 2):  # grey, grey + alpha
        return np.repeat(arr[..., :1], 3, axis=-1)
    if c in (3, 4):
        return arr[..., :3]
    raise ImageIOError(f"{path}: unsupported number of channels {c} (expected 1-4)")


def _scale(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32)
    if arr.dtype == bool:
        return arr.astype(np.float32)
    raise ImageIOError(f"{path}: unsupported sample type {arr.dtype} (need 8/16-bit or float)")


# --------------------------------------------------------------------------------------
# 16-bit PNG decoding
# --------------------------------------------------------------------------------------


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24]


def _read_png16(path: Path) -> np.ndarray:
    """Decode a 16-bit PNG to ``(H, W)`` or ``(H, W, C)`` uint16 with imagecodecs (libpng).

    Pillow reduces 16-bit RGB PNGs to 8 bits, so they go through imagecodecs instead.
    """
    import imagecodecs

    try:
        return np.asarray(imagecodecs.png_decode(path.read_bytes()))
    except Exception as exc:  # imagecodecs raises its own PngError and ValueError types
        raise ImageIOError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}); "
                           "re-export the image") from None


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # here: demosaic-infer on raw files never needs it

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode.startswith("I;16"):
                arr = np.asarray(im, dtype=np.uint16)
            elif mode == "I":
                arr = np.asarray(im, dtype=np.int64)
                if arr.min() < 0 or arr.max() > 65535:
                    raise ImageIOError(f"{path}: 32-bit integer image values outside 0..65535")
                arr = arr.astype(np.uint16)
            elif mode == "F":
                arr = np.asarray(im, dtype=np.float32)
            elif mode in ("L", "LA", "RGB", "RGBA"):
                arr = np.asarray(im)
            else:  # 1, P, PA, CMYK, YCbCr, LAB, HSV ...
                arr = np.asarray(im.convert("RGBA" if "A" in mode or "transparency" in im.info
                                            else "RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageIOError(f"cannot read image {path}: {exc}; the file is corrupt, truncated "
                           "or not the format its extension says") from exc
    return _scale(_to_rgb(arr, path), path)


def _read_tiff(path: Path) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
                raise ValueError(f"photometric {page.photometric.name}")
            arr = page.asarray()
            if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and arr.ndim == 3:
                arr = np.moveaxis(arr, 0, -1)
    except Exception as exc:  # noqa: BLE001 - anything tifffile cannot do, Pillow may
        log.debug("tifffile cannot read %s (%s); trying Pillow", path, exc)
        return _read_pillow(path)
    return _scale(_to_rgb(arr, path), path)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG/JPEG/TIFF (or EXR) image.

    Returns:
        ``(H, W, 3)`` float32. Integer formats: stored (sRGB-encoded) values in ``[0, 1]``;
        float TIFF: values as stored; EXR: linear values (unbounded).

    Raises:
        ImageIOError: missing/unreadable file or unknown extension (message names the file).
    """
    p = _existing(path)
    ext = p.suffix.lower()
    if ext == ".exr":
        rgb, _ = read_exr(p)
        return np.ascontiguousarray(np.moveaxis(rgb, 0, -1))
    if ext in (".tif", ".tiff"):
        return _read_tiff(p)
    if ext == ".png" and _png_bit_depth(p) == 16:
        return _scale(_to_rgb(_read_png16(p), p), p)
    return _read_pillow(p)


def read_image_linear(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image as linear light, channels first.

    Returns:
        ``(3, H, W)`` float32: sRGB-decoded (exact IEC curve) for PNG/JPEG/TIFF, EXR values
        as stored. Unclamped.
    """
    p = _existing(path)
    if p.suffix.lower() == ".exr":
        return read_exr(p)[0]
    return np.ascontiguousarray(srgb_to_linear(np.moveaxis(read_image(p), -1, 0)))


def read_exr(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, str]]:
    """Read an OpenEXR image.

    Returns:
        ``((3, H, W) float32 linear values, metadata)``: channels R, G, B (or a grey ``Y``
        repeated), half or float, unclamped; ``metadata`` holds the header's string
        attributes other than the standard ones.
    """
    p = Path(path)
    if not p.exists():
        raise ImageIOError(f"EXR file {p} does not exist; check the path")
    try:
        with OpenEXR.File(str(p), separate_channels=True) as f:
            # copy inside the block: the File clears its header dict when it closes
            header = {k: v for k, v in f.header().items() if isinstance(v, str)}
            channels = {name: np.array(ch.pixels, dtype=np.float32)
                        for name, ch in f.channels().items()}
    except (RuntimeError, OSError, ValueError) as exc:
        raise ImageIOError(f"cannot read EXR {p}: {exc}; the file is corrupt, truncated or not "
                           "an OpenEXR image") from exc
    upper = {k.upper(): k for k in channels}
    if all(c in upper for c in "RGB"):
        planes = [channels[upper[c]] for c in "RGB"]
    elif "Y" in upper:
        planes = [channels[upper["Y"]]] * 3
    else:
        raise ImageIOError(f"EXR {p} has no R, G, B (or Y) channels: {sorted(channels)}")
    rgb = np.stack(planes)
    meta = {k: v for k, v in header.items() if k not in _EXR_STANDARD}
    return rgb, meta


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------


#: Lossless OpenEXR compressions :func:`write_exr` offers. PIZ (wavelet + Huffman) is the
#: default: on a 24 MP half image it encoded 2.3-2.4x faster than ZIP and the file was smaller
#: (docs/lab/speed-work.md, "Whole process after the speed work"); every OpenEXR reader supports
#: all of these.
EXR_COMPRESSIONS = ("piz", "zip", "zips", "rle", "none")


def half_range_exceeded(arr: np.ndarray) -> bool:
    """Whether a finite value of ``arr`` lies beyond the half-float range (+-65504), i.e.
    would become infinite in a half EXR."""
    if arr.size == 0:
        return False
    if arr.min() >= -_HALF_MAX and arr.max() <= _HALF_MAX:  # the usual case: two passes, no
        return False  # temporaries (a NaN fails this test and takes the exact path below)
    big = np.abs(arr) > _HALF_MAX  # NaN compares False
    return bool(np.any(big & np.isfinite(arr))) if np.any(big) else False


def write_exr(path: str | os.PathLike[str], rgb: np.ndarray | torch.Tensor, half: bool = True,
              metadata: dict[str, str] | None = None,
              chromaticities: Sequence[float] | None = None,
              attributes: dict[str, str | float] | None = None,
              compression: str = "piz") -> Path:
    """Write a linear ``(3, H, W)`` image as an OpenEXR file (lossless compression).

    Args:
        path: Output ``.exr``.
        rgb: ``(3, H, W)`` numpy or torch, linear light, unclamped (values > 1 and < 0 kept).
        half: Store 16-bit half floats (values beyond +-65504 become infinite, with a
            warning) instead of 32-bit floats.
        metadata: Extra string header attributes (e.g. model name, settings).
        chromaticities: The standard ``chromaticities`` attribute, 8 floats (red, green, blue,
            white x/y; :func:`demosaic.color.chromaticities`), so readers know the primaries.
        attributes: Other standard optional attributes (``isoSpeed``, ``expTime``,
            ``capDate`` ...: :meth:`demosaic.io.metadata.CaptureMetadata.exr_attributes`);
            strings and floats, stored with their OpenEXR types (string, float).
        compression: One of :data:`EXR_COMPRESSIONS` (all lossless).

    Returns:
        ``Path(path)``.
    """
    p = Path(path)
    _check_suffix(p, (".exr",), "write_exr")
    if compression not in EXR_COMPRESSIONS:
        raise ImageIOError(f"EXR compression {compression!r} for {p} is not one of "
                           f"{list(EXR_COMPRESSIONS)}")
    arr = _to_numpy_chw(rgb, "write_exr", p)
    dtype = np.float16 if half else np.float32
    # A float16 input was converted by the caller (which warns: see half_range_exceeded).
    if half and arr.dtype != np.float16 and half_range_exceeded(arr):
        log.warning("%s: values beyond the half-float range (+-65504) become inf; use half=False", p)
    mode = getattr(OpenEXR, f"{'NO' if compression == 'none' else compression.upper()}_COMPRESSION")
    header: dict[str, Any] = {"compression": mode, "type": OpenEXR.scanlineimage}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ImageIOError(f"EXR metadata must map str to str, got {key!r}: {value!r}")
        if key in _EXR_STANDARD:
            raise ImageIOError(f"EXR metadata key {key!r} is a reserved header attribute; rename it")
        header[key] = value
    for key, value in (attributes or {}).items():
        if key in _EXR_STANDARD or key in header:
            raise ImageIOError(f"EXR attribute {key!r} is reserved or given twice")
        if not isinstance(value, (str, float)):
            raise ImageIOError(f"EXR attribute {key!r} must be a str or float, got {value!r}")
        header[key] = value
    if chromaticities is not None:
        values = tuple(float(v) for v in chromaticities)
        if len(values) != 8 or not all(np.isfinite(values)):
            raise ImageIOError(f"EXR chromaticities must be 8 finite numbers, got {chromaticities!r}")
        header["chromaticities"] = values
    with np.errstate(over="ignore"):  # warned about above, once
        channels = {c: np.ascontiguousarray(arr[i], dtype=dtype) for i, c in enumerate("RGB")}
    if OpenEXR.global_thread_count() == 0:  # OpenEXR compresses line blocks in parallel
        OpenEXR.set_global_thread_count(os.cpu_count() or 1)
    with atomic_path(p) as tmp:
        try:
            with OpenEXR.File(header, channels) as f:
                f.write(str(tmp))
        except (RuntimeError, OSError, TypeError, ValueError) as exc:
            raise ImageIOError(f"cannot write EXR {p}: {exc}") from exc
    log.debug("wrote %s (%s)", p, "half" if half else "float")
    return p


def write_tiff16(path: str | os.PathLike[str], rgb: np.ndarray | torch.Tensor, *,
                 srgb: bool = True, icc_profile: bytes | None = None,
                 exif: dict[str, str] | None = None) -> Path:
    """Write a linear ``(3, H, W)`` image as a 16-bit RGB TIFF (deflate-compressed).

    Encoding: with ``srgb=True`` (default) the values are sRGB-encoded
    (:func:`demosaic.color.linear_to_srgb`), so viewers and :func:`read_image_linear` read
    them correctly; with ``srgb=False`` the linear values are stored as they are (read them
    back with :func:`read_image`, which then returns linear values). The encoded values are
    clipped to ``[0, 1]`` and quantised as ``round(v * 65535)`` -- the only clipping.

    Args:
        icc_profile: The embedded ICC profile. Default: for sRGB primaries, LittleCMS's sRGB
            profile (:func:`srgb_icc_profile`) when ``srgb``, else a linear-sRGB profile
            (:func:`demosaic.io.icc.matrix_trc_profile`). Pass one built for other primaries.
        exif: Exiv2 key -> value strings stored after writing
            (:func:`demosaic.io.metadata.write_exif`).

    Returns:
        ``Path(path)``.
    """
    p = Path(path)
    _check_suffix(p, (".tif", ".tiff"), "write_tiff16")
    arr = _to_numpy_chw(rgb, "write_tiff16", p).astype(np.float64)
    enc = linear_to_srgb(arr) if srgb else arr
    q = np.rint(np.clip(np.nan_to_num(enc), 0.0, 1.0) * 65535.0).astype(np.uint16)
    desc = "sRGB-encoded (IEC 61966-2-1)" if srgb else "linear light"
    if icc_profile is None:
        icc_profile = srgb_icc_profile() if srgb else matrix_trc_profile(
            SRGB_TO_XYZ, "linear", "Linear sRGB (Rec.709 primaries, D65)")
    with atomic_path(p) as tmp:
        tifffile.imwrite(tmp, np.moveaxis(q, 0, -1), photometric="rgb", compression="zlib",
                         description=f"demosaic: 16-bit {desc}", metadata=None,
                         software="demosaic", iccprofile=icc_profile)
        if exif:
            write_exif(tmp, exif)
    return p


def srgb_icc_profile() -> bytes:
    """An sRGB ICC profile (LittleCMS's built-in, through Pillow), embedded in sRGB-encoded
    TIFFs so colour-managed viewers show them as intended."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def write_png(path: str | os.PathLike[str], rgb_linear: np.ndarray | torch.Tensor,
              exposure: float = 1.0) -> Path:
    """Write an 8-bit sRGB PNG preview of a linear ``(3, H, W)`` image.

    The image is multiplied by ``exposure``, sRGB-encoded, clipped to ``[0, 1]`` (the only
    clipping) and quantised as ``round(v * 255)``.

    Returns:
        ``Path(path)``.
    """
    p = Path(path)
    _check_suffix(p, (".png",), "write_png")
    arr = _to_numpy_chw(rgb_linear, "write_png", p).astype(np.float64) * float(exposure)
    q = np.rint(np.clip(np.nan_to_num(linear_to_srgb(arr)), 0.0, 1.0) * 255.0).astype(np.uint8)
    from PIL import Image

    with atomic_path(p) as tmp:
        Image.fromarray(np.ascontiguousarray(np.moveaxis(q, 0, -1))).save(tmp, format="PNG")
    return p
