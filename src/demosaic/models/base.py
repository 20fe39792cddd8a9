"""The base class every demosaicking model derives from.

A :class:`DemosaicModel` maps a mosaic ``(N, 1, H, W)`` in the **canonical phase** of its
CFA pattern (pixel ``(0, 0)`` at the pattern's ``(0, 0)``, see :mod:`demosaic.cfa`) to a
full-colour image ``(N, 3, H, W)`` in linear light, unclamped. ``forward`` needs ``H`` and
``W`` divisible by :attr:`DemosaicModel.size_multiple`; :meth:`DemosaicModel.demosaic`
accepts any size of at least one period, padding with :func:`demosaic.cfa.period_pad`
(which keeps the padded mosaic a valid CFA) and cropping the output back.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

import torch
from torch import nn

from demosaic.cfa import CFAPattern, get_pattern, period_pad
from demosaic.errors import CFAError

log = logging.getLogger(__name__)

#: Sampling masks of at most this many pixels are cached between forward calls.
_MASK_CACHE_MAX_PIXELS = 2048 * 2048


def is_eager() -> bool:
    """Whether the model runs eagerly. Graph capture (TorchScript tracing, ``torch.export``,
    ONNX export) records writes into views and through ``out=`` wrongly, so the in-place
    forms of the fast paths apply only when this is true; the functional forms used
    otherwise compute the same numbers."""
    if torch.jit.is_tracing():
        return False
    onnx = sys.modules.get("torch.onnx")  # not imported: not exporting (and not worth importing)
    if onnx is not None and onnx.is_in_onnx_export():
        return False
    return not torch.compiler.is_compiling()


class DemosaicModel(nn.Module):
    """Base class: holds the CFA pattern and the input size contract.

    Args:
        cfa: Pattern name (``"xtrans"``, ``"bayer_rggb"`` ...), see :func:`demosaic.cfa.get_pattern`.
        size_multiple: ``H`` and ``W`` given to :meth:`forward` must be multiples of it. Rounded
            up to a multiple of the CFA period (so padding never breaks the pattern).

    Attributes:
        pattern: The :class:`~demosaic.cfa.CFAPattern`.
        size_multiple: Always a multiple of ``pattern.period``.
        spec: ``{"name": ..., "kwargs": {...}}`` when built through
            :func:`demosaic.models.create_model` (what a checkpoint stores), else ``None``.
        noise_input: Whether :meth:`forward` uses its ``noise`` argument (the balanced noise
            coefficients ``(N, 2, 3)`` of :meth:`demosaic.noise.NoiseProfile.balanced`);
            callers pass it only then (:func:`call_model`).
    """

    noise_input: bool = False

    def __init__(self, cfa: str, size_multiple: int = 1) -> None:
        super().__init__()
        self.pattern: CFAPattern = get_pattern(cfa)
        p = self.pattern.period
        self.size_multiple: int = size_multiple * p // math.gcd(size_multiple, p)
        self.spec: dict[str, Any] | None = None
        self._mask_cache: tuple[tuple[Any, ...], torch.Tensor, torch.Tensor] | None = None
        # (3, P, P) one-hot cell mask; a non-persistent buffer so it follows .to(device)
        # without appearing in checkpoints.
        self.register_buffer("cell_mask", torch.from_numpy(self.pattern.cell_mask), persistent=False)

    # ------------------------------------------------------------------------------
    def _masks(self, cfa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float and bool sampling masks ``(1, 3, H, W)`` for ``cfa``; the last pair built is
        cached when it is small (training crops, tiles), so big frames do not pin memory."""
        h, w = cfa.shape[-2], cfa.shape[-1]
        # inference-mode tensors cannot be saved for backward: never hand one to training
        key = (h, w, cfa.device, cfa.dtype, torch.is_inference_mode_enabled())
        cached = self._mask_cache
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        p = self.pattern.period
        reps = (1, -(-h // p), -(-w // p))
        m = self.cell_mask.to(dtype=cfa.dtype).repeat(*reps)[:, :h, :w].unsqueeze(0).contiguous()
        mb = m.bool()
        self._mask_cache = (key, m, mb) if h * w <= _MASK_CACHE_MAX_PIXELS else None
        return m, mb

    def sampling_mask(self, cfa: torch.Tensor) -> torch.Tensor:
        """One-hot mask ``(1, 3, H, W)`` for a mosaic ``(N, 1, H, W)`` in canonical phase,
        on the mosaic's device and dtype."""
        return self._masks(cfa)[0]

    def _cells(self, x: torch.Tensor, channels: int) -> torch.Tensor | None:
        """``(N, C, H, W)`` viewed as ``(N, C, H/P, P, W/P, P)`` (one axis per CFA cell
        coordinate), or ``None`` when ``H`` or ``W`` is not a whole number of periods."""
        p = self.pattern.period
        n, _, h, w = x.shape
        if h % p or w % p:
            return None
        return x.reshape(n, channels, h // p, p, w // p, p)

    def masked_mosaic(self, cfa: torch.Tensor) -> torch.Tensor:
        """``cfa * sampling_mask(cfa)``: ``(N, 1, H, W) -> (N, 3, H, W)``, each sample in its
        colour's channel, zeros elsewhere. For whole periods, one broadcast product with the
        ``(3, P, P)`` cell (no full-size mask is built); the same numbers either way."""
        cells = self._cells(cfa, 1)
        if cells is None:
            return cfa * self.sampling_mask(cfa)
        p = self.pattern.period
        cell = self.cell_mask.to(cfa.dtype).view(3, 1, p, 1, p)
        return (cells * cell).reshape(cfa.shape[0], 3, cfa.shape[-2], cfa.shape[-1])

    def keep_measured(self, cfa: torch.Tensor, out: torch.Tensor, in_place: bool = False
                      ) -> torch.Tensor:
        """``out`` with every sampled position replaced by the measured value, bit-exact:
        ``mask * cfa + (1 - mask) * out``. Gradients reach ``out`` at the other positions.

        ``in_place``: write into ``out`` (a contiguous tensor of ``cfa``'s dtype that does not
        need gradients, e.g. at inference) and return it, saving a full-size tensor; otherwise
        a new one (of the promoted dtype, as ``torch.where`` gives)."""
        cells, outs = self._cells(cfa, 1), self._cells(out, 3) if out.is_contiguous() else None
        if cells is None or outs is None:
            return torch.where(self._masks(cfa)[1], cfa, out)
        p = self.pattern.period
        keep = self.cell_mask.view(3, 1, p, 1, p) > 0
        if in_place and not out.requires_grad and out.dtype == cfa.dtype and is_eager():
            torch.where(keep, cells, outs, out=outs)
            return out
        return torch.where(keep, cells, outs).reshape(out.shape)

    def check_input(self, cfa: torch.Tensor) -> None:
        """Raise :class:`~demosaic.errors.CFAError` unless ``cfa`` is ``(N, 1, H, W)`` with
        ``H`` and ``W`` multiples of :attr:`size_multiple`."""
        if cfa.ndim != 4 or cfa.shape[1] != 1:
            raise CFAError(f"{type(self).__name__}.forward expects a mosaic of shape (N, 1, H, W), "
                           f"got {tuple(cfa.shape)}; use demosaic() for (1, H, W) inputs")
        h, w = cfa.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise CFAError(f"{type(self).__name__}.forward needs H and W divisible by "
                           f"{self.size_multiple}, got {h}x{w}; call demosaic() to pad any size")

    def forward(self, cfa: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Mosaic ``(N, 1, H, W)`` -> linear RGB ``(N, 3, H, W)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------
    def demosaic(self, cfa: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Demosaic a mosaic of any size (at least one CFA period per side).

        Args:
            cfa: ``(1, H, W)`` or ``(N, 1, H, W)``, canonical phase, linear light.
            noise: Balanced noise coefficients ``(N, 2, 3)`` or ``(2, 3)`` for a
                ``noise_input`` model (ignored by others); ``None`` = clean.

        Returns:
            ``(3, H, W)`` or ``(N, 3, H, W)`` (matching the input's rank), linear, unclamped.
            The bottom/right padding that :func:`~demosaic.cfa.period_pad` adds is cropped off.
        """
        squeeze = cfa.ndim == 3
        x = cfa.unsqueeze(0) if squeeze else cfa
        if x.ndim != 4 or x.shape[1] != 1:
            raise CFAError(f"demosaic() expects a mosaic (1, H, W) or (N, 1, H, W), got {tuple(cfa.shape)}")
        padded, (h, w) = period_pad(x, self.pattern, self.size_multiple)
        out = call_model(self, padded, noise)[..., :h, :w]
        return out[0] if squeeze else out


def call_model(model: nn.Module, cfa: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """``model(cfa, noise)`` for a model that takes the noise input (``noise_input``) and is
    given coefficients, else ``model(cfa)``: every caller's one way to run any model."""
    if noise is not None and getattr(model, "noise_input", False):
        return model(cfa, noise)
    return model(cfa)
