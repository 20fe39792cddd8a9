"""Colour: the sRGB transfer function, camera matrices and white balance.

All functions accept numpy arrays and torch tensors and return the same type (torch results
stay on the input's device and keep its floating dtype; numpy integer input is promoted to
float32). Images are channels-first ``(3, H, W)`` or ``(N, 3, H, W)`` with channel 0 = R,
1 = G, 2 = B, in linear light unless a name says otherwise. Nothing here clamps: values
above 1.0 and below 0.0 pass through every function.

Colour pipeline of a raw file (the dcraw/LibRaw convention)::

    camera RGB --white balance--> balanced camera RGB --M--> linear sRGB / Rec.2020

where ``M = camera_to_output_matrix(xyz_to_cam, space)``. ``M`` maps balanced camera white
``(1, 1, 1)`` to the output space's white ``(1, 1, 1)`` (D65 for both sRGB and Rec.2020).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, TypeVar

import numpy as np
import torch

from demosaic.cfa import rgb_layout, tile_layout
from demosaic.errors import DemosaicError

log = logging.getLogger(__name__)

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
Space = Literal["srgb", "rec2020", "xyz"]

# --------------------------------------------------------------------------------------
# sRGB transfer (IEC 61966-2-1), extended sign-symmetrically
# --------------------------------------------------------------------------------------

#: Linear-light threshold of the sRGB encoding's linear segment.
SRGB_LINEAR_THRESHOLD = 0.0031308
#: Encoded-value threshold of the sRGB decoding's linear segment (IEC 61966-2-1).
SRGB_ENCODED_THRESHOLD = 0.04045
_SLOPE = 12.92
_A = 0.055
_GAMMA = 2.4


def _float(x: ArrayT) -> ArrayT:
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.to(torch.float32)
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def linear_to_srgb(x: ArrayT) -> ArrayT:
    """Encode linear light with the sRGB transfer function (IEC 61966-2-1).

    ``f(x) = 12.92 x`` for ``|x| <= 0.0031308``, else ``sign(x) (1.055 |x|^(1/2.4) - 0.055)``.
    The curve is odd (``f(-x) = -f(x)``) and above 1.0 the power segment simply continues,
    so out-of-range values survive and :func:`srgb_to_linear` inverts them.

    Args:
        x: Any shape, numpy or torch, linear light (unbounded).

    Returns:
        Same shape/type/dtype (float32 for integer numpy input), sRGB-encoded, unclamped.
    """
    x = _float(x)
    if isinstance(x, torch.Tensor):
        a = x.abs()
        # clamp_min keeps pow's gradient finite on the branch torch.where discards
        power = torch.sign(x) * ((1 + _A) * a.clamp_min(SRGB_LINEAR_THRESHOLD) ** (1 / _GAMMA) - _A)
        return torch.where(a <= SRGB_LINEAR_THRESHOLD, _SLOPE * x, power)
    a = np.abs(x)
    power = np.sign(x) * ((1 + _A) * np.maximum(a, SRGB_LINEAR_THRESHOLD) ** (1 / _GAMMA) - _A)
    return np.where(a <= SRGB_LINEAR_THRESHOLD, _SLOPE * x, power).astype(x.dtype, copy=False)


def srgb_to_linear(v: ArrayT) -> ArrayT:
    """Decode sRGB-encoded values to linear light (inverse of :func:`linear_to_srgb`).

    ``g(v) = v / 12.92`` for ``|v| <= 0.04045``, else ``sign(v) ((|v| + 0.055) / 1.055)^2.4``.
    Odd and unbounded like the encoder. The IEC constants make the two segments miss each
    other by ~2e-6 at the threshold, so round trips are exact to float precision everywhere
    except right at it: linear values in ``(0.0031308, 0.0031309)`` come back off by at most
    1e-8, encoded values in ``(0.0404482, 0.04045]`` by at most 3e-8.

    Args:
        v: Any shape, numpy or torch, sRGB-encoded (8-bit images: ``value / 255``).

    Returns:
        Same shape/type/dtype (float32 for integer numpy input), linear light, unclamped.
    """
    v = _float(v)
    if isinstance(v, torch.Tensor):
        a = v.abs()
        power = torch.sign(v) * ((a.clamp_min(SRGB_ENCODED_THRESHOLD) + _A) / (1 + _A)) ** _GAMMA
        return torch.where(a <= SRGB_ENCODED_THRESHOLD, v / _SLOPE, power)
    a = np.abs(v)
    power = np.sign(v) * ((np.maximum(a, SRGB_ENCODED_THRESHOLD) + _A) / (1 + _A)) ** _GAMMA
    return np.where(a <= SRGB_ENCODED_THRESHOLD, v / _SLOPE, power).astype(v.dtype, copy=False)


# --------------------------------------------------------------------------------------
# Standard matrices (computed from the primaries' chromaticities and D65, float64)
# --------------------------------------------------------------------------------------

#: CIE D65 white point chromaticity (x, y).
D65_XY = (0.3127, 0.3290)
_SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
_REC2020_PRIMARIES = ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046))


def _xy_to_xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def rgb_to_xyz_matrix(primaries: Sequence[tuple[float, float]],
                      white: tuple[float, float] = D65_XY) -> np.ndarray:
    """Normalised primary matrix: linear RGB -> XYZ with ``RGB (1,1,1)`` -> white (Y = 1).

    Args:
        primaries: ``(x, y)`` chromaticities of R, G, B.
        white: ``(x, y)`` of the white point.

    Returns:
        ``(3, 3)`` float64.
    """
    p = np.stack([_xy_to_xyz(c) for c in primaries], axis=1)
    scale = np.linalg.solve(p, _xy_to_xyz(white))
    return p * scale[None, :]


#: Linear sRGB (D65) -> XYZ.
SRGB_TO_XYZ = rgb_to_xyz_matrix(_SRGB_PRIMARIES)
#: XYZ -> linear sRGB (D65).
XYZ_TO_SRGB = np.linalg.inv(SRGB_TO_XYZ)
#: Linear Rec.2020 (D65) -> XYZ.
REC2020_TO_XYZ = rgb_to_xyz_matrix(_REC2020_PRIMARIES)
#: XYZ -> linear Rec.2020 (D65).
XYZ_TO_REC2020 = np.linalg.inv(REC2020_TO_XYZ)
#: XYZ of the D65 white with Y = 1.
D65_XYZ = _xy_to_xyz(D65_XY)

#: ACES AP1 primaries (ACEScg) and the ACES white point (SMPTE ST 2065-1 / S-2014-004).
_AP1_PRIMARIES = ((0.713, 0.293), (0.165, 0.830), (0.128, 0.044))
ACES_WHITE_XY = (0.32168, 0.33767)
#: Linear ACEScg -> XYZ relative to the ACES white.
ACESCG_TO_XYZ = rgb_to_xyz_matrix(_AP1_PRIMARIES, ACES_WHITE_XY)
#: Bradford cone response matrix (chromatic adaptation).
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                      [-0.7502, 1.7135, 0.0367],
                      [0.0389, -0.0685, 1.0296]])


def bradford(src_xy: tuple[float, float], dst_xy: tuple[float, float]) -> np.ndarray:
    """``(3, 3)`` Bradford chromatic adaptation of XYZ from white ``src_xy`` to ``dst_xy``."""
    src, dst = _BRADFORD @ _xy_to_xyz(src_xy), _BRADFORD @ _xy_to_xyz(dst_xy)
    return np.linalg.inv(_BRADFORD) @ np.diag(dst / src) @ _BRADFORD


#: XYZ (D65) -> linear ACEScg: Bradford from D65 to the ACES white, then AP1.
XYZ_TO_ACESCG = np.linalg.inv(ACESCG_TO_XYZ) @ bradford(D65_XY, ACES_WHITE_XY)

_XYZ_TO_OUTPUT: dict[str, np.ndarray] = {
    "srgb": XYZ_TO_SRGB,
    "rec2020": XYZ_TO_REC2020,
    "acescg": XYZ_TO_ACESCG,
    "xyz": np.eye(3),
}


def xyz_to_output(space: str) -> np.ndarray:
    """The ``(3, 3)`` matrix XYZ (D65) -> ``space`` (``"srgb"``, ``"rec2020"``, ``"acescg"``
    (Bradford-adapted to the ACES white), ``"xyz"``)."""
    key = space.lower().replace("-", "").replace(".", "").replace("_", "")
    key = {"linearsrgb": "srgb", "bt2020": "rec2020", "rec2020": "rec2020", "ap1": "acescg"}.get(key, key)
    if key not in _XYZ_TO_OUTPUT:
        raise DemosaicError(
            f"unknown output colour space {space!r}; choose one of {sorted(_XYZ_TO_OUTPUT)}"
        )
    return _XYZ_TO_OUTPUT[key]


# --------------------------------------------------------------------------------------
# Camera matrices
# --------------------------------------------------------------------------------------


def camera_to_output_matrix(xyz_to_cam: np.ndarray | Sequence[Sequence[float]],
                            space: str = "srgb") -> np.ndarray:
    """Matrix from white-balanced camera RGB to a linear output space.

    Follows dcraw/LibRaw: ``cam_rgb = xyz_to_cam @ SRGB_TO_XYZ`` (camera response to the sRGB
    primaries), each row divided by its sum so that sRGB white -- D65 -- gives camera
    ``(1, 1, 1)`` (which is what white balance produces for a neutral surface), then
    inverted. For other spaces the result is composed with ``sRGB -> XYZ -> space``, which
    keeps the D65 white (Rec.2020 and sRGB share it; ``"xyz"`` gives D65's XYZ).

    Args:
        xyz_to_cam: ``(3, 3)`` XYZ -> camera matrix (rawpy's ``rgb_xyz_matrix[:3]``, a DNG's
            ``ColorMatrix``), any row scaling.
        space: ``"srgb"`` (linear sRGB), ``"rec2020"`` (linear Rec.2020) or ``"xyz"``.

    Returns:
        ``(3, 3)`` float64 ``M`` with ``output = M @ balanced_camera_rgb`` and
        ``M @ (1, 1, 1) = (1, 1, 1)`` for sRGB and Rec.2020.

    Raises:
        DemosaicError: if the matrix is not 3x3, has a row with zero sum or is singular.
    """
    m = np.asarray(xyz_to_cam, dtype=np.float64)
    if m.shape != (3, 3):
        raise DemosaicError(
            f"xyz_to_cam must be a 3x3 XYZ->camera matrix (use the first 3 rows of rawpy's "
            f"rgb_xyz_matrix), got shape {m.shape}"
        )
    cam_rgb = m @ SRGB_TO_XYZ
    sums = cam_rgb.sum(axis=1, keepdims=True)
    if not np.all(np.isfinite(sums)) or np.any(np.abs(sums) < 1e-12):
        raise DemosaicError(
            f"xyz_to_cam has a row that maps D65 white to zero, cannot normalise it:\n{m}\n"
            "check the raw file's colour matrix (an all-zero matrix means the camera is unknown)"
        )
    cam_rgb = cam_rgb / sums
    try:
        rgb_cam = np.linalg.inv(cam_rgb)
    except np.linalg.LinAlgError as exc:
        raise DemosaicError(f"xyz_to_cam is singular, cannot invert it:\n{m}") from exc
    return xyz_to_output(space) @ SRGB_TO_XYZ @ rgb_cam


def chromaticities(rgb_to_xyz: np.ndarray | Sequence[Sequence[float]]
                   ) -> tuple[float, float, float, float, float, float, float, float]:
    """The OpenEXR ``chromaticities`` of a linear RGB space given its RGB -> XYZ matrix:
    ``(red x, red y, green x, green y, blue x, blue y, white x, white y)``, the primaries
    being the matrix's columns and the white its image of ``(1, 1, 1)``. With the standard
    matrices this gives Rec.709 / Rec.2020 and D65; with a camera's, its (possibly imaginary)
    primaries, so any tool can convert the file exactly.

    Raises:
        DemosaicError: a column or the white has no chromaticity (X + Y + Z = 0).
    """
    m = np.asarray(rgb_to_xyz, dtype=np.float64)
    if m.shape != (3, 3):
        raise DemosaicError(f"RGB -> XYZ matrix must be 3x3, got {m.shape}")
    out: list[float] = []
    for v in (m[:, 0], m[:, 1], m[:, 2], m @ np.ones(3)):
        total = float(v.sum())
        if not np.isfinite(total) or abs(total) < 1e-12:
            raise DemosaicError(f"RGB -> XYZ matrix has a column or white with X + Y + Z = 0:\n{m}")
        out += [float(v[0] / total), float(v[1] / total)]
    return tuple(out)  # type: ignore[return-value]


def xyz_to_cam_from_rgb_cam(rgb_cam: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Recover an XYZ -> camera matrix (rows normalised to D65 white = 1) from dcraw's
    ``rgb_cam`` (balanced camera RGB -> linear sRGB), e.g. for DNG files where LibRaw leaves
    ``rgb_xyz_matrix`` empty. Inverse of :func:`camera_to_output_matrix` with ``"srgb"``.

    Returns:
        ``(3, 3)`` float64.
    """
    m = np.asarray(rgb_cam, dtype=np.float64)[:3, :3]
    try:
        return np.linalg.inv(m) @ XYZ_TO_SRGB
    except np.linalg.LinAlgError as exc:
        raise DemosaicError(f"camera->sRGB matrix is singular, cannot invert it:\n{m}") from exc


def apply_matrix(img: ArrayT, matrix: np.ndarray | torch.Tensor | Sequence[Sequence[float]]
                 ) -> ArrayT:
    """Apply a ``(3, 3)`` colour matrix to every pixel: ``out[c] = sum_k M[c, k] img[k]``.

    Args:
        img: ``(3, H, W)`` or ``(N, 3, H, W)``, numpy or torch.
        matrix: ``(3, 3)``.

    Returns:
        Same shape and type; torch keeps device/dtype, numpy keeps a float dtype (float32
        for integer input). Unclamped.
    """
    if img.ndim not in (3, 4) or img.shape[-3] != 3:
        raise DemosaicError(
            f"apply_matrix expects an image (3, H, W) or (N, 3, H, W), got {tuple(img.shape)}"
        )
    img = _float(img)
    m = np.asarray(matrix.detach().cpu().numpy() if isinstance(matrix, torch.Tensor) else matrix,
                   dtype=np.float64)
    if m.shape != (3, 3):
        raise DemosaicError(f"colour matrix must be 3x3, got {m.shape}")
    if isinstance(img, torch.Tensor):
        mt = torch.from_numpy(m).to(device=img.device, dtype=img.dtype)
        return torch.einsum("ck,...khw->...chw", mt, img)
    return np.einsum("ck,...khw->...chw", m.astype(img.dtype), img)


# --------------------------------------------------------------------------------------
# White balance
# --------------------------------------------------------------------------------------


def normalize_multipliers(multipliers: Sequence[float] | np.ndarray) -> np.ndarray:
    """White-balance multipliers ``(R, G, B)`` (a 4th value, LibRaw's second green, is
    ignored) divided by the green one, as float64 ``(3,)``.

    Raises:
        DemosaicError: if fewer than 3 values, a non-finite or non-positive value.
    """
    m = np.asarray(multipliers, dtype=np.float64).ravel()
    if m.size < 3:
        raise DemosaicError(f"white balance needs 3 multipliers (R, G, B), got {m.tolist()}")
    m = m[:3]
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise DemosaicError(
            f"white balance multipliers must be finite and > 0, got {m.tolist()}"
        )
    return m / m[1]


def apply_white_balance(rgb: ArrayT, multipliers: Sequence[float] | np.ndarray) -> ArrayT:
    """Scale the channels of an image by white-balance multipliers normalised to green = 1.

    Args:
        rgb: ``(3, H, W)`` or ``(N, 3, H, W)``, numpy or torch, camera RGB, linear.
        multipliers: ``(R, G, B)`` gains (any scale; divided by G here).

    Returns:
        Same shape/type, unclamped.
    """
    if rgb.ndim not in (3, 4) or rgb.shape[-3] != 3:
        raise DemosaicError(
            f"apply_white_balance expects (3, H, W) or (N, 3, H, W), got {tuple(rgb.shape)}"
        )
    m = normalize_multipliers(multipliers)
    rgb = _float(rgb)
    if isinstance(rgb, torch.Tensor):
        return rgb * torch.as_tensor(m, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return rgb * m.astype(rgb.dtype).reshape(3, 1, 1)


def white_balance_mosaic(cfa: ArrayT, pattern_layout: np.ndarray | Sequence[Sequence[int]],
                         multipliers: Sequence[float] | np.ndarray) -> ArrayT:
    """White-balance a mosaic: each pixel times the multiplier of its filter colour.

    Args:
        cfa: ``(..., H, W)`` mosaic, numpy or torch.
        pattern_layout: ``(P, P)`` channel indices (0 = R, 1 = G, 2 = B; 3 is read as G) of
            the mosaic's **top-left** pixels, i.e. ``cfa[..., y, x]`` has colour
            ``layout[y % P, x % P]``.
        multipliers: ``(R, G, B)`` gains, normalised to G = 1 here.

    Returns:
        Same shape/type, unclamped.
    """
    layout = rgb_layout(pattern_layout)
    if layout.ndim != 2 or layout.shape[0] != layout.shape[1] or layout.size == 0:
        raise DemosaicError(f"pattern_layout must be a square P x P array, got {layout.shape}")
    if layout.min() < 0 or layout.max() > 2:
        raise DemosaicError(f"pattern_layout holds channel indices 0..2 (3 = G), got {layout.tolist()}")
    m = normalize_multipliers(multipliers)
    h, w = cfa.shape[-2], cfa.shape[-1]
    p = layout.shape[0]
    cfa = _float(cfa)
    if isinstance(cfa, torch.Tensor):
        gain = m[tile_layout(layout, h, w)]
        return cfa * torch.from_numpy(gain).to(device=cfa.device, dtype=cfa.dtype)
    # numpy: one strided multiply per CFA phase into a copy (no full-size gain image, which
    # for a 40 MP file would cost 320 MB of float64)
    out = np.array(cfa, dtype=cfa.dtype, copy=True)
    for i in range(p):
        for j in range(p):
            out[..., i::p, j::p] *= out.dtype.type(m[layout[i, j]])
    return out
