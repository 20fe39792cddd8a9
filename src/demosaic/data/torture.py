"""Torture v2: procedural patterns that provoke demosaicking failures (``name: torture``).

Thirteen pattern types, numbered as in the research log (their fields:
:mod:`.torture_patterns`):

===  ================  ==============================================================
id   name              scalar field ``t`` in ``[0, 1]`` (point-sampled at pixel centres)
===  ================  ==============================================================
0    ``stripes``       grating, 0.02-0.5 cycles/px at any angle, sine or square profile
1    ``checkers``      checkerboard, cells 1-16 px, axis-aligned or rotated
2    ``circles``       concentric square-wave rings, period 2-24 px, random centre
3    ``zone_plate``    ``cos(pi k r^2)`` chirp reaching 0.25-0.5 cycles/px at the corner
4    ``edges``         1-4 straight hard edges at arbitrary angles (parity of half-planes)
5    ``thin_lines``    grid of 0.5-2 px lines every 3-16 px, any angle
6    ``siemens_star``  8-64 spokes around a random centre, sine or square profile
7    ``dots``          halftone grid of discs, spacing 3-16 px, any angle
8    ``crosshatch``    two gratings at close frequencies and angles (moire beats)
9    ``rectangles``    4-24 overlapping rectangles at random levels (Mondrian)
10   ``pixel_noise``   random binary blocks of 1-3 px (CFA-scale detail)
11   ``julia``         Julia set (smooth escape time), view zoomed 50 % onto its boundary
12   ``perlin_fbm``    Perlin gradient noise, 4-6 octaves (fBm), min-max normalised
===  ================  ==============================================================

Colour: each sample blends two colours, ``target = c0 + (c1 - c0) * t``, in linear light.
The pair is drawn in HSV (sRGB-encoded, then decoded exactly to linear) by one of four
policies, chosen uniformly, so that colour aliasing is provoked:

- ``complementary``: saturated (S 0.7-1, V 0.5-1) hues 180 degrees apart;
- ``near_neutral``: S <= 0.12, one dark (V 0.1-0.5) and one light (V 0.6-1) grey-ish colour:
  any colour in the output is false colour;
- ``dark``: V 0.02-0.25, S 0.3-1, hues 90-270 degrees apart (noise-floor contrast);
- ``bright``: V 0.85-1, S 0-0.6, then scaled by a gain of 1-2 in linear light: highlights.

**Value range:** targets lie in ``[0, 2]`` (``[0, 1]`` for every policy but ``bright``),
linear light, float32. Every sample is a pure function of ``(seed, index)`` and the type
list: item ``i`` has type ``types[i % len(types)]``. Samples are rendered on the fly (no
files) or read from a folder written by :func:`export_torture`
(``demosaic-prepare torture out=DIR count=5000``), whose manifest records each type.
"""

from __future__ import annotations

import colorsys
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from torch.utils.data import Dataset

from demosaic import cfa as cfa_mod
from demosaic.sim.camera import CameraSimConfig
from demosaic.cfa import CFAPattern
from demosaic.color import srgb_to_linear
from demosaic.data.registry import DATASETS
from demosaic.data.capture import camera_config, camera_sample
from demosaic.data.common import Sample, check_patch, make_rng, make_sample, resolve_folder
from demosaic.data.torture_patterns import NUM_TYPES, RENDERERS, TYPE_NAMES
from demosaic.errors import ConfigError
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

POLICIES: tuple[str, ...] = ("complementary", "near_neutral", "dark", "bright")
#: Documented bounds of every target value (``bright`` policy gain up to 2).
VALUE_RANGE = (0.0, 2.0)
MANIFEST = "manifest.json"
TARGETS = "targets.npy"
FORMAT = "demosaic-torture/1"


# --------------------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------------------


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (h in turns) to sRGB-encoded RGB ``(3,)`` in ``[0, 1]`` (``colorsys``)."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float64)


def pick_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Two linear-light colours ``(3,)`` float32 by a random policy (see module docstring)."""
    policy = POLICIES[int(rng.integers(len(POLICIES)))]
    h = rng.random()
    gain = 1.0
    if policy == "complementary":
        hsv = [(h, rng.uniform(0.7, 1), rng.uniform(0.5, 1)),
               (h + 0.5, rng.uniform(0.7, 1), rng.uniform(0.5, 1))]
    elif policy == "near_neutral":
        hsv = [(h, rng.uniform(0, 0.12), rng.uniform(0.1, 0.5)),
               (rng.random(), rng.uniform(0, 0.12), rng.uniform(0.6, 1.0))]
    elif policy == "dark":
        hsv = [(h, rng.uniform(0.3, 1), rng.uniform(0.02, 0.25)),
               (h + rng.uniform(0.25, 0.75), rng.uniform(0.3, 1), rng.uniform(0.02, 0.25))]
    else:  # bright
        hsv = [(h, rng.uniform(0, 0.6), rng.uniform(0.85, 1)),
               (rng.random(), rng.uniform(0, 0.6), rng.uniform(0.85, 1))]
        gain = rng.uniform(1.0, VALUE_RANGE[1])
    if rng.random() < 0.5:
        hsv.reverse()
    c0, c1 = (np.asarray(srgb_to_linear(_hsv_to_rgb(*c)), dtype=np.float32) * np.float32(gain)
              for c in hsv)
    return c0, c1, policy


def render(type_id: int, seed: int | None, index: int, size: int) -> tuple[np.ndarray, str]:
    """Render one torture sample.

    Args:
        type_id: Pattern type, 0-12 (see :data:`TYPE_NAMES`).
        seed, index: The sample is a pure function of ``(seed, index, type_id, size)``.
        size: Side in px.

    Returns:
        ``(target, policy)``: ``(3, size, size)`` float32 linear light within
        :data:`VALUE_RANGE`, and the colour policy used.
    """
    if not 0 <= type_id < NUM_TYPES:
        raise ConfigError(f"torture type {type_id} is not in 0..{NUM_TYPES - 1}")
    rng = make_rng(seed, index)
    c0, c1, policy = pick_colours(rng)
    t = RENDERERS[type_id](rng, size)
    target = c0[:, None, None] + (c1 - c0)[:, None, None] * t[None]
    return target.astype(np.float32, copy=False), policy


def _check_types(types: Sequence[int] | None, key: str) -> list[int]:
    if types is None:
        return list(range(NUM_TYPES))
    out = [int(t) for t in types]
    bad = [t for t in out if not 0 <= t < NUM_TYPES]
    if not out or bad:
        raise ConfigError(f"{key}: types {list(types)} must be a non-empty list of ids in "
                          f"0..{NUM_TYPES - 1} ({', '.join(f'{i}={n}' for i, n in enumerate(TYPE_NAMES))})")
    return out


# --------------------------------------------------------------------------------------
# Export and dataset
# --------------------------------------------------------------------------------------


def export_torture(out: str | Path, *, count: int = 5000, patch_size: int = 96,
                   seed: int = 0, types: Sequence[int] | None = None,
                   progress: bool = True) -> Path:
    """Render ``count`` samples to ``out/targets.npy`` (``(N, 3, S, S)`` float16) and
    ``out/manifest.json`` (per item: index, type id and name, colour policy).

    Item ``i`` equals ``render(types[i % len(types)], seed, i, patch_size)`` (rounded to
    float16). Both files are written atomically. Returns the manifest path.
    """
    from tqdm import tqdm

    types = _check_types(types, "torture.types")
    if count <= 0:
        raise ConfigError(f"torture export: count must be positive, got {count}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    with atomic_path(out / TARGETS) as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                        shape=(count, 3, patch_size, patch_size))
        for i in tqdm(range(count), desc="torture", disable=not progress, unit="img"):
            tid = types[i % len(types)]
            target, policy = render(tid, seed, i, patch_size)
            arr[i] = target
            items.append({"index": i, "type": tid, "type_name": TYPE_NAMES[tid], "policy": policy})
        arr.flush()
        del arr
    manifest = {"format": FORMAT, "count": count, "patch_size": patch_size, "seed": seed,
                "types": types, "type_names": list(TYPE_NAMES), "value_range": list(VALUE_RANGE),
                "items": items}
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    log.info("wrote %d torture samples to %s", count, out)
    return out / MANIFEST


@dataclass
class TortureConfig:
    """Keys of ``name: torture``.

    Attributes:
        root: Folder written by ``demosaic-prepare torture``; null = render on the fly.
        count: Samples per epoch when rendering on the fly (ignored with ``root``).
        patch_size: Side in px when rendering (multiple of the period); with ``root`` it must
            match the exported size.
        types: Type ids to use (null = all 13).
        sample_seed: Generation seed (null = the run's seed). Default 0: the same fixed set
            of samples in every run, like an exported set.
        camera: Camera simulation (:class:`demosaic.sim.camera.CameraSimConfig`), on by default:
            the patterns are the truth, the camera (body, ISO, noise) is drawn anew each
            epoch.
    """

    root: Optional[str] = None
    count: int = 5000
    patch_size: int = 96
    types: Optional[list[int]] = None
    sample_seed: Optional[int] = 0
    camera: CameraSimConfig = field(default_factory=CameraSimConfig)


class TortureDataset(Dataset):
    """Torture v2 samples, rendered on the fly or read from an export.

    Items follow the sample contract with ``H = W = patch_size``; targets in
    :data:`VALUE_RANGE`. Samples do not change with the epoch.
    """

    def __init__(self, pattern: CFAPattern, *, root: Path | None = None, count: int = 5000,
                 patch_size: int = 96, types: Sequence[int] | None = None,
                 seed: int | None = 0, key: str = "dataset",
                 camera: CameraSimConfig | Mapping[str, Any] | None = None) -> None:
        check_patch(patch_size, pattern, f"{key}.patch_size")
        self.camera = camera_config(camera, f"{key}.camera", pattern=pattern)
        self.epoch = 0
        self.pattern = pattern
        self.types = _check_types(types, f"{key}.types")
        self.patch_size = patch_size
        self.seed = seed
        self._targets: np.ndarray | None = None
        self.root = root
        if root is not None:
            manifest = _read_manifest(root, key)
            if manifest["patch_size"] != patch_size:
                raise ConfigError(
                    f"{key}.patch_size: {patch_size} differs from the export in {root} "
                    f"({manifest['patch_size']} px); set {key}.patch_size="
                    f"{manifest['patch_size']}")
            wanted = set(self.types)
            self.items = [it for it in manifest["items"] if it["type"] in wanted]
            if not self.items:
                raise ConfigError(f"{key}.types: none of {self.types} is in the export {root}")
        else:
            if count <= 0:
                raise ConfigError(f"{key}.count: must be positive, got {count}")
            self.items = [{"index": i, "type": self.types[i % len(self.types)]}
                          for i in range(count)]

    def set_epoch(self, epoch: int) -> None:
        """The pattern targets do not depend on the epoch; the simulated camera does."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def type_of(self, index: int) -> int:
        """Pattern type id of item ``index``."""
        return int(self.items[index]["type"])

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.items):
            raise IndexError(index)
        item = self.items[index]
        if self.root is None:
            target, _ = render(item["type"], self.seed, item["index"], self.patch_size)
        else:
            if self._targets is None:  # opened lazily: one memory map per loader worker
                self._targets = np.load(self.root / TARGETS, mmap_mode="r")
            target = np.asarray(self._targets[item["index"]], dtype=np.float32)
        if self.camera is not None:
            rng = make_rng(self.seed, 0x7C, self.epoch, item["index"])
            return camera_sample(target, self.pattern, rng, self.camera)
        return make_sample(target, self.pattern)


def _read_manifest(root: Path, key: str) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}.root: cannot read the torture manifest {path} ({exc}); "
                          "create it with `demosaic-prepare torture out=DIR`") from None
    if manifest.get("format") != FORMAT or not (root / TARGETS).is_file():
        raise ConfigError(f"{key}.root: {root} is not a torture export ({FORMAT} manifest and "
                          f"{TARGETS}); create it with `demosaic-prepare torture out=DIR`")
    return manifest


@DATASETS.register("torture", TortureConfig)
def make_torture(*, pattern: str, split: str, seed: int | None, root: str | None = None,
                 sample_seed: int | None = 0, **kwargs: Any) -> TortureDataset:
    """Registry factory of ``name: torture`` (keys: :class:`TortureConfig`)."""
    key = f"dataset.{split}"
    folder = resolve_folder(root, f"{key}.root") if root is not None else None
    return TortureDataset(cfa_mod.get_pattern(pattern), root=folder,
                          seed=seed if sample_seed is None else sample_seed, key=key, **kwargs)


__all__ = ["TYPE_NAMES", "NUM_TYPES", "POLICIES", "VALUE_RANGE", "render", "pick_colours",
           "export_torture", "TortureDataset", "TortureConfig"]
