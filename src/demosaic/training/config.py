"""Structured-config schema of the training job (plain dataclasses: no Hydra here).

The CLI registers the schema in Hydra's ConfigStore (``train_schema``,
:func:`demosaic.cli.train.register_schemas`) and ``configs/train.yaml`` names it first in its
defaults, so the composed config is in struct mode: a misspelt
top-level or trainer key, or a value of the wrong type, fails at composition with a message
naming the key. The ``dataset``, ``model`` and ``loss`` groups are free-form here and are
validated key by key against their registered dataclasses (:mod:`demosaic.registry`) by
:func:`validate_components` before anything is built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

log = logging.getLogger(__name__)


@dataclass
class OptimConfig:
    """AdamW with linear warmup and cosine decay to ``lr * min_lr_ratio``."""

    lr: float = 2e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0  # max global grad norm; 0 disables


@dataclass
class DistillConfig:
    """Knowledge distillation from a teacher checkpoint (``teacher`` null disables).

    The teacher (any model of the same CFA, typically larger) runs in eval mode on each
    batch's mosaic. ``as_target: false`` adds ``weight * L1(student, teacher)`` to the loss
    (logged as ``loss/distill``); ``as_target: true`` measures the configured loss against the
    teacher's output instead of the ground truth (no ground truth needed in principle).
    """

    teacher: Optional[str] = None
    weight: float = 1.0
    as_target: bool = False


@dataclass
class AdversarialConfig:
    """Optional adversarial texture term: a small patch discriminator (weight 0 disables).

    The generator adds ``weight * (-mean D(pred))`` (hinge GAN) from ``start_step`` on; the
    discriminator has its own Adam optimizer (``lr``, betas 0.5/0.999) and is updated once
    per step with the hinge loss on ``target`` (real) and ``pred`` (fake), both mu-law encoded
    (:func:`demosaic.losses.log_encode`) so highlights do not dominate.
    """

    weight: float = 0.0
    lr: float = 1.0e-4
    channels: int = 32
    start_step: int = 0


@dataclass
class CurriculumConfig:
    """Patch-size curriculum: training crops grow from ``start_fraction`` of the dataset's
    patch to the whole patch, linearly over ``ramp_steps`` (``start_fraction`` 1.0 disables).

    Each batch is cropped at an offset that is a multiple of the CFA period (the canonical
    phase is kept) chosen by a generator seeded with ``(seed, step)``, so resume is exact.
    """

    start_fraction: float = 1.0
    ramp_steps: int = 0


@dataclass
class TrainerConfig:
    """Everything about *how* to train (the *what* lives in dataset/model/loss)."""

    run_name: str = "default"
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    # auto (bf16/fp16 autocast on CUDA, fp32 elsewhere, MPS included) | fp32 | bf16 (CUDA) |
    # fp16 (CUDA; MPS with torch >= 2.8, opt-in and unvalidated: docs/MAC.md)
    precision: str = "auto"
    seed: int = 0
    deterministic: bool = False  # torch deterministic algorithms (slower on CUDA)
    max_steps: int = 1000
    # Wall-clock budget in minutes (0 = none) of this invocation (a resumed run gets a fresh
    # one): the run stops cleanly (validation, best.pt, last.pt) when it is spent, even before
    # max_steps.
    max_minutes: float = 0.0
    # With max_minutes: after the warm-up, measure the step rate and shorten max_steps (the
    # cosine schedule's length) so the schedule ends inside the budget. The fitted value is
    # written to the run's config; a resumed run keeps it.
    fit_steps_to_time: bool = False
    batch_size: int = 16
    num_workers: int = 2
    # Synthesise the training batches on the training device (synthetic datasets only): no
    # DataLoader, the decoded images live on the device (demosaic.data.device_batches).
    device_batches: bool = False
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema_decay: float = 0.0  # 0 disables EMA weights
    log_every: int = 20  # steps between scalar logs
    val_every: int = 250  # steps between validations (and best.pt updates)
    save_every: int = 250  # steps between last.pt saves
    snapshot_every: int = 250  # steps between PNG snapshots of a fixed validation crop
    snapshot_crop: int = 192  # px, side of that crop (rounded down to the CFA period)
    val_max_images: int = 0  # 0 = all images of the validation set
    resume: bool = False  # continue from <checkpoint_dir>/<run_name>/last.pt
    init_from: Optional[str] = None  # checkpoint to fine-tune from (weights only)
    init_from_hint: Optional[str] = None  # command that produces init_from, shown when missing
    init_weights: bool = True  # load init_from into the model; false: init_from is only a distill teacher
    # Allow the model to have parameters init_from lacks (a grown network: extra residual
    # blocks start near identity); every tensor of the checkpoint must still fit.
    init_partial: bool = False
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes to freeze
    ewc_weight: float = 0.0  # EWC penalty weight towards the init_from weights; 0 disables
    ewc_batches: int = 8  # batches used to estimate the diagonal Fisher information
    distill: DistillConfig = field(default_factory=DistillConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    checkpoint_dir: str = "checkpoints/experiments"
    log_dir: str = "logs"
    # modules imported before training so their hooks register (demosaic.training.hooks)
    plugins: list[str] = field(default_factory=lambda: ["demosaic.research.hooks"])


@dataclass
class TrainSchema:
    """Top level of ``configs/train.yaml``."""

    dataset: Any = None
    model: Any = None
    loss: Any = None
    teacher: Optional[str] = None  # convenience key of +experiment=distill (teacher=PATH)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def validate_components(cfg: dict[str, Any]) -> None:
    """Validate the free-form groups of a resolved training config against the registries.

    Raises:
        ConfigError: naming the first invalid key (``dataset.train.patch_sise`` ...).
    """
    from demosaic.data import DATASETS
    from demosaic.losses import build_loss
    from demosaic.models import MODELS

    from demosaic.errors import ConfigError

    for part in ("dataset", "model", "loss"):
        if not isinstance(cfg.get(part), dict):
            raise ConfigError(f"config group {part!r} is missing; pick one, e.g. {part}=...")
    MODELS.validate(cfg["model"], where="model")
    for split in ("train", "val"):
        if split not in cfg["dataset"]:
            raise ConfigError(f"dataset config needs a {split!r} mapping (dataset.{split}.name=...)")
        DATASETS.validate(cfg["dataset"][split], where=f"dataset.{split}")
    extra = set(cfg["dataset"]) - {"train", "val"}
    if extra:
        raise ConfigError(f"unknown key(s) dataset.{sorted(extra)[0]}; dataset holds only train and val")
    build_loss(cfg["loss"])
