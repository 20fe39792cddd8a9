"""Synthetic mosaics from ordinary photographs (the research log's v4_ft, fullres and v3 data).

Pipeline per item (all in linear light unless ``space: srgb``):

1. pick an image uniformly among the files of ``root`` (one folder or a list of folders);
2. decode sRGB exactly to linear light (lookup table of the 8/16-bit code values), optionally
   box-downsample by ``downsample`` in linear light (done once per image, cached);
3. crop a ``patch_size`` square whose origin is a multiple of the CFA period;
4. apply one of the 8 flips/rotations to the **RGB** (``cfa.transform_image``), so the mosaic
   made afterwards is still in canonical phase;
5. scale exposure by a log-uniform factor from ``exposure_range``;
6. optionally scale the chroma by a log-uniform factor
   (:func:`demosaic.data.transforms.adjust_saturation`);
7. optionally add highlights above 1.0 (:func:`demosaic.data.transforms.add_highlights`);
8. ``space: srgb`` only: gamma-encode and clip to ``[0, 1]`` (v3, kept to reproduce the log);
9. mosaic through the pattern (the mosaic equals the target at every sampled position);
10. optionally add Poisson-Gaussian noise to the mosaic only (off by default);
11. ``camera.enabled`` (default **on**): instead of 9-10, simulate a real camera
    (:mod:`demosaic.data.capture`): a body's colour matrix, scene light, sensor noise at a
    random ISO, black level, quantisation and clipping, then the as-shot white balance; the
    target is the clean truth in balanced camera RGB (the space inference feeds the network).

An epoch is ``samples_per_epoch`` random crops. With a seed, item ``i`` of epoch ``e`` is a
pure function of ``(seed, e, i)`` (call :meth:`SyntheticDataset.set_epoch` before each epoch;
with non-persistent loader workers the new epoch reaches the workers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np

from demosaic import cfa as cfa_mod
from demosaic.sim.camera import CameraSimConfig
from demosaic.cfa import CFAPattern
from demosaic.data.registry import DATASETS
from demosaic.data.common import (
    IMAGE_SPACES,
    RandomCropDataset,
    Sample,
    aligned_origin,
    check_range,
    list_images,
    log_uniform,
    make_rng,
    make_sample,
    random_transform,
    resolve_roots,
)
from demosaic.data.capture import camera_config, camera_sample
from demosaic.sim.noise_level import LEVEL_ERROR, sample_coefficients
from demosaic.data.sources import SourceCache, image_size
from demosaic.data.transforms import (
    add_highlights,
    add_poisson_gaussian,
    adjust_saturation,
    to_srgb_clipped,
)
from demosaic.errors import ConfigError
from demosaic.schema import check_choice

log = logging.getLogger(__name__)

@dataclass
class SyntheticConfig:
    """Keys of ``name: synthetic``.

    Attributes:
        root: Folder, list of folders, or null for the bundled samples of the split.
        patch_size: Crop side in px (a multiple of the CFA period).
        samples_per_epoch: Random crops per epoch (the dataset's length).
        downsample: Box-filter factor in linear light before cropping (1 = full resolution).
        augment: Apply the 8 flips/rotations to the RGB before mosaicking.
        exposure_range: ``[low, high]`` log-uniform exposure factor (``[1, 1]`` = off).
        saturation_prob: Probability that a crop gets its chroma scaled.
        saturation_range: ``[low, high]`` log-uniform chroma gain (``low > 0``).
        highlight_prob: Probability that a crop gets synthetic highlights above 1.0.
        highlight_gain: ``[low, high]`` log-uniform highlight gain (``low >= 1``).
        noise: Add Poisson-Gaussian noise to the mosaic (the target stays clean).
        noise_shot: ``[low, high]`` shot-noise gain ``a`` (variance ``a * x``).
        noise_read: ``[low, high]`` read-noise sigma ``b``.
        space: ``linear`` (default) or ``srgb`` (v3: gamma-encoded, clipped to [0, 1]).
        cache: Keep decoded images in memory (per loader worker).
        camera: Camera simulation (:class:`demosaic.sim.camera.CameraSimConfig`), on by default.
    """

    root: Any = None
    patch_size: int = 96
    samples_per_epoch: int = 1000
    downsample: int = 1
    augment: bool = True
    exposure_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    saturation_prob: float = 0.0
    saturation_range: list[float] = field(default_factory=lambda: [1.0, 2.0])
    highlight_prob: float = 0.0
    highlight_gain: list[float] = field(default_factory=lambda: [1.5, 8.0])
    noise: bool = False
    noise_shot: list[float] = field(default_factory=lambda: [1e-4, 1e-2])
    noise_read: list[float] = field(default_factory=lambda: [1e-4, 5e-3])
    space: str = "linear"
    cache: bool = True
    camera: CameraSimConfig = field(default_factory=CameraSimConfig)


class SyntheticDataset(RandomCropDataset):
    """Random aligned crops of photographs, mosaicked through ``pattern``.

    Items follow the sample contract (:mod:`demosaic.data.common`) with
    ``H = W = patch_size``.
    """

    def __init__(self, files: list[Path], pattern: CFAPattern, *, patch_size: int,
                 samples_per_epoch: int, downsample: int = 1, augment: bool = True,
                 exposure_range: tuple[float, float] = (1.0, 1.0),
                 saturation_prob: float = 0.0,
                 saturation_range: tuple[float, float] = (1.0, 2.0), highlight_prob: float = 0.0,
                 highlight_gain: tuple[float, float] = (1.5, 8.0), noise: bool = False,
                 noise_shot: tuple[float, float] = (1e-4, 1e-2),
                 noise_read: tuple[float, float] = (1e-4, 5e-3), space: str = "linear",
                 cache: bool = True, seed: int | None = None, key: str = "dataset",
                 camera: CameraSimConfig | Mapping[str, Any] | None = None) -> None:
        self._init_crops(pattern, patch_size=patch_size, samples_per_epoch=samples_per_epoch,
                         augment=augment, seed=seed, key=key)
        if downsample < 1:
            raise ConfigError(f"{key}.downsample: must be an integer >= 1, got {downsample}")
        check_choice(space, IMAGE_SPACES, f"{key}.space")
        for name, prob in (("highlight_prob", highlight_prob), ("saturation_prob", saturation_prob)):
            if not 0.0 <= prob <= 1.0:
                raise ConfigError(f"{key}.{name}: {prob} is not in [0, 1]")
        self.saturation_range = check_range(saturation_range, f"{key}.saturation_range")
        self.exposure_range = check_range(exposure_range, f"{key}.exposure_range")
        self.highlight_gain = check_range(highlight_gain, f"{key}.highlight_gain")
        if self.highlight_gain[0] < 1.0:
            raise ConfigError(f"{key}.highlight_gain: low end {self.highlight_gain[0]} < 1; "
                              "highlights brighten, use gains >= 1")
        self.noise_shot = check_range(noise_shot, f"{key}.noise_shot")
        self.noise_read = check_range(noise_read, f"{key}.noise_read")
        self.camera = camera_config(camera, f"{key}.camera", pattern=pattern, space=space)
        if self.camera is not None and noise:
            raise ConfigError(f"{key}.noise: the camera simulation ({key}.camera) already adds "
                              f"sensor noise; set {key}.noise=false or {key}.camera.enabled=false")
        need = patch_size * downsample
        usable = []
        for f in files:
            h, w = image_size(f)
            if h >= need and w >= need:
                usable.append(f)
            else:
                log.warning("%s: skipping %s (%dx%d px): smaller than patch_size x downsample "
                            "= %d px", key, f, w, h, need)
        if not usable:
            raise ConfigError(
                f"{key}: no image is at least patch_size x downsample = {patch_size} x "
                f"{downsample} = {need} px on both sides; lower {key}.patch_size or "
                f"{key}.downsample"
            )
        self.files = usable
        self.downsample = downsample
        self.highlight_prob = highlight_prob
        self.saturation_prob = saturation_prob
        self.noise = noise
        self.space = space
        self._sources = SourceCache(self.files, downsample, enabled=cache)
        log.info("synthetic dataset: %d images, %d crops/epoch of %d px, downsample %d, %s, "
                 "camera simulation %s", len(self.files), samples_per_epoch, patch_size,
                 downsample, space, "on" if self.camera is not None else "off")

    def preload(self) -> None:
        """Decode and cache every image now (see :meth:`SourceCache.preload`)."""
        self._sources.preload()

    def linear_source(self, index: int) -> np.ndarray:
        """Source image ``index`` of :attr:`files` as cropped from: float32 ``(H, W, 3)``
        linear light, after ``downsample`` (used by :mod:`demosaic.data.device_batches`)."""
        return self._sources.get(index).linear()

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(index)
        rng = make_rng(self.seed, self.epoch, index)
        src = self._sources.get(int(rng.integers(len(self.files))))
        h, w = src.shape
        p = self.patch_size
        y0, x0 = aligned_origin(rng, h, w, p, self.pattern.period)
        rgb = src.linear(y0, x0, p, p).transpose(2, 0, 1)
        if self.augment:
            rgb = cfa_mod.transform_image(rgb, *random_transform(rng))
        rgb = rgb * np.float32(log_uniform(rng, self.exposure_range))
        if self.saturation_prob > 0 and rng.random() < self.saturation_prob:
            rgb = adjust_saturation(rgb, log_uniform(rng, self.saturation_range))
        if self.highlight_prob > 0 and rng.random() < self.highlight_prob:
            rgb = add_highlights(rgb, rng, self.highlight_gain)
        if self.camera is not None:
            return camera_sample(rgb, self.pattern, rng, self.camera)
        if self.space == "srgb":
            rgb = to_srgb_clipped(rgb)
        sample = make_sample(rgb, self.pattern)
        if self.noise:
            noisy, a, b = add_poisson_gaussian(sample["cfa"].numpy(), rng, self.noise_shot,
                                               self.noise_read)
            level = sample_coefficients(a, b, np.ones(3), rng, LEVEL_ERROR)
            sample = make_sample(sample["target"].numpy(), self.pattern, cfa=noisy, noise=level)
        return sample


@DATASETS.register("synthetic", SyntheticConfig)
def make_synthetic(*, pattern: str, split: str, seed: int | None, root: Any = None,
                   **kwargs: Any) -> SyntheticDataset:
    """Registry factory of ``name: synthetic`` (keys: :class:`SyntheticConfig`)."""
    key = f"dataset.{split}"
    files = list_images(resolve_roots(root, split, f"{key}.root"), f"{key}.root")
    return SyntheticDataset(files, cfa_mod.get_pattern(pattern), seed=seed, key=key, **kwargs)
