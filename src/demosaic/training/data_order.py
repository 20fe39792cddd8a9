"""The data order of a training run: a pure function of ``(seed, global sample index)``.

:class:`StepIndexedDataset` and :class:`GlobalIndexSampler` make the sample at any global
index the same whatever the number of loader workers or processes, which is what makes a
resumed run continue exactly. Shared by the trainer and the EWC hook (:mod:`.hooks`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class StepIndexedDataset(Dataset):
    """Maps a global sample index ``g`` to ``dataset[perm_e[g % n]]`` with epoch ``e = g // n``.

    ``perm_e`` is a permutation seeded by ``(seed, e)``; datasets with a ``set_epoch`` method
    are told the epoch before each item, so their own augmentation randomness (seeded per
    ``(seed, epoch, index)``) follows. The sample at any global index is therefore the same in
    an uninterrupted and in a resumed run, in any worker process.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.n = len(dataset)  # type: ignore[arg-type]
        if self.n == 0:
            raise ConfigError("the training dataset is empty; check dataset.train.root")
        self.seed = seed
        self._perm_epoch = -1
        self._perm = np.arange(self.n)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, g: int) -> Any:
        epoch, pos = divmod(int(g), self.n)
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self._perm_epoch = epoch
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
        return self.dataset[int(self._perm[pos])]


class GlobalIndexSampler(Sampler[int]):
    """Yields the global sample indices this rank consumes, from ``start_step`` on.

    Step ``s`` of rank ``r`` in a world of ``w`` uses indices
    ``(s * w + r) * batch_size + j`` for ``j < batch_size``.
    """

    def __init__(self, start_step: int, batch_size: int, dist_info: DistInfo) -> None:
        self.start_step, self.batch_size, self.dist = start_step, batch_size, dist_info

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            base = (step * self.dist.world_size + self.dist.rank) * self.batch_size
            yield from range(base, base + self.batch_size)
            step += 1

    def __len__(self) -> int:  # pragma: no cover - infinite
        return 2**62


# --------------------------------------------------------------------------------------
# Schedule, EMA, EWC
# --------------------------------------------------------------------------------------


__all__ = ["DistInfo", "StepIndexedDataset", "GlobalIndexSampler"]
