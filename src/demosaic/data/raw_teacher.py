"""Raw files with a LibRaw teacher (``name: raw_teacher``): the research log's v4 data.

Reads a shard folder built by ``demosaic-prepare raw_teacher source=RAW_DIR out=DIR``
(:mod:`demosaic.data.shards`). Per item: pick a shard uniformly, crop a ``patch_size`` square
at an origin that is a multiple of the period (shards are stored in canonical phase), and

- ``downsample`` shards: transform the teacher crop (8 flips/rotations, RGB before
  mosaicking), scale exposure, mosaic it through ``pattern`` (any CFA: the teacher is RGB);
  the mosaic equals the target at every sampled position exactly;
- ``native`` shards: crop one period more, apply the same transform to the real mosaic and
  the teacher, and crop both back to the canonical phase (``cfa.align``); the mosaic is the
  real sensor data and equals the teacher at sampled positions up to LibRaw's clipping to
  ``[0, 1]`` and float16 rounding. ``pattern`` must be the canonical pattern of the shards'
  family.

Arrays are memory-mapped (float16 on disk), so a crop reads only its pixels. ``select``
names a JSON file (``demosaic-prepare sharpness`` writes ``top200_sharp.json``) listing the
ids or source paths to keep. Values: linear camera RGB, sensor white = 1.0 (the teacher is
clipped to ``[0, 1]`` by LibRaw; exposure scaling can take it above 1).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from demosaic import cfa as cfa_mod
from demosaic.cfa import CFAPattern
from demosaic.data.registry import DATASETS
from demosaic.data.common import (
    RandomCropDataset,
    Sample,
    aligned_origin,
    check_range,
    log_uniform,
    make_rng,
    make_sample,
    random_transform,
    resolve_folder,
)
from demosaic.data.shards import load_manifest
from demosaic.errors import ConfigError
from demosaic.noise.profile import NoiseProfile
from demosaic.schema import check_choice

log = logging.getLogger(__name__)


@dataclass
class RawTeacherConfig:
    """Keys of ``name: raw_teacher``.

    Attributes:
        root: Shard folder (``demosaic-prepare raw_teacher ... out=DIR``). Required.
        patch_size: Crop side in px (a multiple of the period).
        samples_per_epoch: Random crops per epoch.
        select: JSON file of ids/sources to keep (e.g. ``top200_sharp.json``); a relative
            path is looked up in the working directory, then in ``root``. null = all.
        augment: The 8 flips/rotations (CFA-safe, see module docstring).
        exposure_range: ``[low, high]`` log-uniform exposure factor (``[1, 1]`` = off).
        noise_level: The noise level each sample carries for a noise-aware model
            (``sample["noise"]``). ``zero`` (default): LibRaw's teacher keeps the file's noise,
            so the pair asks for demosaicking only, as ``--denoise 0`` does. ``file``: the
            level recorded for the file at build time (its DNG ``NoiseProfile`` or the
            estimate; balanced, times the crop's exposure, and for ``downsample`` shards
            divided by the factor squared), for a teacher that removes noise.
    """

    root: Optional[str] = None
    patch_size: int = 96
    samples_per_epoch: int = 1000
    select: Optional[str] = None
    augment: bool = True
    exposure_range: list[float] = field(default_factory=lambda: [1.0, 1.0])
    noise_level: str = "zero"


#: Values of ``noise_level``.
NOISE_LEVELS = ("zero", "file")


def read_selection(path: Path) -> set[str]:
    """Ids or source paths listed in a selection JSON: a list of strings, a list of
    ``{"id"|"source": ...}`` records, or a dict with such a list under ``"items"``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"select: cannot read {path} ({exc}); write it with "
                          "`demosaic-prepare sharpness root=DIR top=200`") from None
    items = data.get("items", []) if isinstance(data, dict) else data
    names: set[str] = set()
    for it in items:
        if isinstance(it, str):
            names.add(it)
        elif isinstance(it, dict):
            names.update(str(it[k]) for k in ("id", "source") if k in it)
    return names


class RawTeacherDataset(RandomCropDataset):
    """Random aligned crops of raw-teacher shards (see module docstring)."""

    def __init__(self, root: Path, pattern: CFAPattern, *, patch_size: int = 96,
                 samples_per_epoch: int = 1000, select: Path | None = None,
                 augment: bool = True, exposure_range: tuple[float, float] = (1.0, 1.0),
                 noise_level: str = "zero", seed: int | None = None, key: str = "dataset") -> None:
        self._init_crops(pattern, patch_size=patch_size, samples_per_epoch=samples_per_epoch,
                         augment=augment, seed=seed, key=key)
        check_choice(noise_level, NOISE_LEVELS, f"{key}.noise_level")
        self.noise_level = noise_level
        self.exposure_range = check_range(exposure_range, f"{key}.exposure_range")
        manifest = load_manifest(root, f"{key}.root")
        self.pairing = manifest["pairing"]
        items = manifest["items"]
        if select is not None:
            names = read_selection(select)
            items = [it for it in items if it["id"] in names or it["source"] in names]
            if not items:
                raise ConfigError(f"{key}.select: none of the {len(names)} names in {select} "
                                  f"is an item of {root}; rank this folder with "
                                  "`demosaic-prepare sharpness`")
        if self.pairing == "native":
            families = {it["family"] for it in items}
            canonical = cfa_mod.CANONICAL.get(pattern.family)
            if families != {pattern.family} or pattern != canonical:
                raise ConfigError(
                    f"{key}: native shards in {root} hold real {sorted(families)} mosaics in "
                    f"canonical phase; the model's pattern {pattern.name!r} must be the "
                    f"canonical pattern of that family (or build downsample shards)")
        margin = pattern.period if (augment and self.pairing == "native") else 0
        need = patch_size + margin
        fit = [it for it in items if min(it["shape"]) >= need]
        if len(fit) < len(items):
            log.warning("%s: %d of %d shards are smaller than %d px and are not used",
                        key, len(items) - len(fit), len(items), need)
        if not fit:
            raise ConfigError(f"{key}.patch_size: no shard in {root} is at least {need} px on "
                              f"both sides; lower {key}.patch_size")
        self.root = root
        self.items = fit
        self._maps: dict[str, np.ndarray] = {}
        log.info("raw_teacher dataset: %d shards (%s) from %s", len(fit), self.pairing, root)

    def _array(self, rel: str) -> np.ndarray:
        arr = self._maps.get(rel)
        if arr is None:  # one memory map per loader worker
            arr = self._maps[rel] = np.load(self.root / rel, mmap_mode="r")
        return arr

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(index)
        rng = make_rng(self.seed, self.epoch, index)
        item = self.items[int(rng.integers(len(self.items)))]
        h, w = item["shape"]
        p, period = self.patch_size, self.pattern.period
        native = self.pairing == "native"
        size = p + period if (native and self.augment) else p
        y0, x0 = aligned_origin(rng, h, w, size, period)
        win = (slice(None), slice(y0, y0 + size), slice(x0, x0 + size))
        target = np.asarray(self._array(item["files"]["target"])[win], dtype=np.float32)
        mosaic = np.asarray(self._array(item["files"]["cfa"])[win], dtype=np.float32) if native else None
        if self.augment:
            k, flip = random_transform(rng)
            target = cfa_mod.transform_image(target, k, flip)
            if mosaic is not None:
                # A real mosaic changes layout when transformed: crop back to canonical phase.
                al = cfa_mod.align(cfa_mod.transformed_layout(self.pattern, size, size, k, flip))
                mosaic = cfa_mod.transform_image(mosaic, k, flip)[:, al.dy : al.dy + p, al.dx : al.dx + p]
                target = target[:, al.dy : al.dy + p, al.dx : al.dx + p]
        gain = np.float32(log_uniform(rng, self.exposure_range))
        target = target * gain
        if mosaic is not None:
            mosaic = mosaic * gain
        return make_sample(target, self.pattern, cfa=mosaic, noise=self._level(item, float(gain)))

    def _level(self, item: dict[str, Any], gain: float) -> np.ndarray | None:
        """The ``(2, 3)`` balanced coefficients a crop of ``item`` carries (``noise_level``)."""
        recorded = item.get("noise")
        if self.noise_level == "zero" or not recorded:
            if self.noise_level == "file" and not recorded:
                raise ConfigError(f"dataset: shard {item['id']} has no recorded noise level "
                                  "(built before levels were recorded); rebuild the shards with "
                                  "`demosaic-prepare raw_teacher`, or set noise_level=zero")
            return None
        vals = recorded["profile"]
        profile = NoiseProfile(tuple(vals[0::2]), tuple(vals[1::2]), "simulated")
        # the crop's exposure scales signal and noise; a box of f x f pixels divides the variance
        return profile.exposed(gain).balanced(item["wb"]) / np.float32(item.get("factor", 1)) ** 2


@DATASETS.register("raw_teacher", RawTeacherConfig)
def make_raw_teacher(*, pattern: str, split: str, seed: int | None, root: str | None = None,
                     select: str | None = None, **kwargs: Any) -> RawTeacherDataset:
    """Registry factory of ``name: raw_teacher`` (keys: :class:`RawTeacherConfig`)."""
    key = f"dataset.{split}"
    if root is None:
        raise ConfigError(f"{key}.root: required for raw_teacher; build shards with "
                          "`demosaic-prepare raw_teacher source=RAW_DIR out=DIR` and set "
                          f"{key}.root=DIR")
    folder = resolve_folder(root, f"{key}.root")
    sel = None
    if select is not None:
        sel = Path(select).expanduser()
        if not sel.is_absolute() and not sel.is_file():
            sel = folder / select
        if not sel.is_file():
            raise ConfigError(f"{key}.select: {select!r} not found (looked in the working "
                              f"directory and in {folder}); write it with "
                              f"`demosaic-prepare sharpness root={folder} top=200`")
    return RawTeacherDataset(folder, cfa_mod.get_pattern(pattern), select=sel, seed=seed,
                             key=key, **kwargs)
