"""A test chart for checking colour and detail through other tools (darktable, OIIO).

:func:`colour_chart` draws the 24 patches of an X-Rite ColorChecker (colour-science's
"ColorChecker24 - After November 2014" xyY values, D50, adapted to D65 with Bradford) on an
18 % grey background, and below them a detail strip: a zone plate, a Siemens star and fine
coloured lines, where demosaicking artifacts (false colour, zipper, maze) show. Everything is
linear sRGB (D65, white 1.0), so :func:`demosaic.sim.camera.simulate_capture` can turn it into a
camera-realistic raw file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from demosaic.color import D65_XY, XYZ_TO_SRGB, bradford

log = logging.getLogger(__name__)

#: The ColorChecker data set used (colour-science key).
COLOURCHECKER = "ColorChecker24 - After November 2014"
_BACKGROUND = 0.18


@dataclass(frozen=True)
class Chart:
    """A chart image and where its flat patches are.

    Attributes:
        rgb: ``(3, H, W)`` float32 linear sRGB (D65), values in ``[0, 1]``.
        patches: ``{name: (y0, x0, y1, x1)}`` of each patch's inner half (flat, away from
            its edges), in ``rgb`` pixel coordinates.
        detail: ``(y0, x0, y1, x1)`` of the detail strip.
    """

    rgb: np.ndarray
    patches: dict[str, tuple[int, int, int, int]]
    detail: tuple[int, int, int, int]


def colourchecker_srgb() -> dict[str, np.ndarray]:
    """The 24 ColorChecker colours as linear sRGB (D65), in chart order (row by row)."""
    import colour

    data = colour.CCS_COLOURCHECKERS[COLOURCHECKER]
    adapt = bradford(tuple(data.illuminant), D65_XY)
    return {name: XYZ_TO_SRGB @ adapt @ colour.xyY_to_XYZ(xyy) for name, xyy in data.data.items()}


def _detail(height: int, width: int) -> np.ndarray:
    """``(3, height, width)``: zone plate | Siemens star | coloured fine lines."""
    third = width // 3
    y, x = np.mgrid[0:height, 0:third].astype(np.float32)
    cy, cx = (height - 1) / 2, (third - 1) / 2
    r2 = (y - cy) ** 2 + (x - cx) ** 2
    k = 0.45 / float(np.sqrt(r2.max()))  # local frequency k * r: 0.45 cycles/px at the corner
    zone = 0.5 + 0.5 * np.cos(np.pi * k * r2)
    star = 0.5 + 0.5 * np.sign(np.sin(np.arctan2(y - cy, x - cx) * 36))
    w3 = width - 2 * third
    yy, xx = np.mgrid[0:height, 0:w3].astype(np.float32)
    lines = ((xx + yy * 0.25) % 6 < 1.5).astype(np.float32)
    red, cyan = np.array([0.6, 0.05, 0.04]), np.array([0.05, 0.35, 0.45])
    coloured = lines * red[:, None, None] + (1 - lines) * cyan[:, None, None]
    grey = [np.broadcast_to(f * 0.8 + 0.02, (3, height, third)) for f in (zone, star)]
    return np.concatenate([grey[0], grey[1], coloured], axis=2).astype(np.float32)


def colour_chart(patch: int = 72, gap: int = 12, detail_height: int = 144) -> Chart:
    """The chart: a 6 x 4 grid of ``patch``-px squares, ``gap`` px apart, over a detail strip.

    Returns:
        :class:`Chart` (size ``(4 * (patch + gap) + gap + detail_height + gap,
        6 * (patch + gap) + gap)``).
    """
    colours = colourchecker_srgb()
    width = 6 * (patch + gap) + gap
    grid_h = 4 * (patch + gap) + gap
    height = grid_h + detail_height + gap
    rgb = np.full((3, height, width), _BACKGROUND, dtype=np.float32)
    patches: dict[str, tuple[int, int, int, int]] = {}
    q = patch // 4
    for i, (name, value) in enumerate(colours.items()):
        y0 = gap + (i // 6) * (patch + gap)
        x0 = gap + (i % 6) * (patch + gap)
        rgb[:, y0:y0 + patch, x0:x0 + patch] = np.clip(value, 0.0, 1.0)[:, None, None]
        patches[name] = (y0 + q, x0 + q, y0 + patch - q, x0 + patch - q)
    detail = (grid_h, gap, grid_h + detail_height, width - gap)
    rgb[:, detail[0]:detail[2], detail[1]:detail[3]] = _detail(detail_height, width - 2 * gap)
    return Chart(rgb=rgb, patches=patches, detail=detail)





def patch_delta_e(render_a: np.ndarray, render_b: np.ndarray,
                  patches: dict[str, tuple[int, int, int, int]]) -> dict[str, float]:
    """CIEDE2000 between two renders of the chart, patch by patch.

    Args:
        render_a, render_b: ``(H, W, 3)`` sRGB-encoded renders in ``[0, 1]`` (e.g. 16-bit
            TIFFs / 65535), the chart's geometry.
        patches: :attr:`Chart.patches`.

    Returns:
        ``{name: delta E 2000}`` of each patch's mean colour (linearised, averaged, then
        converted to CIE Lab under D65).
    """
    import colour

    from demosaic.color import SRGB_TO_XYZ, srgb_to_linear

    out: dict[str, float] = {}
    for name, (y0, x0, y1, x1) in patches.items():
        labs = []
        for render in (render_a, render_b):
            mean = srgb_to_linear(np.asarray(render[y0:y1, x0:x1], np.float64)).reshape(-1, 3).mean(0)
            labs.append(colour.XYZ_to_Lab(SRGB_TO_XYZ @ mean, D65_XY))
        out[name] = float(colour.delta_E(labs[0], labs[1], method="CIE 2000"))
    return out

def false_colour(render: np.ndarray, chart: Chart) -> float:
    """Mean CIE Lab chroma ``C*ab`` over the neutral part of the detail strip (zone plate and
    Siemens star, which hold no colour): the false colour a demosaicker left there.

    Args:
        render: ``(H, W, 3)`` sRGB-encoded render in ``[0, 1]``, the chart's geometry.
    """
    import colour

    from demosaic.color import SRGB_TO_XYZ, srgb_to_linear

    y0, x0, y1, x1 = chart.detail
    neutral = np.asarray(render[y0:y1, x0:x0 + 2 * ((x1 - x0) // 3)], np.float64)
    xyz = srgb_to_linear(neutral) @ SRGB_TO_XYZ.T
    lab = colour.XYZ_to_Lab(xyz, D65_XY)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


#: EXIF of the chart's simulated shot (Exiv2 keys).
CHART_EXIF = {"Exif.Photo.ExposureTime": "1/125", "Exif.Photo.FNumber": "56/10",
              "Exif.Photo.FocalLength": "35/1", "Exif.Photo.LensMake": "FUJIFILM",
              "Exif.Photo.LensModel": "XF35mmF1.4 R",
              "Exif.Photo.DateTimeOriginal": "2026:11:30 09:00:00",
              "Exif.Photo.OffsetTimeOriginal": "+01:00"}


def write_chart_dng(path: str | os.PathLike[str], camera: str = "X-T3", iso: float = 200.0,
                    seed: int = 0, phase: tuple[int, int] = (1, 2)) -> dict[str, object]:
    """Capture :func:`colour_chart` with the camera simulation and write an X-Trans DNG.

    The capture: the body's colour matrix, daylight (no scene-light or white-balance error),
    Poisson-Gaussian noise at ``iso``, 14 bits, highlights 10 % below clipping; the mosaic in
    a non-canonical ``phase``; EXIF :data:`CHART_EXIF` plus the ISO.

    Returns:
        ``{"camera", "iso", "multipliers"}`` of the capture.
    """
    from demosaic.sim.camera import CameraSimConfig, body_by_name, simulate_capture
    from demosaic.cfa import XTRANS
    from demosaic.io.dng import write_dng

    chart = colour_chart()
    body = body_by_name(camera, "xtrans")
    layout = XTRANS.shifted(*phase)
    cfg = CameraSimConfig(illuminant_sigma=0.0, wb_error=0.0, headroom=0.9, bits=(14, 14))
    cap = simulate_capture(chart.rgb, layout, np.random.default_rng(seed), cfg, body=body, iso=iso)
    write_dng(path, cap.raw, layout, black_level=cap.black, white_level=cap.white,
              as_shot_neutral=cap.as_shot_neutral, color_matrix=body.xyz_to_cam,
              make=body.make.upper(), model=body.model,
              exif={**CHART_EXIF, "Exif.Photo.ISOSpeedRatings": str(int(round(iso)))})
    return {"camera": body.name, "iso": iso, "multipliers": cap.meta()["multipliers"]}


__all__ = ["Chart", "colour_chart", "colourchecker_srgb", "patch_delta_e", "false_colour",
           "write_chart_dng", "CHART_EXIF", "COLOURCHECKER"]
