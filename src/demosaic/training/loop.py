"""The training loop: :func:`train`, a short loop with hooks for everything optional.

Inputs are plain Python values (the CLI resolves the Hydra config and calls :func:`train`).
What it does, in order:

1. set up the text log ``<log_dir>/train_<run_name>.log``; seed every RNG, pick the device
   (``auto``: CUDA, then MPS, then CPU), join a DistributedDataParallel group when launched
   by ``torchrun`` (CUDA over NCCL, CPU over gloo; never MPS, which c10d has no backend
   for);
2. import ``trainer.plugins`` (their hooks register: :mod:`demosaic.training.hooks`), build
   model, datasets and loss from their registries, load ``init_from`` weights (unless
   ``init_weights`` is false), freeze named parts, and build the hooks the config switches
   on (:data:`TrainState.hooks`);
3. AdamW (fused where the device has it: :func:`.runtime.make_optimizer`) + linear warmup +
   cosine decay, gradient clipping, autocast on CUDA (and fp16 on MPS when asked for:
   :func:`.runtime.autocast_for`); resume from ``last.pt`` (weights, optimizer, schedule,
   EMA, scaler, the hooks' state and every RNG);
4. the loop (:func:`_loop`): batch -> hooks' ``batch`` -> forward -> loss -> hooks' ``loss``
   -> non-finite check -> update -> hooks' ``after_update`` -> hooks' ``step_end``.

The hooks (each in :mod:`demosaic.training.hooks` unless noted): EMA weights, the EWC penalty,
the time budget (``max_minutes``, ``fit_steps_to_time``), metric logging (text, JSONL,
TensorBoard), validation and ``best.pt``, PNG snapshots with their periodic-artifact score,
``last.pt``; and from :mod:`demosaic.research.hooks`: the patch-size curriculum, distillation
and the adversarial term. A non-finite loss stops the run (``TrainingDiverged``) without
touching the last good checkpoint (on CUDA and MPS the check runs at every log, validation
and save step rather than every step, so the device is not synchronised each step); Ctrl-C
writes ``last.pt`` and returns cleanly.

Data order is a pure function of ``(seed, global sample index)`` (see
:class:`StepIndexedDataset`), which is what makes resume exact, with or without workers.
With ``device_batches`` the batches are synthesised on the training device instead
(:mod:`demosaic.data.device_batches`): same distributions, no DataLoader, and a resumed run
draws a fresh (seeded) stream rather than the exact continuation.

DataLoader workers (``num_workers > 0``) started by ``fork`` (Linux) share the decoded
images, which the main process caches first (``preload``); started by ``spawn`` (macOS,
Windows) or ``forkserver`` they would each receive a pickled copy of that cache, so the main
process does not fill it and each worker decodes and caches the images it needs, on purpose
(:func:`.runtime.worker_start_method`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from demosaic import tracking
from demosaic.errors import CheckpointError, ConfigError, DemosaicError
from demosaic.models.checkpoint import load_checkpoint
from demosaic.training.config import TrainerConfig
from demosaic.training.data_order import DistInfo, GlobalIndexSampler, StepIndexedDataset
from demosaic.training.hooks import build_hooks, load_plugins
from demosaic.training.outputs import save_last, set_rng_state, write_config
from demosaic.training.runtime import (autocast_for, init_distributed, make_optimizer,
                                       seed_everything, select_device, worker_start_method)
from demosaic.training.schedule import RunClock, lr_factor
from demosaic.training.state import TrainState
from demosaic.training.warm_start import apply_freeze, check_init, load_init

log = logging.getLogger(__name__)


class TrainingDiverged(DemosaicError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


@dataclass
class TrainResult:
    run_name: str
    step: int
    best_metric: float
    best_path: Path | None
    last_path: Path | None
    interrupted: bool
    metrics: dict[str, float]


def _setup_file_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("demosaic").addHandler(handler)
    return handler


def train(
    *,
    dataset_cfg: Mapping[str, Any],
    model_cfg: Mapping[str, Any],
    loss_cfg: Mapping[str, Any],
    trainer: TrainerConfig,
    full_config: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train a model; see the module docstring for what happens and where outputs go.

    Args:
        dataset_cfg: ``{"train": {...}, "val": {...}}`` registry mappings (``demosaic.data``).
        model_cfg: Registry mapping for ``demosaic.models`` (``name`` + constructor keys).
        loss_cfg: Mapping for :func:`demosaic.losses.build_loss`.
        trainer: How to train.
        full_config: The resolved config, stored in checkpoints and the run folder.

    Returns:
        A :class:`TrainResult`. Raises :class:`TrainingDiverged` on a non-finite loss.
    """
    from demosaic.data import DATASETS
    from demosaic.losses import build_loss
    from demosaic.models import MODELS

    t = trainer
    run_dir = Path(t.checkpoint_dir) / t.run_name
    log_dir = Path(t.log_dir)
    device = select_device(t.device)
    dist_info = init_distributed(device)
    handler = _setup_file_log(log_dir / f"train_{t.run_name}.log") if dist_info.is_main else None
    try:
        return _train(dataset_cfg, model_cfg, loss_cfg, t, dict(full_config or {}), run_dir, log_dir,
                      device, dist_info, DATASETS, MODELS, build_loss)
    finally:
        if handler is not None:
            logging.getLogger("demosaic").removeHandler(handler)
            handler.close()


def _train(dataset_cfg, model_cfg, loss_cfg, t: TrainerConfig, full_config, run_dir: Path,
           log_dir: Path, device: torch.device, dist_info: DistInfo, DATASETS, MODELS,
           build_loss) -> TrainResult:
    seed_everything(t.seed + dist_info.rank)
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest kernels once
    log.info("run %s on %s (precision %s, world %d)", t.run_name, device, t.precision, dist_info.world_size)
    _check_settings(t)
    load_plugins(t.plugins)
    s = _build_state(dataset_cfg, model_cfg, loss_cfg, t, full_config, run_dir, log_dir, device,
                     dist_info, DATASETS, MODELS, build_loss)
    s.hooks = build_hooks(s, {"distill": bool(t.distill.teacher),
                              "adversarial": t.adversarial.weight != 0,
                              "curriculum": t.curriculum.start_fraction < 1.0})
    s.autocast, s.scaler = autocast_for(device, t.precision)
    s.optimizer = make_optimizer(list(s.trainable.values()), device, lr=t.optim.lr,
                                 betas=tuple(t.optim.betas), weight_decay=t.optim.weight_decay)
    s.max_steps = t.max_steps  # fit_steps_to_time may shorten it after the warm-up
    s.scheduler = torch.optim.lr_scheduler.LambdaLR(
        s.optimizer, lambda i: lr_factor(i, t.optim.warmup_steps, s.max_steps, t.optim.min_lr_ratio))
    if t.resume:
        _resume(s)
    for hook in s.hooks:
        hook.setup(s)
    s.ddp_model = s.model
    if dist_info.world_size > 1:
        s.ddp_model = nn.parallel.DistributedDataParallel(
            s.model, device_ids=[device.index] if device.type == "cuda" else None)
    loader = _make_loader(s)
    s.clock = RunClock(t, time.perf_counter(), fitted=s.max_steps != t.max_steps)
    _open_outputs(s)
    interrupted = _loop(s, loader)
    if dist_info.is_main and not interrupted:
        _track(tracking.finish_run, t.run_name, metrics={**s.last_metrics, "best_psnr": s.best},
               runs_dir=log_dir / "runs")
    if dist_info.world_size > 1:
        dist.barrier()
    return TrainResult(t.run_name, s.step, s.best, s.best_path if s.best_path.exists() else None,
                       s.last_path if s.last_path.exists() else None, interrupted, s.last_metrics)


def _check_settings(t: TrainerConfig) -> None:
    """Settings that must fail at once, before any data is read."""
    if t.max_minutes < 0:
        raise ConfigError(f"trainer.max_minutes={t.max_minutes}: use minutes > 0, or 0 for no limit")
    if t.fit_steps_to_time and t.max_minutes <= 0:
        raise ConfigError("trainer.fit_steps_to_time=true needs trainer.max_minutes > 0")
    if t.init_from and not t.resume:
        check_init(t)


def _build_state(dataset_cfg, model_cfg, loss_cfg, t: TrainerConfig, full_config, run_dir: Path,
                 log_dir: Path, device: torch.device, dist_info: DistInfo, DATASETS, MODELS,
                 build_loss) -> TrainState:
    """Model (initialised, frozen parts), datasets and loss: what to train."""
    model_name, model_kwargs = MODELS.validate(model_cfg, where="model")
    torch.manual_seed(t.seed)  # identical initial weights on every rank
    model = MODELS.build(model_cfg, where="model").to(device)
    pattern = model.pattern.name
    train_set = DATASETS.build(dataset_cfg["train"], where="dataset.train", pattern=pattern,
                               split="train", seed=t.seed)
    val_set = DATASETS.build(dataset_cfg["val"], where="dataset.val", pattern=pattern, split="val",
                             seed=t.seed)
    if t.num_workers > 0 and hasattr(train_set, "preload"):
        if worker_start_method() == "fork":
            train_set.preload()  # decode once in this process; forked workers share the cache
        else:  # a filled cache would be pickled into every worker: let each fill its own
            log.info("DataLoader workers start by %s: each of the %d workers decodes and caches "
                     "its own copy of the training images", worker_start_method(), t.num_workers)
    criterion = build_loss(loss_cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s %s: %.3f M parameters; train set %d items, val set %d images",
             model_name, model_kwargs, n_params / 1e6, len(train_set), len(val_set))
    if t.init_from and not t.resume and t.init_weights:
        load_init(model, t)
    trainable = apply_freeze(model, t.freeze)
    return TrainState(t=t, device=device, dist_info=dist_info, model=model, model_name=model_name,
                      model_kwargs=dict(model_kwargs), trainable=trainable, train_set=train_set,
                      val_set=val_set, criterion=criterion, full_config=full_config,
                      run_dir=run_dir, log_dir=log_dir)


def _resume(s: TrainState) -> None:
    """Continue from ``last.pt``: weights, optimizer, schedule, EMA, scaler, hooks, RNG."""
    t = s.t
    if not s.last_path.is_file():
        raise CheckpointError(f"trainer.resume=true but {s.last_path} does not exist; "
                              "start without resume (or check trainer.run_name)")
    ckpt = load_checkpoint(s.last_path)
    s.model.load_state_dict(ckpt["state_dict"])
    state = ckpt["train_state"] or {}
    # the saved groups carry the kernel choice of the run that wrote them: keep this device's
    kernels = [(g.get("fused"), g.get("foreach")) for g in s.optimizer.param_groups]
    s.optimizer.load_state_dict(state["optimizer"])
    for group, (fused, foreach) in zip(s.optimizer.param_groups, kernels):
        group["fused"], group["foreach"] = fused, foreach
    s.scheduler.load_state_dict(state["scheduler"])
    if s.ema is not None and ckpt.get("ema_state_dict"):
        s.ema.load_state_dict(ckpt["ema_state_dict"])
    if s.scaler is not None and state.get("scaler"):
        s.scaler.load_state_dict(state["scaler"])
    for hook in s.hooks:
        hook.load_state(s, state)
    set_rng_state(state["rng"])
    s.step, s.best = int(ckpt["step"]), float(state.get("best", -math.inf))
    log.info("resumed %s at step %d (best val PSNR %.3f dB)", s.last_path, s.step, s.best)
    fitted = (ckpt.get("config") or {}).get("trainer", {}).get("max_steps")
    if t.fit_steps_to_time and fitted and int(fitted) < s.max_steps:
        # the schedule was fitted to the first invocation's time: keep its length
        s.max_steps = int(fitted)
        s.full_config.setdefault("trainer", {})["max_steps"] = int(fitted)
        log.info("fit_steps_to_time: keeping the fitted max_steps %d of %s", int(fitted), s.last_path)


def _make_loader(s: TrainState) -> Any:
    """Batches from the step the run is at: a DataLoader over step-indexed samples, or batches
    synthesised on the device (``device_batches``)."""
    t = s.t
    if t.device_batches:
        from demosaic.data.device_batches import DeviceSyntheticBatches

        return DeviceSyntheticBatches(s.train_set, t.batch_size, s.device, seed=t.seed,
                                      start_step=s.step, rank=s.dist_info.rank)
    return DataLoader(
        StepIndexedDataset(s.train_set, t.seed), batch_size=t.batch_size,
        sampler=GlobalIndexSampler(s.step, t.batch_size, s.dist_info), num_workers=t.num_workers,
        pin_memory=s.device.type == "cuda", drop_last=True, persistent_workers=False,
        prefetch_factor=4 if t.num_workers > 0 else None,
    )


def _open_outputs(s: TrainState) -> None:
    """Run folder, its config.yaml, TensorBoard writer and run record (main process)."""
    if not s.is_main:
        return
    t = s.t
    s.run_dir.mkdir(parents=True, exist_ok=True)
    write_config(s.run_dir / "config.yaml", s.full_config)
    from torch.utils.tensorboard import SummaryWriter

    s.writer = SummaryWriter(log_dir=str(s.log_dir / "tensorboard" / t.run_name), purge_step=s.step)
    _track(tracking.start_run, t.run_name, config=s.full_config, ckpt_dir=str(s.run_dir),
           log_path=str(s.log_dir / f"train_{t.run_name}.log"), runs_dir=s.log_dir / "runs")


def _loop(s: TrainState, loader: Any) -> bool:
    """Train until ``s.max_steps``; returns whether Ctrl-C stopped it (``last.pt`` saved)."""
    from tqdm import tqdm

    s.bar = tqdm(total=s.max_steps, initial=s.step, disable=not s.is_main, dynamic_ncols=True,
                 desc=s.t.run_name, unit="step")
    it = iter(loader)
    # on CUDA and MPS a per-step `if not isfinite(loss)` would synchronise the device every
    # step: keep a device-side flag and read it at the steps where something is logged or saved
    nonfinite = torch.zeros((), dtype=torch.bool, device=s.device)
    s.model.train()
    try:
        while s.step < s.max_steps:
            batch = next(it)
            cfa = batch["cfa"].to(s.device, non_blocking=True)
            target = batch["target"].to(s.device, non_blocking=True)
            for hook in s.hooks:
                cfa, target = hook.batch(s, cfa, target)
            noise = batch.get("noise") if s.model.noise_input else None
            with s.autocast():
                pred = (s.ddp_model(cfa) if noise is None
                        else s.ddp_model(cfa, noise.to(s.device, non_blocking=True)))
            pred = pred.float()
            loss, terms = s.criterion(pred, target)
            for hook in s.hooks:
                loss, terms = hook.loss(s, cfa, target, pred, loss, terms)
            nonfinite |= ~torch.isfinite(loss.detach())
            _check_finite(s, nonfinite, loss, terms)
            _update(s, loss)
            for hook in s.hooks:
                terms = hook.after_update(s, pred, target, terms)
            s.step += 1
            s.samples += cfa.shape[0] * s.dist_info.world_size
            s.loss, s.terms = loss, terms
            s.bar.update(1)
            for hook in s.hooks:
                hook.step_end(s)
    except KeyboardInterrupt:
        log.warning("interrupted at step %d: saving %s", s.step, s.last_path)
        save_last(s)
        return True
    finally:
        s.bar.close()
        for hook in s.hooks:
            hook.close(s)
        if s.writer is not None:
            s.writer.close()
        del it
    return False


def _check_finite(s: TrainState, nonfinite: torch.Tensor, loss: torch.Tensor,
                  terms: dict[str, torch.Tensor]) -> None:
    """Stop on a non-finite loss (on CUDA and MPS only at steps where something is logged or
    saved, so the device is not synchronised each step)."""
    every_step = s.device.type not in ("cuda", "mps")
    due = s.clock.due(s.step + 1, s.max_steps)  # covers every step a stop can happen at
    if not ((every_step or due) and bool(nonfinite)):
        return
    bad = {k: float(v) for k, v in terms.items()}
    when = f"at step {s.step}" if every_step else f"by step {s.step}"
    _track(tracking.fail_run, s.t.run_name, f"non-finite loss {when}: {bad}",
           runs_dir=s.log_dir / "runs")
    raise TrainingDiverged(
        f"run {s.t.run_name}: loss is {loss.item()} {when} (terms {bad}); stopped. "
        f"The last good checkpoint {s.last_path} was kept. Lower trainer.optim.lr, "
        "raise trainer.optim.warmup_steps or check the data for NaN/inf.")


def _update(s: TrainState, loss: torch.Tensor) -> None:
    """Backward, gradient clipping, optimizer and schedule step (with the fp16 scaler)."""
    s.optimizer.zero_grad(set_to_none=True)
    if s.scaler is not None:
        s.scaler.scale(loss).backward()
        s.scaler.unscale_(s.optimizer)
    else:
        loss.backward()
    if s.t.optim.grad_clip > 0:
        nn.utils.clip_grad_norm_(s.trainable.values(), s.t.optim.grad_clip)
    if s.scaler is not None:
        s.scaler.step(s.optimizer)
        s.scaler.update()
    else:
        s.optimizer.step()
    s.scheduler.step()


def _track(update: Any, *args: Any, **kwargs: Any) -> None:
    """Update the run record; a failure there is logged and never stops training."""
    try:
        update(*args, **kwargs)
    except Exception as exc:  # the record is bookkeeping, the checkpoint is what matters
        log.warning("run record not updated (%s: %s)", type(exc).__name__, exc)


def trainer_config_from(mapping: Mapping[str, Any]) -> TrainerConfig:
    """Build a :class:`TrainerConfig` from a plain mapping, validating keys and types."""
    from omegaconf import OmegaConf

    from demosaic.schema import merge_into

    return OmegaConf.to_object(merge_into(TrainerConfig, dict(mapping), "trainer"))  # type: ignore[return-value]


__all__ = ["train", "TrainResult", "TrainingDiverged", "trainer_config_from"]
