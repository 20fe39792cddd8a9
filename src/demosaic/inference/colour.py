"""The colour of one output, planned once per file: white balances, matrix, primaries, ICC.

:func:`plan_colour` normalises the file's as-shot multipliers once (green = 1) and derives
from them everything the develop and the writers need: the balance the output carries
(:attr:`ColourPlan.output`), the per-channel gain from the as-shot-balanced network output to
it (:attr:`ColourPlan.gain`), the ``(3, 3)`` camera -> output matrix, the output's RGB -> XYZ
(EXR ``chromaticities``, TIFF ICC profile) and a linear DNG's ``AsShotNeutral``. The matrix,
primaries and profile are computed on first use, as the output kind asks for them.

Colour: ``color_space="srgb"`` (default) writes **linear** Rec.709/sRGB primaries with D65,
``"rec2020"`` linear Rec.2020, ``"acescg"`` linear AP1 (ACES white), all through
:func:`demosaic.color.camera_to_output_matrix` of the file's colour matrix; ``"camera"``
writes the camera's own RGB (white-balanced unless ``white_balance="none"``), labelled with
the camera's primaries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from demosaic.color import (
    ACESCG_TO_XYZ,
    REC2020_TO_XYZ,
    SRGB_TO_XYZ,
    apply_matrix,
    camera_to_output_matrix,
    chromaticities,
    normalize_multipliers,
)
from demosaic.errors import DemosaicError, RawReadError
from demosaic.inference.settings import COLOR_SPACES, custom_multipliers
from demosaic.io.icc import matrix_trc_profile
from demosaic.io.images import half_range_exceeded, srgb_icc_profile
from demosaic.io.raw import RawImage
from demosaic.schema import check_choice

log = logging.getLogger(__name__)

#: Rows per chunk of the colour step: 32 rows of a 6000 px frame (2.3 MB of float32 RGB) stay
#: in the caches while they are multiplied, range-checked and converted.
CHUNK_ROWS = 32
_FIXED_TO_XYZ = {"srgb": SRGB_TO_XYZ, "rec2020": REC2020_TO_XYZ, "acescg": ACESCG_TO_XYZ}
_SPACE_NAMES = {"srgb": "sRGB (Rec.709 primaries, D65)", "rec2020": "Rec.2020 (D65)",
                "acescg": "ACEScg (AP1)"}


@dataclass
class ColourPlan:
    """One file's colour decisions (:func:`plan_colour`).

    Attributes:
        color_space, white_balance: As asked (validated).
        as_shot: ``(3,)`` the file's as-shot multipliers, G = 1: the balance the network sees.
        output: ``(3,)`` the balance the output carries, G = 1 (as-shot, the camera's
            daylight, ``(1, 1, 1)`` for ``"none"``, or ``"R,G,B"``).
        gain: ``(3,)`` ``output / as_shot``, or ``None`` when that is 1 (within 1e-6).
        xyz_to_cam: ``(3, 3)`` the file's colour matrix; ``camera_name``, ``path``: for
            profile labels and messages.
    """

    color_space: str
    white_balance: str
    as_shot: np.ndarray
    output: np.ndarray
    gain: np.ndarray | None
    xyz_to_cam: np.ndarray
    camera_name: str
    path: Path

    def unbalanced(self) -> ColourPlan:
        """The same file with ``white_balance="none"`` (a linear DNG's pixels: unbalanced
        camera RGB); the as-shot multipliers are not normalised again."""
        output = np.ones(3)
        return ColourPlan(self.color_space, "none", self.as_shot, output,
                          _gain(output, self.as_shot), self.xyz_to_cam, self.camera_name,
                          self.path)

    @property
    def dng_neutral(self) -> np.ndarray:
        """``(3,)`` a linear DNG's ``AsShotNeutral``: the as-shot one, or the white balance
        asked for."""
        return 1.0 / (self.as_shot if self.white_balance == "none" else self.output)

    @cached_property
    def matrix(self) -> np.ndarray | None:
        """The single ``(3, 3)`` matrix applied to the output of develop (``None`` =
        identity, ``"camera"``).

        White balance is not part of it: develop balances the **mosaic** before the network
        (LibRaw's order) and, for another ``white_balance``, rescales the output afterwards.
        ``"srgb"``/``"rec2020"``/``"acescg"`` map camera RGB to the linear output space;
        without white balance that matrix meets unbalanced camera RGB (neutral surfaces keep
        the sensor's colour cast, as LibRaw does with unit multipliers).

        Raises:
            RawReadError: the file's matrix gives none (the message suggests ``camera``).
        """
        if self.color_space == "camera":
            return None
        try:
            return camera_to_output_matrix(self.xyz_to_cam, self.color_space)
        except DemosaicError as exc:
            raise RawReadError(f"{self.path}: cannot build the camera->{self.color_space} "
                               f"matrix: {exc}; use --color-space camera") from None

    @cached_property
    def rgb_to_xyz(self) -> np.ndarray | None:
        """``(3, 3)`` linear RGB -> XYZ of the output: Rec.709 / Rec.2020 primaries with D65
        for ``srgb`` / ``rec2020``, AP1 with the ACES white for ``acescg``; for ``camera``, the
        camera's own primaries (balanced camera RGB -> XYZ, white D65; with another
        ``white_balance`` the white moves with it: the camera's neutral for ``"none"``).
        ``None`` when the file's matrix cannot give them (logged)."""
        if self.color_space in _FIXED_TO_XYZ:
            return _FIXED_TO_XYZ[self.color_space]
        try:
            to_xyz = camera_to_output_matrix(self.xyz_to_cam, "xyz")
            if self.gain is not None:  # camera RGB balanced otherwise
                to_xyz = to_xyz @ np.diag(1.0 / self.gain)
            chromaticities(to_xyz)  # raises for a degenerate matrix
            return to_xyz
        except DemosaicError as exc:
            log.warning("%s: no primaries for camera RGB (%s); the output will not carry them",
                        self.path, exc)
            return None

    @property
    def chromaticities(self) -> tuple[float, ...] | None:
        """The OpenEXR ``chromaticities`` of :attr:`rgb_to_xyz` (``None`` without it)."""
        to_xyz = self.rgb_to_xyz
        return None if to_xyz is None else chromaticities(to_xyz)

    def icc_profile(self, transfer: str) -> bytes | None:
        """The ICC profile of a TIFF: the output primaries and its encoding (``"srgb"`` or
        ``"linear"``); ``None`` when the primaries are unknown."""
        if self.color_space == "srgb" and transfer == "srgb":
            return srgb_icc_profile()
        to_xyz = self.rgb_to_xyz
        if to_xyz is None:
            return None
        name = _SPACE_NAMES.get(self.color_space, f"{self.camera_name} camera RGB".strip())
        label = ("Linear " if transfer == "linear" else "sRGB-encoded ") + name
        return matrix_trc_profile(to_xyz, transfer, label)


def plan_colour(raw: RawImage, color_space: str = "srgb", white_balance: str = "as_shot"
                ) -> ColourPlan:
    """One file's :class:`ColourPlan` (the only place its as-shot multipliers are normalised).

    Raises:
        ConfigError: an unknown ``color_space`` or a bad ``white_balance``.
    """
    check_choice(color_space, COLOR_SPACES, "color_space")
    as_shot = normalize_multipliers(raw.wb_multipliers)
    output = _output_balance(white_balance, as_shot, raw.daylight_multipliers)
    return ColourPlan(color_space, white_balance, as_shot, output, _gain(output, as_shot),
                      raw.xyz_to_cam, f"{raw.make} {raw.model}", raw.path)


def _output_balance(white_balance: str, as_shot: np.ndarray, daylight: np.ndarray
                    ) -> np.ndarray:
    """``(3,)`` the white balance the output carries (G = 1)."""
    custom = custom_multipliers(white_balance)
    if custom is not None:
        return custom
    if white_balance == "daylight":
        return normalize_multipliers(daylight)
    if white_balance == "none":
        return np.ones(3)
    return as_shot


def _gain(output: np.ndarray, as_shot: np.ndarray) -> np.ndarray | None:
    """``output / as_shot`` per channel; ``None`` when that is the as-shot balance itself."""
    gain = output / as_shot
    return None if np.allclose(gain, 1.0, rtol=1e-6, atol=0.0) else gain


def output_multipliers(raw: RawImage, white_balance: str) -> np.ndarray:
    """``(3,)`` the white balance an output of ``raw`` carries (:attr:`ColourPlan.output`)."""
    return plan_colour(raw, "camera", white_balance).output


def output_gain(raw: RawImage, white_balance: str) -> np.ndarray | None:
    """``(3,)`` from the as-shot-balanced network output to ``white_balance``
    (:attr:`ColourPlan.gain`)."""
    return plan_colour(raw, "camera", white_balance).gain


def output_rgb_to_xyz(raw: RawImage, color_space: str, white_balance: str) -> np.ndarray | None:
    """``(3, 3)`` linear RGB -> XYZ of an output of ``raw`` (:attr:`ColourPlan.rgb_to_xyz`)."""
    return plan_colour(raw, color_space, white_balance).rgb_to_xyz


def apply_matrix_chunked(rgb: torch.Tensor, matrix: np.ndarray | None, dtype: np.dtype
                         ) -> np.ndarray:
    """``matrix @ rgb`` per pixel (:func:`demosaic.color.apply_matrix`) for a ``(3, H, W)``
    float32 CPU tensor (any strides), in row chunks of :data:`CHUNK_ROWS`, into a new numpy
    array of ``dtype`` (float16 halves the memory of the EXR half path; values beyond
    +-65504 become inf, with a warning). torch's product and conversion: the same float32
    sums as ``numpy.einsum`` in 256-row chunks, whose colour stage took 0.40 s of a 24 MP
    frame against 0.05 s now (docs/lab/speed-work.md, "Whole process after the speed work")."""
    if matrix is None and dtype == np.float32:
        return rgb.numpy()
    out = torch.empty(rgb.shape, dtype=torch.float16 if dtype == np.float16 else torch.float32)
    overflow = False
    for r0 in range(0, rgb.shape[1], CHUNK_ROWS):
        chunk = rgb[:, r0:r0 + CHUNK_ROWS]
        if matrix is not None:
            chunk = apply_matrix(chunk, matrix)
        if dtype == np.float16 and not overflow:
            overflow = half_range_exceeded(chunk.numpy())
        out[:, r0:r0 + CHUNK_ROWS] = chunk  # beyond +-65504 -> inf, warned about below
    if overflow:
        log.warning("values beyond the half-float range (+-65504) become inf; use --float")
    return out.numpy()


__all__ = ["CHUNK_ROWS", "ColourPlan", "apply_matrix_chunked", "output_gain",
           "output_multipliers", "output_rgb_to_xyz", "plan_colour"]
