"""A raw file's noise level: Poisson-Gaussian variance ``S_c * x + O_c`` per raw channel.

Units and conventions (the DNG ``NoiseProfile`` tag's): ``x`` is a pixel's mean in
**normalised raw units** (black 0, white 1) **before white balance**, ``c`` its colour
(0 = R, 1 = G, 2 = B). ``S`` (the shot-noise scale) and ``O`` (the read-noise variance) are
per channel. After white balance by multiplier ``m_c`` a pixel of balanced mean ``y = m_c x``
has variance ``m_c^2 (S_c x + O_c) = (m_c S_c) y + m_c^2 O_c``: :meth:`NoiseProfile.balanced`
returns these balanced coefficients, which the noise map (:mod:`demosaic.noise.noise_map`)
and the network work with.

Exposure: scaling the signal and its noise together by ``k`` (digital gain, or the
normalisation of a different white level) maps ``(S, O)`` to ``(k S, k^2 O)`` and the
standard deviation to ``k`` times itself (:meth:`NoiseProfile.exposed`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

#: Where a profile came from, as logged and written to output headers.
SOURCES = ("dng", "estimated", "user", "simulated", "clean")


def _triple(values: Sequence[float], what: str) -> tuple[float, float, float]:
    vals = tuple(float(v) for v in values)
    if len(vals) != 3 or not all(math.isfinite(v) and v >= 0 for v in vals):
        raise ConfigError(f"noise profile {what} must be 3 finite numbers >= 0 (R, G, B), got "
                          f"{list(values)}")
    return vals  # type: ignore[return-value]


@dataclass(frozen=True)
class NoiseProfile:
    """Noise of a raw file (see the module docstring for units).

    Attributes:
        scale: ``(S_R, S_G, S_B)``: variance per unit of normalised raw signal.
        offset: ``(O_R, O_G, O_B)``: variance at zero signal.
        source: One of :data:`SOURCES` (``"dng"``: the file's NoiseProfile tag;
            ``"estimated"``: measured on the raw data; ``"user"``: ``--noise``; ``"simulated"``:
            a training or benchmark capture; ``"clean"``: no noise).
    """

    scale: tuple[float, float, float]
    offset: tuple[float, float, float]
    source: str = "user"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _triple(self.scale, "scale S"))
        object.__setattr__(self, "offset", _triple(self.offset, "offset O"))
        if self.source not in SOURCES:
            raise ConfigError(f"noise profile source {self.source!r}: use one of {SOURCES}")

    @classmethod
    def uniform(cls, scale: float, offset: float, source: str = "user") -> NoiseProfile:
        """The same ``(S, O)`` for every channel (a camera's sensor before its colour filters)."""
        return cls((scale,) * 3, (offset,) * 3, source)

    @classmethod
    def clean(cls) -> NoiseProfile:
        """No noise: the network only demosaics."""
        return cls.uniform(0.0, 0.0, "clean")

    @classmethod
    def parse(cls, text: str, key: str = "--noise") -> NoiseProfile:
        """``"S,O"`` (every channel) or ``"S_R,O_R,S_G,O_G,S_B,O_B"`` (the DNG tag's order).

        Raises:
            ConfigError: naming ``key`` for anything else.
        """
        try:
            vals = [float(v) for v in str(text).replace(" ", "").split(",")]
        except ValueError:
            vals = []
        if len(vals) not in (2, 6) or not all(math.isfinite(v) and v >= 0 for v in vals):
            raise ConfigError(
                f"{key} {text!r}: give S,O (two numbers >= 0, variance S*x+O of a pixel of mean x "
                "in normalised raw units before white balance, e.g. 2e-4,1e-7) or six numbers "
                "S_R,O_R,S_G,O_G,S_B,O_B")
        if len(vals) == 2:
            return cls.uniform(vals[0], vals[1], "user")
        return cls(tuple(vals[0::2]), tuple(vals[1::2]), "user")  # type: ignore[arg-type]

    @property
    def is_clean(self) -> bool:
        return not any(self.scale) and not any(self.offset)

    def variance(self, x: float, channel: int = 1) -> float:
        """Variance of a pixel of colour ``channel`` and normalised raw mean ``x``."""
        return self.scale[channel] * max(x, 0.0) + self.offset[channel]

    def std(self, x: float, channel: int = 1) -> float:
        """Standard deviation of a pixel of colour ``channel`` and normalised raw mean ``x``."""
        return math.sqrt(self.variance(x, channel))

    def balanced(self, multipliers: Sequence[float]) -> np.ndarray:
        """``(2, 3)`` float32 ``[[m_c S_c], [m_c^2 O_c]]``: the coefficients of the variance of a
        white-balanced pixel of colour ``c`` against its balanced mean (module docstring)."""
        m = np.asarray([float(v) for v in multipliers], dtype=np.float64).reshape(3)
        s = np.asarray(self.scale) * m
        o = np.asarray(self.offset) * m * m
        return np.stack([s, o]).astype(np.float32)

    def exposed(self, k: float) -> NoiseProfile:
        """The profile of the same capture with signal and noise scaled by ``k``."""
        return NoiseProfile(tuple(k * s for s in self.scale), tuple(k * k * o for o in self.offset),
                            self.source)  # type: ignore[arg-type]

    def as_list(self) -> list[float]:
        """``[S_R, O_R, S_G, O_G, S_B, O_B]`` (the DNG tag's order)."""
        return [v for pair in zip(self.scale, self.offset) for v in pair]

    def describe(self) -> str:
        """One line for logs and output headers."""
        if self.is_clean:
            return f"none ({self.source})"
        if len(set(self.scale)) == 1 and len(set(self.offset)) == 1:
            return f"S={self.scale[0]:.4g} O={self.offset[0]:.4g} ({self.source})"
        pairs = " ".join(f"{c}:S={s:.4g},O={o:.4g}" for c, s, o in zip("RGB", self.scale, self.offset))
        return f"{pairs} ({self.source})"


__all__ = ["NoiseProfile", "SOURCES"]
