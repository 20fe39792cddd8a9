"""The per-pixel noise map a noise-aware network takes beside its mosaic.

For a white-balanced mosaic ``y`` and balanced coefficients ``(N, 2, 3)``
(``[[m_c S_c], [m_c^2 O_c]]``, :meth:`demosaic.noise.profile.NoiseProfile.balanced`), the map
is the standard deviation of each pixel's noise at its local mean::

    sigma(p) = sqrt(max(m_c S_c * ybar_c(p) + m_c^2 O_c, 0)),   c = colour of p,

where ``ybar_c`` is the mean of the colour-``c`` samples around ``p``: a noise-free estimate of
the signal good enough for a variance that is linear in it, computed from the noisy mosaic at
training and at inference alike.

It is computed where the network works, on the **packed** mosaic (pixel-unshuffled by the
packing ``s``, channel ``c s^2 + i s + j`` = colour ``c`` at offset ``(i, j)`` of an ``s x s``
block): per block and colour the sum and count of its samples, both box-averaged over the
3 x 3 neighbouring blocks (a ``3s x 3s`` px window), their ratio ``ybar_c``, then the map
channel of offset ``(i, j)`` is the ``sigma`` of the colour sampled there. Everything runs at
1/s^2 of the pixels, a few operations per pixel (a full-resolution 5 x 5 same-colour mean took
0.76 s of a 9.3 MP window on this CPU, more than half the network; this takes a few percent).

Exposure: with the mosaic scaled by ``k`` and the coefficients by ``(k, k^2)``
(:meth:`NoiseProfile.exposed`), the map scales by ``k``; the bias-free network then sees
``(k y, k sigma)`` and returns ``k`` times its output (``models.unet``).

The network computes the map itself from its mosaic and the coefficients (``models.unet``),
so the map is the same function at training and at inference, and the receptive field that
sizes a tiled run's overlap (``inference.tiling``) includes its window: tiles agree with the
untiled run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

#: Side, in blocks of the packing, of the window of the local same-colour mean.
WINDOW_BLOCKS = 3
_POOL = dict(kernel_size=WINDOW_BLOCKS, stride=1, padding=WINDOW_BLOCKS // 2, count_include_pad=True)


@dataclass(frozen=True)
class PackedColours:
    """What the map needs of a packed CFA layout of one shape (built once per shape).

    Attributes:
        inv_counts: ``(1, h, w, 3)`` 1 / the box-averaged number of samples of each colour
            per block (channels last).
        index: ``(1, h, w, s^2)`` int64: the colour sampled at each offset of each block.
    """

    inv_counts: torch.Tensor
    index: torch.Tensor

    @classmethod
    def from_cell(cls, cell: torch.Tensor, h: int, w: int) -> PackedColours:
        """From the one-hot colour mask of one period of the packed layout, pixel-unshuffled
        by ``s``: ``cell`` ``(1, 3 s^2, q, q)``, repeated to ``h x w`` blocks. The colour
        index and the samples per block are taken on the cell and repeated (an argmax over
        the whole window's mask took 0.32 s of a 24 MP file); the counts are pooled on the
        whole window (its border counts differ from the periodic interior)."""
        _, ch, q, _ = cell.shape
        reps = (1, 1, -(-h // q), -(-w // q))
        per_colour = cell.reshape(1, 3, ch // 3, q, q)
        samples = per_colour.sum(2).repeat(*reps)[..., :h, :w]  # (1, 3, h, w) per block
        counts = F.avg_pool2d(samples, **_POOL).clamp_min(0.5 / WINDOW_BLOCKS ** 2)
        index = per_colour.argmax(1).repeat(*reps)[..., :h, :w]
        return cls((1.0 / counts).permute(0, 2, 3, 1).contiguous(),
                   index.permute(0, 2, 3, 1).contiguous())


def packed_noise_map(packed: torch.Tensor, colours: PackedColours,
                     coeffs: torch.Tensor) -> torch.Tensor:
    """Noise standard deviation per pixel, packed: ``(N, s^2, h, w)`` (channels-last memory).

    Args:
        packed: ``(N, 3 s^2, h, w)`` white-balanced masked mosaic pixel-unshuffled by ``s``
            (each sample in its colour's channel), linear, unclipped; any memory layout.
        colours: :class:`PackedColours` of its layout and shape.
        coeffs: ``(N, 2, 3)`` (or ``(2, 3)``) balanced ``[[m_c S_c], [m_c^2 O_c]]``; all zero
            gives a zero map (a clean mosaic).

    Returns:
        Channel ``i s + j``: the noise std of the pixel at offset ``(i, j)`` of each block, in
        the mosaic's units (its pixel-shuffle by ``s`` is the per-pixel map).
    """
    n, ch, h, w = packed.shape
    coeffs = coeffs.to(device=packed.device, dtype=packed.dtype)
    if coeffs.dim() == 2:
        coeffs = coeffs.unsqueeze(0).expand(n, -1, -1)
    sums = packed.permute(0, 2, 3, 1).reshape(n, h, w, 3, ch // 3).sum(-1)  # (N, h, w, 3)
    box = F.avg_pool2d(sums.permute(0, 3, 1, 2), **_POOL).permute(0, 2, 3, 1)
    ybar = (box * colours.inv_counts.to(packed.dtype)).clamp_min(0.0)
    sigma = (ybar * coeffs[:, None, None, 0, :] + coeffs[:, None, None, 1, :]).clamp_min(0.0).sqrt()
    index = colours.index.expand(n, -1, -1, -1)
    return sigma.gather(-1, index).permute(0, 3, 1, 2)


__all__ = ["PackedColours", "WINDOW_BLOCKS", "packed_noise_map"]
