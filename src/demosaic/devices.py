"""Choosing the torch device: one function for training, evaluation and inference.

Apple Silicon (MPS) notes, collected here because every command resolves its device here
(docs/MAC.md says what runs on a Mac and how to check it there):

- MPS needs torch >= :data:`MPS_MIN_TORCH` (2.5): ``torch.autocast("mps", ...)`` (``--amp``)
  exists only from 2.5, and torch 2.2 on macOS >= 14.4 wrote wrong values into slices of MPS
  tensors (pytorch/pytorch#122016), which the tile stitching and the phase padding do.
  ``pyproject.toml`` carries the same floor for Apple Silicon Macs; :func:`resolve_device`
  refuses an explicit ``mps`` below it (``auto`` then falls back to the CPU, with a warning).
- c10d has no MPS backend (pytorch/pytorch#173808): ``auto`` under ``torchrun`` never picks
  MPS, and :func:`demosaic.training.runtime.init_distributed` refuses an explicit one.
- Code that must keep to ops with MPS kernels asks :func:`uses_mps_kernels_only` (the tests
  switch it on for the CPU to run those paths there, ``tests/training/mps_guard.py``).
- Timings synchronise with :func:`synchronize` (CUDA and MPS run asynchronously).
"""

from __future__ import annotations

import logging
import os

import torch

from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

#: Oldest torch that runs this project on MPS (see the module docstring).
MPS_MIN_TORCH = (2, 5)

#: Tests set this to take the MPS code paths (only ops with MPS kernels) on the CPU, where a
#: dispatch-mode guard can watch them (``tests/training/mps_guard.py``). Never set in normal use.
_MPS_PATHS_ON_CPU = False


def torch_version() -> tuple[int, int]:
    """``(major, minor)`` of the installed torch (``"2.5.1+cpu"`` -> ``(2, 5)``)."""
    parts = torch.__version__.split("+")[0].split(".")
    return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)


def _version_text(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _distributed() -> bool:
    """Launched by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def check_mps_torch(key: str = "device") -> None:
    """Refuse MPS on a torch older than :data:`MPS_MIN_TORCH`.

    Raises:
        ConfigError: naming ``key``, the installed and the needed torch version.
    """
    if torch_version() < MPS_MIN_TORCH:
        raise ConfigError(
            f"{key}=mps needs torch >= {_version_text(MPS_MIN_TORCH)} (installed: "
            f"{torch.__version__}): older MPS backends lack float16 autocast and torch 2.2 on "
            f"macOS >= 14.4 writes wrong values into tensor slices (pytorch/pytorch#122016). "
            f"Upgrade torch (pip install 'torch>={_version_text(MPS_MIN_TORCH)}') or use {key}=cpu")


def _auto() -> torch.device:
    """``auto``: CUDA (under torchrun the ``LOCAL_RANK`` device), then MPS, then the CPU."""
    if torch.cuda.is_available():
        rank = os.environ.get("LOCAL_RANK")
        return torch.device("cuda", int(rank)) if rank is not None else torch.device("cuda")
    if _mps_available():
        if _distributed():
            log.info("device auto: MPS has no distributed backend; torchrun processes use the CPU")
        elif torch_version() < MPS_MIN_TORCH:
            log.warning("device auto: MPS needs torch >= %s (installed %s); using the CPU",
                        _version_text(MPS_MIN_TORCH), torch.__version__)
        else:
            return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None, key: str = "device") -> torch.device:
    """The device to run on.

    Args:
        device: ``"auto"`` or ``None`` (CUDA, then MPS, then CPU; under ``torchrun`` the CUDA
            device of ``LOCAL_RANK``, and never MPS), or an explicit ``"cpu"``, ``"cuda"``,
            ``"cuda:1"``, ``"mps"`` ...
        key: The setting's name for error messages (``"trainer.device"``, ``"--device"``).

    Raises:
        ConfigError: not a device name, a device this machine does not have, or MPS on a
            torch older than :data:`MPS_MIN_TORCH`.
    """
    if device is None or str(device) == "auto":
        return _auto()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"{key}={device!r} is not a torch device ({exc}); use auto, cpu, "
                          "cuda, cuda:0 or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key}={device} but CUDA is not available; use auto or cpu")
    if dev.type == "mps":
        if not _mps_available():
            raise ConfigError(f"{key}={device} but MPS is not available; use auto or cpu")
        check_mps_torch(key)
    return dev


def uses_mps_kernels_only(device: torch.device | str) -> bool:
    """Whether code running on ``device`` must keep to ops that have MPS kernels (and take
    the MPS-specific paths): true on MPS, and on the CPU while the tests emulate MPS."""
    kind = torch.device(device).type
    return kind == "mps" or (kind == "cpu" and _MPS_PATHS_ON_CPU)


def synchronize(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (CUDA, MPS); a no-op on the CPU. Call it on
    both sides of a timed region: kernels run asynchronously, so without it a timing
    measures their launches, not their work."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor` or the
    machine type: for the "on what machine" line of a benchmark."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


__all__ = ["resolve_device", "synchronize", "uses_mps_kernels_only", "check_mps_torch",
           "torch_version", "cpu_model", "MPS_MIN_TORCH"]
