"""Camera simulation for the datasets: ``dataset.<split>.camera`` keys -> samples.

Every synthetic source (photographs, torture patterns, whole-image validation folders, and
so every mixture of them) takes a ``camera`` block (:class:`demosaic.sim.camera.CameraSimConfig`).
With ``camera.enabled`` the item's linear-sRGB truth goes through
:func:`demosaic.sim.camera.simulate_capture`: the mosaic is what a real body records, white-balanced
as inference will balance it, and the target is the clean truth in the same balanced camera
RGB. Sample contract (:mod:`demosaic.data.common`) unchanged: ``cfa`` ``(1, H, W)`` at the
canonical phase, ``target`` ``(3, H, W)``; the mosaic no longer equals the target at the
sampled positions (noise, quantisation, clipping).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from demosaic.sim.camera import CameraSimConfig, check_config, load_bodies, simulate_capture
from demosaic.cfa import CFAPattern
from demosaic.data.common import Sample, make_sample
from demosaic.errors import ConfigError
from demosaic.sim.noise_level import sample_coefficients

log = logging.getLogger(__name__)


def camera_config(value: CameraSimConfig | Mapping[str, Any] | None, key: str, *,
                  pattern: CFAPattern, space: str = "linear") -> CameraSimConfig | None:
    """Validate a dataset's ``camera`` block; ``None`` when the simulation is off.

    Raises:
        ConfigError: naming ``key`` for bad values, an unknown body, or the simulation combined
            with ``space: srgb`` (v3's gamma-encoded data has no raw stage).
    """
    if value is None:
        return None
    if isinstance(value, CameraSimConfig):
        cfg = value
    else:
        names = {f.name for f in dataclasses.fields(CameraSimConfig)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ConfigError(f"{key}: unknown keys {unknown}; valid keys: {sorted(names)}")
        cfg = CameraSimConfig(**dict(value))
    if not cfg.enabled:
        return None
    if space != "linear":
        raise ConfigError(f"{key}.enabled: the camera simulation needs space: linear (got "
                          f"{space!r}); set {key}.enabled=false for sRGB-space data")
    check_config(cfg, key)
    load_bodies(pattern.family, cfg.matrices, cfg.models)  # fail now, not in a worker
    return cfg


def camera_sample(rgb: np.ndarray, pattern: CFAPattern, rng: np.random.Generator,
                  camera: CameraSimConfig) -> Sample:
    """A sample of ``rgb`` (``(3, H, W)`` linear sRGB truth) as the simulated camera records
    it: balanced mosaic in, balanced clean camera RGB as the target, its noise level with a
    simulated estimation error (:func:`demosaic.sim.noise_level.sample_coefficients`); with
    probability ``camera.clean_prob`` the clean linear-sRGB mosaic (level zero) instead."""
    if camera.clean_prob > 0 and rng.random() < camera.clean_prob:
        return make_sample(np.asarray(rgb, dtype=np.float32), pattern)
    cap = simulate_capture(rgb, pattern.array, rng, camera, family=pattern.family)
    noise = sample_coefficients(cap.noise[0], cap.noise[1], cap.multipliers, rng,
                                camera.level_error)
    return make_sample(cap.target, pattern, cfa=cap.cfa, noise=noise)


__all__ = ["camera_config", "camera_sample"]
