"""Decoded-image cache shared by the folder-based datasets (synthetic, folder).

An 8-bit (or 16-bit) sRGB source is kept in memory as its integer code values and decoded
to linear light through an exact lookup table only for the pixels a sample uses, so a set
like CBSD432 costs 3 bytes per pixel instead of 12 and a crop costs one table lookup.
Sources that are not integer-coded (float TIFF), or that are downsampled, are kept as
float32 linear light.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demosaic.color import srgb_to_linear
from demosaic.data.common import box_downsample
from demosaic.io.images import read_image

log = logging.getLogger(__name__)

_LUTS: dict[int, np.ndarray] = {}


def _lut(bits: int) -> np.ndarray:
    """Linear value of every ``bits``-bit sRGB code value, float32 ``(2**bits,)``."""
    if bits not in _LUTS:
        codes = np.arange(2**bits, dtype=np.float64) / (2**bits - 1)
        _LUTS[bits] = np.asarray(srgb_to_linear(codes), dtype=np.float32)
    return _LUTS[bits]


@dataclass
class SourceImage:
    """A decoded image: ``data`` is ``(H, W, 3)``; integer code values when ``bits`` is 8 or
    16 (decode with :meth:`linear`), float32 linear light when ``bits`` is 0."""

    data: np.ndarray
    bits: int

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.data.shape[0]), int(self.data.shape[1])

    def linear(self, y0: int = 0, x0: int = 0, h: int | None = None, w: int | None = None
               ) -> np.ndarray:
        """Linear-light float32 ``(h, w, 3)`` crop starting at ``(y0, x0)`` (whole image by
        default)."""
        h = self.shape[0] - y0 if h is None else h
        w = self.shape[1] - x0 if w is None else w
        crop = self.data[y0 : y0 + h, x0 : x0 + w]
        if self.bits:
            return _lut(self.bits)[crop]
        return np.array(crop, dtype=np.float32, copy=True)


def _integer_code(img: np.ndarray) -> tuple[np.ndarray, int] | None:
    """``(codes, bits)`` when ``img`` (float in ``[0, 1]``) holds exact 8- or 16-bit codes."""
    if img.size == 0 or img.min() < 0 or img.max() > 1:
        return None
    scaled = img.astype(np.float32) * np.float32(255)  # float32 resolves 8-bit codes exactly
    codes = np.rint(scaled)
    if np.abs(scaled - codes).max() < 1e-3:
        return codes.astype(np.uint8), 8
    scaled64 = img.astype(np.float64) * 65535.0
    codes = np.rint(scaled64)
    if np.abs(scaled64 - codes).max() < 1e-3:
        return codes.astype(np.uint16), 16
    return None


def load_source(path: Path, downsample: int = 1) -> SourceImage:
    """Read an sRGB-encoded image file and prepare it for cropping in linear light.

    Args:
        path: JPEG/PNG/TIFF file (``demosaic.io.images.read_image``).
        downsample: Box-filter factor applied in linear light (1 = full resolution).

    Raises:
        ImageIOError: from the reader, naming the file.
    """
    img = np.asarray(read_image(path), dtype=np.float32)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    coded = _integer_code(img)
    if coded is not None and downsample == 1:
        return SourceImage(np.ascontiguousarray(coded[0]), coded[1])
    if coded is not None:  # exact decode through the table, then filter in linear light
        lin = _lut(coded[1])[coded[0]]
    else:
        lin = np.asarray(srgb_to_linear(img), dtype=np.float32)
    return SourceImage(np.ascontiguousarray(box_downsample(lin, downsample)), 0)


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, from its header when Pillow can read it."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
            return int(h), int(w)
    except Exception:  # noqa: BLE001 - fall back to a full decode (e.g. exotic TIFF)
        img = read_image(path)
        return int(img.shape[0]), int(img.shape[1])


class SourceCache:
    """Per-process lazy cache of :class:`SourceImage` by file index (``enabled=False``
    decodes every time). Each data-loader worker fills its own copy."""

    def __init__(self, files: list[Path], downsample: int, enabled: bool = True) -> None:
        self.files = files
        self.downsample = downsample
        self.enabled = enabled
        self._items: dict[int, SourceImage] = {}

    def preload(self) -> None:
        """Decode every image now. Call it before a DataLoader forks its workers: forked
        workers then share the decoded images (copy-on-write) instead of each decoding and
        caching its own copy. Not before workers that ``spawn`` (macOS) or use a
        ``forkserver``: each would receive a pickled copy of the whole cache, so there each
        worker fills its own (the trainer decides). No-op when caching is disabled."""
        if self.enabled:
            for i in range(len(self.files)):
                self.get(i)

    def get(self, i: int) -> SourceImage:
        item = self._items.get(i)
        if item is None:
            item = load_source(self.files[i], self.downsample)
            if self.enabled:
                self._items[i] = item
        return item
