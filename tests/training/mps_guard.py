"""A CPU stand-in for Apple's MPS backend in the tests: what would fail, or silently go wrong,
on a Mac is caught on the CPU by watching every aten op (``TorchDispatchMode``).

No Mac runs these tests, so :class:`MPSGuard` checks the ops the code issues against what the
MPS backend of the torch versions this project admits (2.5 to 2.13) cannot do, or does
wrongly without an error. While :func:`emulate_mps` is on, the code takes its MPS paths on
the CPU (:func:`demosaic.devices.uses_mps_kernels_only` is true there, and tiled inference
keeps mosaic and output on the device as on an accelerator), so those are the paths watched.

Rules (each violation is recorded with the op and the innermost ``demosaic`` frame):

1. ``no-mps-kernel``: an op of :data:`NO_MPS_KERNEL`.
2. ``non-contiguous-weight``: a convolution (forward or backward) whose weight is not
   contiguous (an ``expand`` view, a ``channels_last`` or transposed weight): MPS reads such
   a weight as if it were contiguous on macOS >= 15 (pytorch/pytorch#192212, fixed after
   2.13 by #192303).
3. ``float64``: an op that makes a float64 tensor from a float32/float16/bfloat16 tensor
   (``.double()``, ``.to(torch.float64)``, promotion against a float64 tensor). MPS has no
   float64, and the training, device-batch and inference paths are float32 throughout. On the
   CPU a device tensor and its ``.cpu()`` copy are the same tensor, so the code that works in
   float64 on purpose after copying to the host (the metrics of :mod:`demosaic.metrics`,
   which take CPU tensors or arrays) runs inside :meth:`MPSGuard.host`, where this rule is
   off. Factory ops (``torch.arange(..., dtype=float64)``) are not flagged: on MPS they fail
   loudly rather than silently.
4. ``device-and-dtype-copy``: one copy (``_to_copy``, ``to``) that is given a device and
   changes the dtype (``x.to("cpu", torch.float64)``, on the CPU too, where the device does
   not change): on recent torch such a copy of an MPS tensor raises or
   returns zeros (pytorch/pytorch#197715). Copy first, then convert: ``x.cpu().double()``.
   This rule holds inside :meth:`MPSGuard.host` too.
"""

from __future__ import annotations

import contextlib
import functools
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

aten = torch.ops.aten

#: Ops without an MPS kernel in torch 2.5-2.13 that this code base could reach. Sources:
#: ``poisson``: pytorch/pytorch#102852, #141287; ``vdot``: kernel added in early 2026
#: (#172840), missing before; ``_standard_gamma``, ``_sample_dirichlet``, ``binomial``: random
#: distributions the MPS op-coverage tracker (#77764) lists as not implemented. Extend it when
#: a new op turns up in a Mac traceback ("not currently implemented for the MPS device").
NO_MPS_KERNEL = frozenset({
    aten.poisson, aten.vdot, aten._standard_gamma, aten._sample_dirichlet, aten.binomial,
})

#: Convolution ops and the position of their weight argument.
_CONV_WEIGHT = {aten.convolution: 1, aten._convolution: 1, aten.convolution_backward: 2,
                aten.conv2d: 1, aten.mkldnn_convolution: 1}
_LOW_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Violation:
    rule: str
    op: str
    detail: str
    where: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.op}: {self.detail} (at {self.where})"


def _where() -> str:
    """The innermost ``demosaic`` source frame (or test frame) of the current stack."""
    frames = [f for f in traceback.extract_stack()[:-3] if "/demosaic/" in f.filename
              or "/tests/" in f.filename and not f.filename.endswith("mps_guard.py")]
    return f"{frames[-1].filename.rsplit('/src/', 1)[-1]}:{frames[-1].lineno} {frames[-1].name}" \
        if frames else "?"


def _copy_target(func: Any, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """``(device, dtype)`` a copy op is given (``None`` where not given): ``_to_copy``, and
    the ``to`` overloads that inference mode dispatches without decomposing them."""
    if func.overloadpacket is aten._to_copy or func is aten.to.dtype_layout:
        return kwargs.get("device"), kwargs.get("dtype")
    if func is aten.to.device:
        return args[1], args[2]
    if func is aten.to.other:
        return args[1].device, args[1].dtype
    return None, None


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


class MPSGuard(TorchDispatchMode):
    """Records every op that breaks one of the module's rules (:attr:`violations`)."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[Violation] = []
        self.ops: set[str] = set()
        self._host = 0

    @contextlib.contextmanager
    def host(self) -> Iterator[None]:
        """Code that works on host copies on purpose: rule 3 is off inside."""
        self._host += 1
        try:
            yield
        finally:
            self._host -= 1

    def _flag(self, rule: str, func: Any, detail: str) -> None:
        self.violations.append(Violation(rule, str(func), detail, _where()))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func.overloadpacket
        self.ops.add(str(packet))
        if packet in NO_MPS_KERNEL:
            self._flag("no-mps-kernel", func, "no MPS kernel in torch 2.5-2.13")
        if packet in _CONV_WEIGHT:
            weight = args[_CONV_WEIGHT[packet]]
            if isinstance(weight, torch.Tensor) and not weight.is_contiguous():
                self._flag("non-contiguous-weight", func,
                           f"weight {tuple(weight.shape)} strides {weight.stride()}")
        device, dtype = _copy_target(func, args, kwargs)
        if device is not None and dtype is not None and dtype != args[0].dtype:
            self._flag("device-and-dtype-copy", func,
                       f"{args[0].dtype} -> {dtype} and to {device} in one copy")
        out = func(*args, **kwargs)
        if not self._host and any(t.dtype == torch.float64 for t in _tensors(out)):
            low = [t.dtype for t in _tensors((args, kwargs)) if t.dtype in _LOW_FLOATS]
            if low:
                self._flag("float64", func, f"float64 made from {low[0]} tensors")
        return out

    def report(self) -> str:
        """The violations, one a line, without repeats."""
        return "\n".join(dict.fromkeys(str(v) for v in self.violations))


#: Functions that take host (CPU) tensors or arrays and compute in float64 on purpose.
HOST_FUNCTIONS = ("psnr", "psnr_srgb", "ssim", "texture_score", "false_colour_score", "hdr_error",
                  "periodic_artifact_score", "compute_all")


def _in_host(guard: MPSGuard, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with guard.host():
            return fn(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def emulate_mps(monkeypatch: pytest.MonkeyPatch) -> Iterator[MPSGuard]:
    """Take the MPS code paths on the CPU and watch them: yields the active :class:`MPSGuard`
    (the caller asserts ``guard.violations == []``). The metrics of :data:`HOST_FUNCTIONS` run
    in the guard's host region."""
    from demosaic import devices, metrics
    from demosaic.inference import tiling

    monkeypatch.setattr(devices, "_MPS_PATHS_ON_CPU", True)
    monkeypatch.setattr(tiling, "_RESIDENT_ON_CPU", True)
    guard = MPSGuard()
    for name in HOST_FUNCTIONS:
        monkeypatch.setattr(metrics, name, _in_host(guard, getattr(metrics, name)))
    with guard:
        yield guard


__all__ = ["MPSGuard", "Violation", "NO_MPS_KERNEL", "emulate_mps"]
