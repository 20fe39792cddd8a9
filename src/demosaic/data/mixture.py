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

Schedules (progressive fine-tuning): ``schedule`` lists keyframes ``{epoch, ratios}`` (one
ratio per component); the ratios of epoch ``e`` interpolate linearly between the keyframes
around ``e`` and stay at the first/last keyframe's values outside them. Each epoch's table
then holds ``split_counts(ratios(e), N)`` items per component, still a pure function of
``(seed, epoch)`` (so a resumed run sees the same data). An epoch is ``samples_per_epoch``
training samples: choose it small enough for the granularity you want::

    schedule:
      - {epoch: 0, ratios: [0.9, 0.1]}   # mostly the original data first
      - {epoch: 8, ratios: [0.5, 0.5]}   # then half new data from epoch 8 on
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from demosaic.data.registry import DATASETS
from demosaic.data.common import Sample, make_rng
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class MixtureComponent:
    """One component: its share of each epoch and its dataset mapping (with ``name``)."""

    ratio: float = 1.0
    dataset: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScheduleKey:
    """One keyframe of a ratio schedule: the components' ratios at ``epoch``."""

    epoch: int = 0
    ratios: list[float] = field(default_factory=list)


@dataclass
class MixtureConfig:
    """Keys of ``name: mixture``.

    Attributes:
        samples_per_epoch: Items per epoch (the dataset's length).
        components: List of ``{ratio, dataset}``.
        schedule: Optional ratio keyframes ``[{epoch, ratios}]`` (see the module docstring);
            empty = the components' fixed ratios.
    """

    samples_per_epoch: int = 2000
    components: list[MixtureComponent] = field(default_factory=list)
    schedule: list[ScheduleKey] = field(default_factory=list)


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
                 seed: int | None = None, key: str = "dataset",
                 schedule: list[tuple[int, list[float]]] | None = None) -> None:
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
        self.schedule = self._check_schedule(schedule or [], len(datasets), key)
        self.counts = self.counts_at(0)
        self.epoch = 0
        self._table: tuple[int, np.ndarray, np.ndarray] | None = None

    @staticmethod
    def _check_schedule(schedule: list[tuple[int, list[float]]], n: int, key: str
                        ) -> list[tuple[int, list[float]]]:
        keys = []
        for i, (epoch, ratios) in enumerate(schedule):
            ratios = [float(r) for r in ratios]
            if len(ratios) != n:
                raise ConfigError(f"{key}.schedule[{i}].ratios={ratios}: needs one ratio per component ({n})")
            if any(r < 0 for r in ratios) or sum(ratios) <= 0:
                raise ConfigError(f"{key}.schedule[{i}].ratios={ratios}: ratios must be >= 0 with a positive sum")
            keys.append((int(epoch), [r / sum(ratios) for r in ratios]))
        epochs = [e for e, _ in keys]
        if epochs != sorted(set(epochs)) or any(e < 0 for e in epochs):
            raise ConfigError(f"{key}.schedule: epochs {epochs} must be >= 0 and strictly increasing")
        return keys

    def ratios_at(self, epoch: int) -> list[float]:
        """Normalised ratios of ``epoch``: the schedule's interpolation, or the fixed ratios."""
        if not self.schedule:
            return list(self.ratios)
        if epoch <= self.schedule[0][0]:
            return list(self.schedule[0][1])
        for (e0, r0), (e1, r1) in zip(self.schedule, self.schedule[1:]):
            if epoch <= e1:
                a = (epoch - e0) / (e1 - e0)
                return [(1 - a) * x + a * y for x, y in zip(r0, r1)]
        return list(self.schedule[-1][1])

    def counts_at(self, epoch: int) -> list[int]:
        """Items per component in the table of ``epoch`` (sums to ``samples_per_epoch``)."""
        return split_counts(self.ratios_at(epoch), self.samples_per_epoch)

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
            self.counts = self.counts_at(self.epoch)
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
                 components: list[dict[str, Any]], schedule: list[dict[str, Any]] | None = None
                 ) -> MixtureDataset:
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
    keys = [(int(k["epoch"]), list(k["ratios"])) for k in (schedule or [])]
    return MixtureDataset(datasets, ratios, samples_per_epoch, seed=seed, key=key, schedule=keys)
