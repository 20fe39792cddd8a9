"""Synthetic camera raw files: the one helper that turns a linear-sRGB picture into a DNG a
real camera could have written (scripts, tests and the camera protocol use it).

A capture is simulated by :func:`capture_scene` (:func:`demosaic.sim.camera.simulate_capture`:
a body's colour matrix, scene light, as-shot white balance, Poisson-Gaussian noise at an ISO,
black level, quantisation and clipping) and written by :func:`write_capture`
(:func:`demosaic.io.dng.write_dng` with the body's ``ColorMatrix1``, the as-shot neutral and
the levels); LibRaw and :func:`demosaic.io.raw.read_raw` read it back like a camera's file.
:func:`write_camera_raw` does both; the camera protocol calls them apart, since it reuses a
cached file but needs the capture (its truth) on every run.

CFA alignment: ``layout`` is the ``(P, P)`` block of channel indices (0 R, 1 G, 2 B) at the
top-left of the *visible* area; the ``margins`` (top, left, bottom, right) are masked pixels
around it, as on a sensor.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demosaic.cfa import CFAPattern, get_pattern
from demosaic.io.dng import write_dng
from demosaic.sim.camera import CameraBody, CameraSimConfig, Capture, body_by_name, simulate_capture

log = logging.getLogger(__name__)

#: A clean, fixed capture: no random light, exact white balance, 14 bits.
FIXED_CAPTURE = CameraSimConfig(illuminant_sigma=0.0, wb_error=0.0, bits=[14])
#: The body each family's synthetic files use unless told otherwise.
DEFAULT_BODY = {"xtrans": "X-T3", "bayer": "ILCE-7M3"}


def capture_scene(
    rgb: np.ndarray,
    layout: np.ndarray | CFAPattern | str = "xtrans",
    *,
    iso: float = 400.0,
    body: CameraBody | str | None = None,
    rng: np.random.Generator | None = None,
    cfg: CameraSimConfig = FIXED_CAPTURE,
    light: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, Capture]:
    """Simulate a capture of ``rgb`` (:func:`demosaic.sim.camera.simulate_capture`).

    Args:
        rgb: ``(3, H, W)`` float linear sRGB truth, white 1.0 (values above survive until the
            raw clips); ``H, W >= 22`` (LibRaw's minimum).
        layout: The visible top-left ``(P, P)`` CFA block, a pattern or its name (a phase
            other than the canonical one: ``XTRANS.shifted(dy, dx)``).
        iso: The capture's ISO (noise level).
        body: The camera (a :class:`CameraBody` or its name); default :data:`DEFAULT_BODY`
            of the layout's family.
        rng: The capture's generator (default: seeded 0, so the same call writes the same file).
        cfg: Simulation settings (default :data:`FIXED_CAPTURE`).
        light: ``(3,)`` scene-light gains in camera RGB (e.g. tungsten); default: daylight.

    Returns:
        ``(grid, capture)``: the ``(P, P)`` int64 top-left CFA block of the visible area and
        the simulated :class:`Capture` (``raw`` ``(H, W)`` uint16 data numbers, ``target``
        ``(3, H, W)`` the truth in balanced camera RGB).
    """
    grid = np.asarray(get_pattern(layout).array if isinstance(layout, (str, CFAPattern))
                      else layout, dtype=np.int64)
    family = "xtrans" if grid.shape[0] == 6 else "bayer"
    if body is None or isinstance(body, str):
        body = body_by_name(body or DEFAULT_BODY[family], family)
    cap = simulate_capture(np.asarray(rgb, dtype=np.float32), grid,
                           rng if rng is not None else np.random.default_rng(0), cfg,
                           body=body, iso=float(iso), light=light)
    return grid, cap


def write_capture(path: str | os.PathLike[str], cap: Capture, layout: np.ndarray, *,
                  margins: tuple[int, int, int, int] = (0, 0, 0, 0), model: str | None = None,
                  raw: np.ndarray | None = None, noise_profile: bool = False) -> Path:
    """Write a simulated capture as a camera-realistic CFA DNG (atomically): its data
    numbers, levels, as-shot neutral and the body's ``ColorMatrix1``, ``Make`` ``demosaic``.

    Args:
        path: The DNG.
        cap: From :func:`capture_scene`.
        layout: ``(P, P)`` top-left CFA block of ``cap.raw``.
        margins: Masked pixels ``(top, left, bottom, right)`` around the visible area.
        model: The DNG's ``Model`` (default ``"simulated <body model>"``).
        raw: ``(H', W')`` uint16 data numbers written instead of ``cap.raw`` (e.g. a padded
            copy of them, same layout).
        noise_profile: Also write the capture's true noise as the DNG ``NoiseProfile`` tag:
            ``(S, O) = (a, b^2)`` of ``cap.noise`` for every plane (sensor noise before
            quantisation, which adds ``1 / (12 (white - black)^2)``).
    """
    body = cap.body
    out = write_dng(path, cap.raw if raw is None else raw, layout, margins=margins,
                    black_level=cap.black, white_level=cap.white,
                    as_shot_neutral=cap.as_shot_neutral, color_matrix=body.xyz_to_cam,
                    make="demosaic", model=model or f"simulated {body.model}",
                    noise_profile=(cap.noise[0], cap.noise[1] ** 2) if noise_profile else None)
    log.debug("wrote %s (%s, ISO %g, margins %s)", out, body.name, cap.iso, margins)
    return Path(out)


def write_camera_raw(path: str | os.PathLike[str], rgb: np.ndarray,
                     layout: np.ndarray | CFAPattern | str = "xtrans", *,
                     margins: tuple[int, int, int, int] = (0, 0, 0, 0), model: str | None = None,
                     noise_profile: bool = False, **settings: Any) -> tuple[Path, Capture]:
    """Simulate a capture of ``rgb`` and write it as a camera-realistic CFA DNG
    (:func:`capture_scene`, then :func:`write_capture`).

    Args:
        path: The DNG to write (atomically).
        rgb, layout: As :func:`capture_scene`.
        margins: Masked pixels ``(top, left, bottom, right)`` around the visible area.
        model: The DNG's ``Model`` (default ``"simulated <body model>"``).
        noise_profile: Write the true noise as the ``NoiseProfile`` tag (:func:`write_capture`).
        settings: ``iso``, ``body``, ``rng``, ``cfg``, ``light`` of :func:`capture_scene`.

    Returns:
        ``(path, capture)``: the written file and the simulated :class:`Capture` (its
        ``target`` is the truth in balanced camera RGB).
    """
    grid, cap = capture_scene(rgb, layout, **settings)
    return write_capture(path, cap, grid, margins=margins, model=model,
                         noise_profile=noise_profile), cap


__all__ = ["DEFAULT_BODY", "FIXED_CAPTURE", "capture_scene", "write_camera_raw", "write_capture"]
