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
3. AdamW + linear warmup + cosine decay, gradient clipping, autocast on CUDA (and fp16 on
   MPS when asked for: :func:`_autocast`); resume from
   ``last.pt`` (weights, optimizer, schedule, EMA, scaler, the hooks' state and every RNG);
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
(:func:`_worker_start_method`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from demosaic.models.checkpoint import load_checkpoint
from demosaic import tracking
from demosaic.devices import resolve_device, torch_version
from demosaic.training.config import TrainerConfig
from demosaic.training.data_order import DistInfo, GlobalIndexSampler, StepIndexedDataset
from demosaic.training.hooks import EMA, EWCPenalty, TrainState, build_hooks, load_plugins
from demosaic.training.outputs import save_last, set_rng_state, validate, write_config
from demosaic.errors import CheckpointError, ConfigError, DemosaicError

log = logging.getLogger(__name__)


class TrainingDiverged(DemosaicError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


# --------------------------------------------------------------------------------------
# Devices, seeds, distributed
# --------------------------------------------------------------------------------------


def select_device(name: str) -> torch.device:
    """``trainer.device``: :func:`demosaic.devices.resolve_device`."""
    return resolve_device(name, key="trainer.device")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1).

    Raises:
        ConfigError: on MPS: c10d has no MPS backend, and gloo with the CPU fallback lets
            ``broadcast`` do nothing without an error (pytorch/pytorch#173808), so ranks drift.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if device.type == "mps":
        raise ConfigError(
            f"trainer.device={device}: distributed training (torchrun, WORLD_SIZE={world}) is "
            "not supported on MPS: PyTorch's distributed package has no MPS backend, and gloo "
            "silently skips broadcasts of MPS tensors (pytorch/pytorch#173808). Run one process "
            "on mps (python -m demosaic.cli.train / demosaic-train, no torchrun), or "
            "trainer.device=cpu under torchrun")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size())
    log.info("distributed: rank %d of %d (%s)", info.rank, info.world_size, dist.get_backend())
    return info


# --------------------------------------------------------------------------------------
# Data order
# --------------------------------------------------------------------------------------


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warmup from 0 over ``warmup_steps``, then cosine decay to ``min_lr_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


class _RunClock:
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


# --------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    run_name: str
    step: int
    best_metric: float
    best_path: Path | None
    last_path: Path | None
    interrupted: bool
    metrics: dict[str, float]


#: Oldest torch with fp16 training on MPS: ``torch.autocast("mps")`` came in 2.5, the MPS
#: kernels of ``GradScaler`` and its float32-only unscale in 2.8 (pytorch/pytorch#150255,
#: #142397).
MPS_FP16_MIN_TORCH = (2, 8)


def _autocast(device: torch.device, precision: str) -> tuple[Any, torch.amp.GradScaler | None]:
    """Autocast context factory and grad scaler for the requested precision.

    ``auto`` is bf16 (fp16 without bf16) on CUDA and fp32 elsewhere, MPS included: fp16 on
    MPS (``trainer.precision=fp16``, torch >= :data:`MPS_FP16_MIN_TORCH`, with a grad scaler)
    is offered but has not been shown to train to fp32's quality here (no Mac was at hand;
    docs/MAC.md says how to compare), so it is never the default.
    """
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext, None
    if precision not in ("bf16", "fp16"):
        raise ConfigError(f"trainer.precision={precision!r}; use auto, fp32, bf16 or fp16")
    if device.type == "mps" and precision == "fp16":
        if torch_version() < MPS_FP16_MIN_TORCH:
            raise ConfigError(f"trainer.precision=fp16 on MPS needs torch >= "
                              f"{'.'.join(map(str, MPS_FP16_MIN_TORCH))} (installed "
                              f"{torch.__version__}); use trainer.precision=fp32 or upgrade torch")
        log.warning("trainer.precision=fp16 on MPS: not validated against fp32 training on this "
                    "project; compare the validation PSNR with an fp32 run (docs/MAC.md)")
        return (lambda: torch.autocast("mps", dtype=torch.float16)), torch.amp.GradScaler("mps")
    if device.type != "cuda":
        hint = "fp16 (torch >= 2.8), fp32 or auto" if device.type == "mps" else "fp32 or auto"
        raise ConfigError(f"trainer.precision={precision} needs CUDA (device is {device}); use {hint}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


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
    s.autocast, s.scaler = _autocast(device, t.precision)
    s.optimizer = torch.optim.AdamW(s.trainable.values(), lr=t.optim.lr, betas=tuple(t.optim.betas),
                                    weight_decay=t.optim.weight_decay)
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
    s.clock = _RunClock(t, time.perf_counter(), fitted=s.max_steps != t.max_steps)
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
        _check_init(t)


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
        if _worker_start_method() == "fork":
            train_set.preload()  # decode once in this process; forked workers share the cache
        else:  # a filled cache would be pickled into every worker: let each fill its own
            log.info("DataLoader workers start by %s: each of the %d workers decodes and caches "
                     "its own copy of the training images", _worker_start_method(), t.num_workers)
    criterion = build_loss(loss_cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s %s: %.3f M parameters; train set %d items, val set %d images",
             model_name, model_kwargs, n_params / 1e6, len(train_set), len(val_set))
    if t.init_from and not t.resume and t.init_weights:
        _load_init(model, t)
    trainable = _apply_freeze(model, t.freeze)
    return TrainState(t=t, device=device, dist_info=dist_info, model=model, model_name=model_name,
                      model_kwargs=dict(model_kwargs), trainable=trainable, train_set=train_set,
                      val_set=val_set, criterion=criterion, full_config=full_config,
                      run_dir=run_dir, log_dir=log_dir)


def _worker_start_method() -> str:
    """How DataLoader workers start: the start method set for this process, else the
    platform's default (``fork`` on Linux before Python 3.14, ``spawn`` on macOS). Only
    ``fork`` shares the parent's memory (copy-on-write) with the workers."""
    method = multiprocessing.get_start_method(allow_none=True)
    return method or multiprocessing.get_all_start_methods()[0]


def _resume(s: TrainState) -> None:
    """Continue from ``last.pt``: weights, optimizer, schedule, EMA, scaler, hooks, RNG."""
    t = s.t
    if not s.last_path.is_file():
        raise CheckpointError(f"trainer.resume=true but {s.last_path} does not exist; "
                              "start without resume (or check trainer.run_name)")
    ckpt = load_checkpoint(s.last_path)
    s.model.load_state_dict(ckpt["state_dict"])
    state = ckpt["train_state"] or {}
    s.optimizer.load_state_dict(state["optimizer"])
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
            with s.autocast():
                pred = s.ddp_model(cfa)
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


def _check_init(t: TrainerConfig) -> Path:
    path = Path(t.init_from or "")
    if not path.is_file():
        hint = f" It is produced by `{t.init_from_hint}`." if t.init_from_hint else ""
        raise CheckpointError(f"trainer.init_from={t.init_from} does not exist: this is a fine-tune "
                              f"and needs its starting checkpoint.{hint} Or pass trainer.init_from=PATH.")
    return path


def _load_init(model: nn.Module, t: TrainerConfig) -> None:
    path = _check_init(t)
    ckpt = load_checkpoint(path)
    state = ckpt.get("ema_state_dict") or ckpt["state_dict"]
    try:
        result = model.load_state_dict(state, strict=not t.init_partial)
    except RuntimeError as exc:
        raise CheckpointError(f"trainer.init_from={path} does not fit the configured model "
                              f"({ckpt['model']['name']} {ckpt['model']['kwargs']} in the checkpoint): "
                              f"{' '.join(str(exc).split())[:400]}. Use the same model=... as the run "
                              "that produced it.") from None
    if t.init_partial:
        if result.unexpected_keys:  # the checkpoint has weights the model has no place for
            raise CheckpointError(
                f"trainer.init_from={path}: trainer.init_partial=true lets the model have new "
                f"parameters, but the checkpoint has {len(result.unexpected_keys)} tensors the "
                f"model lacks (first: {result.unexpected_keys[0]}); the model must contain the "
                "checkpoint's network")
        log.info("initialised from %s (step %s); %d new tensors keep their initialisation: %s",
                 path, ckpt.get("step"), len(result.missing_keys),
                 ", ".join(result.missing_keys[:6]) + (" ..." if len(result.missing_keys) > 6 else ""))
        return
    log.info("initialised from %s (step %s)", path, ckpt.get("step"))


def _apply_freeze(model: nn.Module, prefixes: list[str]) -> dict[str, nn.Parameter]:
    """Freeze parameters whose names start with any prefix; return the trainable ones."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in names):
            raise ConfigError(f"trainer.freeze: no parameter name starts with {prefix!r}; "
                              f"top-level parts are {sorted({n.split('.')[0] for n in names})}")
    trainable = {}
    for n, p in model.named_parameters():
        frozen = any(n.startswith(prefix) for prefix in prefixes)
        p.requires_grad_(not frozen)
        if not frozen:
            trainable[n] = p
    if prefixes:
        log.info("froze %d of %d parameter tensors (%s)", len(names) - len(trainable), len(names), prefixes)
    if not trainable:
        raise ConfigError("trainer.freeze froze every parameter; nothing left to train")
    return trainable


def trainer_config_from(mapping: Mapping[str, Any]) -> TrainerConfig:
    """Build a :class:`TrainerConfig` from a plain mapping, validating keys and types."""
    from omegaconf import OmegaConf

    from demosaic.schema import merge_into

    return OmegaConf.to_object(merge_into(TrainerConfig, dict(mapping), "trainer"))  # type: ignore[return-value]


__all__ = ["train", "TrainResult", "TrainingDiverged", "validate", "select_device", "lr_factor",
           "StepIndexedDataset", "GlobalIndexSampler", "EMA", "EWCPenalty", "trainer_config_from"]
