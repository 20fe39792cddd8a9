"""Datasets: synthetic mosaics, raw files with a LibRaw teacher, torture v2, mixtures, folders.

Every dataset kind is registered in :data:`DATASETS` with a config dataclass and is built
from a mapping with a ``name`` key::

    from demosaic.data import build_dataset
    ds = build_dataset({"name": "synthetic", "patch_size": 96}, pattern="xtrans",
                       split="train", seed=0)
    item = ds[0]   # {"cfa": (1,96,96), "mask": (3,96,96), "target": (3,96,96)} float32

Registered kinds (see each module's docstring for its keys):

==============  ===============================================  ======================
name            what                                             module
==============  ===============================================  ======================
``synthetic``   random aligned crops of JPEG/PNG/TIFF photos      :mod:`.synthetic`
``folder``      whole images of a folder (evaluation sets)       :mod:`.folder`
``torture``     procedural torture v2 patterns (13 types)        :mod:`.torture`
``raw_teacher`` shards built by ``demosaic-prepare raw_teacher``  :mod:`.raw_teacher`
``mixture``     weighted mixture of the above, by ratio          :mod:`.mixture`
==============  ===============================================  ======================

The factories receive, besides the validated keys, ``pattern`` (CFA name from the model
config), ``split`` (``"train"`` or ``"val"``) and ``seed`` (int or None). Training datasets
(all but ``folder``) have ``set_epoch(epoch)`` and a ``patch_size`` attribute; datasets with
an in-memory image cache (``synthetic``, ``folder``, and ``mixture`` over them) have
``preload()``, to call before a DataLoader forks its workers.

Configs (``configs/dataset/``, Hydra group ``dataset``): each ``<choice>.yaml`` holds a
``train`` and a ``val`` mapping, each ``{name: <kind>, ...keys}``:

- ``synthetic`` (default): the bundled sample images (``root: null``), no ``../shared`` needed;
- ``cbsd432``: CBSD432 + Sun & Hays 80 (``root`` is a list of folders), downsample 2;
- ``fullres``: the same photographs at full resolution, 192 px patches;
- ``torture``: torture v2 on the fly; ``raw_teacher``: shards from ``demosaic-prepare``;
- ``mixed``: 80 % raw teacher / 15 % its ``top200_sharp.json`` subset / 5 % torture types
  3, 4, 9, 11, 12.

``configs/dataset/eval/{cbsd68,kodak24,mcmaster,bundled}.yaml`` each hold one ``folder``
mapping (an evaluation set, usable as ``dataset.val`` or by ``demosaic-eval evalset=...``).
Shared data paths are ``${oc.env:DEMOSAIC_DATA,../shared/data}/<set>``: set
``DEMOSAIC_DATA`` to move the data root; relative paths resolve against the working
directory (Hydra does not change it). A missing folder raises :class:`ConfigError` naming
the key (``dataset.train.root[0]`` ...), the resolved path and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import resources
from typing import Any

from omegaconf import OmegaConf
from torch.utils.data import Dataset

from demosaic.data.registry import DATASETS
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


def build_dataset(cfg: Mapping[str, Any], *, pattern: str, split: str,
                  seed: int | None = None) -> Dataset:
    """Validate one dataset mapping (with ``name``) and build it.

    Args:
        cfg: e.g. ``cfg.dataset.train`` of a composed config (DictConfig or dict).
        pattern: CFA name (``"xtrans"``, ``"bayer_rggb"`` ...); mosaics are in its phase.
        split: ``"train"`` or ``"val"`` (chooses the bundled samples for ``root: null`` and
            names the config key in errors, ``dataset.<split>.<key>``).
        seed: Makes every item a pure function of ``(seed, epoch, index)``; None = random.

    Raises:
        ConfigError: for an unknown name, a misspelt key, a wrong type, a missing folder.
    """
    if split not in ("train", "val"):
        raise ConfigError(f"dataset split {split!r} is not 'train' or 'val'")
    ds = DATASETS.build(cfg, where=f"dataset.{split}", pattern=pattern, split=split, seed=seed)
    log.info("built dataset.%s %r: %d items", split, dict(cfg).get("name"), len(ds))  # type: ignore[arg-type]
    return ds


def load_dataset_config(choice: str) -> dict[str, Any]:
    """Load ``configs/dataset/<choice>.yaml`` (shipped as ``demosaic.configs``), resolved.

    ``choice`` may name a sub-folder, e.g. ``"eval/cbsd68"``. Interpolations such as
    ``${oc.env:DEMOSAIC_DATA,../shared/data}`` are resolved now.

    Returns:
        A plain dict: ``{"train": {...}, "val": {...}}`` for a dataset choice, or one
        dataset mapping for an ``eval/`` file.
    """
    ref = resources.files("demosaic.configs").joinpath("dataset", f"{choice}.yaml")
    if not ref.is_file():
        raise ConfigError(f"dataset config {choice!r} not found (looked for "
                          f"configs/dataset/{choice}.yaml)")
    cfg = OmegaConf.create(ref.read_text(encoding="utf-8"))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


# Importing the modules registers their dataset kinds.
from demosaic.data import folder, mixture, raw_teacher, synthetic, torture  # noqa: E402,F401

__all__ = ["DATASETS", "build_dataset", "load_dataset_config"]
