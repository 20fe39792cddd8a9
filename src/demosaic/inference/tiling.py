"""Tiled inference aligned to the CFA period: whole raw frames in bounded memory.

A model sees one window at a time. Windows start at multiples of ``m = lcm(period,
model.size_multiple)`` so every window is in the canonical CFA phase and on the model's
down-sampling grid, which makes a convolutional U-Net compute the same numbers on a window
as on the whole image, except within its receptive field of the window's border.
Each window therefore keeps only its **core**: the window minus ``overlap`` pixels on each
side that touch a neighbouring window (image borders are kept, since the whole-image run sees
the same border). Cores partition the image, so stitching is a plain copy into a
preallocated float32 output and the result equals the whole-image output to float
tolerance once ``overlap`` covers the model's effective receptive field
(``tests/inference/test_tiling.py`` measures the difference; ``docs/BENCHMARKS.md`` reports it).

Layout along one axis of length ``L`` (a multiple of ``m`` after padding)::

    window i   [ws ............................ we)
    core i           [cs ............... ce)          ce - cs <= tile - 2 * overlap
                 ^ overlap ^                ^ overlap ^

Windows near the image end are shifted inwards so all windows but a single-window axis
have exactly ``tile`` pixels; that gives edge tiles more context, never less.

Memory: the input is never copied whole (each window is copied out of it, those at the
bottom/right edge padded to the alignment grid by :func:`demosaic.cfa.phase_extend` from the
same last period of real pixels as a padded frame would be), the output is allocated once,
and at most one window's activations are alive at a time (``batch`` of them with
``tiled_demosaic(batch=...)``).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from demosaic import cfa as cfa_mod
from demosaic.devices import MPS_MIN_TORCH, resolve_device, torch_version
from demosaic.errors import CFAError, ConfigError
from demosaic.models.base import call_model


log = logging.getLogger(__name__)

#: Default window side in pixels (rounded down to the alignment multiple: 3048 px for the
#: shipped models). Large windows waste less work on overlap (computed area 1.22x a 24 MP
#: frame, against 1.36x at 2048 px) and, with freed memory kept in the process
#: (:mod:`demosaic.allocator`), are not slower per pixel: the fastest first pass over a 24 MP
#: frame on a 2-core CPU (docs/lab/speed-work.md, "Whole process after the speed work").
DEFAULT_TILE = 3072
#: Overlap used when a model's receptive field is unbounded (see :func:`auto_overlap`).
DEFAULT_OVERLAP = 96


@dataclass(frozen=True)
class Span:
    """One window along one axis: the model sees ``[win_start, win_end)`` and the output
    keeps ``[core_start, core_end)`` (absolute coordinates, ``win_start <= core_start``)."""

    win_start: int
    win_end: int
    core_start: int
    core_end: int


def alignment_multiple(model: nn.Module) -> int:
    """``lcm(CFA period, model.size_multiple)``: the grid window starts and sizes snap to."""
    period = model.pattern.period
    return math.lcm(period, int(getattr(model, "size_multiple", period)))


def plan_axis(length: int, tile: int, overlap: int, multiple: int) -> list[Span]:
    """Split one axis into windows and cores.

    Args:
        length: Axis length in pixels, a multiple of ``multiple``.
        tile: Window side, a positive multiple of ``multiple``.
        overlap: Context discarded at inner window sides, a multiple of ``multiple``,
            ``2 * overlap < tile``.
        multiple: Alignment grid.

    Returns:
        Spans whose cores partition ``[0, length)``; all window bounds are multiples of
        ``multiple``. The fewest windows of at most ``tile`` px are used, all of one size,
        shrunk as far as coverage allows (less overlap work than fixed-size windows).
    """
    if length % multiple or tile % multiple or overlap % multiple:
        raise ConfigError(f"plan_axis: length {length}, tile {tile} and overlap {overlap} must be "
                          f"multiples of {multiple}")
    if length <= tile:
        return [Span(0, length, 0, length)]
    if tile - 2 * overlap <= 0:
        raise ConfigError(f"tile {tile} px leaves no core with overlap {overlap} px on each side; "
                          f"use tile > 2 * overlap (e.g. tile={4 * overlap or multiple})")
    # Fewest windows of at most `tile` px, then the smallest equal window size that still
    # covers the axis: n windows of size s cover n * s - 2 * (n - 1) * overlap pixels.
    n = 2 + max(0, -(-(length - 2 * (tile - overlap)) // (tile - 2 * overlap)))
    tile = min(tile, _round_up(-(-(length + 2 * (n - 1) * overlap) // n), multiple))
    core = tile - 2 * overlap
    spans: list[Span] = []
    start = 0
    while start < length:
        # The first window has no left neighbour, so its core extends to tile - overlap.
        end = min(start + (tile - overlap if start == 0 else core), length)
        if end < length and length - end <= overlap:
            end = length  # the remainder fits in this window's right context
        ws = max(0, min(start - overlap, length - tile))
        we = ws + tile
        if end > we:  # cannot happen with the rules above; guard against off-by-one edits
            end = we
        spans.append(Span(ws, we, start, end))
        start = end
    return spans


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int
               ) -> list[tuple[Span, Span]]:
    """All ``(row_span, col_span)`` windows of a ``height x width`` array, row-major."""
    rows = plan_axis(height, tile, overlap, multiple)
    cols = plan_axis(width, tile, overlap, multiple)
    return [(r, c) for r in rows for c in cols]


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def _as_mosaic(cfa: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)`` -> ``(H, W)`` float32 CPU or device tensor."""
    if isinstance(cfa, np.ndarray):
        with warnings.catch_warnings():  # read-only arrays (RawImage.cfa) are only read here
            warnings.filterwarnings("ignore", message=".*not writable.*")
            t = torch.from_numpy(np.ascontiguousarray(cfa))
    else:
        t = cfa
    if t.ndim == 4 and t.shape[:2] == (1, 1):
        t = t[0, 0]
    elif t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2:
        raise CFAError(f"tiled_demosaic expects a mosaic of shape (H, W), (1, H, W) or "
                       f"(1, 1, H, W), got {tuple(t.shape)}")
    return t.to(torch.float32)


def receptive_field(model: nn.Module, max_size: int = 3072) -> int | None:
    """Receptive-field radius of ``model`` in pixels, measured once and cached on the model.

    The gradient of one aligned ``m x m`` block of outputs (``m`` = :func:`alignment_multiple`)
    with respect to a random input is non-zero exactly on the input pixels that can influence
    it (LeakyReLU/linear layers never zero a gradient by chance), so its extent beyond the
    block is the radius. The input grows until the extent no longer touches its border.

    Returns:
        The radius in pixels (0 for a pixel-wise model), or ``None`` when the influence still
        reaches the border at ``max_size`` px (a global operation such as per-image
        normalisation: tiling can then not be exact).
    """
    cached = getattr(model, "_tiling_receptive_field", "unset")
    if cached != "unset":
        return cached  # type: ignore[return-value]
    m = alignment_multiple(model)
    size = _round_up(max(16 * m, 96), 2 * m)
    param = next(iter(model.parameters()), None)
    buf = next(iter(model.buffers()), None)
    dev = (param if param is not None else buf).device if (param is not None or buf is not None) \
        else torch.device("cpu")
    radius: int | None = None
    with torch.inference_mode(False), torch.enable_grad():
        while size <= max_size:
            c = (size // 2) // m * m
            x = torch.rand(1, 1, size, size, device=dev, requires_grad=True)
            # a noise-aware model also sees its noise map, whose local mean widens the field
            y = call_model(model, x, torch.full((2, 3), 1e-3, device=dev))
            (g,) = torch.autograd.grad(y[0, :, c:c + m, c:c + m].sum(), x)
            nz = g[0, 0] != 0
            rows = nz.any(1).nonzero().flatten().tolist()
            cols = nz.any(0).nonzero().flatten().tolist()
            if not rows:
                radius = 0
                break
            if min(rows[0], cols[0]) > 0 and max(rows[-1], cols[-1]) < size - 1:
                radius = max(0, c - rows[0], rows[-1] - (c + m - 1), c - cols[0],
                             cols[-1] - (c + m - 1))
                break
            size *= 2
    if radius is None:
        log.warning("%s: the receptive field reaches past %d px (a global operation?); tiled "
                    "output cannot equal whole-image output exactly", type(model).__name__, max_size)
    log.debug("%s: receptive-field radius %s px", type(model).__name__, radius)
    remember_receptive_field(model, radius)
    return radius


def remember_receptive_field(model: nn.Module, radius: int | None) -> None:
    """Cache ``radius`` as ``model``'s receptive field (what :func:`receptive_field` returns
    from then on): a measurement, or one stored with a release checkpoint
    (:func:`demosaic.models.checkpoint.release_checkpoint`) for the same architecture."""
    try:
        model._tiling_receptive_field = radius  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exotic modules
        pass


def auto_overlap(model: nn.Module) -> int:
    """Overlap that makes tiling exact: the receptive-field radius rounded up to the grid
    (:data:`DEFAULT_OVERLAP` when the field is unbounded)."""
    rf = receptive_field(model)
    m = alignment_multiple(model)
    return _round_up(rf if rf is not None else DEFAULT_OVERLAP, m)


def for_inference(model: nn.Module, device: torch.device) -> nn.Module:
    """The module :func:`tiled_demosaic` should run for ``model`` on ``device``.

    On the CPU, a copy with its weights in ``channels_last`` memory format: oneDNN then
    picks convolution kernels that ran the shipped X-Trans model 1.26-1.34x faster on a 24 MP
    frame (docs/lab/speed-work.md, "Whole process after the speed work"); outputs differ from the default layout
    by float rounding only (max abs 2.7e-6 measured; ``tests/inference/test_tiling.py`` bounds it at
    1e-5). On an accelerator, or for a model without weights, ``model`` itself. The caller's
    model is never changed (training and evaluation keep the default layout, so their
    numbers do not move).
    """
    model = model.to(device).eval()
    if device.type != "cpu" or not any(True for _ in model.parameters()):
        return model
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    log.debug("%s: channels_last copy for CPU inference", type(model).__name__)
    return fast


def tiled_demosaic(
    model: nn.Module,
    cfa: torch.Tensor | np.ndarray,
    *,
    tile: int | None = DEFAULT_TILE,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    amp: bool = False,
    progress: bool = False,
    batch: int = 1,
    prepend: tuple[int, int] = (0, 0),
    prepare: Callable[[torch.Tensor, Span, Span], torch.Tensor] | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Demosaic a whole mosaic window by window with bounded memory.

    Args:
        model: A ``DemosaicModel`` (``pattern``, ``size_multiple``, ``forward``), eval mode.
            It is moved to ``device``.
        cfa: Mosaic ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``, linear light (white = 1.0,
            unclamped), top-left pixel in the **canonical phase** of ``model.pattern`` once
            ``prepend`` rows/columns are put before it. ``H, W >= period``.
        prepend: ``(a, b)`` same-phase rows and columns before the mosaic that bring it to
            the canonical phase (:func:`canonical_prepend`; ``(0, 0)`` for a canonical
            mosaic). They exist only inside the windows: the mosaic is never copied whole.
        prepare: Called on each window before the model, ``prepare(x, rows, cols)`` with
            ``x`` the window ``(h, w)`` (a tensor of its own, on the model's device, in
            canonical phase) and its spans in the padded frame (:func:`frame_window` cuts
            the same window out of another array, e.g. a mask); returns the window to run
            (it may change ``x`` in place). For per-pixel steps such as white balance.
        tile: Window side in pixels, rounded down to ``m = lcm(period, size_multiple)``
            (minimum ``m``), raised to ``3 * overlap`` if smaller. ``None`` or ``0`` runs the
            whole image at once.
        overlap: Context pixels discarded on each inner side of a window, rounded up to
            ``m``. ``None`` (default) = :func:`auto_overlap`: the model's receptive-field
            radius, which makes the result equal the whole-image output up to float rounding.
            Smaller is faster and approximate.
        device: ``"auto"``/``None`` (CUDA > MPS > CPU), ``"cpu"``, ``"cuda"``, ...
        amp: Run windows in float16 autocast on CUDA/MPS (ignored on CPU). Faster, not exact.
            On MPS it needs torch >= 2.5 (:data:`demosaic.devices.MPS_MIN_TORCH`), the first
            with ``torch.autocast("mps")``.
        progress: Show a tqdm bar over windows.
        batch: Windows of the same shape run together, up to this many per forward pass
            (an accelerator's lever: fewer, larger launches; memory grows with it). The
            output does not depend on it (each window is computed as on its own).
        noise: ``(2, 3)`` balanced noise coefficients of the mosaic (after ``prepare``'s
            white balance) for a ``noise_input`` model, which computes each window's noise map
            from them (the receptive field, and so the overlap, includes the map's window);
            ignored by other models.

    Returns:
        ``(3, H, W)`` float32 CPU tensor for the mosaic's own pixels, linear light,
        unclamped, same phase as the input.

    Raises:
        ConfigError: ``batch`` below 1; ``amp`` on MPS with a torch older than 2.5.
    """
    if int(batch) < 1:
        raise ConfigError(f"tile batch {batch} must be at least 1")
    dev = resolve_device(device)
    check_amp(dev, amp)
    model = model.to(dev).eval()
    m = alignment_multiple(model)
    if tile:
        overlap_a = auto_overlap(model) if overlap is None else _round_up(max(0, int(overlap)), m)
        tile_a = max(m, (int(tile) // m) * m)
        if 2 * overlap_a >= tile_a:
            raised = _round_up(3 * overlap_a, m)
            log.info("tile %d px is too small for an overlap of %d px; using %d px",
                     tile, overlap_a, raised)
            tile_a = raised
    else:
        tile_a, overlap_a = 0, 0
    return _tiled(model, cfa, tile_a, overlap_a, dev, amp, progress, int(batch), prepend, prepare,
                  noise)


def check_amp(device: torch.device, amp: bool) -> None:
    """Refuse ``--amp`` on MPS with a torch that has no MPS autocast (before 2.5).

    Raises:
        ConfigError: naming ``--amp``, the installed and the needed torch version.
    """
    if amp and device.type == "mps" and torch_version() < MPS_MIN_TORCH:
        need = ".".join(map(str, MPS_MIN_TORCH))
        raise ConfigError(f"--amp on mps needs torch >= {need}, the first with float16 autocast "
                          f"on MPS (installed {torch.__version__}); drop --amp or upgrade torch")


#: Tests run the accelerator path (device-resident mosaic and output) on the CPU with this.
_RESIDENT_ON_CPU = False


@torch.inference_mode()
def _tiled(model: nn.Module, cfa: torch.Tensor | np.ndarray, tile: int, overlap: int,
           dev: torch.device, amp: bool, progress: bool, batch: int = 1,
           prepend: tuple[int, int] = (0, 0),
           prepare: Callable[[torch.Tensor, Span, Span], torch.Tensor] | None = None,
           noise: torch.Tensor | None = None) -> torch.Tensor:
    pattern = model.pattern
    if noise is not None:
        noise = noise.to(dev, torch.float32)
    mosaic = _as_mosaic(cfa)
    h, w = mosaic.shape
    m = alignment_multiple(model)
    a, b = (int(v) for v in prepend)
    if h < pattern.period or w < pattern.period:
        raise CFAError(f"array of {h}x{w} px is smaller than one CFA period ({pattern.period} px)")
    if not (0 <= a < pattern.period and 0 <= b < pattern.period):
        raise CFAError(f"prepend {prepend} must be in [0, {pattern.period}) rows and columns")
    # The plan covers the padded frame: `prepend` before the mosaic, then padding to multiples
    # of m after it (cfa.period_pad); both exist only inside the windows (frame_window).
    ph, pw = a + h + -(a + h) % m, b + w + -(b + w) % m
    if not tile:
        tile = max(ph, pw)
    plan = plan_tiles(ph, pw, tile, overlap, m)
    log.debug("tiling %dx%d (frame %dx%d) into %d windows of %d px, overlap %d, grid %d, batch %d",
              h, w, ph, pw, len(plan), tile, overlap, m, batch)

    # On an accelerator the mosaic goes over once and the output stays on the device until the
    # end: no host synchronisation per window, so the device never waits for the CPU. (Pinned
    # host buffers for these two copies are a lever still to measure on a GPU: allocating
    # page-locked memory for a 100 MP frame can cost more than the pageable copy it speeds up.)
    resident = _RESIDENT_ON_CPU or dev.type != "cpu"
    src = mosaic.to(dev, non_blocking=True) if resident else mosaic.cpu()
    out = torch.empty((3, h, w), dtype=torch.float32, device=dev if resident else "cpu")
    use_amp = amp and dev.type in ("cuda", "mps")
    autocast = torch.autocast(device_type=dev.type, dtype=torch.float16) if use_amp else nullcontext()

    def window(rs: Span, cs: Span) -> torch.Tensor:
        x = frame_window(src, rs, cs, (a, b), pattern.period).to(dev, non_blocking=True)
        return x if prepare is None else prepare(x.clone(), rs, cs)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(plan), desc="tiles", unit="tile", leave=False)
    for chunk in _batches(plan, batch):
        x = torch.stack([window(rs, cs) for rs, cs in chunk])[:, None]
        with autocast:
            y = call_model(model, x, None if noise is None else noise.expand(len(chunk), 2, 3))
        if y.shape != (len(chunk), 3, x.shape[-2], x.shape[-1]):
            raise CFAError(f"model {type(model).__name__} returned shape {tuple(y.shape)} for "
                           f"input {tuple(x.shape)}; expected ({len(chunk)}, 3, H, W)")
        for i, (rs, cs) in enumerate(chunk):
            # Keep the core, clipped to the mosaic's own pixels.
            r0, r1 = max(rs.core_start, a), min(rs.core_end, a + h)
            c0, c1 = max(cs.core_start, b), min(cs.core_end, b + w)
            if r1 > r0 and c1 > c0:
                core = y[i, :, r0 - rs.win_start:r1 - rs.win_start, c0 - cs.win_start:c1 - cs.win_start]
                out[:, r0 - a:r1 - a, c0 - b:c1 - b] = core.float() if resident else core.float().cpu()
        del x, y
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return out.cpu() if resident else out


def frame_window(arr: torch.Tensor, rs: Span, cs: Span, prepend: tuple[int, int], period: int
                 ) -> torch.Tensor:
    """The window ``rs x cs`` of the padded frame of ``arr`` (``(H, W)``, any dtype): ``arr``
    with ``prepend = (a, b)`` rows/columns before it and rows/columns after it, all copies of
    the same CFA phase (:func:`demosaic.cfa.phase_extend`), equal to that window of the
    whole padded frame. A view of ``arr`` where the window lies inside it (copy it before
    writing), else a new tensor. Needs the window to hold at least one period of ``arr``
    at each edge it extends (true for every window of :func:`plan_tiles` on the frame)."""
    a, b = prepend
    h, w = arr.shape[-2], arr.shape[-1]
    r0, r1, c0, c1 = rs.win_start - a, rs.win_end - a, cs.win_start - b, cs.win_end - b
    x = arr[..., max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
    top, bottom, left, right = max(0, -r0), max(0, r1 - h), max(0, -c0), max(0, c1 - w)
    if top or bottom or left or right:
        x = cfa_mod.phase_extend(x, period, top=top, bottom=bottom, left=left, right=right)
    return x


def _batches(plan: list[tuple[Span, Span]], batch: int) -> list[list[tuple[Span, Span]]]:
    """The windows of ``plan`` in groups of at most ``batch`` that share one shape (in plan
    order within a shape; the cores partition the image, so the order is free)."""
    by_shape: dict[tuple[int, int], list[tuple[Span, Span]]] = {}
    for rs, cs in plan:
        by_shape.setdefault((rs.win_end - rs.win_start, cs.win_end - cs.win_start), []).append((rs, cs))
    return [group[k:k + batch] for group in by_shape.values() for k in range(0, len(group), batch)]


def canonical_prepend(alignment: cfa_mod.Alignment) -> tuple[int, int]:
    """``(a, b)``: the rows and columns to put before a mosaic whose top-left layout has
    ``alignment`` so that it starts in the canonical phase (``a = (P - dy) % P``)."""
    p = alignment.pattern.period
    return (p - alignment.dy) % p, (p - alignment.dx) % p


def pad_to_canonical(cfa: torch.Tensor | np.ndarray, alignment: cfa_mod.Alignment
                     ) -> tuple[torch.Tensor, tuple[int, int]]:
    """Prepend rows/columns so an observed-phase mosaic starts in the canonical phase.

    The opposite of cropping by ``(dy, dx)``: ``a = (P - dy) % P`` rows and
    ``b = (P - dx) % P`` columns are added at the top/left, each a copy of the row/column one
    period further in (same filter colours), so no pixel of the file is lost and the output
    can be cropped back to the file's full visible size.

    Args:
        cfa: ``(H, W)`` mosaic whose top-left layout has ``alignment`` (``H, W >= P``).
        alignment: From :func:`demosaic.cfa.align` on the file's layout.

    Returns:
        ``((H + a, W + b) float32 tensor, (a, b))``; crop outputs with ``[..., a:, b:]``.
    """
    t = _as_mosaic(cfa)
    p = alignment.pattern.period
    h, w = t.shape
    if h < p or w < p:
        raise CFAError(f"mosaic of {h}x{w} px is smaller than one CFA period ({p} px)")
    a, b = canonical_prepend(alignment)
    if a == 0 and b == 0:
        return t, (0, 0)
    return cfa_mod.phase_extend(t, p, top=a, left=b), (a, b)
