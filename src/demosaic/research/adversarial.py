"""A small patch discriminator and hinge GAN losses for the optional adversarial term.

The discriminator sees RGB images ``(N, 3, H, W)`` (the trainer passes them mu-law encoded
with :func:`demosaic.losses.log_encode`, so values are roughly in ``[-1, 1.5]``) and returns
one logit per overlapping patch, ``(N, 1, H / 8, W / 8)`` for ``H, W`` multiples of 8 (other
sizes are floored by the strided convolutions). Its receptive field is about 46 px, so it
judges local texture, not global content.

Spectral normalisation is :class:`SpectralNorm`, torch's own parametrization
(``torch.nn.utils.parametrizations.spectral_norm``: same power iteration, buffers and
state-dict keys) with ``sigma = u . (W v)`` computed by ``torch.dot`` instead of
``torch.vdot``: ``aten::vdot`` had no MPS kernel until early 2026 (pytorch/pytorch#172840),
and for real tensors the CPU and CUDA ``vdot`` are ``dot`` (the same numbers).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class SpectralNorm(nn.Module):
    """Parametrization ``W -> W / sigma(W)`` with ``sigma`` the largest singular value of the
    weight as a ``(out, in * kh * kw)`` matrix, estimated by one power iteration per training
    forward (15 at construction), as torch's ``_SpectralNorm`` (buffers ``_u`` ``(out,)`` and
    ``_v`` ``(in * kh * kw,)``), with ``torch.dot`` for ``sigma`` (see the module docstring).

    Args:
        weight: The weight to normalise, ``ndim >= 2`` (output channels first).
        n_power_iterations: Power iterations per training forward.
        eps: Added to norms when normalising ``u`` and ``v``.
    """

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        if weight.ndim < 2 or n_power_iterations < 1:
            raise ValueError(f"SpectralNorm needs a weight of >= 2 dimensions and >= 1 power "
                             f"iteration, got {tuple(weight.shape)} and {n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps
        weight_mat = weight.flatten(1)
        h, w = weight_mat.size()
        u = weight_mat.new_empty(h).normal_(0, 1)
        v = weight_mat.new_empty(w).normal_(0, 1)
        self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
        self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
        self._power_method(weight_mat, 15)

    @torch.no_grad()
    def _power_method(self, weight_mat: torch.Tensor, n_power_iterations: int) -> None:
        """Update ``_u`` and ``_v`` in place (so module replicas share them)."""
        for _ in range(n_power_iterations):
            self._u = F.normalize(torch.mv(weight_mat, self._v), dim=0, eps=self.eps, out=self._u)
            self._v = F.normalize(torch.mv(weight_mat.H, self._u), dim=0, eps=self.eps, out=self._v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        """The normalised weight, of ``weight``'s shape."""
        weight_mat = weight.flatten(1)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u = self._u.clone(memory_format=torch.contiguous_format)
        v = self._v.clone(memory_format=torch.contiguous_format)
        sigma = torch.dot(u, torch.mv(weight_mat, v))
        return weight / sigma

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value


def spectral_norm(module: nn.Module) -> nn.Module:
    """Register :class:`SpectralNorm` on ``module.weight`` (a convolution or linear layer);
    returns ``module``."""
    nn.utils.parametrize.register_parametrization(module, "weight", SpectralNorm(module.weight))
    return module


class PatchDiscriminator(nn.Module):
    """Three stride-2 convolutions and a 1-channel head (PatchGAN-style, spectral norm).

    Args:
        channels: Width of the first layer (doubled at each stride, capped at 4x).
    """

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        sn = spectral_norm
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


__all__ = ["PatchDiscriminator", "SpectralNorm", "spectral_norm", "generator_loss",
           "discriminator_loss"]
