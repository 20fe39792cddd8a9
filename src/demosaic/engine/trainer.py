"""The training loop: one plain function, :func:`train`, readable top to bottom.

Inputs are plain Python values (the CLI resolves the Hydra config and calls :func:`train`).
What it does, in order:

1. set up the run folder ``<checkpoint_dir>/<run_name>/``, the text log
   ``<log_dir>/train_<run_name>.log``, a JSONL metrics file and TensorBoard;
2. seed every RNG, pick the device (``auto``: CUDA, then MPS, then CPU), join a
   DistributedDataParallel group when launched by ``torchrun``;
3. build model, datasets and loss from their registries; load ``init_from`` weights (unless
   ``init_weights`` is false), freeze named parts, estimate the EWC Fisher diagonal; load a
   distillation teacher (``distill.teacher``) and a patch discriminator
   (``adversarial.weight`` > 0, with its own Adam optimizer) when configured;
4. AdamW + linear warmup + cosine decay, gradient clipping, optional EMA, autocast on CUDA;
   with a curriculum (``curriculum.start_fraction`` < 1) each batch is cropped, at a CFA-period
   offset, to a side growing linearly to the full patch over ``curriculum.ramp_steps``;
5. every ``val_every`` steps validate on full images (PSNR, SSIM, periodic-artifact score of
   the error) and write ``best.pt``; every ``save_every`` steps write ``last.pt`` (with
   optimizer, schedule, discriminator and RNG state, so a resumed run continues exactly);
   every ``snapshot_every`` steps save a PNG of a fixed validation crop and log its
   periodic-artifact score (``snapshot/periodic_artifact``), which shows when a CFA-period
   grid appears;
6. a non-finite loss stops the run (``TrainingDiverged``) without touching the last good
   checkpoint (on CUDA the check runs at every log, validation and save step rather than
   every step, so the GPU is not synchronised each step); Ctrl-C writes ``last.pt`` and
   returns cleanly; ``max_minutes`` stops the run cleanly when its time is spent, and with
   ``fit_steps_to_time`` the schedule is shortened after the warm-up so that it ends in time.

Data order is a pure function of ``(seed, global sample index)`` (see
:class:`StepIndexedDataset`), which is what makes resume exact, with or without workers.
With ``device_batches`` the batches are synthesised on the training device instead
(:mod:`demosaic.data.device_batches`): same distributions, no DataLoader, and a resumed run
draws a fresh (seeded) stream rather than the exact continuation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from demosaic.engine.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from demosaic.engine.config import TrainerConfig
from demosaic.errors import CheckpointError, ConfigError, DemosaicError

log = logging.getLogger(__name__)


class TrainingDiverged(DemosaicError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""


# --------------------------------------------------------------------------------------
# Devices, seeds, distributed
# --------------------------------------------------------------------------------------


def select_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={name} but CUDA is not available; use trainer.device=auto or cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"trainer.device={name} but MPS is not available; use trainer.device=auto or cpu")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size())
    log.info("distributed: rank %d of %d (%s)", info.rank, info.world_size, dist.get_backend())
    return info


# --------------------------------------------------------------------------------------
# Data order
# --------------------------------------------------------------------------------------


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


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warmup from 0 over ``warmup_steps``, then cosine decay to ``min_lr_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``shadow = decay * shadow + (1 - decay) * current`` for floating-point tensors (one
        fused multi-tensor kernel where the device has it), a copy for the others."""
        state = model.state_dict()
        floats = [k for k, v in state.items() if v.dtype.is_floating_point]
        torch._foreach_lerp_([self.shadow[k] for k in floats], [state[k].detach() for k in floats],
                             1.0 - self.decay)
        for k, v in state.items():
            if not v.dtype.is_floating_point:
                self.shadow[k].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)


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


def _autocast(device: torch.device, precision: str) -> tuple[Any, torch.amp.GradScaler | None]:
    """Autocast context factory and grad scaler for the requested precision."""
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return contextlib.nullcontext, None
    if precision not in ("bf16", "fp16"):
        raise ConfigError(f"trainer.precision={precision!r}; use auto, fp32, bf16 or fp16")
    if device.type != "cuda":
        raise ConfigError(f"trainer.precision={precision} needs CUDA (device is {device}); use fp32 or auto")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def _setup_file_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("demosaic").addHandler(handler)
    return handler


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "python": list(random.getstate()[1]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    from demosaic import tracking

    seed_everything(t.seed + dist_info.rank)
    if t.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest kernels once
    log.info("run %s on %s (precision %s, world %d)", t.run_name, device, t.precision, dist_info.world_size)

    if t.max_minutes < 0:
        raise ConfigError(f"trainer.max_minutes={t.max_minutes}: use minutes > 0, or 0 for no limit")
    if t.fit_steps_to_time and t.max_minutes <= 0:
        raise ConfigError("trainer.fit_steps_to_time=true needs trainer.max_minutes > 0")
    if t.init_from and not t.resume:
        _check_init(t)  # fail at once, before any data is read
    # --- what to train -------------------------------------------------------------
    model_name, model_kwargs = MODELS.validate(model_cfg, where="model")
    torch.manual_seed(t.seed)  # identical initial weights on every rank
    model = MODELS.build(model_cfg, where="model").to(device)
    pattern = model.pattern.name
    train_set = DATASETS.build(dataset_cfg["train"], where="dataset.train", pattern=pattern,
                               split="train", seed=t.seed)
    val_set = DATASETS.build(dataset_cfg["val"], where="dataset.val", pattern=pattern, split="val",
                             seed=t.seed)
    if t.num_workers > 0 and hasattr(train_set, "preload"):
        train_set.preload()  # decode once in this process; forked workers share the cache
    criterion = build_loss(loss_cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s %s: %.3f M parameters; train set %d items, val set %d images",
             model_name, model_kwargs, n_params / 1e6, len(train_set), len(val_set))

    if t.init_from and not t.resume and t.init_weights:
        _load_init(model, t)
    trainable = _apply_freeze(model, t.freeze)
    teacher = None
    if t.distill.teacher:
        from demosaic.research.distill import load_teacher

        if t.distill.weight < 0:
            raise ConfigError(f"trainer.distill.weight={t.distill.weight}: must be >= 0")
        teacher = load_teacher(t.distill.teacher, pattern, device)
    disc, d_opt = None, None
    if t.adversarial.weight < 0:
        raise ConfigError(f"trainer.adversarial.weight={t.adversarial.weight}: must be >= 0 (0 disables)")
    if t.adversarial.weight > 0:
        from demosaic.research.adversarial import PatchDiscriminator

        torch.manual_seed(t.seed + 7)
        disc = PatchDiscriminator(t.adversarial.channels).to(device)
        d_opt = torch.optim.Adam(disc.parameters(), lr=t.adversarial.lr, betas=(0.5, 0.999))
        log.info("adversarial term: weight %g, patch discriminator %d parameters",
                 t.adversarial.weight, sum(q.numel() for q in disc.parameters()))
    if t.curriculum.start_fraction < 1.0:
        from demosaic.research.curriculum import curriculum_size

        curriculum_size(0, 96, t.curriculum.start_fraction, t.curriculum.ramp_steps, 6)  # validates

    # --- how to train --------------------------------------------------------------
    autocast, scaler = _autocast(device, t.precision)
    optimizer = torch.optim.AdamW(trainable.values(), lr=t.optim.lr, betas=tuple(t.optim.betas),
                                  weight_decay=t.optim.weight_decay)
    plan = {"max_steps": t.max_steps}  # fit_steps_to_time may shorten it after the warm-up
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, t.optim.warmup_steps, plan["max_steps"], t.optim.min_lr_ratio))
    ema = EMA(model, t.ema_decay) if t.ema_decay > 0 else None
    step, best = 0, -math.inf

    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if t.resume:
        if not last_path.is_file():
            raise CheckpointError(f"trainer.resume=true but {last_path} does not exist; "
                                  "start without resume (or check trainer.run_name)")
        ckpt = load_checkpoint(last_path)
        model.load_state_dict(ckpt["state_dict"])
        state = ckpt["train_state"] or {}
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None and ckpt.get("ema_state_dict"):
            ema.load_state_dict(ckpt["ema_state_dict"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if disc is not None and state.get("discriminator"):
            disc.load_state_dict(state["discriminator"])
            d_opt.load_state_dict(state["d_optimizer"])
        _set_rng_state(state["rng"])
        step, best = int(ckpt["step"]), float(state.get("best", -math.inf))
        log.info("resumed %s at step %d (best val PSNR %.3f dB)", last_path, step, best)
        fitted = (ckpt.get("config") or {}).get("trainer", {}).get("max_steps")
        if t.fit_steps_to_time and fitted and int(fitted) < plan["max_steps"]:
            # the schedule was fitted to the first invocation's time: keep its length
            plan["max_steps"] = int(fitted)
            full_config.setdefault("trainer", {})["max_steps"] = int(fitted)
            log.info("fit_steps_to_time: keeping the fitted max_steps %d of %s", int(fitted), last_path)

    ewc = _make_ewc(model, trainable, train_set, criterion, t, device) if t.ewc_weight > 0 else None

    ddp_model: nn.Module = model
    if dist_info.world_size > 1:
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    loader: Any
    if t.device_batches:
        from demosaic.data.device_batches import DeviceSyntheticBatches

        loader = DeviceSyntheticBatches(train_set, t.batch_size, device, seed=t.seed,
                                        start_step=step, rank=dist_info.rank)
    else:
        loader = DataLoader(
            StepIndexedDataset(train_set, t.seed), batch_size=t.batch_size,
            sampler=GlobalIndexSampler(step, t.batch_size, dist_info), num_workers=t.num_workers,
            pin_memory=device.type == "cuda", drop_last=True, persistent_workers=False,
            prefetch_factor=4 if t.num_workers > 0 else None,
        )
    clock = _RunClock(t, time.perf_counter(), fitted=plan["max_steps"] != t.max_steps)

    # --- outputs -------------------------------------------------------------------
    writer = None
    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_config(run_dir / "config.yaml", full_config)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(log_dir / "tensorboard" / t.run_name), purge_step=step)
        _track(tracking.start_run, t.run_name, config=full_config, ckpt_dir=str(run_dir),
               log_path=str(log_dir / f"train_{t.run_name}.log"), runs_dir=log_dir / "runs")
    metrics_file = log_dir / f"metrics_{t.run_name}.jsonl"
    snapshot = _fixed_crop(val_set, t.snapshot_crop, model.pattern.period) if dist_info.is_main else None

    def save_last() -> None:
        if not dist_info.is_main:
            return
        train_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                       "rng": _rng_state(), "best": best,
                       "scaler": scaler.state_dict() if scaler is not None else None}
        if disc is not None:
            train_state.update(discriminator=disc.state_dict(), d_optimizer=d_opt.state_dict())
        save_checkpoint(make_checkpoint(model, model_name, model_kwargs, cfa=pattern, config=full_config,
                                        step=step, metrics={"best_val_psnr": best}, run_name=t.run_name,
                                        ema_state_dict=ema.state_dict() if ema else None,
                                        train_state=train_state), last_path)

    from tqdm import tqdm

    bar = tqdm(total=plan["max_steps"], initial=step, disable=not dist_info.is_main, dynamic_ncols=True,
               desc=t.run_name, unit="step")
    interrupted = False
    last_metrics: dict[str, float] = {}
    window_t, window_n = time.perf_counter(), 0
    it = iter(loader)
    # on CUDA a per-step `if not isfinite(loss)` would synchronise the GPU every step: keep a
    # device-side flag and read it at the steps where something is logged or saved
    sync_every_step = device.type != "cuda"
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    model.train()
    try:
        while step < plan["max_steps"]:
            batch = next(it)
            cfa = batch["cfa"].to(device, non_blocking=True)
            target = batch["target"].to(device, non_blocking=True)
            if t.curriculum.start_fraction < 1.0:
                cfa, target = _curriculum_crop(cfa, target, model, t, step)
            with autocast():
                pred = ddp_model(cfa)
            pred = pred.float()
            if teacher is not None:
                from demosaic.research.distill import distill_loss, teacher_output

                with autocast():
                    t_out = teacher_output(teacher, cfa)
                if t.distill.as_target:
                    loss, terms = criterion(pred, t_out)
                else:
                    loss, terms = criterion(pred, target)
                    d_term = distill_loss(pred, t_out)
                    terms = {**terms, "distill": d_term.detach()}
                    loss = loss + t.distill.weight * d_term
            else:
                loss, terms = criterion(pred, target)
            adv_on = disc is not None and step >= t.adversarial.start_step
            if adv_on:
                from demosaic.losses import log_encode
                from demosaic.research.adversarial import generator_loss

                g_adv = generator_loss(disc(log_encode(pred)))
                terms = {**terms, "adversarial": g_adv.detach()}
                loss = loss + t.adversarial.weight * g_adv
            if ewc is not None:
                penalty = ewc(trainable)
                terms = {**terms, "ewc": penalty.detach()}
                loss = loss + t.ewc_weight * penalty
            nonfinite |= ~torch.isfinite(loss.detach())
            due = clock.due(step + 1, plan["max_steps"])  # covers every step a stop can happen at
            if (sync_every_step or due) and bool(nonfinite):
                bad = {k: float(v) for k, v in terms.items()}
                when = f"at step {step}" if sync_every_step else f"by step {step}"
                _track(tracking.fail_run, t.run_name, f"non-finite loss {when}: {bad}",
                       runs_dir=log_dir / "runs")
                raise TrainingDiverged(
                    f"run {t.run_name}: loss is {loss.item()} {when} (terms {bad}); stopped. "
                    f"The last good checkpoint {last_path} was kept. Lower trainer.optim.lr, "
                    "raise trainer.optim.warmup_steps or check the data for NaN/inf.")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if t.optim.grad_clip > 0:
                nn.utils.clip_grad_norm_(trainable.values(), t.optim.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            if disc is not None:
                terms = {**terms, "discriminator": _discriminator_step(disc, d_opt, pred, target)}
            if ema is not None:
                ema.update(model)
            step += 1
            window_n += cfa.shape[0] * dist_info.world_size
            bar.update(1)
            refit = clock.refit(step, plan["max_steps"], dist_info)
            if refit is not None:
                plan["max_steps"] = refit
                bar.total = refit
                full_config.setdefault("trainer", {})["max_steps"] = refit
                if dist_info.is_main:
                    _write_config(run_dir / "config.yaml", full_config)
            if clock.out_of_time(step, dist_info):
                log.warning("trainer.max_minutes=%g spent at step %d of %d: stopping here",
                            t.max_minutes, step, plan["max_steps"])
                plan["max_steps"] = step
                full_config.setdefault("trainer", {})["stopped_by_time_at"] = step

            if dist_info.is_main and (step % t.log_every == 0 or step == plan["max_steps"]):
                now = time.perf_counter()
                rate = window_n / max(now - window_t, 1e-9)
                window_t, window_n = now, 0
                scalars = {f"loss/{k}": float(v) for k, v in terms.items()}
                scalars.update({"loss/total": loss.item(), "lr": scheduler.get_last_lr()[0],
                                "throughput/samples_per_s": rate})
                _log_scalars(writer, metrics_file, step, scalars)
                bar.set_postfix(loss=f"{loss.item():.4g}", sps=f"{rate:.1f}")
                log.info("step %6d  loss %.5f  %s  lr %.2e  %.1f samples/s", step, loss.item(),
                         " ".join(f"{k} {float(v):.4f}" for k, v in terms.items()),
                         scheduler.get_last_lr()[0], rate)

            if step % t.val_every == 0 or step == plan["max_steps"]:
                if dist_info.is_main:
                    eval_model = _eval_model(model, ema)  # one EMA copy for all of validation
                    last_metrics = validate(eval_model, val_set, device, t.val_max_images)
                    _log_scalars(writer, metrics_file, step, {f"val/{k}": v for k, v in last_metrics.items()})
                    log.info("step %6d  validation %s", step,
                             " ".join(f"{k} {v:.4f}" for k, v in last_metrics.items()))
                    _log_images(writer, eval_model, val_set, device, step)
                    if last_metrics["psnr"] > best:
                        best = last_metrics["psnr"]
                        save_checkpoint(make_checkpoint(
                            eval_model, model_name, model_kwargs, cfa=pattern,
                            config=full_config, step=step, metrics=last_metrics, run_name=t.run_name),
                            best_path)
                model.train()
            if dist_info.is_main and snapshot is not None and (step % t.snapshot_every == 0 or step == plan["max_steps"]):
                score = _save_snapshot(_eval_model(model, ema), snapshot, device,
                                       log_dir / "snapshots" / t.run_name / f"step_{step:07d}.png")
                _log_scalars(writer, metrics_file, step, {"snapshot/periodic_artifact": score})
                model.train()
            if step % t.save_every == 0 or step == plan["max_steps"]:
                save_last()
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted at step %d: saving %s", step, last_path)
        save_last()
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        del it

    if dist_info.is_main and not interrupted:
        _track(tracking.finish_run, t.run_name, metrics={**last_metrics, "best_psnr": best},
               runs_dir=log_dir / "runs")
    if dist_info.world_size > 1:
        dist.barrier()
    return TrainResult(t.run_name, step, best, best_path if best_path.exists() else None,
                       last_path if last_path.exists() else None, interrupted, last_metrics)


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


def _make_ewc(model, trainable, train_set, criterion, t: TrainerConfig, device) -> EWCPenalty:
    fisher = {k: torch.zeros_like(p) for k, p in trainable.items()}
    loader = DataLoader(StepIndexedDataset(train_set, t.seed + 1), batch_size=t.batch_size,
                        sampler=GlobalIndexSampler(0, t.batch_size, DistInfo()), num_workers=0)
    it = iter(loader)
    model.train()
    for _ in range(t.ewc_batches):
        batch = next(it)
        model.zero_grad(set_to_none=True)
        loss, _ = criterion(model(batch["cfa"].to(device)), batch["target"].to(device))
        loss.backward()
        for k, p in trainable.items():
            if p.grad is not None:
                fisher[k] += p.grad.detach() ** 2 / t.ewc_batches
    model.zero_grad(set_to_none=True)
    log.info("EWC: Fisher diagonal from %d batches, weight %g", t.ewc_batches, t.ewc_weight)
    return EWCPenalty(trainable, fisher)


def _curriculum_crop(cfa: torch.Tensor, target: torch.Tensor, model: nn.Module, t: TrainerConfig,
                     step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop the batch to the curriculum's size at ``step`` (see :mod:`demosaic.research.curriculum`)."""
    from demosaic.research.curriculum import crop_batch, curriculum_size

    period = model.pattern.period
    multiple = math.lcm(period, int(getattr(model, "size_multiple", period)))
    full = min(cfa.shape[-2:])
    size = curriculum_size(step, full, t.curriculum.start_fraction, t.curriculum.ramp_steps, multiple)
    return crop_batch(cfa, target, size, period, t.seed, step)


def _discriminator_step(disc: nn.Module, d_opt: torch.optim.Optimizer, pred: torch.Tensor,
                        target: torch.Tensor) -> torch.Tensor:
    """One hinge-loss update of the patch discriminator; returns its loss, detached."""
    from demosaic.losses import log_encode
    from demosaic.research.adversarial import discriminator_loss

    d_opt.zero_grad(set_to_none=True)
    d_loss = discriminator_loss(disc(log_encode(target.float())), disc(log_encode(pred.detach())))
    d_loss.backward()
    d_opt.step()
    return d_loss.detach()


def _eval_model(model: nn.Module, ema: EMA | None) -> nn.Module:
    """The model to validate/save as best: a copy with EMA weights when EMA is on."""
    if ema is None:
        return model
    import copy

    shadow = copy.deepcopy(model)
    shadow.load_state_dict(ema.state_dict())
    return shadow


@torch.no_grad()
def validate(model: nn.Module, val_set: Dataset, device: torch.device, max_images: int = 0
             ) -> dict[str, float]:
    """Mean PSNR (linear, 6 px border), SSIM and periodic-artifact score of the error
    (:func:`demosaic.metrics.periodic_artifact_score` at the CFA period; NaN for images too
    small to measure it) of ``model`` over full validation images."""
    from demosaic import metrics

    model.eval()
    period = model.pattern.period
    n = len(val_set) if max_images <= 0 else min(max_images, len(val_set))
    psnrs, ssims, periodic = [], [], []
    for i in range(n):
        item = val_set[i]
        pred = model.demosaic(item["cfa"][None].to(device))[0].float().cpu()
        psnrs.append(float(metrics.psnr(pred, item["target"], border=6)))
        ssims.append(float(metrics.ssim(pred, item["target"], border=6)))
        err = (pred - item["target"])[..., 6:-6, 6:-6]
        periodic.append(float(metrics.periodic_artifact_score(err, period=period)))
    finite = [v for v in periodic if math.isfinite(v)]
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
            "periodic_artifact": float(np.mean(finite)) if finite else math.nan}


def _fixed_crop(val_set: Dataset, size: int, period: int) -> dict[str, torch.Tensor] | None:
    if len(val_set) == 0:
        return None
    item = val_set[0]
    h, w = item["cfa"].shape[-2:]
    s = max(period, min(size, h, w) // period * period)
    y0 = ((h - s) // 2) // period * period
    x0 = ((w - s) // 2) // period * period
    return {k: item[k][..., y0:y0 + s, x0:x0 + s] for k in ("cfa", "target")}


@torch.no_grad()
def _save_snapshot(model: nn.Module, crop: Mapping[str, torch.Tensor], device, path: Path) -> float:
    """Write ``output | truth`` of the fixed crop as PNG; return the periodic-artifact score
    of its error (NaN for crops under 4 periods)."""
    from demosaic import metrics
    from demosaic.io.images import write_png

    model.eval()
    out = model.demosaic(crop["cfa"][None].to(device))[0].float().cpu()
    write_png(path, torch.cat([out, crop["target"]], dim=-1).numpy())
    return float(metrics.periodic_artifact_score(out - crop["target"], period=model.pattern.period))


def _display(x: torch.Tensor) -> torch.Tensor:
    from demosaic.color import linear_to_srgb

    return linear_to_srgb(x.clamp(0, 1))


@torch.no_grad()
def _log_images(writer, model: nn.Module, val_set: Dataset, device, step: int) -> None:
    """TensorBoard grid of mosaic | output | target | 4x error for the first validation image."""
    if writer is None or len(val_set) == 0:
        return
    from demosaic.cfa import masked_mosaic

    item = val_set[0]
    out = model.demosaic(item["cfa"][None].to(device))[0].float().cpu()
    mosaic_rgb = masked_mosaic(item["cfa"], model.pattern)
    err = (out - item["target"]).abs() * 4
    grid = torch.cat([_display(mosaic_rgb), _display(out), _display(item["target"]), err.clamp(0, 1)], dim=-1)
    writer.add_image("val/mosaic|output|target|error_x4", grid, step)


def _log_scalars(writer, metrics_file: Path, step: int, scalars: Mapping[str, float]) -> None:
    if writer is not None:
        for k, v in scalars.items():
            writer.add_scalar(k, v, step)
    metrics_file.parent.mkdir(parents=True, exist_ok=True)
    with metrics_file.open("a") as fh:
        fh.write(json.dumps({"step": step, **{k: float(v) for k, v in scalars.items()}}) + "\n")


def _write_config(path: Path, config: Mapping[str, Any]) -> None:
    from omegaconf import OmegaConf

    from demosaic.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(dict(config))))


def trainer_config_from(mapping: Mapping[str, Any]) -> TrainerConfig:
    """Build a :class:`TrainerConfig` from a plain mapping, validating keys and types."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainerConfig), dict(mapping))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"trainer.{getattr(exc, 'full_key', '')}: {str(exc).splitlines()[0]}") from None
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


__all__ = ["train", "TrainResult", "TrainingDiverged", "validate", "select_device", "lr_factor",
           "StepIndexedDataset", "GlobalIndexSampler", "EMA", "EWCPenalty", "trainer_config_from"]
