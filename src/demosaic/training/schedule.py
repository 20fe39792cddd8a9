"""The schedule of a training run: the learning rate by step and the wall-clock budget.

:func:`lr_factor` is the multiplier of ``trainer.optim.lr`` (linear warmup, cosine decay);
:class:`RunClock` stops a run when ``trainer.max_minutes`` is spent and, with
``trainer.fit_steps_to_time``, shortens ``max_steps`` once the step rate is known.
"""

from __future__ import annotations

import logging
import math
import time

import torch
import torch.distributed as dist

from demosaic.training.config import TrainerConfig
from demosaic.training.data_order import DistInfo

log = logging.getLogger(__name__)


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warmup from 0 over ``warmup_steps``, then cosine decay to ``min_lr_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


class RunClock:
    """The wall-clock side of a run: ``max_minutes`` and ``fit_steps_to_time``.

    Time is only looked at on steps that are multiples of ``log_every`` (and, in distributed
    training, agreed on by all ranks there), so every rank stops at the same step and the GPU
    is not synchronised more often than the logging already does.
    """

    #: Steps skipped before the rate is measured (start-up, cuDNN autotuning, first batches).
    SKIP = 20
    #: Fraction of the remaining time the fitted schedule plans to use (validation and
    #: saving take the rest).
    SAFETY = 0.9

    def __init__(self, t: TrainerConfig, start: float, fitted: bool = False) -> None:
        """``fitted``: the schedule was already fitted (a resumed run keeps that length)."""
        self.t = t
        self.start = start
        self.budget = 60.0 * t.max_minutes
        self.probe_end = max(t.optim.warmup_steps, 100)
        self.mark: float | None = None
        self.fitted = fitted or not t.fit_steps_to_time

    def due(self, step: int, max_steps: int) -> bool:
        """Whether ``step`` (just completed) is one where anything is logged, saved or
        validated, or the run may stop: the steps a deferred NaN check must run at."""
        t = self.t
        return (step >= max_steps or step % t.log_every == 0 or step % t.val_every == 0
                or step % t.save_every == 0 or step % t.snapshot_every == 0)

    def _agree(self, value: float, dist_info: DistInfo) -> float:
        if dist_info.world_size == 1:
            return value
        buf = torch.tensor([value], dtype=torch.float64,
                           device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.broadcast(buf, src=0)
        return float(buf.item())

    def out_of_time(self, step: int, dist_info: DistInfo) -> bool:
        if self.budget <= 0 or step % self.t.log_every:
            return False
        late = time.perf_counter() - self.start > self.budget
        return bool(self._agree(float(late), dist_info))

    def refit(self, step: int, max_steps: int, dist_info: DistInfo) -> int | None:
        """The shortened ``max_steps`` once the rate is known (``None`` on every other step)."""
        if self.fitted:
            return None
        if step == self.SKIP:
            self.mark = time.perf_counter()
            return None
        if step < self.probe_end or self.mark is None:
            return None
        self.fitted = True
        now = time.perf_counter()
        rate = (step - self.SKIP) / max(now - self.mark, 1e-9)
        left = self.budget - (now - self.start)
        planned = step + int(rate * max(left, 0.0) * self.SAFETY)
        planned = int(self._agree(float(min(max_steps, max(planned, step + 1))), dist_info))
        log.info("fit_steps_to_time: %.2f steps/s, %.1f of %.1f min left: max_steps %d -> %d",
                 rate, left / 60, self.budget / 60, max_steps, planned)
        return planned if planned != max_steps else None


__all__ = ["lr_factor", "RunClock"]
