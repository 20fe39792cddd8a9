"""Where and how a training run executes: device, seeds, the distributed group, numeric
precision and how DataLoader workers start.

- :func:`select_device`: ``trainer.device`` (``auto``: CUDA, then MPS, then CPU) through the
  one device choice of every command, :func:`demosaic.devices.resolve_device`;
- :func:`init_distributed`: joins a DistributedDataParallel group when launched by
  ``torchrun`` (CUDA over NCCL, CPU over gloo; never MPS, which c10d has no backend for);
- :func:`autocast_for`: ``trainer.precision`` -> autocast context factory and grad scaler;
- :func:`make_optimizer`: AdamW, as one fused kernel where the device has it;
- :func:`worker_start_method`: ``fork`` shares the decoded image cache with DataLoader
  workers, ``spawn``/``forkserver`` would pickle it into each (the loop preloads only under
  ``fork``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import random
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from demosaic.devices import resolve_device, torch_version
from demosaic.errors import ConfigError
from demosaic.training.data_order import DistInfo

log = logging.getLogger(__name__)


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


#: Oldest torch with fp16 training on MPS: ``torch.autocast("mps")`` came in 2.5, the MPS
#: kernels of ``GradScaler`` and its float32-only unscale in 2.8 (pytorch/pytorch#150255,
#: #142397).
MPS_FP16_MIN_TORCH = (2, 8)


def autocast_for(device: torch.device, precision: str) -> tuple[Any, torch.amp.GradScaler | None]:
    """Autocast context factory and grad scaler for the requested precision.

    ``auto`` is bf16 (fp16 without bf16) on CUDA, bf16 on a CPU that computes it natively
    (:func:`cpu_has_bf16`: 1.33x the fp32 steps of the default U-Net in the same minutes on
    this project's 2-core EPYC, the same validation PSNR at the same step; docs/BENCHMARKS.md,
    "Training throughput"), fp32 elsewhere, MPS included. fp16 on
    MPS (``trainer.precision=fp16``, torch >= :data:`MPS_FP16_MIN_TORCH`, with a grad scaler)
    is offered but has not been shown to train to fp32's quality here (no Mac was at hand;
    docs/MAC.md says how to compare), so it is never the default.
    """
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
        log.info("trainer.precision=auto: %s on %s", precision, device.type)
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
    if device.type == "cpu" and precision == "bf16":
        if not cpu_has_bf16():
            log.warning("trainer.precision=bf16 on a CPU without native bfloat16 (AVX512-BF16 or "
                        "AMX): it runs, emulated, and is likely slower than fp32")
        return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), None
    if device.type != "cuda":
        hint = ("fp16 (torch >= 2.8), fp32 or auto" if device.type == "mps"
                else "bf16 (autocast on the CPU), fp32 or auto")
        raise ConfigError(f"trainer.precision={precision} needs CUDA (device is {device}); use {hint}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (x86 ``avx512_bf16`` or ``amx_bf16`` in
    /proc/cpuinfo; Arm ``bf16``), where oneDNN's bf16 convolutions beat fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


#: First torch with a fused AdamW kernel on the CPU (CUDA has had one since 2.0).
FUSED_ADAMW_CPU_MIN_TORCH = (2, 4)


def make_optimizer(params: list[torch.nn.Parameter], device: torch.device, *, lr: float,
                   betas: tuple[float, float], weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``params`` (all on ``device``): the fused kernel on CUDA and on the CPU (torch
    >= 2.4), one pass over every parameter instead of about ten small ops per tensor
    (docs/BENCHMARKS.md, "Training throughput"); elsewhere (MPS, older torch) the default
    implementation. Same update rule either way, to float rounding."""
    fused = device.type == "cuda" or (device.type == "cpu"
                                      and torch_version() >= FUSED_ADAMW_CPU_MIN_TORCH)
    kwargs: dict[str, Any] = {"fused": True} if fused else {}
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, **kwargs)


def worker_start_method() -> str:
    """How DataLoader workers start: the start method set for this process, else the
    platform's default (``fork`` on Linux before Python 3.14, ``spawn`` on macOS). Only
    ``fork`` shares the parent's memory (copy-on-write) with the workers."""
    method = multiprocessing.get_start_method(allow_none=True)
    return method or multiprocessing.get_all_start_methods()[0]


__all__ = ["cpu_has_bf16", "make_optimizer", "select_device", "seed_everything", "init_distributed", "MPS_FP16_MIN_TORCH",
           "autocast_for", "worker_start_method"]
