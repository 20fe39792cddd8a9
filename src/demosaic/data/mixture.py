"""Weighted mixture of datasets by ratio (``name: mixture``), e.g. the log's 80/15/5 plan.

Sampling is by **ratio**, not by dataset size: an epoch of ``samples_per_epoch`` items holds
``round(ratio_k * N)`` items of component ``k`` (largest-remainder rounding, so the counts sum
to ``N`` and match the ratios to within one item), shuffled. Each of those items is a random
item of its component. With a seed, the epoch's table is a pure function of ``(seed, epoch)``;
components are built with seeds ``seed + 1 + k`` and follow the mixture's epoch.

Config::

    name: mixture
    samples_per_epoch: 2000
    components:
      - {ratio: 0.80, dataset: {name: raw_teacher, root: ...}}
      - {ratio: 0.15, dataset: {name: raw_teacher, root: ..., select: top200_sharp.json}}
      - {ratio: 0.05, dataset: {name: torture, types: [0, 3, 6]}}

Ratios are normalised by their sum. All components must produce the same patch size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from demosaic.data import DATASETS
from demosaic.data.common import Sample, make_rng
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class MixtureComponent:
    """One component: its share of each epoch and its dataset mapping (with ``name``)."""

    ratio: float = 1.0
    dataset: dict[str, Any] = field(default_factory=dict)


@dataclass
class MixtureConfig:
    """Keys of ``name: mixture``.

    Attributes:
        samples_per_epoch: Items per epoch (the dataset's length).
        components: List of ``{ratio, dataset}``.
    """

    samples_per_epoch: int = 2000
    components: list[MixtureComponent] = field(default_factory=list)


def split_counts(ratios: list[float], total: int) -> list[int]:
    """Integer counts proportional to ``ratios`` that sum to ``total`` (largest remainder)."""
    r = np.asarray(ratios, dtype=np.float64)
    exact = r / r.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return [int(c) for c in counts]


class MixtureDataset(Dataset):
    """Items drawn from ``datasets`` in proportion to ``ratios`` (see module docstring)."""

    def __init__(self, datasets: list[Dataset], ratios: list[float], samples_per_epoch: int,
                 seed: int | None = None, key: str = "dataset") -> None:
        if not datasets:
            raise ConfigError(f"{key}.components: empty; give at least one {{ratio, dataset}}")
        if samples_per_epoch <= 0:
            raise ConfigError(f"{key}.samples_per_epoch: must be positive, got {samples_per_epoch}")
        bad = [r for r in ratios if not r > 0]
        if bad:
            raise ConfigError(f"{key}.components: every ratio must be > 0, got {ratios}")
        sizes = {getattr(d, "patch_size", None) for d in datasets}
        if len(sizes) > 1:
            raise ConfigError(f"{key}.components: patch sizes differ ({sorted(map(str, sizes))}); "
                              "set the same patch_size in every component so batches stack")
        self.datasets = datasets
        self.ratios = [r / sum(ratios) for r in ratios]
        self.samples_per_epoch = samples_per_epoch
        self.patch_size = next(iter(sizes))
        self.seed = seed
        self.counts = split_counts(self.ratios, samples_per_epoch)
        self.epoch = 0
        self._table: tuple[int, np.ndarray, np.ndarray] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its mixture table) and pass it on to the components."""
        self.epoch = int(epoch)
        for d in self.datasets:
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)

    def preload(self) -> None:
        """Preload every component that can (decoded-image caches), before workers fork."""
        for d in self.datasets:
            if hasattr(d, "preload"):
                d.preload()

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(component, item)`` index arrays of the current epoch, each ``(N,)`` int64."""
        if self._table is None or self._table[0] != self.epoch:
            rng = make_rng(self.seed, self.epoch)
            comp = np.repeat(np.arange(len(self.datasets)), self.counts)
            comp = comp[rng.permutation(len(comp))]
            item = np.zeros(len(comp), dtype=np.int64)
            for k, d in enumerate(self.datasets):
                sel = comp == k
                item[sel] = rng.integers(len(d), size=int(sel.sum()))
            self._table = (self.epoch, comp, item)
        return self._table[1], self._table[2]

    def __len__(self) -> int:
        return self.samples_per_epoch

    def component_of(self, index: int) -> int:
        """Which component item ``index`` of the current epoch comes from."""
        return int(self.table()[0][index])

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(index)
        comp, item = self.table()
        return self.datasets[int(comp[index])][int(item[index])]


@DATASETS.register("mixture", MixtureConfig)
def make_mixture(*, pattern: str, split: str, seed: int | None, samples_per_epoch: int,
                 components: list[dict[str, Any]]) -> MixtureDataset:
    """Registry factory of ``name: mixture`` (keys: :class:`MixtureConfig`)."""
    key = f"dataset.{split}"
    datasets, ratios = [], []
    for k, comp in enumerate(components):
        sub_seed = None if seed is None else seed + 1 + k
        where = f"{key}.components[{k}].dataset"
        if comp["dataset"].get("name") == "mixture":
            raise ConfigError(f"{where}: a mixture cannot contain a mixture; flatten it")
        datasets.append(DATASETS.build(comp["dataset"], where=where, pattern=pattern,
                                       split=split, seed=sub_seed))
        ratios.append(float(comp["ratio"]))
    return MixtureDataset(datasets, ratios, samples_per_epoch, seed=seed, key=key)
