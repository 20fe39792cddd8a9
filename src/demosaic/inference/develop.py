"""Develop: a raw file's mosaic -> balanced mosaic -> network -> highlights -> output balance.

Every path that demosaics a raw file (``demosaic-infer``, the camera protocol of
``demosaic-eval``) goes through :func:`develop`, so the network always sees what it was
trained on. Read top to bottom, one file goes::

    clip mask          where the raw data saturated (highlights "clip"/"reconstruct" only)
    per window         inside the tiling (inference.tiling.tiled_demosaic), never the whole
                       mosaic at once:
      canonical phase    rows/columns of the same colours prepended (tiling)
      white balance      each pixel times its colour's as-shot multiplier (G = 1): balanced
                         camera RGB, LibRaw's order
      clipped pixels     set to S = min(multipliers) ("clip" mode: neutral for the network)
      noise level        a noise-aware network also gets the file's noise profile balanced by
                         the same multipliers and scaled by min(--denoise, 1) (noise.source),
                         from which it builds its map
      network            (3, h, w) balanced camera RGB, the window's core kept
    chroma             --denoise above 1 (noise-aware networks): chroma smoothing
                       (inference.chroma)
    highlights         the mode's output step (inference.highlights.apply_highlights)
    output balance     another white balance than as-shot: each channel times t_c / w_c;
                       with "clip", clipped areas limited again so they stay neutral

The colour matrix, orientation and the file formats come after, in
:mod:`demosaic.inference.writers`; the whole command is :mod:`demosaic.inference.run`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from demosaic.inference.chroma import reduce_chroma_noise
from demosaic.inference.colour import ColourPlan, plan_colour
from demosaic.inference.highlights import (
    HIGHLIGHT_MODES,
    apply_highlights,
    clip_in_place,
    clip_mask,
)
from demosaic.inference.tiling import (
    DEFAULT_TILE,
    Span,
    auto_overlap,
    canonical_prepend,
    frame_window,
    resolve_device,
    tiled_demosaic,
)
from demosaic.io.raw import RawImage
from demosaic.noise.profile import NoiseProfile
from demosaic.noise.source import file_profile, network_coefficients
from demosaic.schema import check_choice

log = logging.getLogger(__name__)


class StageTimer:
    """Wall time per stage of one file: :meth:`lap` charges the time since the previous lap
    (or creation) to ``name``; :attr:`seconds` keeps them in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._t
        self._t = now


def lap(timer: StageTimer | None, name: str) -> None:
    """:meth:`StageTimer.lap` when there is a timer."""
    if timer is not None:
        timer.lap(name)


def develop(
    raw: RawImage,
    net: nn.Module,
    *,
    device: torch.device,
    tile: int | None = DEFAULT_TILE,
    overlap: int | None = None,
    white_balance: str = "as_shot",
    highlights: str = "clip",
    amp: bool = False,
    progress: bool = False,
    timer: StageTimer | None = None,
    colour: ColourPlan | None = None,
    noise: NoiseProfile | None = None,
    denoise: float = 1.0,
) -> torch.Tensor:
    """The demosaicking part of ``infer_file``: raw mosaic in, camera RGB out (the steps of
    the module docstring).

    1. the mosaic (observed phase, white = 1) times the file's as-shot multipliers (G = 1),
       each pixel by its filter colour: **balanced camera RGB**, as LibRaw balances before
       demosaicking; this happens whatever ``white_balance`` says;
    2. padded to canonical phase, demosaicked tile by tile, cropped back;
    3. clipped raw pixels handled by ``highlights`` (:mod:`demosaic.inference.highlights`):
       ``clip`` sets them to ``S = min(w)`` before the network (so a clipped area is neutral
       for the network too) and limits the output near them to ``S`` after it;
    4. another ``white_balance`` than ``"as_shot"`` (output multipliers ``t``): each
       channel times ``t_c / w_c``, exact for linear data; ``"none"`` (``t = 1``) gives
       unbalanced camera RGB; for ``"daylight"`` or ``"R,G,B"`` with ``clip``, the channels
       near clipped pixels are limited again to ``S min_c(t_c / w_c)``, so a clipped area
       stays neutral under the new balance (LibRaw clips at its multipliers' minimum too).

    Args:
        raw: From :func:`demosaic.io.raw.read_raw`.
        net: A demosaicker of the file's CFA family (canonical phase in, ``(1, 3, H, W)`` out).
        device, tile, overlap, amp, progress: See ``infer_file``.
        white_balance: ``"as_shot"``, ``"daylight"``, ``"none"`` or ``"R,G,B"``.
        highlights: One of :data:`demosaic.inference.highlights.HIGHLIGHT_MODES`.
        timer: Records the time of each step (:class:`StageTimer`), if given.
        colour: The file's plan (:func:`~demosaic.inference.colour.plan_colour`), when the
            caller made it; it then gives the white balance.
        noise: The file's noise profile (:func:`demosaic.noise.source.file_profile`) for a
            noise-aware network (``net.noise_input``); ``None`` there: from the file. Other
            networks ignore it and ``denoise``.
        denoise: Scale of the noise map the network gets (0 = demosaic only); above 1 the
            map stays at the file's level and the output's chroma is smoothed
            (:mod:`demosaic.inference.chroma`).

    Returns:
        ``(3, H, W)`` float32 CPU tensor in the file's visible area and sensor orientation;
        balanced camera RGB (green = 1 at the white level), values above 1.0 kept. Steps 1-2
        run window by window (:func:`_balance_window`): no balanced or padded copy of the
        mosaic is made.
    """
    if colour is None:
        colour = plan_colour(raw, "camera", white_balance)
    check_choice(highlights, HIGHLIGHT_MODES, "highlights")
    mult = colour.as_shot
    if tile and overlap is None:
        overlap = auto_overlap(net)
    # highlights="none" uses no mask (its noisy-plateau rule took 1.5 s on a noisy 24 MP frame)
    clipped = clip_mask(raw.cfa, raw.layout) if highlights != "none" else None
    lap(timer, "clip mask")
    prepend = canonical_prepend(raw.alignment)
    device = resolve_device(device)  # the windows' device, where the balance runs
    prepare = _balance_window(raw, mult, clipped if highlights == "clip" else None, prepend, device)
    coeffs = _network_level(raw, net, noise, mult, denoise, timer)
    rgb = tiled_demosaic(net, raw.cfa, tile=tile, overlap=overlap, device=device,
                         amp=amp, progress=progress, prepend=prepend, prepare=prepare,
                         noise=coeffs)
    lap(timer, "white balance + tiles (network)")
    if coeffs is not None and denoise > 1.0:
        rgb = reduce_chroma_noise(rgb, denoise)
        lap(timer, "chroma noise reduction")
    with torch.inference_mode():  # the tiled output is an inference tensor; clip works in place
        rgb = apply_highlights(rgb, clipped, raw.layout, mult, highlights)
        rgb = _rebalance(rgb, clipped, raw, colour, highlights)
    lap(timer, "highlights")
    return rgb


def _network_level(raw: RawImage, net: nn.Module, noise: NoiseProfile | None, mult: np.ndarray,
                   denoise: float, timer: StageTimer | None) -> torch.Tensor | None:
    """The ``(2, 3)`` coefficients a noise-aware ``net`` gets (``None`` for other networks):
    ``noise`` or the file's own level (:func:`~demosaic.noise.source.file_profile`), balanced by
    ``mult``, its map scaled by ``min(denoise, 1)``."""
    if not getattr(net, "noise_input", False):
        return None
    profile = noise if noise is not None else file_profile(raw)
    coeffs = network_coefficients(profile, mult, min(denoise, 1.0))
    lap(timer, "noise level")
    return coeffs


def _balance_window(raw: RawImage, mult: np.ndarray, clipped: torch.Tensor | None,
                    prepend: tuple[int, int], device: torch.device
                    ) -> Callable[[torch.Tensor, Span, Span], torch.Tensor]:
    """Steps 1 and 3 (input side) of :func:`develop`, window by window inside the tiling: each
    pixel times its colour's multiplier (:func:`~demosaic.color.white_balance_mosaic`'s
    float32 product) and, given ``clipped`` (the ``clip`` mode), clipped raw pixels set to
    ``min(mult)`` (:func:`~demosaic.inference.highlights.clip_mosaic`). The same numbers as
    balancing the whole mosaic first, without a balanced copy of it."""
    pattern = raw.alignment.pattern
    p = pattern.period
    gain = torch.from_numpy(mult[pattern.array].astype(np.float32))  # canonical: 0, 1, 2 only
    gain = gain.to(device).view(1, p, 1, p)
    level = float(np.float32(np.min(mult)))
    mask = clipped.to(device) if clipped is not None and bool(clipped.any()) else None

    def prepare(x: torch.Tensor, rows: Span, cols: Span) -> torch.Tensor:
        h, w = x.shape  # whole periods: windows are on the tiling's grid, in canonical phase
        x.view(h // p, p, w // p, p).mul_(gain)
        if mask is not None:
            x[frame_window(mask, rows, cols, prepend, p)] = level
        return x

    return prepare


def _rebalance(rgb: torch.Tensor, clipped: torch.Tensor | None, raw: RawImage,
               colour: ColourPlan, highlights: str) -> torch.Tensor:
    """Step 4 of :func:`develop`: the as-shot-balanced output rescaled to the output's white
    balance (``rgb`` itself when that is the as-shot one)."""
    gain = colour.gain
    if gain is None:
        return rgb
    rgb = rgb * torch.from_numpy(gain.astype(np.float32)).view(3, 1, 1)
    if (highlights == "clip" and colour.white_balance != "none" and clipped is not None
            and bool(clipped.any())):
        level = float(np.min(colour.as_shot)) * float(np.min(gain))
        rgb = clip_in_place(rgb, clipped, level, int(np.asarray(raw.layout).shape[0]))
    return rgb


__all__ = ["StageTimer", "develop", "lap"]
