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
from typing import Any

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
    sample of :func:`batch_coefficients`, in numpy (a DataLoader item's cost)."""
    err = np.exp(2 * float(error) * rng.normal(0.0, 1.0, (1, 2)))
    scale, offset = _coefficients(np.array([float(a)]), np.array([float(b)]),
                                  np.asarray(multipliers, dtype=np.float64).reshape(1, 3), err)
    return np.stack([scale, offset], axis=1)[0].astype(np.float32)


def batch_coefficients(a: torch.Tensor, b: torch.Tensor, multipliers: torch.Tensor,
                       normal: torch.Tensor, error: float = LEVEL_ERROR) -> torch.Tensor:
    """Batched :func:`sample_coefficients`: ``a, b`` ``(n,)``, ``multipliers`` ``(n, 3)``,
    ``normal`` ``(n, 2)`` standard normal draws -> ``(n, 2, 3)``."""
    scale, offset = _coefficients(a, b, multipliers, torch.exp(2 * float(error) * normal))
    return torch.stack([scale, offset], dim=1).float()


def _coefficients(a: Any, b: Any, multipliers: Any, err: Any) -> tuple[Any, Any]:
    """The one formula, for numpy arrays and torch tensors alike: ``a, b`` ``(n,)``,
    ``multipliers`` ``(n, 3)``, ``err`` ``(n, 2)`` error factors -> ``(scale, offset)``
    ``(n, 3)`` each: ``a m_c e_S`` and ``b^2 m_c^2 e_O``."""
    scale = a[:, None] * multipliers * err[:, 0:1]
    offset = (b * b)[:, None] * multipliers * multipliers * err[:, 1:2]
    return scale, offset


__all__ = ["LEVEL_ERROR", "batch_coefficients", "sample_coefficients"]
