"""Knowledge distillation: a (large) teacher checkpoint's outputs supervise a (small) student.

The teacher is rebuilt from its self-describing checkpoint (:func:`load_model`, EMA weights
when present), frozen and kept in eval mode. Both models see the same mosaic
``(N, 1, H, W)`` in the canonical phase; outputs are linear RGB ``(N, 3, H, W)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from demosaic.models.zoo import load_frozen
from demosaic.errors import CheckpointError

log = logging.getLogger(__name__)


def load_teacher(path: str | Path, pattern: str, device: torch.device | str = "cpu") -> nn.Module:
    """Load a frozen teacher model; its CFA must be ``pattern`` (the student's)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"trainer.distill.teacher={p} does not exist; pass teacher=PATH to a "
                              "checkpoint (e.g. checkpoints/experiments/v4.0_base/best.pt)")
    teacher = load_frozen(p, pattern, device, "trainer.distill.teacher")
    n = sum(q.numel() for q in teacher.parameters())
    log.info("distillation teacher %s: %.3f M parameters", p, n / 1e6)
    return teacher


@torch.no_grad()
def teacher_output(teacher: nn.Module, cfa: torch.Tensor) -> torch.Tensor:
    """Teacher prediction ``(N, 3, H, W)`` for a batch ``cfa (N, 1, H, W)``, detached."""
    return teacher(cfa).float()


def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between student and teacher outputs (a scalar)."""
    return (student - teacher).abs().mean()


__all__ = ["load_teacher", "teacher_output", "distill_loss"]
