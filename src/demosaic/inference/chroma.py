"""``--denoise`` above 1: chroma noise reduction after a noise-aware network.

Up to strength 1 the network does the denoising (its noise map is scaled by the strength). A
network of the default's size removes no more when told the file is noisier than it is
(docs/lab/noise-aware.md), so strengths above 1 blend in a smoothing of the colour part of
the image, which is where high-ISO noise is most objectionable and fine detail least lost::

    Y = (R + G + B) / 3              balanced camera RGB: a neutral has R = G = B
    C = RGB - Y                      chroma, zero on neutrals
    out = RGB + w (box(C) - C),      w = 1 - exp(-(s - 1)),  box: 7 x 7 mean, edges replicated

``w`` rises from 0 at ``s = 1`` towards 1, so the output's colour grain falls strictly as the
strength rises, and the luminance is untouched (``box(C) - C`` sums to zero over the
channels). Linear in the image, so exposure equivariance holds and highlights above 1.0
survive. Runs on the whole ``(3, H, W)`` output after the tiles (two full-size temporaries).
"""

from __future__ import annotations

import logging
import math

import torch

from demosaic.inference.filters import box_mean

log = logging.getLogger(__name__)

#: Side of the box that smooths the chroma.
BOX = 7


def chroma_weight(strength: float) -> float:
    """``w`` of the module docstring: 0 up to strength 1, then ``1 - exp(-(s - 1))``."""
    return 0.0 if strength <= 1.0 else 1.0 - math.exp(-(float(strength) - 1.0))


@torch.inference_mode()
def reduce_chroma_noise(rgb: torch.Tensor, strength: float) -> torch.Tensor:
    """``(3, H, W)`` balanced camera RGB with its chroma smoothed for ``strength > 1`` (in
    place; returned). Strength 1 or less returns ``rgb`` unchanged."""
    w = chroma_weight(strength)
    if w <= 0.0:
        return rgb
    luma = rgb.mean(dim=0, keepdim=True)
    chroma = rgb - luma
    smooth = box_mean(chroma, BOX // 2)
    smooth.sub_(chroma).mul_(w)
    log.debug("--denoise %.3g: chroma smoothing weight %.3f", strength, w)
    return rgb.add_(smooth)


__all__ = ["BOX", "chroma_weight", "reduce_chroma_noise"]
