"""File input/output: camera raws (:mod:`.raw`), DNG writing (:mod:`.dng`), ordinary images
(:mod:`.images`), capture metadata (:mod:`.metadata`), ICC profiles (:mod:`.icc`) and atomic
writes (:mod:`.atomic`).

The public names below are re-exported lazily, so ``import demosaic.io.atomic`` does not load
rawpy or OpenEXR::

    from demosaic.io import read_raw, write_dng, read_image_linear, write_exr
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "atomic_path": "atomic",
    "RawImage": "raw",
    "read_raw": "raw",
    "open_raw": "raw",
    "visible_layout": "raw",
    "read_metadata": "metadata",
    "CaptureMetadata": "metadata",
    "apply_orientation": "raw",
    "TIFF_ORIENTATION_TO_FLIP": "raw",
    "write_dng": "dng",
    "read_image": "images",
    "read_image_linear": "images",
    "read_exr": "images",
    "write_exr": "images",
    "write_tiff16": "images",
    "write_png": "images",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from demosaic.io.atomic import atomic_path
    from demosaic.io.dng import write_dng
    from demosaic.io.images import (read_exr, read_image, read_image_linear, write_exr, write_png,
                                    write_tiff16)
    from demosaic.io.metadata import CaptureMetadata, read_metadata
    from demosaic.io.raw import (TIFF_ORIENTATION_TO_FLIP, RawImage, apply_orientation, open_raw,
                                 read_raw, visible_layout)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'demosaic.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"demosaic.io.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
