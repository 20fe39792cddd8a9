"""The noise level a training sample carries: the simulation's true Poisson-Gaussian level,
balanced like the mosaic, with the error a real estimate of it has.

At inference a file's level comes from its DNG ``NoiseProfile`` or from
:func:`demosaic.noise.estimate.estimate_noise`, which is off by some percent; a network
trained only on exact levels would lean on a precision it never gets. So each sample's
coefficients ``[[m_c S], [m_c^2 O]]`` (as :meth:`demosaic.noise.NoiseProfile.balanced`) are
multiplied by ``exp(2 e_S)`` and ``exp(2 e_O)``, with ``e ~ N(0, error)`` the error of the
log of the standard deviation (so ``error = 0.1`` is about 10 % on the shot- and read-noise
standard deviations, drawn apart). Clean samples carry zeros.
"""

from __future__ import annotations

import logging

import numpy as np
import torch


log = logging.getLogger(__name__)

#: Default ``camera.level_error``: the std of the log of the simulated estimate's error.
LEVEL_ERROR = 0.1


def sample_coefficients(a: float, b: float, multipliers: np.ndarray | list[float],
                        rng: np.random.Generator, error: float = LEVEL_ERROR) -> np.ndarray:
    """``(2, 3)`` float32 balanced coefficients of a capture with variance ``a x + b^2`` (raw
    units, every channel) and white balance ``multipliers``, with a drawn estimation error
    (two normal draws from ``rng``, even when ``error`` is 0, so streams do not shift): one
    sample of :func:`batch_coefficients`."""
    normal = torch.from_numpy(rng.normal(0.0, 1.0, (1, 2)))
    return batch_coefficients(torch.tensor([float(a)], dtype=torch.float64),
                              torch.tensor([float(b)], dtype=torch.float64),
                              torch.tensor([[float(m) for m in multipliers]], dtype=torch.float64),
                              normal, error)[0].numpy()


def batch_coefficients(a: torch.Tensor, b: torch.Tensor, multipliers: torch.Tensor,
                       normal: torch.Tensor, error: float = LEVEL_ERROR) -> torch.Tensor:
    """Batched :func:`sample_coefficients`: ``a, b`` ``(n,)``, ``multipliers`` ``(n, 3)``,
    ``normal`` ``(n, 2)`` standard normal draws -> ``(n, 2, 3)``."""
    err = torch.exp(2 * float(error) * normal)
    scale = a[:, None] * multipliers * err[:, 0:1]
    offset = (b * b)[:, None] * multipliers * multipliers * err[:, 1:2]
    return torch.stack([scale, offset], dim=1).float()


__all__ = ["LEVEL_ERROR", "batch_coefficients", "sample_coefficients"]
