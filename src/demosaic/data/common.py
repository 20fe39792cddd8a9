"""Shared helpers of the datasets: paths, image lists, seeded RNGs, aligned crops, samples.

Every dataset of :mod:`demosaic.data` returns items built by :func:`make_sample`:

- ``cfa``    ``(1, H, W)`` float32 mosaic, top-left pixel at phase ``(0, 0)`` of ``pattern``;
- ``mask``   ``(3, H, W)`` float32 one-hot sampling mask of ``pattern``;
- ``target`` ``(3, H, W)`` float32 linear-light ground truth (or teacher).

``H`` and ``W`` are multiples of the pattern period. Values are linear light normalised so
that white is 1.0 and nothing is clamped (the v3 ``space: srgb`` option is the documented
exception: gamma-encoded and clipped to ``[0, 1]``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from demosaic import cfa as cfa_mod
from demosaic.cfa import CFAPattern
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

#: Bundled sample images (``train/`` and ``val/``), used when a dataset's ``root`` is null.
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "samples"
#: Image files the folder-based datasets read (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
#: Environment variable overriding the shared data root in the dataset configs.
DATA_ENV = "DEMOSAIC_DATA"

Sample = dict[str, torch.Tensor]


def bundled_root(split: str) -> Path:
    """Folder of the bundled sample images for ``split`` (``train`` or ``val``)."""
    sub = "val" if split == "val" else "train"
    return SAMPLES_DIR / sub


def resolve_folder(root: str | os.PathLike[str], key: str) -> Path:
    """Resolve a folder path from a config against the current working directory.

    Raises:
        ConfigError: naming ``key`` and the absolute path when the folder does not exist,
            and suggesting ``DEMOSAIC_DATA`` or an override.
    """
    path = Path(os.path.expandvars(os.fspath(root))).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.is_dir():
        raise ConfigError(
            f"{key}: folder {os.fspath(root)!r} does not exist (resolved against the working "
            f"directory to {path}). Set the environment variable {DATA_ENV} to the folder that "
            f"holds the data sets (default ../shared/data), or override {key}=/path/to/folder"
        )
    return path


def resolve_roots(root: str | Sequence[str] | None, split: str, key: str) -> list[Path]:
    """Folders of a folder-based dataset: ``None`` -> the bundled samples of ``split``; a
    string or a list of strings -> those folders (each must exist)."""
    if root is None:
        return [bundled_root(split)]
    roots = [root] if isinstance(root, (str, os.PathLike)) else list(root)
    if not roots:
        raise ConfigError(f"{key}: empty list of folders; give at least one folder or null")
    return [resolve_folder(r, key if len(roots) == 1 else f"{key}[{i}]") for i, r in enumerate(roots)]


def list_images(folders: Iterable[Path], key: str) -> list[Path]:
    """Sorted image files (JPEG/PNG/TIFF) directly inside each folder, folder by folder.

    Raises:
        ConfigError: when none of the folders holds an image.
    """
    files: list[Path] = []
    folders = list(folders)
    for folder in folders:
        files.extend(sorted(p for p in folder.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise ConfigError(
            f"{key}: no images ({', '.join(IMAGE_SUFFIXES)}) in {[str(f) for f in folders]}; "
            "point it at a folder of JPEG/PNG/TIFF files"
        )
    return files


def make_rng(seed: int | None, *keys: int) -> np.random.Generator:
    """A generator seeded from ``(seed, *keys)``; fresh OS entropy when ``seed`` is None.

    Used per item with ``keys = (epoch, index)`` so samples are reproducible regardless of
    the data-loader worker that draws them.
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)])


IMAGE_SPACES = ("linear", "srgb")
"""Values of a dataset's ``space`` key: linear light, or v3's gamma-encoded clipped sRGB."""


def check_patch(patch_size: int, pattern: CFAPattern, key: str) -> None:
    """Raise :class:`ConfigError` unless ``patch_size`` is a positive multiple of the period."""
    if patch_size <= 0 or patch_size % pattern.period:
        raise ConfigError(
            f"{key}: patch size {patch_size} px is not a positive multiple of the "
            f"{pattern.name} period ({pattern.period} px); use e.g. "
            f"{max(pattern.period, patch_size - patch_size % pattern.period)}"
        )


def aligned_origin(rng: np.random.Generator, height: int, width: int, size: int,
                   period: int) -> tuple[int, int]:
    """Random crop origin ``(y0, x0)``, both multiples of ``period``, such that a
    ``size x size`` crop fits inside ``height x width`` (caller checks it fits)."""
    ny = (height - size) // period + 1
    nx = (width - size) // period + 1
    return int(rng.integers(ny)) * period, int(rng.integers(nx)) * period


def random_transform(rng: np.random.Generator) -> tuple[int, bool]:
    """One of the 8 rigid transforms of the square, uniformly: ``(k_rot, flip)``."""
    return cfa_mod.ALL_TRANSFORMS[int(rng.integers(len(cfa_mod.ALL_TRANSFORMS)))]


def log_uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    """A draw from the log-uniform distribution on ``[lo, hi]`` (``lo == hi`` -> ``lo``)."""
    lo, hi = float(bounds[0]), float(bounds[1])
    if lo == hi:
        return lo
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def check_range(bounds: Sequence[float], key: str, *, positive: bool = True) -> tuple[float, float]:
    """Validate a ``[lo, hi]`` config pair (``lo <= hi``, optionally both ``> 0``)."""
    if len(bounds) != 2:
        raise ConfigError(f"{key}: expected a pair [low, high], got {list(bounds)}")
    lo, hi = float(bounds[0]), float(bounds[1])
    if lo > hi or (positive and lo <= 0):
        need = "0 < low <= high" if positive else "low <= high"
        raise ConfigError(f"{key}: invalid range [{lo}, {hi}]; need {need}")
    return lo, hi


def box_downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor x factor`` blocks of an ``(H, W, C)`` or ``(H, W)`` array (linear
    light, so this is the physically right area integration). Trailing rows/columns that do
    not fill a block are dropped. Returns float32 ``(H // f, W // f[, C])``."""
    if factor == 1:
        return np.asarray(img, dtype=np.float32)
    h, w = img.shape[0] // factor, img.shape[1] // factor
    cut = np.asarray(img[: h * factor, : w * factor], dtype=np.float32)
    # Sum of the f*f strided sub-images: much faster than reshape + mean on large images.
    acc = np.zeros((h, w) + cut.shape[2:], dtype=np.float32)
    for i in range(factor):
        for j in range(factor):
            acc += cut[i::factor, j::factor]
    acc *= np.float32(1.0 / (factor * factor))
    return acc


def make_sample(target: np.ndarray, pattern: CFAPattern, cfa: np.ndarray | None = None,
                noise: np.ndarray | None = None) -> Sample:
    """Build the sample dict from a ``(3, H, W)`` target (and optionally a given mosaic).

    Args:
        target: ``(3, H, W)`` linear-light target, ``H`` and ``W`` multiples of the period.
        pattern: The CFA, phase ``(0, 0)`` at the top-left pixel.
        cfa: ``(1, H, W)`` or ``(H, W)`` mosaic; default ``cfa.mosaic(target, pattern)``, in
            which case the mosaic equals the target at every sampled position exactly.
        noise: ``(2, 3)`` balanced noise coefficients of the mosaic (``sample["noise"]``,
            :mod:`demosaic.sim.noise_level`); default zeros (a clean mosaic).
    """
    target = np.ascontiguousarray(target, dtype=np.float32)
    m = cfa_mod.mask(pattern, target.shape[1], target.shape[2])
    if cfa is None:
        mosaic = (target * m).sum(axis=0, keepdims=True, dtype=np.float32)
    else:
        mosaic = np.asarray(cfa, dtype=np.float32).reshape(1, *target.shape[1:])
    return {
        "cfa": torch.from_numpy(np.ascontiguousarray(mosaic)),
        "mask": torch.from_numpy(m),
        "target": torch.from_numpy(target),
        "noise": torch.from_numpy(np.zeros((2, 3), np.float32) if noise is None
                                  else np.asarray(noise, dtype=np.float32).reshape(2, 3).copy()),
    }


class RandomCropDataset(Dataset):
    """Base of datasets that draw ``samples_per_epoch`` random crops per epoch.

    Subclasses set ``self.samples_per_epoch`` and ``self.epoch`` and seed each item's
    randomness from ``(seed, epoch, index)``, so an epoch is reproducible.
    """

    samples_per_epoch: int
    epoch: int

    def _init_crops(self, pattern: CFAPattern, *, patch_size: int, samples_per_epoch: int,
                    augment: bool, seed: int | None, key: str) -> None:
        """Check and store the settings every random-crop dataset shares.

        Raises:
            ConfigError: naming ``{key}.patch_size`` or ``{key}.samples_per_epoch``.
        """
        check_patch(patch_size, pattern, f"{key}.patch_size")
        if samples_per_epoch <= 0:
            raise ConfigError(f"{key}.samples_per_epoch: must be positive, got {samples_per_epoch}")
        self.pattern = pattern
        self.patch_size = patch_size
        self.samples_per_epoch = samples_per_epoch
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops ``__getitem__`` returns (deterministic with a seed)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch
