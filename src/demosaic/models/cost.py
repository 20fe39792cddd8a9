"""Compute cost of a demosaicker: parameters and multiply-accumulates per output pixel.

The count comes from :class:`torch.utils.flop_counter.FlopCounterMode` on one forward pass:
convolutions, transposed convolutions and matrix products; element-wise work (activations,
masks, pixel (un)shuffles, sample re-insertion) is not counted. One multiply-add is
one MAC = 2 FLOPs. Reported per pixel of the input, so ``macs_per_pixel * 1e6 / 1e9`` is
GMAC per megapixel, the figure docs/BENCHMARKS.md uses to compare model sizes against the
speed budget set by LibRaw's Markesteijn 3-pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCost:
    """``params``: trainable + frozen parameter count; ``macs_per_pixel``: MACs per input pixel."""

    params: int
    macs_per_pixel: float

    @property
    def gmac_per_mp(self) -> float:
        """Giga-MACs per megapixel."""
        return self.macs_per_pixel / 1e3


def model_cost(model: nn.Module, input_shape: tuple[int, int, int, int]) -> ModelCost:
    """Count the parameters of ``model`` and its MACs for one forward pass of a uniform
    random input in ``[0, 1)`` of ``input_shape = (N, C, H, W)`` (``H, W`` must suit the model, e.g.
    multiples of ``UNetDemosaic.size_multiple``), divided by ``N * H * W``.

    Runs on the model's device under ``torch.no_grad``; the model's mode is not changed. A
    noise-aware model (``noise_input``) is given a non-zero level, so its noise branch counts.
    """
    n, _, h, w = input_shape
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    x = torch.rand(*input_shape, device=device)
    counter = FlopCounterMode(display=False)
    level = torch.full((n, 2, 3), 1e-4, device=device)
    with torch.no_grad(), counter:
        model(x, level) if getattr(model, "noise_input", False) else model(x)
    macs = counter.get_total_flops() / 2
    params = sum(p.numel() for p in model.parameters())
    log.debug("%s: %d parameters, %.0f MAC/px", type(model).__name__, params, macs / (n * h * w))
    return ModelCost(params=params, macs_per_pixel=macs / (n * h * w))
