"""The camera protocol of ``demosaic-eval``: methods measured on simulated raw files.

The clean protocol (:mod:`demosaic.evaluation.clean`) mosaics linear sRGB without noise at
the canonical phase. Real files differ: camera colour, white balance, sensor noise, black
level and quantisation, masked margins and any CFA phase. This protocol measures every
method on the **same DNG file** a camera would write, going through the same code a user's
raw goes through:

1. **Capture** (:func:`demosaic.evaluation.capture.prepare_case`): image ``index`` becomes
   a DNG of a named body at a fixed ISO, with a CFA phase and sensor margins drawn from
   ``(seed, index)`` and noise from ``(seed, index, iso)``, cached in ``cache_dir`` (with a
   padded copy for LibRaw under 512 px); see :mod:`demosaic.evaluation.capture`.
2. **Truth**: ``capture.target``, the clean raw-clipped scene in **balanced camera RGB**
   (green 1.0 at the white level, red/blue may exceed 1), recomputed on every run.
3. **Methods** (:func:`make_runner`), each returning balanced camera RGB of the visible area:

   - a model (checkpoint, packaged default, ``bilinear``...): :func:`demosaic.io.raw.read_raw`
     then :func:`demosaic.inference.develop.develop` with ``highlights="none"`` -- exactly
     ``demosaic-infer``'s path, minus the highlight step, so the metric sees the network
     itself (clipped regions are where highlight handling, not demosaicking, decides);
   - LibRaw baselines (``markesteijn3``, ``markesteijn1``, ``vng``, ``libraw_linear``,
     ``ahd``, ``dht``): :func:`demosaic.io.libraw.develop` of the same DNG (or its padded
     copy) with the camera's white balance (``use_camera_wb``), raw colour, linear 16-bit output,
     highlight clip and no flip; LibRaw divides the multipliers by their minimum, so the
     output is ``rgb16 / 65535 * min(multipliers)`` (checked: a neutral comes out equal in
     all channels). LibRaw clips each channel at that minimum's level, so balanced values
     above ``min(multipliers)`` (usually 1.0: green) are lost, which the metric counts;
   - other baselines (``demosaicnet``, colour-demosaicing): the balanced mosaic of
     ``read_raw`` (``white_balance_mosaic``), padded to canonical phase
     (:func:`~demosaic.inference.tiling.pad_to_canonical`), ``method.demosaic``, cropped back.
4. **Metrics** (:func:`camera_metrics`), ``border`` px excluded: ``psnr`` is PSNR of the
   balanced camera RGB (peak 1.0, unclipped); the other metrics of
   :func:`demosaic.metrics.report_metrics` (``psnr_srgb``, SSIM, texture, periodic score,
   false colour) and :func:`~demosaic.metrics.periodic_error_levels` are computed
   on both images converted to linear sRGB with the body's matrix
   (:func:`demosaic.color.camera_to_output_matrix`), i.e. on what a viewer sees
   (``psnr_linear_srgb`` is the linear PSNR there).

The images run through the shared loop (:mod:`demosaic.evaluation.loop`). The result is an
:class:`~demosaic.evaluation.report.EvalResult` (``info["protocol"] == "camera"``, ``iso``,
``camera``, ``seed``), written as ``results.json``/``results.md``
(:mod:`demosaic.evaluation.report`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

import demosaic
from demosaic.cfa import CFAPattern
from demosaic.color import apply_matrix, white_balance_mosaic
from demosaic.errors import ConfigError, DemosaicError
from demosaic.evaluation.capture import (
    DEFAULT_ISO, PROTOCOL_VERSION, CameraCase, CameraProtocol, CaptureConditions, prepare_case,
)
from demosaic.evaluation.loop import Measured, run_loop
from demosaic.evaluation.report import EvalResult, ReportSpec, publish, render_camera_markdown
from demosaic import metrics as metric_fns
from demosaic.metrics import image_artifact_flag, periodic_error_levels, report_metrics, set_verdicts

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------


def make_runner(method: Any, device: str | torch.device = "cpu", tile: int | None = None,
                highlights: str = "none", denoise: float = 1.0
                ) -> tuple[Callable[[CameraCase], np.ndarray], str]:
    """How ``method`` develops a :class:`CameraCase`: ``(runner, route)``.

    ``route`` is ``"develop"`` (a model: ``read_raw`` + :func:`~demosaic.inference.develop.develop`
    with ``highlights``, off by default, and ``denoise``; a noise-aware model's level comes
    from the file as for ``demosaic-infer``), ``"libraw"`` (a :class:`~demosaic.models.baselines.LibRawBaseline`: LibRaw
    on the DNG) or ``"mosaic"`` (any other baseline: its ``demosaic`` on the balanced mosaic).
    Each runner returns ``(3, H, W)`` float32 balanced camera RGB of the visible area.
    """
    from demosaic.io.raw import read_raw
    from demosaic.models.baselines import LIBRAW_ALGORITHMS, LibRawBaseline

    dev = torch.device(device)
    if isinstance(method, LibRawBaseline):
        algorithm = LIBRAW_ALGORITHMS[method.name][0]

        def run_libraw(case: CameraCase) -> np.ndarray:
            return _libraw_case(case, algorithm)

        return run_libraw, "libraw"
    if isinstance(method, torch.nn.Module):
        from demosaic.inference.develop import DEFAULT_TILE, develop

        net = method.to(dev).eval()

        def run_develop(case: CameraCase) -> np.ndarray:
            raw = read_raw(case.dng)
            with torch.inference_mode():
                rgb = develop(raw, net, device=dev, tile=tile if tile is not None else DEFAULT_TILE,
                              highlights=highlights, denoise=denoise)
            return rgb.float().cpu().numpy()

        return run_develop, "develop"
    if not hasattr(method, "demosaic"):
        raise ConfigError(f"cannot evaluate {type(method).__name__} under the camera protocol: "
                          "it needs .pattern and .demosaic()")
    from demosaic.inference.tiling import pad_to_canonical

    def run_mosaic(case: CameraCase) -> np.ndarray:
        raw = read_raw(case.dng)
        bal = white_balance_mosaic(np.asarray(raw.cfa, dtype=np.float32), raw.layout, raw.wb_multipliers)
        padded, (a, b) = pad_to_canonical(torch.from_numpy(np.ascontiguousarray(bal)), raw.alignment)
        with torch.inference_mode():
            out = method.demosaic(padded[None].to(dev))
        return np.ascontiguousarray(out[..., a:, b:].float().cpu().numpy())

    return run_mosaic, "mosaic"


def _libraw_case(case: CameraCase, algorithm: str) -> np.ndarray:
    """LibRaw's development (:func:`demosaic.io.libraw.develop`, camera white balance, one
    thread) of the case's DNG, or of its padded copy cropped back to the visible ``(H, W)``."""
    from demosaic.io.libraw import develop

    path = case.padded if case.padded is not None else case.dng
    out = develop(path, algorithm, "camera")
    h, w = case.target.shape[1:]
    if out.shape[1] < h or out.shape[2] < w:
        raise DemosaicError(f"LibRaw ({algorithm}) returned {out.shape[1]}x{out.shape[2]} px "
                            f"for {path}, expected at least {h}x{w}")
    return np.ascontiguousarray(out[:, :h, :w])


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def to_srgb_linear(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``matrix @ rgb`` per pixel: ``(3, H, W)`` float32 (balanced camera RGB -> linear sRGB)."""
    return apply_matrix(np.asarray(rgb, np.float32), matrix)  # the matrix in float32


def camera_metrics(pred: np.ndarray, target: np.ndarray, pred_srgb: np.ndarray,
                   target_srgb: np.ndarray, border: int, period: int) -> dict[str, float]:
    """Metrics of one developed image (see the module docstring, step 4).

    Args:
        pred, target: ``(3, H, W)`` balanced camera RGB (white 1.0 in green).
        pred_srgb, target_srgb: The same in linear sRGB through the body's matrix
            (:func:`to_srgb_linear` with :attr:`CameraCase.srgb_matrix`).
        border: px excluded per side; period: CFA period (periodic metrics).

    Returns:
        ``psnr`` (balanced camera RGB, peak 1), ``psnr_linear_srgb``, ``psnr_srgb``, ``ssim``,
        ``texture_score``, ``periodic_artifact_score``, ``false_colour_score``, ``hdr_error``,
        ``periodic_levels`` (all but ``psnr`` on the linear-sRGB view).
    """
    out = report_metrics(torch.from_numpy(pred_srgb), torch.from_numpy(target_srgb), border, period)
    out["psnr_linear_srgb"] = out["psnr"]
    out["psnr"] = float(metric_fns.psnr(pred, target, peak=1.0, border=border))  # looked up per call
    out["periodic_levels"] = periodic_error_levels(pred_srgb, target_srgb, border, period)
    return out


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


def evaluate_camera(
    method: Any,
    images: Iterable[Any],
    *,
    iso: float = DEFAULT_ISO,
    camera: str | None = None,
    seed: int = 0,
    conditions: CaptureConditions | None = None,
    highlights: str = "none",
    denoise: float = 1.0,
    cache_dir: str | os.PathLike[str],
    border: int = 12,
    max_margin: int = 12,
    report: ReportSpec | None = None,
    device: str | torch.device = "cpu",
    tile: int | None = None,
) -> EvalResult:
    """Evaluate a model or baseline under the camera protocol (module docstring).

    Args:
        method: A model (``nn.Module`` with ``pattern``), a LibRaw baseline or any baseline
            with ``pattern`` and ``demosaic``; its CFA family picks the simulated sensor.
        images: ``(name, rgb_linear)`` or ``(name, rgb_linear, info)`` items, as
            :func:`demosaic.evaluation.clean.evaluate` takes (e.g. ``images_from_dataset``).
        iso, camera, seed, max_margin, conditions: Capture settings (:class:`~demosaic.evaluation.capture.CameraProtocol`).
        highlights: Highlight mode of the models' ``develop`` (default ``"none"``: the metric
            sees the network; ``"clip"`` is ``demosaic-infer``'s default). LibRaw always clips.
        denoise: ``demosaic-infer``'s ``--denoise`` for noise-aware models (others ignore it).
        cache_dir: Folder of the DNGs (reused across methods and runs).
        border: px excluded by the metrics.
        report: :class:`~demosaic.evaluation.report.ReportSpec` (names, output folder,
            progress bar, extra ``results.json`` fields); its worst crops are PNGs of truth |
            output in the sRGB view under ``out_dir/crops``, and the worst window of every
            image is recorded in ``info["worst_windows"]`` anyway as ``[score, y, x]``.
            Default: nothing written, no crops.
        device, tile: Torch device and tile size of models.

    Returns:
        :class:`~demosaic.evaluation.report.EvalResult` with ``info["protocol"] == "camera"``.
    """
    pattern = getattr(method, "pattern", None)
    if not isinstance(pattern, CFAPattern):
        raise ConfigError(f"cannot evaluate {type(method).__name__}: it has no CFA pattern")
    protocol = CameraProtocol(family=pattern.family, iso=iso, camera=camera, seed=seed,
                              max_margin=max_margin, border=border,
                              conditions=conditions or CaptureConditions())
    protocol.check()
    p = pattern.period
    rep = report or ReportSpec(worst_crops=0)
    crop_size, evalset = rep.crop_size // p * p, rep.evalset
    runner, route = make_runner(method, device, tile, highlights, denoise)
    label, out_path = rep.label(method), rep.out_path
    cases: list[dict[str, Any]] = []

    def measure(index: int, name: str, rgb: np.ndarray) -> Measured:
        case = prepare_case(name, rgb, index, protocol, cache_dir)
        cases.append({"name": name, "dng": str(case.dng), "phase": list(case.phase),
                      "margins": list(case.margins),
                      "multipliers": [round(float(v), 6) for v in case.multipliers]})
        m = _measure_case(runner, case, label, name, border, p)
        log.debug("%s %s: PSNR %.3f dB (%.2f s)", label, name, m.metrics["psnr"], m.seconds)
        return m

    out = run_loop(images, measure, desc=f"camera {label}", progress=rep.progress, period=p,
                   border=border, crop_size=crop_size, keep=rep.crops_to_keep(),
                   record_windows=True, evalset=evalset)
    meta = _camera_meta(protocol, route, highlights, device, cache_dir, out.images, out.mean, p,
                        out.windows, crop_size, cases,
                        {**(rep.info or {}), **({"denoise": denoise} if getattr(method, "noise_input", False)
                                        else {})})
    result = EvalResult(label, rep.kind_of(method), pattern.name, evalset, border, out.images,
                        out.mean, out.megapixels_per_s, {}, [], meta,
                        str(out_path) if out_path is not None else None)
    publish(result, out.candidates, out_path, rep.zoom, crop_size, render=render_camera_markdown)
    log.info("%s on %s, camera protocol (%s, ISO %g, %d images): PSNR %.3f dB (camera RGB), "
             "sRGB PSNR %.3f dB", label, evalset or "images", meta["camera"], float(iso),
             len(out.images), out.mean.get("psnr", float("nan")), out.mean.get("psnr_srgb", float("nan")))
    return result


def _measure_case(runner: Any, case: CameraCase, label: str, img_name: str, border: int,
                  period: int) -> Measured:
    """Develop one capture (timed) and measure it.

    Returns:
        :class:`~demosaic.evaluation.loop.Measured`: truth and prediction ``(3, H, W)`` as
        linear sRGB (the view worst regions are judged in), the seconds, the metrics.
    """
    t0 = time.perf_counter()
    pred = runner(case)
    dt = time.perf_counter() - t0
    if pred.shape != case.target.shape:
        raise DemosaicError(f"{label} returned {pred.shape} for the {case.target.shape} "
                            f"capture of {img_name!r} ({case.dng})")
    mat = case.srgb_matrix
    ps, ts = to_srgb_linear(pred, mat), to_srgb_linear(case.target, mat)
    metrics = camera_metrics(pred, case.target, ps, ts, border, period)
    metrics["periodic_artifact_flag"] = image_artifact_flag(metrics)
    return Measured(ts, ps, dt, metrics)


def _camera_meta(protocol: CameraProtocol, route: str, highlights: str, device: str | torch.device,
                 cache_dir: str | os.PathLike[str], results: list[Any], mean: dict[str, float],
                 period: int, windows: dict[str, list[float]], crop_size: int,
                 cases: list[dict[str, Any]], info: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``info`` of a camera-protocol :class:`~demosaic.evaluation.report.EvalResult`."""
    body = protocol.body()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device), "torch_threads": torch.get_num_threads(),
        "versions": {"demosaic": demosaic.__version__, "torch": torch.__version__},
        "protocol": "camera",
        "camera_protocol": {
            "version": PROTOCOL_VERSION, "iso": float(protocol.iso), "camera": body.name,
            "seed": int(protocol.seed), "border": protocol.border,
            "max_margin": protocol.max_margin, "route": route,
            "highlights": "libraw clip" if route == "libraw" else highlights,
            "capture": ("daylight, exact as-shot WB, 14 bit, default headroom/noise"
                        if protocol.conditions == CaptureConditions()
                        else protocol.conditions.label() + ", default noise model"),
            "conditions": dataclasses.asdict(protocol.conditions),
            "metrics": "psnr: balanced camera RGB (peak 1); others: linear sRGB via the body matrix",
            "cache_dir": str(cache_dir),
        },
        "iso": float(protocol.iso), "camera": body.name, "seed": int(protocol.seed),
        "flagged_images": [r.name for r in results if r.metrics.get("periodic_artifact_flag")],
        "verdicts": set_verdicts(mean, period), "worst_windows": windows, "crop_size": crop_size,
        "cases": cases,
        **dict(info or {}),
    }


__all__ = ["camera_metrics", "evaluate_camera", "make_runner", "to_srgb_linear"]
