"""Parameter-free baseline: normalised convolution of each colour plane (any CFA).

For each channel ``c`` with sampling mask ``m_c`` and a small separable tent kernel ``K``::

    interp_c = conv(m_c * cfa, K) / conv(m_c, K)

i.e. the tent-weighted average of the samples of colour ``c`` in the ``(2r+1)^2``
neighbourhood. On a Bayer CFA with ``radius=1`` this is exactly classical bilinear
demosaicking; on X-Trans every 3x3 window holds all three colours, so ``radius=1`` never
divides by zero there either. Sampled positions keep their measured value.

The operator is linear in the mosaic, hence exposure-equivariant (``f(kx) = k f(x)``) and
it passes highlights above 1.0 unchanged in scale. Borders are extended by whole CFA
periods (a phase-preserving wrap of the nearest period), so edge pixels see a complete
neighbourhood of the same colours as the interior.
"""

from __future__ import annotations

import logging

import torch

from demosaic.errors import ConfigError
from demosaic.models.base import DemosaicModel, is_eager

log = logging.getLogger(__name__)


def _phase_pad(x: torch.Tensor, r: int, p: int) -> torch.Tensor:
    """Extend ``(..., H, W)`` by ``r <= p`` pixels on every side with the same-phase pixels
    one CFA period inside (``x[-i] := x[p - i]``, ``x[H - 1 + i] := x[H - 1 + i - p]``), so
    the extended array is still a valid mosaic of the same pattern. Needs ``H, W >= p``.

    Eagerly, one allocation and one pass over ``x`` (two concatenations allocate and fill two
    full-size tensors, each paying its page faults); concatenations under graph
    capture (:func:`~demosaic.models.base.is_eager`)."""
    h, w = x.shape[-2:]
    if not is_eager():
        x = torch.cat([x[..., p - r:p, :], x, x[..., h - p:h - p + r, :]], dim=-2)
        return torch.cat([x[..., :, p - r:p], x, x[..., :, w - p:w - p + r]], dim=-1)
    out = x.new_empty(x.shape[:-2] + (h + 2 * r, w + 2 * r))
    out[..., r:h + r, r:w + r] = x
    out[..., :r, r:w + r] = x[..., p - r:p, :]
    out[..., h + r:, r:w + r] = x[..., h - p:h - p + r, :]
    # Columns last, from the padded rows, so the corners are the same-phase corners too.
    out[..., :, :r] = out[..., :, p:p + r]
    out[..., :, w + r:] = out[..., :, w - p + r:w - p + 2 * r]
    return out


def _tent_valid(x: torch.Tensor, r: int) -> torch.Tensor:
    """Separable tent filter (weights ``r + 1 - |d|``, unnormalised) over the last two axes,
    'valid' region only: ``(..., H + 2r, W + 2r) -> (..., H, W)``. Shifted slices
    accumulated (in place when eager): much faster on CPU than a grouped convolution,
    stride-1 pooling or a new tensor per term. Bit-identical to
    ``((x0 + w1 * x1) + w2 * x2) + ...``: a weight is fused into the add only when it is a
    power of two (an exact product); any other is multiplied on its own first."""
    in_place = is_eager()
    for dim in (-1, -2):
        n = x.shape[dim] - 2 * r
        acc = x.narrow(dim, 0, n)  # weight 1; the first sum makes the new tensor
        for d in range(1, 2 * r + 1):
            weight = r + 1 - abs(d - r)
            term = x.narrow(dim, d, n)
            if weight & (weight - 1):  # not a power of two: round the product on its own
                term, weight = term * float(weight), 1
            if in_place and d > 1:
                acc.add_(term, alpha=weight)
            else:
                acc = torch.add(acc, term, alpha=weight)
        x = acc
    return x


class BilinearDemosaic(DemosaicModel):
    """Normalised-convolution interpolation per colour plane; no trainable parameters.

    Args:
        cfa: Pattern name (any pattern of :mod:`demosaic.cfa`).
        radius: Tent kernel radius ``r`` (kernel ``(2r+1) x (2r+1)``, weights
            ``(r+1-|dy|)(r+1-|dx|)``). 1 = classical bilinear on Bayer.
        keep_samples: Output the measured value at sampled positions (exact).

    Input/output: mosaic ``(N, 1, H, W)`` in canonical phase -> ``(N, 3, H, W)`` linear RGB.
    """

    def __init__(self, cfa: str = "xtrans", radius: int = 1, keep_samples: bool = True) -> None:
        super().__init__(cfa, size_multiple=1)
        if radius < 1 or radius > self.pattern.period:
            raise ConfigError(f"model.radius={radius} is out of range for {self.pattern.name}; "
                              f"use 1..{self.pattern.period}")
        self.radius = radius
        self.keep_samples = keep_samples
        # With phase-preserving borders the filtered mask (the denominator) is periodic:
        # compute one cell of it, on a 3x3-period tile, and store its inverse.
        p = self.pattern.period
        tile = torch.from_numpy(self.pattern.cell_mask).repeat(1, 3, 3)
        den = _tent_valid(tile, radius)[:, p - radius:2 * p - radius, p - radius:2 * p - radius]
        self.register_buffer("inv_den_cell", 1.0 / den, persistent=False)

    def interpolate(self, cfa: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        """Interpolated RGB ``(N, 3, H, W)`` from a mosaic ``(N, 1, H, W)`` (any H, W of at
        least one period; no size multiple needed), measured samples *not* re-inserted.
        ``masked`` may pass ``cfa * sampling_mask(cfa)`` when the caller has it already."""
        r, p = self.radius, self.pattern.period
        h, w = cfa.shape[-2:]
        if masked is None:
            masked = self.masked_mosaic(cfa)
        num = _tent_valid(_phase_pad(masked, r, p), r)
        inv_den = self.inv_den_cell.to(cfa.dtype)
        if h % p == 0 and w % p == 0:  # whole periods: broadcast one cell, no full-size copy
            cells, cell = num.view(num.shape[0], 3, h // p, p, w // p, p), inv_den.view(3, 1, p, 1, p)
            if is_eager():
                cells.mul_(cell)
                return num
            return (cells * cell).reshape(num.shape)
        reps = (1, -(-h // p), -(-w // p))
        return num * inv_den.repeat(*reps)[:, :h, :w]

    def forward(self, cfa: torch.Tensor) -> torch.Tensor:
        """Mosaic ``(N, 1, H, W)`` -> linear RGB ``(N, 3, H, W)``."""
        self.check_input(cfa)
        out = self.interpolate(cfa)
        return self.keep_measured(cfa, out, in_place=True) if self.keep_samples else out
