"""Training losses: individual terms and a weighted composite that reports each term.

Every term has the signature ``term(pred, target, reduction="mean") -> Tensor`` on images
``(N, 3, H, W)`` (channel 0 = R, 1 = G, 2 = B). Each term first computes one value per
sample, then reduces over the batch: ``"mean"`` (a scalar, the default), ``"sum"`` (a
scalar) or ``"none"`` (shape ``(N,)``).

Terms (:data:`LOSSES`):

``l1``
    Mean absolute error over channels and pixels.
``gradient``
    L1 between the finite differences of prediction and target:
    ``mean|dx(p) - dx(t)| + mean|dy(p) - dy(t)|`` with ``dx(x) = x[..., :, 1:] - x[..., :, :-1]``
    (and ``dy`` along rows). Penalises blur and zipper artifacts that plain L1 tolerates.
``chroma``
    L1 on the colour-difference channels ``R - G`` and ``B - G``:
    ``mean over both of |(p_R - p_G) - (t_R - t_G)|``. Demosaicking errors show up as errors
    in colour differences (false colour, fringes), which is also what classical demosaickers
    interpolate; the difference channels are linear, so the term keeps the scale behaviour
    of L1, and a luminance-only error (same offset on R, G, B) costs nothing here.
``ssim``
    ``1 - SSIM`` (Wang et al. 2004): gaussian window 11 x 11, sigma 1.5, computed per channel
    on the 'valid' region (no padding) and averaged. The stabilisers are
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with data range ``L = 1``: in linear light with
    HDR values the range is unbounded, so the constants are fixed for the nominal white
    level 1.0 instead of the batch maximum (which would make the loss depend on the
    brightest highlight). Images smaller than 11 px use the largest odd window that fits.
``periodic``
    Mean absolute CFA-periodic component of the error: the error averaged over every cell of
    :data:`PERIODIC_CELL` x :data:`PERIODIC_CELL` px (one value per channel and phase), minus
    its mean over the phases (a global offset is not periodic). This is the component the
    ``periodic_levels`` metric measures (the research log's 6x6 grid); a 6 px cell also holds
    the 2 and 3 px periods, so it serves Bayer as well. Crops are cut to multiples of the cell
    from the bottom/right. Per pixel its gradient has the size of ``l1``'s, but coherent over
    all pixels of a phase.
``periodic_display``
    ``periodic`` measured on display values: both images are clipped to ``[0, 1]`` and
    sRGB-encoded first, which is exactly the error the ``periodic_levels`` metric takes (in
    8-bit levels). In linear light bright regions dominate the periodic error; on the display
    scale dark regions count as a viewer sees them. It does its own encoding, so it needs
    ``space: linear``.
``msssim``
    ``1 - MS-SSIM`` (Wang et al. 2003) with the standard five scale weights; images too small
    for five scales (each scale must be at least 11 px) use fewer scales with the weights
    renormalised. Contrast-structure terms are clamped to ``>= 1e-6`` before the fractional
    powers (negative correlations would make them NaN).

Where the loss is measured (``space``), applied to prediction and target before any term:

``linear``
    The values as they are (linear light).
``srgb``
    :func:`demosaic.color.linear_to_srgb`, the sign-symmetric sRGB encoding, unclamped:
    weights dark-region errors like a viewer sees them (the research log's v3 trained there).
``log``
    ``sign(x) * log1p(mu |x|) / log1p(mu)`` with ``mu = 16`` (:data:`LOG_MU`), a mu-law
    compression: ``0 -> 0``, ``1 -> 1``, mid grey 0.18 -> 0.48 (close to sRGB's 0.46), and
    highlights compress logarithmically (4.0 -> 1.47), so HDR regions do not dominate the
    loss. Smooth and odd; its slope at 0 is finite (``mu / log1p(mu)`` ~ 5.6).

:class:`CompositeLoss` combines terms with weights; :func:`build_loss` builds one from a
config mapping ``{"space": "linear", "terms": {"l1": 1.0, ...}, "border": 0}``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from demosaic.cfa import periodic_component
from demosaic.color import linear_to_srgb
from demosaic.errors import ConfigError
from demosaic.metrics import SSIM_WINDOW, ssim_maps, ssim_window_size, ssim_index
from demosaic.schema import merge_into

log = logging.getLogger(__name__)

#: Compression strength of the ``log`` loss space.
LOG_MU = 16.0
#: MS-SSIM scale weights (Wang et al. 2003), finest scale first.
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"loss terms need pred and target of the same shape (N, C, H, W); got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")


# --------------------------------------------------------------------------------------
# Terms
# --------------------------------------------------------------------------------------


def l1(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error; ``(N, C, H, W)`` pair -> scalar (or ``(N,)`` for ``"none"``)."""
    _check(pred, target)
    return _reduce((pred - target).abs().mean(dim=(1, 2, 3)), reduction)


def gradient(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``mean|dx p - dx t| + mean|dy p - dy t|`` (forward differences); needs H, W >= 2."""
    _check(pred, target)
    d = pred - target  # differences are linear: dx(p) - dx(t) = dx(p - t)
    gx = (d[..., :, 1:] - d[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    gy = (d[..., 1:, :] - d[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return _reduce(gx + gy, reduction)


def chroma(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error of the colour differences ``R - G`` and ``B - G`` (3-channel input)."""
    _check(pred, target)
    if pred.shape[1] != 3:
        raise ValueError(f"chroma loss needs RGB (N, 3, H, W), got {tuple(pred.shape)}")
    d = pred - target
    diff = torch.stack([d[:, 0] - d[:, 1], d[:, 2] - d[:, 1]], dim=1)
    return _reduce(diff.abs().mean(dim=(1, 2, 3)), reduction)


def msssim_index(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean MS-SSIM per sample, ``(N,)``; fewer than 5 scales on small images."""
    _check(pred, target)
    h, w = pred.shape[-2:]
    scales = 1
    while scales < len(MSSSIM_WEIGHTS) and min(h, w) // 2**scales >= SSIM_WINDOW:
        scales += 1
    weights = torch.tensor(MSSSIM_WEIGHTS[:scales], device=pred.device, dtype=pred.dtype)
    weights = weights / weights.sum()
    result = torch.ones(pred.shape[0], device=pred.device, dtype=pred.dtype)
    p, t = pred, target
    for i in range(scales):
        size = ssim_window_size(p.shape[-2], p.shape[-1])
        s, cs = ssim_maps(p, t, size)
        value = (s if i == scales - 1 else cs).mean(dim=(1, 2, 3)).clamp_min(1e-6)
        result = result * value ** weights[i]
        if i < scales - 1:
            p, t = F.avg_pool2d(p, 2), F.avg_pool2d(t, 2)
    return result


def ssim(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """SSIM loss ``1 - SSIM`` (see :func:`ssim_index`)."""
    return _reduce(1 - ssim_index(pred, target), reduction)


def msssim(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """MS-SSIM loss ``1 - MS-SSIM`` (see :func:`msssim_index`)."""
    return _reduce(1 - msssim_index(pred, target), reduction)


#: Cell side (px) of the ``periodic`` term: the X-Trans period, a multiple of Bayer's.
PERIODIC_CELL = 6


def periodic(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute CFA-periodic error component (see the module docstring); needs H, W >= 6."""
    _check(pred, target)
    p = PERIODIC_CELL
    h, w = pred.shape[-2:]
    if h < p or w < p:
        raise ValueError(f"periodic loss needs images of at least {p}x{p} px, got {h}x{w}")
    phase = periodic_component(pred - target, p)  # (N, C, p, p)
    return _reduce(phase.abs().mean(dim=(1, 2, 3)), reduction)


def periodic_display(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """:func:`periodic` of the clipped, sRGB-encoded images (linear inputs, any range)."""
    _check(pred, target)
    return periodic(linear_to_srgb(pred.clamp(0.0, 1.0)), linear_to_srgb(target.clamp(0.0, 1.0)),
                    reduction)


#: Terms that encode their inputs themselves and so need ``space: linear``.
_LINEAR_INPUT_TERMS = frozenset({"periodic_display"})

LossTerm = Callable[..., torch.Tensor]

#: Loss terms by config name.
LOSSES: dict[str, LossTerm] = {
    "l1": l1,
    "gradient": gradient,
    "chroma": chroma,
    "ssim": ssim,
    "msssim": msssim,
    "periodic": periodic,
    "periodic_display": periodic_display,
}

# --------------------------------------------------------------------------------------
# Spaces
# --------------------------------------------------------------------------------------


def log_encode(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) log1p(mu |x|) / log1p(mu)``, ``mu =`` :data:`LOG_MU`; odd, ``1 -> 1``."""
    return torch.sign(x) * torch.log1p(LOG_MU * x.abs()) / math.log1p(LOG_MU)


#: Transforms applied to prediction and target before the terms.
SPACES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "srgb": linear_to_srgb,
    "log": log_encode,
}

# --------------------------------------------------------------------------------------
# Composite
# --------------------------------------------------------------------------------------


class CompositeLoss(nn.Module):
    """Weighted sum of loss terms measured in one space, with an optional border crop.

    Args:
        terms: ``{term name: weight}``; names from :data:`LOSSES`, weights ``>= 0``.
        space: ``"linear"``, ``"srgb"`` or ``"log"`` (see the module docstring).
        border: Pixels cropped from every side of both images before measuring (e.g. to
            ignore edge effects of a padded model).

    ``forward(pred, target)`` with ``(N, 3, H, W)`` images returns ``(total, values)``:
    ``total`` is the weighted sum (a scalar with gradient), ``values`` maps each term name to
    its **unweighted** value, detached, for logging.
    """

    def __init__(self, terms: Mapping[str, float], space: str = "linear", border: int = 0) -> None:
        super().__init__()
        if not terms:
            raise ConfigError(f"loss.terms is empty; give at least one of {sorted(LOSSES)} "
                              "with a weight, e.g. {l1: 1.0}")
        unknown = sorted(set(terms) - set(LOSSES))
        if unknown:
            raise ConfigError(f"loss.terms: unknown term(s) {unknown}; valid terms: {sorted(LOSSES)}")
        for name, weight in terms.items():
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0 \
                    or not math.isfinite(weight):
                raise ConfigError(f"loss.terms.{name}={weight!r}: a weight must be a finite number >= 0")
        if space not in SPACES:
            raise ConfigError(f"loss.space={space!r} is unknown; choose one of {sorted(SPACES)}")
        if border < 0:
            raise ConfigError(f"loss.border={border} must be >= 0")
        needs_linear = sorted(_LINEAR_INPUT_TERMS & set(terms))
        if needs_linear and space != "linear":
            raise ConfigError(f"loss.terms {needs_linear} encode linear values themselves; use "
                              f"loss.space=linear (got {space!r}) or drop the term")
        self.terms = {k: float(v) for k, v in terms.items()}
        self.space = space
        self.border = int(border)

    def extra_repr(self) -> str:
        return f"terms={self.terms}, space={self.space!r}, border={self.border}"

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        _check(pred, target)
        b = self.border
        if b:
            if 2 * b >= min(pred.shape[-2:]):
                raise ConfigError(f"loss.border={b} crops away a whole {pred.shape[-2]}x{pred.shape[-1]} "
                                  "image; use a smaller border or larger crops")
            pred, target = pred[..., b:-b, b:-b], target[..., b:-b, b:-b]
        encode = SPACES[self.space]
        pred, target = encode(pred), encode(target)
        total = pred.new_zeros(())
        values: dict[str, torch.Tensor] = {}
        for name, weight in self.terms.items():
            value = LOSSES[name](pred, target)
            values[name] = value.detach()
            if weight:
                total = total + weight * value
        return total, values


@dataclass
class LossConfig:
    """Schema of a loss config node (``configs/loss/*.yaml``)."""

    space: str = "linear"
    # Empty default: OmegaConf merges dicts key by key, so a non-empty default would be
    # added to every user's terms.
    terms: dict[str, float] = field(default_factory=dict)
    border: int = 0


def build_loss(cfg: Mapping[str, Any], where: str = "loss") -> CompositeLoss:
    """Build a :class:`CompositeLoss` from ``{"space": ..., "terms": {...}, "border": ...}``.

    Raises:
        ConfigError: for an unknown key, an unknown term name (listing the valid ones), an
            unknown space, or a weight that is not a number >= 0.
    """
    data = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    valid_keys = ["space", "terms", "border"]
    unknown_keys = sorted(set(data) - set(valid_keys))
    if unknown_keys:
        raise ConfigError(f"{where}: unknown key(s) {unknown_keys}; valid keys: {valid_keys}")
    terms = data.get("terms")
    if isinstance(terms, Mapping):
        bad = sorted(set(terms) - set(LOSSES))
        if bad:
            raise ConfigError(f"{where}.terms: unknown term(s) {bad}; valid terms: {sorted(LOSSES)}")
    merged = merge_into(LossConfig, data, where,
                        hint="expected space: str, terms: {name: weight}, border: int")
    plain: dict[str, Any] = OmegaConf.to_container(merged, resolve=True)  # type: ignore[assignment]
    loss = CompositeLoss(plain["terms"], space=plain["space"], border=plain["border"])
    log.info("built loss %s", loss.extra_repr())
    return loss


__all__ = ["LOSSES", "SPACES", "CompositeLoss", "LossConfig", "build_loss", "l1", "gradient", "chroma",
           "ssim", "msssim", "ssim_index", "msssim_index", "log_encode", "periodic", "periodic_display"]
