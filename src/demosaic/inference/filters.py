"""Small image filters the output steps share (highlights, chroma smoothing)."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Box mean of ``(C, H, W)`` over ``(2 radius + 1)^2`` pixels, edges replicated; separable
    (two 1-D means), same shape and dtype as ``x``."""
    k = 2 * radius + 1
    y = F.pad(x[None], (radius, radius, 0, 0), mode="replicate")
    y = F.avg_pool2d(y, (1, k), stride=1)
    y = F.pad(y, (0, 0, radius, radius), mode="replicate")
    return F.avg_pool2d(y, (k, 1), stride=1)[0]


__all__ = ["box_mean"]
