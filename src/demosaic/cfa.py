"""Colour filter arrays as data: X-Trans and Bayer patterns, masks, mosaics, phase alignment.

Channel indices are ``0 = R``, ``1 = G``, ``2 = B`` everywhere in this package.

A pattern is a ``P x P`` array of channel indices describing the filter colour at pixel
``(y, x)`` as ``layout[y % P, x % P]``, where ``(0, 0)`` is the **top-left pixel of the
array being described** (an image crop, a raw file's visible area, a training patch).

Canonical X-Trans (period 6), the layout LibRaw uses for most Fujifilm bodies::

        x: 0 1 2 3 4 5
    y=0    G G R G G B
    y=1    G G B G G R
    y=2    B R G R B G
    y=3    G G B G G R
    y=4    G G R G G B
    y=5    R B G B R G

20 G, 8 R and 8 B per cell; every row and every column holds at least one R and one B.
The four Bayer phases are named by their top-left 2x2 block read row by row
(``RGGB``: R at (0, 0), G at (0, 1) and (1, 0), B at (1, 1)).

Everything trained or evaluated in this package works in the **canonical phase** of its
pattern family: a mosaic whose top-left pixel sits at a different phase is cropped by the
shift :func:`align` returns (see :class:`Alignment`) before it reaches a model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, overload

import numpy as np
import torch

from demosaic.errors import CFAError

log = logging.getLogger(__name__)

R, G, B = 0, 1, 2
_LETTERS = "RGB"

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class CFAPattern:
    """A periodic colour filter array.

    Attributes:
        name: Registry name (``"xtrans"``, ``"bayer_rggb"`` ...).
        family: ``"xtrans"`` or ``"bayer"``; patterns of one family are shifts of each other.
        layout: Tuple of rows of channel indices (0 = R, 1 = G, 2 = B), ``period x period``.
    """

    name: str
    family: Literal["xtrans", "bayer"]
    layout: tuple[tuple[int, ...], ...]

    @property
    def period(self) -> int:
        """Side of the repeating cell in pixels (6 for X-Trans, 2 for Bayer)."""
        return len(self.layout)

    @property
    def array(self) -> np.ndarray:
        """The layout as an ``(P, P)`` int64 array of channel indices."""
        return np.asarray(self.layout, dtype=np.int64)

    @property
    def cell_mask(self) -> np.ndarray:
        """One-hot ``(3, P, P)`` float32 mask of the cell: ``cell_mask[c, y, x] = 1`` where
        the filter at ``(y, x)`` is channel ``c``."""
        return np.stack([(self.array == c) for c in range(3)]).astype(np.float32)

    def shifted(self, dy: int, dx: int) -> np.ndarray:
        """Layout seen by an array whose top-left pixel sits at ``(dy, dx)`` of this pattern.

        ``shifted(dy, dx)[y, x] == layout[(y + dy) % P, (x + dx) % P]``.
        """
        return np.roll(self.array, shift=(-dy, -dx), axis=(0, 1))

    def ascii(self) -> str:
        """The cell drawn with the letters R, G, B, one row per line."""
        return "\n".join(" ".join(_LETTERS[c] for c in row) for row in self.layout)

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return f"{self.name} (period {self.period})"


def _parse(rows: str) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(_LETTERS.index(ch) for ch in row.split()) for row in rows.strip().splitlines())


XTRANS = CFAPattern(
    "xtrans",
    "xtrans",
    _parse(
        """
        G G R G G B
        G G B G G R
        B R G R B G
        G G B G G R
        G G R G G B
        R B G B R G
        """
    ),
)
BAYER_RGGB = CFAPattern("bayer_rggb", "bayer", _parse("R G\nG B"))
BAYER_BGGR = CFAPattern("bayer_bggr", "bayer", _parse("B G\nG R"))
BAYER_GRBG = CFAPattern("bayer_grbg", "bayer", _parse("G R\nB G"))
BAYER_GBRG = CFAPattern("bayer_gbrg", "bayer", _parse("G B\nR G"))

PATTERNS: dict[str, CFAPattern] = {
    p.name: p for p in (XTRANS, BAYER_RGGB, BAYER_BGGR, BAYER_GRBG, BAYER_GBRG)
}
#: The pattern every model of a family is trained on.
CANONICAL: dict[str, CFAPattern] = {"xtrans": XTRANS, "bayer": BAYER_RGGB}
_ALIASES = {"x-trans": "xtrans", "bayer": "bayer_rggb", "rggb": "bayer_rggb",
            "bggr": "bayer_bggr", "grbg": "bayer_grbg", "gbrg": "bayer_gbrg"}


def get_pattern(name: str | CFAPattern) -> CFAPattern:
    """Look a pattern up by name (``xtrans``, ``bayer_rggb``, ``rggb``, ``bayer`` ...)."""
    if isinstance(name, CFAPattern):
        return name
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in PATTERNS:
        raise CFAError(
            f"unknown CFA pattern {name!r}; choose one of {sorted(PATTERNS)} "
            f"(aliases: {sorted(_ALIASES)})"
        )
    return PATTERNS[key]


# --------------------------------------------------------------------------------------
# Masks and mosaics
# --------------------------------------------------------------------------------------


def rgb_layout(layout: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """A ``(P, P)`` layout of channel indices with LibRaw's second green (3) folded into green
    (1), so every entry is 0 (R), 1 (G) or 2 (B). Integer array; other values pass through."""
    arr = np.asarray(layout, dtype=np.int64)
    return np.where(arr == 3, 1, arr)


def tile_layout(layout: np.ndarray, height: int, width: int) -> np.ndarray:
    """The channel index of every pixel of a ``height x width`` mosaic whose top-left ``P x P``
    pixels have ``layout`` (any phase): ``(height, width)``, same dtype as ``layout``."""
    lay = np.asarray(layout)
    p = lay.shape[0]
    return np.tile(lay, (-(-height // p), -(-width // p)))[:height, :width]


def mask(pattern: CFAPattern | str, height: int, width: int) -> np.ndarray:
    """One-hot sampling mask of an ``height x width`` array in the pattern's own phase.

    Returns:
        ``(3, height, width)`` float32, exactly one 1 per pixel (the masks partition the pixels).
    """
    p = get_pattern(pattern)
    reps = (1, -(-height // p.period), -(-width // p.period))
    return np.ascontiguousarray(np.tile(p.cell_mask, reps)[:, :height, :width])


def mask_like(pattern: CFAPattern | str, ref: ArrayT) -> ArrayT:
    """:func:`mask` shaped and typed like ``ref`` (numpy or torch, ``(..., C, H, W)``).

    Returns ``(3, H, W)`` broadcastable against ``ref``, on ``ref``'s device and dtype.
    """
    h, w = ref.shape[-2], ref.shape[-1]
    m = mask(pattern, h, w)
    if isinstance(ref, torch.Tensor):
        return torch.from_numpy(m).to(device=ref.device, dtype=ref.dtype)
    return m.astype(ref.dtype, copy=False)


@overload
def mosaic(rgb: np.ndarray, pattern: CFAPattern | str) -> np.ndarray: ...
@overload
def mosaic(rgb: torch.Tensor, pattern: CFAPattern | str) -> torch.Tensor: ...


def mosaic(rgb: ArrayT, pattern: CFAPattern | str) -> ArrayT:
    """Sample a full-colour image through the CFA.

    Args:
        rgb: ``(3, H, W)`` or ``(N, 3, H, W)``, numpy or torch, any value range (linear light
            by convention). ``(0, 0)`` sits at the pattern's phase ``(0, 0)``.
        pattern: The CFA.

    Returns:
        The single-channel mosaic ``(1, H, W)`` or ``(N, 1, H, W)``, same type and dtype:
        at each pixel exactly the value of the channel its filter passes.
    """
    if rgb.ndim not in (3, 4) or rgb.shape[-3] != 3:
        raise CFAError(f"mosaic expects (3, H, W) or (N, 3, H, W), got shape {tuple(rgb.shape)}")
    m = mask_like(pattern, rgb)
    if isinstance(rgb, torch.Tensor):
        return (rgb * m).sum(dim=-3, keepdim=True)
    return (rgb * m).sum(axis=-3, keepdims=True)


def masked_mosaic(cfa: ArrayT, pattern: CFAPattern | str) -> ArrayT:
    """Spread a single-channel mosaic ``(..., 1, H, W)`` to the 3-channel form ``(..., 3, H, W)``:
    each pixel's value in its filter's channel, zeros elsewhere (demosaicnet's interface)."""
    return cfa * mask_like(pattern, cfa)


# --------------------------------------------------------------------------------------
# Phase alignment
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alignment:
    """How an observed layout relates to its family's canonical pattern.

    ``observed[(y + dy) % P, (x + dx) % P] == canonical[y, x]``: dropping the first ``dy``
    rows and ``dx`` columns of the observed array puts it in canonical phase.

    Attributes:
        pattern: The canonical pattern of the detected family.
        dy, dx: Crop offsets in ``[0, P)``.
    """

    pattern: CFAPattern
    dy: int
    dx: int

    @property
    def is_canonical(self) -> bool:
        return self.dy == 0 and self.dx == 0


def _describe(layout: np.ndarray) -> str:
    """One line: rows of channel letters separated by ``/`` (e.g. ``G G R / G G B``)."""
    return " / ".join(" ".join(_LETTERS[c] if 0 <= c < 3 else "?" for c in row) for row in layout)


def align(layout: np.ndarray | list[list[int]]) -> Alignment:
    """Find the crop shift that maps an observed CFA layout onto its canonical pattern.

    Args:
        layout: ``(h, w)`` channel indices of the top-left of an array (0 = R, 1 = G, 2 = B;
            LibRaw's second green 3 is accepted as G). Must cover at least one period
            (6x6 for X-Trans, 2x2 for Bayer); larger arrays are checked for periodicity.

    Returns:
        The :class:`Alignment` (family's canonical pattern and crop offsets).

    Raises:
        CFAError: naming the layout when it is neither an X-Trans nor a Bayer phase.
    """
    obs = np.asarray(layout, dtype=np.int64).copy()
    if obs.ndim != 2:
        raise CFAError(f"a CFA layout must be 2-D, got shape {obs.shape}")
    obs[obs == 3] = G
    for canonical in (XTRANS, BAYER_RGGB):
        p = canonical.period
        if obs.shape[0] < p or obs.shape[1] < p:
            continue
        h, w = obs.shape
        for dy in range(p):
            for dx in range(p):
                tiled = np.tile(_phase(canonical, dy, dx), (-(-h // p), -(-w // p)))[:h, :w]
                if np.array_equal(tiled, obs):
                    log.debug("layout aligned to %s with crop (%d, %d)", canonical.name, dy, dx)
                    return Alignment(canonical, dy, dx)
    raise CFAError(
        "CFA layout is neither X-Trans nor Bayer (need a 6x6 X-Trans or 2x2 Bayer period "
        f"in channel indices 0=R 1=G 2=B); observed top-left block: {_describe(obs[:6, :6])}"
    )


def _phase(canonical: CFAPattern, dy: int, dx: int) -> np.ndarray:
    """Observed layout of an array whose canonical phase starts at its pixel ``(dy, dx)``."""
    return np.roll(canonical.array, shift=(dy, dx), axis=(0, 1))


def crop_to_canonical(cfa: ArrayT, alignment: Alignment, multiple: int | None = None) -> ArrayT:
    """Crop a mosaic ``(..., H, W)`` by its alignment so its top-left is canonical phase.

    Args:
        cfa: Mosaic whose top-left pixel has the observed layout of ``alignment``.
        alignment: From :func:`align`.
        multiple: If given, also trim the bottom/right so both sides are multiples of it.
    """
    out = cfa[..., alignment.dy :, alignment.dx :]
    if multiple:
        h = out.shape[-2] - out.shape[-2] % multiple
        w = out.shape[-1] - out.shape[-1] % multiple
        out = out[..., :h, :w]
    return out


# --------------------------------------------------------------------------------------
# CFA-safe augmentation
# --------------------------------------------------------------------------------------

def periodic_component(x: ArrayT, period: int) -> ArrayT:
    """The ``period``-periodic component of ``x`` ``(..., H, W)``: shape ``(..., period, period)``.

    ``x`` (an error image, say) is averaged over every whole ``period x period`` cell, which
    gives its mean at each phase (phase ``(0, 0)`` = the top-left pixel; rows and columns past
    the last whole cell are left out), and the mean over the phases is removed (a uniform
    offset is not periodic). NaN where no whole cell fits: callers check the size first.
    Used by the ``periodic`` loss terms and the ``periodic_levels`` metric alike.
    """
    p = period
    h, w = x.shape[-2] // p * p, x.shape[-1] // p * p
    cells = x[..., :h, :w].reshape(*x.shape[:-2], h // p, p, w // p, p).mean((-4, -2))
    return cells - cells.mean((-2, -1))[..., None, None]


#: The 8 rigid transforms of the square: (number of 90-degree counter-clockwise turns, flip).
Transform = tuple[int, bool]
ALL_TRANSFORMS: tuple[Transform, ...] = tuple((k, f) for f in (False, True) for k in range(4))


def transform_image(img: ArrayT, k_rot: int, flip: bool) -> ArrayT:
    """Flip left-right (first, if ``flip``), then rotate by ``k_rot`` x 90 degrees
    counter-clockwise, on the last two axes of ``(..., H, W)``.

    Safe on full-colour images **before** mosaicking; applying it to a mosaic changes its
    CFA layout (see :func:`transformed_layout`). Its inverse is
    ``transform_image(y, k_rot if flip else -k_rot, flip)`` (a mirror image is its own
    inverse). Tensors are turned with transposes and flips (equal to ``torch.rot90``), which
    ONNX exports.
    """
    if isinstance(img, torch.Tensor):
        out = torch.flip(img, dims=(-1,)) if flip else img
        k = k_rot % 4
        if k == 1:
            return out.transpose(-2, -1).flip(-2)
        if k == 2:
            return out.flip(-2).flip(-1)
        if k == 3:
            return out.transpose(-2, -1).flip(-1)
        return out
    out = img[..., ::-1] if flip else img
    return np.ascontiguousarray(np.rot90(out, k=k_rot % 4, axes=(-2, -1)))


def transformed_layout(pattern: CFAPattern | str, height: int, width: int, k_rot: int,
                       flip: bool) -> np.ndarray:
    """Layout (top-left ``P x P``) of a ``height x width`` mosaic after :func:`transform_image`.

    Feed it to :func:`align` to get the crop that restores the canonical phase, or the error
    when the transform leaves the family (never for X-Trans or Bayer).
    """
    p = get_pattern(pattern)
    out = transform_image(tile_layout(p.array, height, width), k_rot, flip)
    return out[: p.period, : p.period]


def transform_mosaic(cfa: ArrayT, pattern: CFAPattern | str, k_rot: int, flip: bool
                     ) -> tuple[ArrayT, Alignment]:
    """Transform a real mosaic ``(..., H, W)`` and crop it back to canonical phase.

    Returns:
        The transformed mosaic cropped to the canonical phase of ``pattern``'s family,
        and the :class:`Alignment` that was applied.
    """
    h, w = cfa.shape[-2], cfa.shape[-1]
    layout = transformed_layout(pattern, h, w, k_rot, flip)
    al = align(layout)
    return crop_to_canonical(transform_image(cfa, k_rot, flip), al), al


def phase_extend(arr: ArrayT, period: int, top: int = 0, bottom: int = 0, left: int = 0,
                 right: int = 0) -> ArrayT:
    """Extend ``(..., H, W)`` (numpy or torch, ``H, W >= period``) on each side by copying
    the nearest pixel of the same CFA phase (``i mod period``): position ``-i`` takes the
    first period's pixel of that phase, position ``n + j`` the last period's. A mosaic stays
    a valid mosaic of the same layout, shifted by ``(top, left)``. The one same-phase
    extension every padding here uses; written with slices and concatenation only, so an
    ONNX trace of a tensor path keeps its sizes dynamic. A numpy result is a new contiguous
    array (never a view of ``arr``)."""
    h, w = arr.shape[-2], arr.shape[-1]
    if h < period or w < period:
        raise CFAError(f"mosaic of {h}x{w} px is smaller than one CFA period ({period} px)")
    out = _extend_axis(_extend_axis(arr, -2, top, bottom, period), -1, left, right, period)
    if isinstance(out, torch.Tensor):
        return out
    return out.copy() if out is arr else np.ascontiguousarray(out)


def _extend_axis(x: ArrayT, axis: int, before: int, after: int, period: int) -> ArrayT:
    """:func:`phase_extend` along one (negative) ``axis``: the first period tiled before, the
    last period tiled after."""
    if not before and not after:
        return x
    tensor = isinstance(x, torch.Tensor)

    def cat(parts: list[ArrayT]) -> ArrayT:
        return torch.cat(parts, dim=axis) if tensor else np.concatenate(parts, axis=axis)

    parts = []
    if before:  # position -i takes (-i) mod period
        reps = -(-before // period)
        block = cat([_span(x, axis, 0, period)] * reps)
        parts.append(_span(block, axis, reps * period - before, before))
    parts.append(x)
    if after:  # position n + j takes n - period + (j mod period)
        reps = -(-after // period)
        block = cat([_span(x, axis, x.shape[axis] - period, period)] * reps)
        parts.append(_span(block, axis, 0, after))
    return cat(parts)


def _span(a: ArrayT, axis: int, start: int, length: int) -> ArrayT:
    """``a[..., start:start + length, ...]`` along ``axis`` (``narrow`` for tensors)."""
    if isinstance(a, torch.Tensor):
        return a.narrow(axis, start, length)
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, start + length)
    return a[tuple(index)]


def period_pad(cfa: ArrayT, pattern: CFAPattern | str, multiple: int) -> tuple[ArrayT, tuple[int, int]]:
    """Pad the bottom/right of a mosaic or image ``(..., H, W)`` to multiples of ``multiple``
    without breaking the CFA: padded rows/columns copy the nearest inside row/column of the
    same phase (a whole period back, :func:`phase_extend`), so the padded array is still a
    valid mosaic.

    ``multiple`` must be a multiple of the period. Returns the padded array and the
    original ``(H, W)``, to crop outputs back.
    """
    p = get_pattern(pattern).period
    if multiple % p:
        raise CFAError(f"pad multiple {multiple} is not a multiple of the CFA period {p}")
    h, w = cfa.shape[-2], cfa.shape[-1]
    if h < p or w < p:
        raise CFAError(f"array of {h}x{w} px is smaller than one CFA period ({p} px)")
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return cfa, (h, w)
    return phase_extend(cfa, p, bottom=ph, right=pw), (h, w)
