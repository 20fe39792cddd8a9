"""Which noise level a raw file is developed with: ``--noise`` when given, else the file's DNG
``NoiseProfile``, else an estimate from its raw data; and the coefficients the network gets.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from demosaic.errors import ConfigError
from demosaic.noise.estimate import estimate_noise
from demosaic.noise.profile import NoiseProfile

if TYPE_CHECKING:
    from demosaic.io.raw import RawImage

log = logging.getLogger(__name__)


def file_profile(raw: RawImage, override: NoiseProfile | None = None) -> NoiseProfile:
    """The noise profile to develop ``raw`` with: ``override`` (``--noise``), else the file's
    DNG ``NoiseProfile`` tag, else :func:`~demosaic.noise.estimate.estimate_noise` on its
    mosaic. Logged at INFO with its source."""
    if override is not None:
        profile = override
    elif raw.noise_profile is not None:
        profile = raw.noise_profile
    else:
        t0 = time.perf_counter()
        profile = estimate_noise(np.asarray(raw.cfa), np.asarray(raw.layout))
        log.debug("%s: noise estimated in %.2f s", raw.path.name, time.perf_counter() - t0)
    log.info("%s: noise %s", raw.path.name, profile.describe())
    return profile


def check_strength(strength: float, key: str = "--denoise") -> float:
    """``strength`` as a float ``>= 0``, else a :class:`ConfigError` naming ``key``."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{key} {strength!r}: use a number >= 0 (0 keeps the grain, 1 is the "
                          "default, larger removes more)")
    return value


def network_coefficients(profile: NoiseProfile, multipliers: np.ndarray | list[float],
                         strength: float = 1.0) -> torch.Tensor:
    """``(2, 3)`` float32 coefficients for a noise-aware network: the profile balanced by the
    white-balance ``multipliers`` (:meth:`NoiseProfile.balanced`), the map scaled by the
    denoise ``strength`` (so ``S`` and ``O`` by its square). Strength 0 or a clean profile
    gives zeros: the network only demosaics."""
    coeffs = profile.balanced(np.asarray(multipliers, dtype=np.float64)) * np.float32(strength) ** 2
    return torch.from_numpy(np.ascontiguousarray(coeffs, dtype=np.float32))


__all__ = ["check_strength", "file_profile", "network_coefficients"]
