"""What the training loop and its hooks share: :class:`TrainState` and the :class:`Hook`
interface.

The loop (:mod:`.loop`) fills a :class:`TrainState` and calls the hooks of ``s.hooks`` at
fixed points of each step; the hooks (:mod:`.hooks`, :mod:`demosaic.research.hooks`) and what
a run writes (:mod:`.outputs`) read it. This module imports none of them, so the dependency
runs one way: ``loop -> hooks -> outputs -> state``.

Call points, per training step::

    batch(cfa, target)          -> (cfa, target)      curriculum crop, teacher as target
    forward, configured loss
    loss(cfa, target, pred, loss, terms) -> (loss, terms)   distillation, adversarial, EWC
    non-finite check, backward, clip, optimizer and schedule step
    after_update(pred, target, terms) -> terms        discriminator step, EMA update
    step += 1
    step_end()                                        time budget, logs, validation, saves

and once: ``setup`` (after a resume, before the first step), ``load_state``/``state`` (their
part of ``last.pt``'s ``train_state``), ``close`` (after the last step).

Tensors passed to the hooks: ``cfa`` ``(N, 1, H, W)`` mosaics in the canonical phase of the
model's pattern, ``target`` and ``pred`` ``(N, 3, H, W)`` linear balanced camera RGB
(unclamped, float32), ``loss`` a scalar, ``terms`` ``{name: scalar}``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from demosaic.training.config import TrainerConfig

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Everything the loop and its hooks share. Set up by the trainer; hooks read it and may
    change ``max_steps`` (the time budget), ``best``/``last_metrics`` (validation) and
    ``ema``."""

    t: TrainerConfig
    device: torch.device
    dist_info: Any
    model: nn.Module
    model_name: str
    model_kwargs: dict[str, Any]
    trainable: dict[str, nn.Parameter]
    train_set: Dataset
    val_set: Dataset
    criterion: Callable[..., tuple[torch.Tensor, dict[str, torch.Tensor]]]
    full_config: dict[str, Any]
    run_dir: Path
    log_dir: Path
    autocast: Callable[[], Any] = field(default=lambda: None)
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    scaler: Any = None
    ema: Any = None
    ddp_model: nn.Module | None = None
    clock: Any = None
    bar: Any = None
    writer: Any = None
    hooks: list[Hook] = field(default_factory=list)
    step: int = 0
    best: float = -math.inf
    max_steps: int = 0
    loss: torch.Tensor | None = None
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    samples: int = 0
    last_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def pattern(self) -> str:
        """Name of the model's CFA pattern."""
        return self.model.pattern.name

    @property
    def is_main(self) -> bool:
        return bool(self.dist_info.is_main)

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    @property
    def metrics_file(self) -> Path:
        return self.log_dir / f"metrics_{self.t.run_name}.jsonl"

    def at_end(self) -> bool:
        return self.step >= self.max_steps

    def every(self, n: int) -> bool:
        """Whether the step just completed is a multiple of ``n`` or the last one."""
        return self.step % n == 0 or self.at_end()


class Hook:
    """One optional behaviour of the loop; every call point is a no-op by default."""

    def setup(self, s: TrainState) -> None:
        """After a resume, before the first step."""

    def load_state(self, s: TrainState, train_state: dict[str, Any]) -> None:
        """Restore this hook's part of a resumed ``last.pt``."""

    def state(self, s: TrainState) -> dict[str, Any]:
        """This hook's part of ``last.pt``'s ``train_state``."""
        return {}

    def batch(self, s: TrainState, cfa: torch.Tensor, target: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        return cfa, target

    def loss(self, s: TrainState, cfa: torch.Tensor, target: torch.Tensor, pred: torch.Tensor,
             loss: torch.Tensor, terms: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return loss, terms

    def after_update(self, s: TrainState, pred: torch.Tensor, target: torch.Tensor,
                     terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return terms

    def step_end(self, s: TrainState) -> None:
        """After the step counter moved on (``s.step`` steps done)."""

    def close(self, s: TrainState) -> None:
        """After the last step (also after Ctrl-C)."""


__all__ = ["TrainState", "Hook"]
