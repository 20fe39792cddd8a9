"""The research behaviours of the training loop, as hooks (:mod:`demosaic.training.hooks`).

Importing this module registers them; the trainer imports it because it is named in
``trainer.plugins`` (the default), so the engine itself never imports research code.

- ``curriculum`` (``trainer.curriculum.start_fraction`` < 1): each batch cropped, at a CFA-period
  offset, to a side growing linearly to the full patch (:mod:`.curriculum`);
- ``distill`` (``trainer.distill.teacher``): a teacher's output as an extra L1 term, or as the
  target itself (:mod:`.distill`);
- ``adversarial`` (``trainer.adversarial.weight`` > 0): a patch discriminator's hinge term from
  ``start_step`` on, and one discriminator update per step (:mod:`.adversarial`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from demosaic.training.hooks import register_hook
from demosaic.training.state import Hook, TrainState
from demosaic.errors import ConfigError
from demosaic.losses import log_encode
from demosaic.research.adversarial import (PatchDiscriminator, discriminator_loss,
                                           generator_loss)
from demosaic.research.curriculum import crop_batch, curriculum_size
from demosaic.research.distill import distill_loss, load_teacher, teacher_output

log = logging.getLogger(__name__)


class CurriculumHook(Hook):
    """Crop each batch to the curriculum's size at the current step (exact on resume: the
    offset comes from a generator seeded with ``(seed, step)``)."""

    def batch(self, s, cfa, target):
        c = s.t.curriculum
        period = s.model.pattern.period
        multiple = math.lcm(period, int(getattr(s.model, "size_multiple", period)))
        full = min(cfa.shape[-2:])
        size = curriculum_size(s.step, full, c.start_fraction, c.ramp_steps, multiple)
        return crop_batch(cfa, target, size, period, s.t.seed, s.step)


@register_hook("curriculum", order=10)
def _curriculum(s: TrainState) -> Hook | None:
    c = s.t.curriculum
    if c.start_fraction >= 1.0:
        return None
    curriculum_size(0, 96, c.start_fraction, c.ramp_steps, 6)  # validates the settings
    return CurriculumHook()


class DistillHook(Hook):
    """The teacher's output (under the run's autocast) as the target (``as_target``) or as an
    extra term ``weight * L1(student, teacher)`` logged as ``loss/distill``."""

    def __init__(self, teacher: torch.nn.Module) -> None:
        self.teacher = teacher

    def _teacher(self, s: TrainState, cfa: torch.Tensor) -> torch.Tensor:
        with s.autocast():
            return teacher_output(self.teacher, cfa)

    def batch(self, s, cfa, target):
        return (cfa, self._teacher(s, cfa)) if s.t.distill.as_target else (cfa, target)

    def loss(self, s, cfa, target, pred, loss, terms):
        if s.t.distill.as_target:
            return loss, terms
        d_term = distill_loss(pred, self._teacher(s, cfa))
        return loss + s.t.distill.weight * d_term, {**terms, "distill": d_term.detach()}


@register_hook("distill", order=20)
def _distill(s: TrainState) -> Hook | None:
    d = s.t.distill
    if not d.teacher:
        return None
    if d.weight < 0:
        raise ConfigError(f"trainer.distill.weight={d.weight}: must be >= 0")
    return DistillHook(load_teacher(d.teacher, s.pattern, s.device))


class AdversarialHook(Hook):
    """Hinge GAN term on the mu-law encoded output, and the discriminator's own Adam step."""

    def __init__(self, s: TrainState) -> None:
        a = s.t.adversarial
        torch.manual_seed(s.t.seed + 7)
        self.disc = PatchDiscriminator(a.channels).to(s.device)
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=a.lr, betas=(0.5, 0.999))
        log.info("adversarial term: weight %g, patch discriminator %d parameters",
                 a.weight, sum(q.numel() for q in self.disc.parameters()))

    def load_state(self, s: TrainState, train_state: dict[str, Any]) -> None:
        if train_state.get("discriminator"):
            self.disc.load_state_dict(train_state["discriminator"])
            self.opt.load_state_dict(train_state["d_optimizer"])

    def state(self, s: TrainState) -> dict[str, Any]:
        return {"discriminator": self.disc.state_dict(), "d_optimizer": self.opt.state_dict()}

    def loss(self, s, cfa, target, pred, loss, terms):
        if s.step < s.t.adversarial.start_step:
            return loss, terms
        g_adv = generator_loss(self.disc(log_encode(pred)))
        return loss + s.t.adversarial.weight * g_adv, {**terms, "adversarial": g_adv.detach()}

    def after_update(self, s, pred, target, terms):
        self.opt.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(self.disc(log_encode(target.float())),
                                    self.disc(log_encode(pred.detach())))
        d_loss.backward()
        self.opt.step()
        return {**terms, "discriminator": d_loss.detach()}


@register_hook("adversarial", order=30)
def _adversarial(s: TrainState) -> Hook | None:
    a = s.t.adversarial
    if a.weight < 0:
        raise ConfigError(f"trainer.adversarial.weight={a.weight}: must be >= 0 (0 disables)")
    return AdversarialHook(s) if a.weight > 0 else None


__all__ = ["CurriculumHook", "DistillHook", "AdversarialHook"]
