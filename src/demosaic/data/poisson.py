"""Exact Poisson draws from elementwise tensor ops, for devices without ``torch.poisson``.

``aten::poisson`` has no MPS kernel (pytorch/pytorch#102852, #141287), so
:mod:`demosaic.data.device_batches` draws its shot noise on MPS with :func:`poisson`, built
only from ``rand``, ``exp``, ``log``, ``log1p``, ``floor``, comparisons and ``where``. It
keeps the distribution (no Gaussian approximation): two exact samplers, chosen per element.

- Rates below :data:`INVERSION_MAX_RATE` (10): inversion of the CDF. One uniform ``u`` per
  element and ``k = min{j : F(j) >= u}``, found by :data:`INVERSION_STEPS` vectorised steps
  of the pmf recurrence ``p(j) = p(j - 1) * rate / j``. Truncation: ``P(X > 40)`` is below
  ``1e-12`` for rates under 10; a ``u`` above the float32 sum of the pmf (probability
  ``~1e-7``) gets the last step's count.
- Rates of 10 and more: PTRS, the transformed rejection of W. Hörmann, "The transformed
  rejection method for generating Poisson random variables", Insurance: Mathematics and
  Economics 12 (1993) -- the algorithm numpy uses above 10. Each round draws two uniforms per
  element and keeps them where an element is still pending; 70 % (rate 10) to 90 % (large
  rates) are accepted per round, so half a million draws take 6 to 11 rounds (each reads
  one flag back from the device). The acceptance test needs ``log k!``: from a
  table below 10 and from Stirling's series with the ``k log(k / rate)`` term written as
  ``k log1p((k - rate) / rate)`` above, so float32 keeps its error within ``6 sigma`` of the
  mean to ``1e-5`` at rates up to 100, ``6e-5`` at ``1e4`` and ``7e-4`` at ``1e6`` (the
  acceptance probability of a draw that reaches this test is off by that fraction).

CPU and CUDA keep ``torch.poisson`` (shipped runs stay reproducible); ``tests`` compare
this sampler's moments and histogram with the Poisson law on the CPU.
"""

from __future__ import annotations

import logging
import math

import torch

log = logging.getLogger(__name__)

#: Rates below this are drawn by inversion, the others by PTRS (which needs rate >= 10).
INVERSION_MAX_RATE = 10.0
#: Steps of the inversion search (``P(X > 40 | rate < 10) < 1e-12``).
INVERSION_STEPS = 40
#: Rejection rounds after which PTRS gives up on an element (never reached in practice:
#: each round accepts 70 % or more); such an element gets ``floor(rate + 0.5)`` and a warning.
MAX_ROUNDS = 200
#: ``log(k!)`` for ``k = 0 .. 9``.
_LOG_FACTORIAL = tuple(math.lgamma(k + 1.0) for k in range(10))
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def poisson(rate: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Poisson counts of mean ``rate``, elementwise, like ``torch.poisson(rate, generator)``.

    Args:
        rate: Float tensor of rates ``>= 0``, any shape, on any device.
        generator: Random numbers from here (on ``rate``'s device); default: the global one.

    Returns:
        Counts as a tensor of ``rate``'s shape, dtype and device (whole numbers).
    """
    small = rate < INVERSION_MAX_RATE
    by_inversion = _inversion(rate.clamp(max=INVERSION_MAX_RATE), generator)
    by_rejection = _ptrs(rate.clamp(min=INVERSION_MAX_RATE), generator)
    return torch.where(small, by_inversion, by_rejection)


def _uniform(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)


def _inversion(rate: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Counts for ``rate <= 10`` by CDF inversion (see the module docstring)."""
    u = _uniform(rate, generator)
    p = torch.exp(-rate)  # pmf at 0
    cdf = p.clone()
    k = torch.zeros_like(rate)
    for j in range(1, INVERSION_STEPS + 1):
        k = k + (u > cdf).to(rate.dtype)
        p = p * rate / j
        cdf = cdf + p
    return k


def _log_pmf(k: torch.Tensor, rate: torch.Tensor, log_rate: torch.Tensor) -> torch.Tensor:
    """``log P(X = k)`` for ``k >= 0`` and ``rate >= 10`` (float32-accurate, see above)."""
    table = torch.tensor(_LOG_FACTORIAL, dtype=rate.dtype, device=rate.device)
    low = k * log_rate - rate - table[k.clamp(0, 9).long()]
    kk = k.clamp(min=10.0)
    series = 1.0 / (12.0 * kk) - 1.0 / (360.0 * kk**3)
    high = ((kk - rate) - kk * torch.log1p((kk - rate) / rate) - 0.5 * torch.log(kk)
            - _HALF_LOG_2PI - series)
    return torch.where(k < 10, low, high)


def _ptrs(rate: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Counts for ``rate >= 10`` by Hörmann's PTRS (see the module docstring)."""
    log_rate = torch.log(rate)
    b = 0.931 + 2.53 * torch.sqrt(rate)
    a = -0.059 + 0.02483 * b
    log_inv_alpha = torch.log(1.1239 + 1.1328 / (b - 3.4))
    vr = 0.9277 - 3.6224 / (b - 2.0)
    out = torch.zeros_like(rate)
    pending = torch.ones(rate.shape, dtype=torch.bool, device=rate.device)
    for _ in range(MAX_ROUNDS):
        u = _uniform(rate, generator) - 0.5
        v = _uniform(rate, generator)
        us = 0.5 - u.abs()
        k = torch.floor((2.0 * a / us + b) * u + rate + 0.43)
        quick = (us >= 0.07) & (v <= vr)
        in_range = (k >= 0) & ~((us < 0.013) & (v > us))
        bound = torch.log(v) + log_inv_alpha - torch.log(a / (us * us) + b)
        accept = quick | (in_range & (bound <= _log_pmf(k.clamp(min=0.0), rate, log_rate)))
        out = torch.where(pending & accept, k, out)
        pending = pending & ~accept
        if not bool(pending.any()):
            return out
    log.warning("Poisson sampler: %d draws not accepted after %d rounds; rounded rates used",
                int(pending.sum()), MAX_ROUNDS)
    return torch.where(pending, torch.floor(rate + 0.5), out)


__all__ = ["poisson", "INVERSION_MAX_RATE"]
