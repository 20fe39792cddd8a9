"""Full-image evaluation sets from a folder (``name: folder``): CBSD68, Kodak24, McMaster, yours.

Each item is one whole image, decoded from sRGB to linear light, brought to a size that is a
multiple of the CFA period and mosaicked through the pattern:

- ``mode: crop`` (default): centre crop down to the largest multiple of the period;
- ``mode: pad``: extend the bottom/right edge by repeating the last row/column up to the next
  multiple (the padded pixels are part of the target, so metrics include them; prefer crop).

``max_size`` first centre-crops each side to at most that many pixels and ``max_images``
keeps the first files in sorted order, for fast validation. Everything is deterministic.

Items carry the sample contract keys plus ``"name"`` (the file's stem), which the default
collate function turns into a list of strings. Images differ in size: use batch size 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from torch.utils.data import Dataset

from demosaic import cfa as cfa_mod
from demosaic.sim.camera import CameraSimConfig
from demosaic.cfa import CFAPattern
from demosaic.data.registry import DATASETS
from demosaic.data.capture import camera_config, camera_sample
from demosaic.data.common import (
    IMAGE_SPACES,
    list_images,
    make_rng,
    make_sample,
    resolve_roots,
)
from demosaic.data.sources import SourceCache
from demosaic.data.transforms import to_srgb_clipped
from demosaic.errors import ConfigError
from demosaic.schema import check_choice

log = logging.getLogger(__name__)

MODES = ("crop", "pad")


@dataclass
class FolderConfig:
    """Keys of ``name: folder``.

    Attributes:
        root: Folder, list of folders, or null for the bundled samples of the split.
        mode: ``crop`` (centre crop to the period) or ``pad`` (edge-repeat to the period).
        max_images: Keep only the first N files (sorted by name); null = all.
        max_size: Centre-crop each side to at most this many px first; null = full size.
        space: ``linear`` or ``srgb`` (v3: gamma-encoded, clipped).
        cache: Keep decoded images in memory.
        camera: Camera simulation (:class:`demosaic.sim.camera.CameraSimConfig`), **off** by
            default here: ``demosaic-eval``'s clean protocol mosaics the targets itself, and
            its camera protocol writes raw files (:mod:`demosaic.evaluation.capture`).
            Turn it on for the validation split of camera-trained runs (image ``i`` always
            gets the same camera, ISO and noise: seeded by ``camera_seed`` and ``i``).
        camera_seed: Seed of the validation captures.
    """

    root: Any = None
    mode: str = "crop"
    max_images: Optional[int] = None
    max_size: Optional[int] = None
    space: str = "linear"
    cache: bool = True
    camera: CameraSimConfig = field(default_factory=lambda: CameraSimConfig(enabled=False))
    camera_seed: int = 0


class FolderDataset(Dataset):
    """Whole images of a folder; item ``i`` is the ``i``-th file in sorted order."""

    def __init__(self, files: list[Path], pattern: CFAPattern, *, mode: str = "crop",
                 max_images: int | None = None, max_size: int | None = None,
                 space: str = "linear", cache: bool = True, key: str = "dataset",
                 camera: CameraSimConfig | Mapping[str, Any] | None = None,
                 camera_seed: int = 0) -> None:
        check_choice(mode, MODES, f"{key}.mode")
        check_choice(space, IMAGE_SPACES, f"{key}.space")
        if max_images is not None and max_images <= 0:
            raise ConfigError(f"{key}.max_images: must be positive or null, got {max_images}")
        if max_size is not None and max_size < pattern.period:
            raise ConfigError(f"{key}.max_size: {max_size} px is smaller than one CFA period "
                              f"({pattern.period} px); use a larger value or null")
        self.camera = camera_config(camera, f"{key}.camera", pattern=pattern, space=space)
        self.camera_seed = camera_seed
        self.files = files[:max_images] if max_images else list(files)
        self.pattern = pattern
        self.mode = mode
        self.max_size = max_size
        self.space = space
        self._sources = SourceCache(self.files, 1, enabled=cache)
        log.info("folder dataset: %d images (%s to the %d px period)", len(self.files), mode,
                 pattern.period)

    def preload(self) -> None:
        """Decode and cache every image now (see :meth:`SourceCache.preload`)."""
        self._sources.preload()

    def __len__(self) -> int:
        return len(self.files)

    def _window(self, n: int) -> tuple[int, int]:
        """Centred ``(start, length)`` along an axis of ``n`` px."""
        p = self.pattern.period
        size = min(n, self.max_size) if self.max_size else n
        if self.mode == "crop" or size < n:
            # A max_size crop already cut pixels away: cut to the period too, never pad.
            size -= size % p
        if size < p:
            raise ConfigError(f"image side of {n} px is smaller than one CFA period ({p} px)")
        return (n - size) // 2, size

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.files):
            raise IndexError(index)
        src = self._sources.get(index)
        h, w = src.shape
        (y0, hh), (x0, ww) = self._window(h), self._window(w)
        rgb = src.linear(y0, x0, hh, ww).transpose(2, 0, 1)
        p = self.pattern.period
        if hh % p or ww % p:
            rows = np.minimum(np.arange(hh + (-hh % p)), hh - 1)
            cols = np.minimum(np.arange(ww + (-ww % p)), ww - 1)
            rgb = rgb[:, rows][:, :, cols]
        if self.camera is not None:
            rng = make_rng(self.camera_seed, index)
            sample: dict[str, Any] = dict(camera_sample(rgb, self.pattern, rng, self.camera))
        else:
            if self.space == "srgb":
                rgb = to_srgb_clipped(rgb)
            sample = dict(make_sample(rgb, self.pattern))
        sample["name"] = self.files[index].stem
        return sample


@DATASETS.register("folder", FolderConfig)
def make_folder(*, pattern: str, split: str, seed: int | None = None, root: Any = None,
                **kwargs: Any) -> FolderDataset:
    """Registry factory of ``name: folder`` (keys: :class:`FolderConfig`; ``seed`` unused)."""
    key = f"dataset.{split}"
    files = list_images(resolve_roots(root, split, f"{key}.root"), f"{key}.root")
    return FolderDataset(files, cfa_mod.get_pattern(pattern), key=key, **kwargs)
