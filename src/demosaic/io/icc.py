"""ICC profiles that describe what our TIFFs hold: any RGB primaries, sRGB or linear encoding.

:func:`matrix_trc_profile` builds an ICC v4.3 display (matrix/TRC) profile from an RGB -> XYZ
matrix and a transfer curve, so a TIFF in linear sRGB, Rec.2020, ACEScg or the camera's own
primaries tells a colour-managed viewer exactly how to show it. LittleCMS (through Pillow's
``ImageCms``) can only make its built-in sRGB profile, and no maintained Python package
writes matrix/TRC profiles, so the ~40 lines of ICC structure are written here and checked
against LittleCMS in the tests (our sRGB profile transforms like LittleCMS's own; a linear
profile decodes to the linear values).

Profile contents (ICC.1:2022, sections 7 and 10):

- header: class ``mntr``, colour space ``RGB``, PCS ``XYZ``, D50 illuminant, version 4.3;
- ``desc``/``cprt`` (``mluc``), ``wtpt`` = D50 (v4 rule), ``chad`` = Bradford from the
  encoding's white to D50;
- ``rXYZ``/``gXYZ``/``bXYZ``: the columns of ``chad @ rgb_to_xyz`` (D50-adapted colorants);
- ``rTRC``/``gTRC``/``bTRC``: one shared curve: ``curv`` with no entries (identity) for
  ``"linear"``, a ``para`` type-3 function (the IEC 61966-2-1 curve) for ``"srgb"``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from demosaic.errors import ImageIOError

#: ICC profile connection space white (D50), XYZ.
D50_XYZ = np.array([0.9642, 1.0, 0.8249])
TRANSFERS = ("srgb", "linear")
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                      [-0.7502, 1.7135, 0.0367],
                      [0.0389, -0.0685, 1.0296]])


def _s15f16(values: Sequence[float] | np.ndarray) -> bytes:
    return b"".join(struct.pack(">i", int(round(float(v) * 65536.0))) for v in np.ravel(values))


def _mluc(text: str) -> bytes:
    data = text.encode("utf-16-be")
    return b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(data), 28) + data


def _xyz(values: Sequence[float] | np.ndarray) -> bytes:
    return b"XYZ " + bytes(4) + _s15f16(values)


def _curve(transfer: str) -> bytes:
    if transfer == "linear":
        return b"curv" + bytes(4) + struct.pack(">I", 0)
    # type 3: Y = (aX + b)^g for X >= d, Y = cX below (IEC 61966-2-1)
    return b"para" + bytes(4) + struct.pack(">HH", 3, 0) + _s15f16(
        [2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045])


def bradford_to_d50(white_xyz: np.ndarray) -> np.ndarray:
    """``(3, 3)`` Bradford chromatic adaptation from ``white_xyz`` to the ICC D50 white."""
    src = _BRADFORD @ np.asarray(white_xyz, dtype=np.float64)
    dst = _BRADFORD @ D50_XYZ
    return np.linalg.inv(_BRADFORD) @ np.diag(dst / src) @ _BRADFORD


def matrix_trc_profile(rgb_to_xyz: np.ndarray | Sequence[Sequence[float]], transfer: str,
                       description: str) -> bytes:
    """An ICC v4.3 RGB display profile.

    Args:
        rgb_to_xyz: ``(3, 3)`` linear RGB -> CIE XYZ (Y of white = 1); its white
            ``rgb_to_xyz @ (1, 1, 1)`` is adapted to D50 with Bradford.
        transfer: ``"srgb"`` (values are sRGB-encoded) or ``"linear"``.
        description: The profile's name, shown by viewers (``desc``).

    Returns:
        The profile bytes (embed as TIFF tag 34675, ``ICCProfile``).

    Raises:
        ImageIOError: a bad matrix or transfer name.
    """
    m = np.asarray(rgb_to_xyz, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-9:
        raise ImageIOError(f"ICC profile {description!r}: need an invertible 3x3 RGB->XYZ matrix")
    if transfer not in TRANSFERS:
        raise ImageIOError(f"ICC transfer {transfer!r} unknown; use one of {TRANSFERS}")
    white = m @ np.ones(3)
    chad = bradford_to_d50(white)
    colorants = chad @ m
    curve = _curve(transfer)
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _mluc(description)),
        (b"cprt", _mluc("No copyright, use freely")),
        (b"wtpt", _xyz(D50_XYZ)),
        (b"chad", b"sf32" + bytes(4) + _s15f16(chad)),
        (b"rXYZ", _xyz(colorants[:, 0])),
        (b"gXYZ", _xyz(colorants[:, 1])),
        (b"bXYZ", _xyz(colorants[:, 2])),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, blob, placed = b"", b"", {}
    for sig, data in tags:
        if data not in placed:  # the three TRC tags share one curve
            placed[data] = offset + len(blob)
            blob += data + bytes(-len(data) % 4)
        table += sig + struct.pack(">II", placed[data], len(data))
    size = offset + len(blob)
    header = (struct.pack(">I", size) + bytes(4) + bytes([4, 0x30, 0, 0]) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + bytes(4) + bytes(4)
              + bytes(4) + bytes(4) + bytes(8) + struct.pack(">I", 0) + _s15f16(D50_XYZ)
              + b"dmsc" + bytes(16) + bytes(28))
    if len(header) != 128:  # pragma: no cover - layout invariant
        raise ImageIOError(f"internal: ICC header is {len(header)} bytes, not 128")
    return header + struct.pack(">I", len(tags)) + table + blob


__all__ = ["matrix_trc_profile", "bradford_to_d50", "TRANSFERS", "D50_XYZ"]
