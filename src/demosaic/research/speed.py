"""Quality/speed pairs for inference optimisation: INT8 quantization and adaptive tiling.

INT8 (:func:`int8_quality_speed`) reuses :func:`demosaic.export.export_model`: the
checkpoint is exported to ONNX (float) and quantized (static QDQ or dynamic INT8
convolutions); quality is export's PSNR on its synthetic test scene (float, INT8, INT8 vs
float) and speed the median wall time of onnxruntime on one ``(1, 1, H, W)`` mosaic for each
file (same session options, CPU).

Adaptive tiling (:func:`adaptive_tiled_demosaic`) covers the image with blocks of
``2 * tile`` px. A block whose mosaic is smooth (relative same-colour detail, see
:func:`block_detail`, under ``smooth_threshold``) runs as ONE window of core ``2 * tile`` with
a small overlap ``smooth_overlap``; a detailed block runs as four windows of core ``tile``
with the full overlap. Larger windows and smaller overlaps mean fewer pixels computed; in a
smooth region the cut receptive field costs little accuracy. The result is compared with the
exact whole-image output (and the truth, when given) and timed against uniform tiling
(:func:`demosaic.inference.tiling.tiled_demosaic`).
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from demosaic import cfa as cfa_mod
from demosaic.inference.tiling import alignment_multiple, auto_overlap, tiled_demosaic
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def int8_quality_speed(checkpoint: str | os.PathLike[str], size: tuple[int, int] = (192, 288),
                       mode: str = "static", repeats: int = 5, threads: int = 1,
                       work_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Export ``checkpoint`` to float and INT8 ONNX; return quality (dB) and speed (s, MP/s).

    Needs the ``export`` extra (onnx, onnxruntime). ``threads``: onnxruntime intra-op threads.
    """
    from demosaic.export import export_model
    from demosaic.sim.scenes import scene_mosaic

    import onnxruntime as ort

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        report = export_model(checkpoint, "onnx", Path(tmp) / "model.onnx", int8=mode, size=size)  # type: ignore[arg-type]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        from demosaic.models.checkpoint import load_model

        model = load_model(checkpoint)
        m = model.size_multiple
        h, w = (max(m, s // m * m) for s in size)
        cfa, _ = scene_mosaic(model.pattern, h, w, 1)
        out: dict[str, Any] = {"mode": mode, "size": [h, w], "threads": threads,
                               "psnr_float_db": report.psnr_float_db, "psnr_int8_db": report.psnr_int8_db,
                               "psnr_int8_vs_float_db": report.psnr_int8_vs_float_db}
        for label, path in (("float", report.path), ("int8", report.int8_path)):
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            sec = _median_time(lambda s=sess: s.run(None, {"cfa": cfa}), repeats)
            out[f"seconds_{label}"] = sec
            out[f"mp_per_s_{label}"] = h * w / 1e6 / sec
    out["speedup"] = out["seconds_float"] / out["seconds_int8"]
    log.info("int8 %s: %.2f -> %.2f dB, %.4f -> %.4f s (x%.2f)", mode, out["psnr_float_db"],
             out["psnr_int8_db"], out["seconds_float"], out["seconds_int8"], out["speedup"])
    return out


# --------------------------------------------------------------------------------------
# Adaptive tiling
# --------------------------------------------------------------------------------------


def block_detail(mosaic: torch.Tensor, period: int) -> float:
    """Relative same-colour detail of a mosaic block ``(H, W)``: mean absolute difference
    between pixels one period apart (same filter colour), horizontally and vertically,
    divided by the block's mean absolute value (so it does not depend on exposure)."""
    x = mosaic.reshape(mosaic.shape[-2:]).float()
    dx = (x[:, period:] - x[:, :-period]).abs().mean() if x.shape[1] > period else x.new_zeros(())
    dy = (x[period:, :] - x[:-period, :]).abs().mean() if x.shape[0] > period else x.new_zeros(())
    return float((dx + dy) / 2 / (x.abs().mean() + 1e-6))


@dataclass
class AdaptivePlan:
    """Windows of an adaptive tiling: ``(win_y0, win_y1, win_x0, win_x1, core_y0, core_y1,
    core_x0, core_x1)`` in padded coordinates, and how many blocks were smooth."""

    windows: list[tuple[int, int, int, int, int, int, int, int]]
    smooth_blocks: int
    detailed_blocks: int

    @property
    def pixels(self) -> int:
        """Pixels the model computes (sum of window areas)."""
        return sum((w[1] - w[0]) * (w[3] - w[2]) for w in self.windows)


def plan_adaptive(padded: torch.Tensor, tile: int, overlap: int, smooth_overlap: int, multiple: int,
                  period: int, smooth_threshold: float) -> AdaptivePlan:
    """Plan windows over a padded mosaic ``(H, W)`` (multiples of ``multiple``)."""
    h, w = padded.shape
    big = 2 * tile
    windows = []
    n_smooth = n_detail = 0

    def add(y0: int, y1: int, x0: int, x1: int, ov: int) -> None:
        windows.append((max(0, y0 - ov), min(h, y1 + ov), max(0, x0 - ov), min(w, x1 + ov), y0, y1, x0, x1))

    for by in range(0, h, big):
        for bx in range(0, w, big):
            y1, x1 = min(h, by + big), min(w, bx + big)
            if block_detail(padded[by:y1, bx:x1], period) < smooth_threshold:
                n_smooth += 1
                add(by, y1, bx, x1, smooth_overlap)
            else:
                n_detail += 1
                for sy in range(by, y1, tile):
                    for sx in range(bx, x1, tile):
                        add(sy, min(y1, sy + tile), sx, min(x1, sx + tile), overlap)
    for win in windows:
        if any(v % multiple for v in win[:4]):
            raise ConfigError(f"adaptive tiling: window {win[:4]} is off the {multiple}-px grid; "
                              "tile and overlaps must be multiples of it")
    return AdaptivePlan(windows, n_smooth, n_detail)


@torch.inference_mode()
def adaptive_tiled_demosaic(model: nn.Module, cfa: torch.Tensor, *, tile: int = 96,
                            overlap: int | None = None, smooth_overlap: int | None = None,
                            smooth_threshold: float = 0.5) -> tuple[torch.Tensor, AdaptivePlan]:
    """Demosaic ``cfa (H, W)`` (canonical phase, linear light) with adaptive tiles.

    Args:
        model: ``DemosaicModel`` in eval mode (CPU).
        tile: Core side of a detailed tile (rounded up to the alignment multiple ``m``);
            smooth blocks use cores of ``2 * tile``.
        overlap: Context of detailed tiles (default :func:`auto_overlap`: exact).
        smooth_overlap: Context of smooth blocks (default ``m``).
        smooth_threshold: :func:`block_detail` below which a block counts as smooth.

    Returns:
        ``(rgb (3, H, W) float32, plan)``.
    """
    m = alignment_multiple(model)
    r = lambda v: int(math.ceil(v / m) * m)  # noqa: E731
    tile_a = r(tile)
    ov = r(auto_overlap(model) if overlap is None else overlap)
    sov = r(m if smooth_overlap is None else smooth_overlap)
    mosaic = cfa.reshape(cfa.shape[-2:]).float()
    h, w = mosaic.shape
    padded, _ = cfa_mod.period_pad(mosaic, model.pattern, m)
    plan = plan_adaptive(padded, tile_a, ov, sov, m, model.pattern.period, smooth_threshold)
    out = torch.empty((3, h, w), dtype=torch.float32)
    for wy0, wy1, wx0, wx1, cy0, cy1, cx0, cx1 in plan.windows:
        y = model(padded[wy0:wy1, wx0:wx1][None, None])[0]
        ry1, rx1 = min(cy1, h), min(cx1, w)
        if ry1 > cy0 and rx1 > cx0:
            out[:, cy0:ry1, cx0:rx1] = y[:, cy0 - wy0:ry1 - wy0, cx0 - wx0:rx1 - wx0]
    return out, plan


@dataclass
class TilingComparison:
    """One tiling strategy: time, pixels computed, and PSNR against the whole-image output
    and the truth (dB, linear, peak 1)."""

    strategy: str
    seconds: float
    pixels_computed: int
    psnr_vs_whole_db: float
    psnr_vs_truth_db: float


def _psnr(a: torch.Tensor, b: torch.Tensor, border: int = 12) -> float:
    from demosaic import metrics

    return float(metrics.psnr(a, b, border=border))


def compare_tiling(model: nn.Module, truth: np.ndarray | torch.Tensor, *, tile: int = 96,
                   smooth_threshold: float = 0.5, repeats: int = 3) -> list[dict[str, Any]]:
    """Whole image vs uniform tiling (exact overlap, and small overlap) vs adaptive tiling on
    the mosaic of ``truth (3, H, W)`` (linear light); returns one dict per strategy."""
    truth_t = torch.as_tensor(np.asarray(truth, dtype=np.float32))
    m = alignment_multiple(model)
    h, w = (truth_t.shape[-2] // model.pattern.period * model.pattern.period,
            truth_t.shape[-1] // model.pattern.period * model.pattern.period)
    truth_t = truth_t[:, :h, :w]
    mosaic = torch.as_tensor(cfa_mod.mosaic(truth_t.numpy(), model.pattern), dtype=torch.float32)
    model = model.eval()
    whole = tiled_demosaic(model, mosaic, tile=0, device="cpu")
    ov = auto_overlap(model)
    rows = []

    def add(name: str, fn, pixels: int) -> None:
        out = fn()
        sec = _median_time(fn, repeats)
        rows.append(TilingComparison(name, sec, pixels, _psnr(out, whole), _psnr(out, truth_t)))

    ph, pw = (math.ceil(h / m) * m, math.ceil(w / m) * m)
    add("whole image", lambda: tiled_demosaic(model, mosaic, tile=0, device="cpu"), ph * pw)
    from demosaic.inference.tiling import plan_tiles

    for label, o in ((f"uniform tile {tile + 2 * ov} overlap {ov} (exact)", ov),
                     (f"uniform tile {tile + 2 * m} overlap {m}", m)):
        t_a = tile + 2 * o
        plan = plan_tiles(ph, pw, t_a, o, m)
        px = sum((rs.win_end - rs.win_start) * (cs.win_end - cs.win_start) for rs, cs in plan)
        add(label, lambda t_a=t_a, o=o: tiled_demosaic(model, mosaic, tile=t_a, overlap=o, device="cpu"), px)
    _, aplan = adaptive_tiled_demosaic(model, mosaic, tile=tile, smooth_threshold=smooth_threshold)
    add(f"adaptive tile {tile}/{2 * tile} (smooth<{smooth_threshold:g}: {aplan.smooth_blocks} of "
        f"{aplan.smooth_blocks + aplan.detailed_blocks} blocks)",
        lambda: adaptive_tiled_demosaic(model, mosaic, tile=tile, smooth_threshold=smooth_threshold)[0],
        aplan.pixels)
    return [asdict(r) for r in rows]


__all__ = ["int8_quality_speed", "block_detail", "plan_adaptive", "adaptive_tiled_demosaic",
           "AdaptivePlan", "compare_tiling", "TilingComparison"]
