"""Choosing the torch device: one function for training, evaluation and inference."""

from __future__ import annotations

import logging
import os

import torch

from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device | None, key: str = "device") -> torch.device:
    """The device to run on.

    Args:
        device: ``"auto"`` or ``None`` (CUDA, then MPS, then CPU; under ``torchrun`` the CUDA
            device of ``LOCAL_RANK``), or an explicit ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
            ``"mps"`` ...
        key: The setting's name for error messages (``"trainer.device"``, ``"--device"``).

    Raises:
        ConfigError: not a device name, or a device this machine does not have.
    """
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            rank = os.environ.get("LOCAL_RANK")
            return torch.device("cuda", int(rank)) if rank is not None else torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"{key}={device!r} is not a torch device ({exc}); use auto, cpu, "
                          "cuda, cuda:0 or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={device} but CUDA is not available; use auto or cpu")
    if dev.type == "mps" and not _mps_available():
        raise ConfigError(f"{key}={device} but MPS is not available; use auto or cpu")
    return dev


__all__ = ["resolve_device"]
