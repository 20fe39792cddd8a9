"""The outputs of ``demosaic-infer``: EXR, 16-bit TIFF and linear DNG, with their metadata.

Each ``*_output`` function takes :func:`~demosaic.inference.develop.develop`'s camera RGB
``(3, H, W)`` (file's visible area, sensor orientation, linear, unclamped) and returns the
upright ``(H, W)`` of the image and a function that writes it atomically
(:func:`demosaic.io.atomic.atomic_path` inside each writer): the batch runs that function on
its writer thread while the next file is demosaicked, so the colour matrix and the orientation
(:func:`_upright`) are part of the write.

- ``.exr``: half (default) or float, ``chromaticities``, the capture's standard attributes
  (ISO, exposure ...) and ``demosaic:*`` attributes saying how it was made;
- ``.tif``/``.tiff``: 16-bit sRGB-encoded or linear (clipped to [0, 1]) with a matching ICC
  profile and the EXIF;
- ``.dng``: a LinearRaw DNG of unbalanced camera RGB, sensor orientation, the source's
  colour tags, EXIF and an sRGB preview (a raw converter's input).

Output size = the raw file's visible area, turned by the orientation. Metadata:
:mod:`demosaic.io.metadata`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import demosaic
from demosaic.color import apply_matrix, camera_to_output_matrix
from demosaic.errors import DemosaicError
from demosaic.inference.colour import ColourPlan, apply_matrix_chunked
from demosaic.inference.develop import StageTimer, lap
from demosaic.inference.settings import InferSettings
from demosaic.io.dng import FLIP_TO_TIFF_ORIENTATION, PREVIEW_SIDE, preview_image, write_linear_dng
from demosaic.io.images import write_exr, write_tiff16
from demosaic.io.raw import RawImage, apply_orientation
from demosaic.noise.profile import NoiseProfile

log = logging.getLogger(__name__)

#: What an ``*_output`` function returns: the upright ``(H, W)`` and the write.
Output = tuple[tuple[int, int], Callable[[], Any]]


def upright_size(rgb: torch.Tensor | np.ndarray, orientation: int) -> tuple[int, int]:
    """``(H, W)`` of ``(3, H, W)`` pixels in sensor orientation once turned upright (LibRaw
    ``flip``: bit 4 swaps the axes)."""
    h, w = int(rgb.shape[1]), int(rgb.shape[2])
    return (w, h) if orientation & 4 else (h, w)


def _upright(rgb: torch.Tensor, matrix: np.ndarray | None, dtype: type, orientation: int,
             timer: StageTimer | None) -> np.ndarray:
    """Colour and orientation of the written pixels: ``(3, H', W')`` numpy ``dtype``."""
    img = apply_matrix_chunked(rgb, matrix, dtype)
    lap(timer, "colour")
    img = apply_orientation(img, orientation)
    lap(timer, "orientation")
    return img


def exr_output(out: Path, raw: RawImage, rgb: torch.Tensor, colour: ColourPlan,
               settings: InferSettings, record: dict[str, Any], info: dict[str, str],
               timer: StageTimer | None = None) -> Output:
    """An EXR of ``rgb`` in ``colour``'s space: half unless ``settings.float32``, with
    ``chromaticities``, the capture's attributes and ``demosaic:*`` metadata (``info``: the
    model's, :meth:`demosaic.models.zoo.ModelSource.info_for`; ``record``: the run's own
    fields, :func:`run_record`)."""
    half = not settings.float32
    matrix, orientation = colour.matrix, raw.orientation
    meta = output_metadata(raw, info, record)
    chroma = colour.chromaticities
    attributes = raw.metadata.exr_attributes()
    dtype = np.float16 if half else np.float32
    return upright_size(rgb, orientation), lambda: write_exr(
        out, _upright(rgb, matrix, dtype, orientation, timer), half=half, metadata=meta,
        chromaticities=chroma, attributes=attributes, compression=settings.exr_compression)


def tiff_output(out: Path, raw: RawImage, rgb: torch.Tensor, colour: ColourPlan,
                encoding: str, timer: StageTimer | None = None) -> Output:
    """A 16-bit TIFF of ``rgb`` in ``colour``'s space, ``encoding`` ``"srgb"`` or
    ``"linear"`` (clipped to [0, 1]), with the ICC profile of both and the source's EXIF."""
    matrix, orientation = colour.matrix, raw.orientation
    icc = colour.icc_profile(encoding)
    exif = raw.metadata.exif(orientation=1)
    return upright_size(rgb, orientation), lambda: write_tiff16(
        out, _upright(rgb, matrix, np.float32, orientation, timer), srgb=encoding == "srgb",
        icc_profile=icc, exif=exif)


def linear_dng_output(out: Path, raw: RawImage, rgb: torch.Tensor, neutral: np.ndarray
                      ) -> Output:
    """:func:`~demosaic.inference.develop.develop`'s unbalanced camera RGB as a linear DNG
    with an sRGB preview and the source's EXIF (and DNG colour tags), in sensor orientation
    (the ``Orientation`` tag turns it). ``neutral``: its ``AsShotNeutral`` (the as-shot one,
    or the white balance asked for: :attr:`ColourPlan.dng_neutral`)."""
    arr = rgb.numpy()
    preview = None
    try:
        to_srgb = (camera_to_output_matrix(raw.xyz_to_cam, "srgb")
                   @ np.diag(1.0 / neutral)).astype(np.float32)
        k = max(1, -(-max(arr.shape[1:]) // PREVIEW_SIDE))
        preview = preview_image(apply_matrix(arr[:, ::k, ::k], to_srgb))
    except DemosaicError as exc:
        log.warning("%s: no DNG preview (%s)", raw.path, exc)
    exif = raw.metadata.exif()
    exif.update({f"Exif.Image.{tag}": value for tag, value in raw.metadata.dng_colour.items()})
    return upright_size(arr, raw.orientation), lambda: write_linear_dng(
        out, arr, xyz_to_cam=raw.xyz_to_cam, as_shot_neutral=neutral, make=raw.make,
        model=raw.model, orientation=FLIP_TO_TIFF_ORIENTATION[raw.orientation],
        preview=preview, exif=exif)


def run_record(raw: RawImage, colour: ColourPlan, settings: InferSettings,
               overlap: int | None, device: torch.device,
               noise: NoiseProfile | None = None) -> dict[str, Any]:
    """The settings an EXR records (``demosaic:settings``): colour, white balance (the
    file's as-shot and the output's multipliers), highlights, tiling, device, orientation,
    CFA phase, format, and for a noise-aware network the noise profile (S, O per channel
    R, G, B, its source) and the denoise strength."""
    wb = colour.white_balance
    level = {} if noise is None else {
        "noise_profile": [float(f"{v:.6g}") for v in noise.as_list()],
        "noise_source": noise.source, "denoise": settings.denoise}
    return {**level,
        "color_space": colour.color_space, "white_balance": wb,
        "white_balance_applied": "mosaic before the network" + (
            "" if wb == "as_shot" else ", output rescaled after"),
        "wb_multipliers": [round(float(v), 6) for v in raw.wb_multipliers],
        "output_multipliers": [round(float(v), 6) for v in colour.output],
        "highlights": settings.highlights, "tile": settings.tile, "overlap": overlap,
        "device": str(device), "amp": settings.amp,
        "orientation_flip": raw.orientation,
        "cfa_phase_offset": [raw.alignment.dy, raw.alignment.dx],
        "format": "exr float32" if settings.float32 else "exr half",
        "compression": settings.exr_compression,
    }


def output_metadata(raw: RawImage, info: dict[str, str], record: dict[str, Any]
                    ) -> dict[str, str]:
    """The ``demosaic:*`` attributes of an EXR: version, source, camera, the model
    (``info``), colour space, white balance, highlights, orientation and ``record``."""
    space, wb = record["color_space"], record["white_balance"]
    return {
        "demosaic:version": demosaic.__version__,
        "demosaic:source": raw.path.name,
        "demosaic:camera": f"{raw.make} {raw.model}".strip(),
        "demosaic:model": info["description"],
        "demosaic:modelSpec": info["model"],
        "demosaic:checkpoint": info["checkpoint"],
        "demosaic:step": info["step"],
        "demosaic:colorSpace": space + {
            "camera": "", "acescg": " linear (AP1, ACES white)"}.get(space, " linear D65"),
        "demosaic:whiteBalance": (
            f"{wb}: multipliers {record['wb_multipliers']} applied to the mosaic before "
            "demosaicking" + {
                "as_shot": "",
                "none": ", divided out of the output (unbalanced camera RGB)",
            }.get(wb, f"; output rebalanced to {record['output_multipliers']}")),
        "demosaic:highlights": record["highlights"],
        "demosaic:sourceOrientation": (f"TIFF orientation "
                                       f"{FLIP_TO_TIFF_ORIENTATION[raw.orientation]}, applied "
                                       "to the pixels"),
        "demosaic:settings": json.dumps(record, sort_keys=True),
        **({} if "noise_profile" not in record else {
            "demosaic:noise": (f"S,O per channel R,G,B {record['noise_profile']} "
                               f"({record['noise_source']}), denoise {record['denoise']:g}")}),
    }


__all__ = ["Output", "exr_output", "linear_dng_output", "output_metadata", "run_record",
           "tiff_output", "upright_size"]
