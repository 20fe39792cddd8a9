"""Patch-size curriculum: train on small crops first, then grow to the dataset's patch.

Small crops are easier (less context, fewer structures per sample) and cheaper; the size
grows linearly with the step. Crops start at multiples of the CFA period, so every cropped
mosaic stays in the canonical phase and ``cfa == (target * mask).sum(0)`` still holds.
"""

from __future__ import annotations

import logging

import torch

from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


def curriculum_size(step: int, full: int, start_fraction: float, ramp_steps: int, multiple: int) -> int:
    """Crop side at ``step``: ``full * f`` with ``f`` going linearly from ``start_fraction``
    to 1 over ``ramp_steps``, rounded down to ``multiple`` (at least ``multiple``, at most
    ``full``)."""
    if not 0.0 < start_fraction <= 1.0:
        raise ConfigError(f"trainer.curriculum.start_fraction={start_fraction}: must be in (0, 1]")
    if ramp_steps < 0:
        raise ConfigError(f"trainer.curriculum.ramp_steps={ramp_steps}: must be >= 0")
    t = 1.0 if ramp_steps == 0 else min(1.0, step / ramp_steps)
    frac = start_fraction + (1.0 - start_fraction) * t
    size = int(full * frac) // multiple * multiple
    return max(multiple, min(full, size))


def crop_batch(cfa: torch.Tensor, target: torch.Tensor, size: int, period: int, seed: int, step: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop ``cfa (N, 1, H, W)`` and ``target (N, 3, H, W)`` to ``size x size`` at one offset
    that is a multiple of ``period``, drawn from a generator seeded by ``(seed, step)``."""
    h, w = cfa.shape[-2:]
    if size >= h and size >= w:
        return cfa, target
    size_y, size_x = min(size, h), min(size, w)
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
    ny, nx = (h - size_y) // period + 1, (w - size_x) // period + 1
    y0 = int(torch.randint(ny, (1,), generator=g)) * period
    x0 = int(torch.randint(nx, (1,), generator=g)) * period
    return (cfa[..., y0:y0 + size_y, x0:x0 + size_x], target[..., y0:y0 + size_y, x0:x0 + size_x])


__all__ = ["curriculum_size", "crop_batch"]
