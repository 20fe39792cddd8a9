"""The optional behaviours of the training loop, as hooks registered by name.

:func:`demosaic.training.loop.train` runs a short loop (batch -> forward -> loss -> update)
and calls the hooks of a :class:`TrainState` at fixed points; everything else is a hook:
EMA weights, the EWC penalty, the time budget, metric logging, validation and ``best.pt``,
PNG snapshots and ``last.pt``. Research behaviours (distillation, the adversarial term, the
patch-size curriculum) live in :mod:`demosaic.research.hooks` and register themselves the same
way when that module is imported; the trainer imports the modules named in
``trainer.plugins`` (by default ``demosaic.research.hooks``), so the engine never imports the
research code.

A hook factory takes the :class:`TrainState` once the model, datasets and loss exist (before
the optimizer, so a factory that draws random numbers keeps the run's RNG sequence) and
returns a :class:`Hook`, or ``None`` when the config leaves the behaviour off. Hooks run in
the order of their registration ``order``.

The call points of a step and the state hooks share are in :mod:`.state`.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader

from demosaic.errors import ConfigError
from demosaic.training.data_order import DistInfo, GlobalIndexSampler, StepIndexedDataset
from demosaic.training.ema import EMA
from demosaic.training.outputs import (eval_model, fixed_crop, log_images, log_scalars,
                                       save_last, save_snapshot, validate, write_config)
from demosaic.training.state import Hook, TrainState

log = logging.getLogger(__name__)


HookFactory = Callable[[TrainState], "Hook | None"]
#: name -> (order, factory, module that registered it)
_REGISTRY: dict[str, tuple[int, HookFactory, str]] = {}


def register_hook(name: str, order: int, plugin: str | None = None
                  ) -> Callable[[HookFactory], HookFactory]:
    """Register a hook factory under ``name``; hooks run in ascending ``order``.

    Args:
        plugin: The module the hook belongs to (default: the factory's module). A run uses
            the hooks of this module and of the modules in its ``trainer.plugins`` only.
    """
    def deco(factory: HookFactory) -> HookFactory:
        _REGISTRY[name] = (order, factory, plugin or factory.__module__)
        return factory
    return deco


def registered_hooks() -> list[str]:
    """Names of the registered hooks, in call order."""
    return [n for n, _ in sorted(_REGISTRY.items(), key=lambda kv: kv[1][0])]


def load_plugins(modules: Iterable[str]) -> None:
    """Import the modules of ``trainer.plugins`` so their hooks register."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"trainer.plugins: cannot import {name!r} ({exc}); remove it or "
                              "install what it needs") from None


def build_hooks(s: TrainState, required: dict[str, bool]) -> list[Hook]:
    """Every registered hook the config switches on, in order.

    Args:
        required: ``{name: whether the config asks for it}`` of plugin hooks; asking for one
            that no plugin registered is a :class:`ConfigError`.
    """
    allowed = {__name__, *s.t.plugins}
    active = {n for n, (_, _, module) in _REGISTRY.items() if module in allowed}
    missing = [n for n, on in required.items() if on and n not in active]
    if missing:
        raise ConfigError(f"the config asks for {', '.join(missing)}, which no module of "
                          f"trainer.plugins={list(s.t.plugins)} registers; add "
                          "demosaic.research.hooks to trainer.plugins")
    hooks = []
    for name in registered_hooks():
        if name not in active:
            continue
        hook = _REGISTRY[name][1](s)
        if hook is not None:
            hooks.append(hook)
    return hooks


# --------------------------------------------------------------------------------------
# Core hooks
# --------------------------------------------------------------------------------------


class EMAHook(Hook):
    """``trainer.ema_decay`` > 0: EMA weights, used for validation, ``best.pt`` and saved in
    ``last.pt``."""

    def __init__(self, s: TrainState) -> None:
        s.ema = EMA(s.model, s.t.ema_decay)

    def after_update(self, s, pred, target, terms):
        s.ema.update(s.model)
        return terms


@register_hook("ema", order=50)
def _ema(s: TrainState) -> Hook | None:
    return EMAHook(s) if s.t.ema_decay > 0 else None


class EWCPenalty:
    """Elastic weight consolidation towards the starting weights.

    ``penalty = sum_i F_i (theta_i - theta*_i)^2`` with ``theta*`` the ``init_from`` weights
    and ``F`` the diagonal Fisher information estimated as the mean squared gradient of the
    training loss over a few batches at the start (the empirical Fisher of the starting model;
    the original task's data is usually not at hand when fine-tuning). ``F`` is normalised to
    mean 1 so ``trainer.ewc_weight`` has the same meaning for every model size.
    """

    def __init__(self, params: Mapping[str, nn.Parameter], fisher: Mapping[str, torch.Tensor]) -> None:
        self.anchor = {k: p.detach().clone() for k, p in params.items()}
        mean = torch.stack([f.mean() for f in fisher.values()]).mean().clamp_min(1e-20)
        self.fisher = {k: f / mean for k, f in fisher.items()}

    def __call__(self, params: Mapping[str, nn.Parameter]) -> torch.Tensor:
        total = sum((self.fisher[k] * (p - self.anchor[k]) ** 2).sum() for k, p in params.items())
        return total if isinstance(total, torch.Tensor) else torch.zeros(())


def fisher_diagonal(s: TrainState) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of the trainable parameters: the mean squared gradient of the
    training loss over ``trainer.ewc_batches`` batches (their own fixed data order)."""
    t = s.t
    fisher = {k: torch.zeros_like(p) for k, p in s.trainable.items()}
    loader = DataLoader(StepIndexedDataset(s.train_set, t.seed + 1), batch_size=t.batch_size,
                        sampler=GlobalIndexSampler(0, t.batch_size, DistInfo()), num_workers=0)
    it = iter(loader)
    s.model.train()
    for _ in range(t.ewc_batches):
        batch = next(it)
        s.model.zero_grad(set_to_none=True)
        loss, _ = s.criterion(s.model(batch["cfa"].to(s.device)), batch["target"].to(s.device))
        loss.backward()
        for k, p in s.trainable.items():
            if p.grad is not None:
                fisher[k] += p.grad.detach() ** 2 / t.ewc_batches
    s.model.zero_grad(set_to_none=True)
    log.info("EWC: Fisher diagonal from %d batches, weight %g", t.ewc_batches, t.ewc_weight)
    return fisher


class EWCHook(Hook):
    """``trainer.ewc_weight`` > 0: the EWC penalty towards the starting weights."""

    def __init__(self) -> None:
        self.penalty: EWCPenalty | None = None

    def setup(self, s: TrainState) -> None:
        self.penalty = EWCPenalty(s.trainable, fisher_diagonal(s))

    def loss(self, s, cfa, target, pred, loss, terms):
        penalty = self.penalty(s.trainable)  # type: ignore[misc]
        return loss + s.t.ewc_weight * penalty, {**terms, "ewc": penalty.detach()}


@register_hook("ewc", order=40)
def _ewc(s: TrainState) -> Hook | None:
    return EWCHook() if s.t.ewc_weight > 0 else None


class TimeBudgetHook(Hook):
    """``trainer.max_minutes``: stop cleanly when spent; with ``fit_steps_to_time`` shorten
    the schedule once the step rate is known."""

    def step_end(self, s: TrainState) -> None:
        refit = s.clock.refit(s.step, s.max_steps, s.dist_info)
        if refit is not None:
            s.max_steps = refit
            s.bar.total = refit
            s.full_config.setdefault("trainer", {})["max_steps"] = refit
            if s.is_main:
                write_config(s.run_dir / "config.yaml", s.full_config)
        if s.clock.out_of_time(s.step, s.dist_info):
            log.warning("trainer.max_minutes=%g spent at step %d of %d: stopping here",
                        s.t.max_minutes, s.step, s.max_steps)
            s.max_steps = s.step
            s.full_config.setdefault("trainer", {})["stopped_by_time_at"] = s.step


@register_hook("time_budget", order=60)
def _time_budget(s: TrainState) -> Hook | None:
    return TimeBudgetHook() if s.t.max_minutes > 0 else None


class MetricsHook(Hook):
    """Every ``log_every`` steps: loss terms, learning rate and samples/s to the text log,
    TensorBoard, the JSONL metrics file and the progress bar (main process)."""

    def __init__(self) -> None:
        self.window_t, self.window_n = time.perf_counter(), 0

    def setup(self, s: TrainState) -> None:
        self.window_t, self.window_n = time.perf_counter(), s.samples

    def step_end(self, s: TrainState) -> None:
        if not s.is_main or not s.every(s.t.log_every):
            return
        # read the loss first: it waits for the device's queued work (CUDA, MPS), so the
        # rate measures the work done, not the kernels launched
        loss = s.loss.item()  # type: ignore[union-attr]
        now = time.perf_counter()
        rate = (s.samples - self.window_n) / max(now - self.window_t, 1e-9)
        self.window_t, self.window_n = now, s.samples
        lr = s.scheduler.get_last_lr()[0]
        scalars = {f"loss/{k}": float(v) for k, v in s.terms.items()}
        scalars.update({"loss/total": loss, "lr": lr, "throughput/samples_per_s": rate})
        log_scalars(s.writer, s.metrics_file, s.step, scalars)
        s.bar.set_postfix(loss=f"{loss:.4g}", sps=f"{rate:.1f}")
        log.info("step %6d  loss %.5f  %s  lr %.2e  %.1f samples/s", s.step, loss,
                 " ".join(f"{k} {float(v):.4f}" for k, v in s.terms.items()), lr, rate)


@register_hook("metrics", order=70)
def _metrics(s: TrainState) -> Hook | None:
    return MetricsHook()


class ValidationHook(Hook):
    """Every ``val_every`` steps: validate (EMA weights if on) and write ``best.pt`` when the
    PSNR improves; log the metrics and a TensorBoard image grid."""

    def step_end(self, s: TrainState) -> None:
        if not s.every(s.t.val_every):
            return
        if s.is_main:
            from demosaic.models.checkpoint import make_checkpoint, save_checkpoint

            model = eval_model(s.model, s.ema)  # one EMA copy for all of validation
            s.last_metrics = validate(model, s.val_set, s.device, s.t.val_max_images)
            log_scalars(s.writer, s.metrics_file, s.step,
                        {f"val/{k}": v for k, v in s.last_metrics.items()})
            log.info("step %6d  validation %s", s.step,
                     " ".join(f"{k} {v:.4f}" for k, v in s.last_metrics.items()))
            log_images(s.writer, model, s.val_set, s.device, s.step)
            if s.last_metrics["psnr"] > s.best:
                s.best = s.last_metrics["psnr"]
                save_checkpoint(make_checkpoint(
                    model, s.model_name, s.model_kwargs, cfa=s.pattern, config=s.full_config,
                    step=s.step, metrics=s.last_metrics, run_name=s.t.run_name), s.best_path)
        s.model.train()


@register_hook("validation", order=80)
def _validation(s: TrainState) -> Hook | None:
    return ValidationHook()


class SnapshotHook(Hook):
    """Every ``snapshot_every`` steps: a PNG of a fixed validation crop (output | truth) and
    its periodic-artifact score (``snapshot/periodic_artifact``)."""

    def __init__(self, crop: dict[str, torch.Tensor]) -> None:
        self.crop = crop

    def step_end(self, s: TrainState) -> None:
        if not s.every(s.t.snapshot_every):
            return
        score = save_snapshot(eval_model(s.model, s.ema), self.crop, s.device,
                              s.log_dir / "snapshots" / s.t.run_name / f"step_{s.step:07d}.png")
        log_scalars(s.writer, s.metrics_file, s.step, {"snapshot/periodic_artifact": score})
        s.model.train()


@register_hook("snapshots", order=90)
def _snapshots(s: TrainState) -> Hook | None:
    crop = fixed_crop(s.val_set, s.t.snapshot_crop, s.model.pattern.period) if s.is_main else None
    return SnapshotHook(crop) if crop is not None else None


class CheckpointHook(Hook):
    """Every ``save_every`` steps: ``last.pt`` with everything a resume needs."""

    def step_end(self, s: TrainState) -> None:
        if s.every(s.t.save_every):
            save_last(s)


@register_hook("checkpoints", order=100)
def _checkpoints(s: TrainState) -> Hook | None:
    return CheckpointHook()


__all__ = ["register_hook", "registered_hooks", "build_hooks", "load_plugins", "EWCPenalty",
           "fisher_diagonal"]
