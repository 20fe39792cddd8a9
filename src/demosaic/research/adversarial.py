"""A small patch discriminator and hinge GAN losses for the optional adversarial term.

The discriminator sees RGB images ``(N, 3, H, W)`` (the trainer passes them mu-law encoded
with :func:`demosaic.losses.log_encode`, so values are roughly in ``[-1, 1.5]``) and returns
one logit per overlapping patch, ``(N, 1, H / 8, W / 8)`` for ``H, W`` multiples of 8 (other
sizes are floored by the strided convolutions). Its receptive field is about 46 px, so it
judges local texture, not global content.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class PatchDiscriminator(nn.Module):
    """Three stride-2 convolutions and a 1-channel head (PatchGAN-style, spectral norm).

    Args:
        channels: Width of the first layer (doubled at each stride, capped at 4x).
    """

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        c1, c2, c3 = channels, channels * 2, channels * 4
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, c1, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(c1, c2, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(c2, c3, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(c3, 1, 3, padding=1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` -> patch logits ``(N, 1, H // 8, W // 8)``."""
        return self.net(x)


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss ``-mean D(fake)`` (a scalar)."""
    return -fake_logits.mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss ``mean relu(1 - D(real)) + mean relu(1 + D(fake))``."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


__all__ = ["PatchDiscriminator", "generator_loss", "discriminator_loss"]
