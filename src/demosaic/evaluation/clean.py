"""Evaluation of a model or baseline on a set of ground-truth images.

Protocol (the same for every method, see docs/BENCHMARKS.md):

1. Each truth image ``(3, H, W)`` is linear light (8-bit sRGB files are decoded by the
   dataset); it is cropped at the bottom/right to multiples of the CFA period, so its
   top-left pixel is the pattern's canonical phase ``(0, 0)``.
2. It is mosaicked in linear light with the method's CFA (:func:`demosaic.cfa.mosaic`): the
   mosaic holds the exact truth value of each pixel's filter colour (noise-free).
3. The method demosaics it (``method.demosaic(cfa)`` under :func:`torch.inference_mode`); the
   wall time of that call gives the throughput (megapixels per second).
4. :func:`demosaic.metrics.report_metrics` compares output and truth with ``border`` px
   excluded on every side: PSNR (linear and sRGB-encoded), SSIM, texture score, periodic-
   artifact score, false-colour score, HDR error; :func:`~demosaic.metrics.periodic_error_levels`
   adds the amplitude of the CFA-periodic error (8-bit levels). A grid artifact is flagged
   when both the spectral score and that amplitude exceed their limits
   (:func:`~demosaic.metrics.artifact_flag`). Set averages are means over images.
5. HDR probe (``hdr_gain > 0``): a centre crop of at most ``hdr_probe_size`` px of the truth
   is multiplied by ``hdr_gain`` (pushing much of it above 1.0), mosaicked and demosaicked;
   ``hdr_probe_error`` is the relative error on the regions above 1.0 (``hdr_error``) and
   ``hdr_probe_ratio`` that error divided by the error of the unexposed crop's output times
   ``hdr_gain`` on the same pixels: 1.0 when the output scales with exposure (highlights
   pass through), far above 1 when the method clips or saturates.
6. The worst regions (largest mean squared error of sRGB-encoded values in a
   ``crop_size`` window) are saved as PNG comparisons: truth | output | each ``compare``
   baseline, side by side, magnified ``zoom`` times (nearest neighbour).

The images run through the shared loop (:mod:`demosaic.evaluation.loop`). Outputs in
``out_dir`` (:mod:`demosaic.evaluation.report`): ``results.json`` (everything),
``results.md`` (tables), ``crops/*.png`` and, with ``save_exr``, ``exr/<image>.exr`` (linear
float32 outputs).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

import demosaic
from demosaic import cfa as cfa_mod
from demosaic.cfa import CFAPattern
from demosaic.devices import synchronize
from demosaic.errors import ConfigError, DemosaicError
from demosaic.evaluation.loop import Measured, per_type, run_loop
from demosaic.evaluation.report import EvalResult, ImageResult, PanelMaker, ReportSpec, publish
from demosaic import metrics as metric_fns
from demosaic.metrics import image_artifact_flag, periodic_error_levels, report_metrics, set_verdicts

log = logging.getLogger(__name__)


def images_from_dataset(dataset: Any) -> Iterator[tuple[str, np.ndarray, dict[str, Any]]]:
    """Adapt a :mod:`demosaic.data` dataset to :func:`evaluate`'s image iterable.

    Uses each item's ``target`` (linear truth) and ``name`` (folder sets); torture sets get
    names ``<index>_<type name>`` and their pattern type in the info dict.
    """
    type_of = getattr(dataset, "type_of", None)
    type_names: Sequence[str] = ()
    if type_of is not None:
        from demosaic.data.torture import TYPE_NAMES

        type_names = TYPE_NAMES
    for i in range(len(dataset)):
        item = dataset[i]
        info: dict[str, Any] = {}
        if type_of is not None:
            tid = int(type_of(i))
            info = {"type_id": tid, "type_name": type_names[tid]}
            name = f"{i:05d}_{type_names[tid]}"
        else:
            name = str(item.get("name", f"{i:05d}"))
        target = item["target"]
        yield name, target.numpy() if isinstance(target, torch.Tensor) else np.asarray(target), info


def _hdr_probe(method: Any, rgb: np.ndarray, pattern: CFAPattern, gain: float, size: int,
               border: int, device: torch.device) -> tuple[float, float]:
    """HDR probe on a centre crop: ``(error, ratio)``.

    ``error`` is :func:`~demosaic.metrics.hdr_error` of the method on the crop exposed
    ``gain`` times (regions above 1.0 only); ``ratio`` divides it by the error of the
    unexposed crop's output scaled by ``gain`` on the same pixels: 1.0 for a method whose
    output scales with exposure (HDR passes through), much more for one that clips.
    """
    p = pattern.period
    h, w = rgb.shape[1:]
    sh, sw = min(h, size) // p * p, min(w, size) // p * p
    y0, x0 = (h - sh) // 2 // p * p, (w - sw) // 2 // p * p
    base = torch.from_numpy(np.ascontiguousarray(rgb[:, y0:y0 + sh, x0:x0 + sw]))
    truth = base * gain
    b = min(border, max(0, (min(sh, sw) - 2 * p) // 2))
    pred = method.demosaic(cfa_mod.mosaic(truth, pattern).to(device)).float().cpu()
    ref = method.demosaic(cfa_mod.mosaic(base, pattern).to(device)).float().cpu() * gain
    err = float(metric_fns.hdr_error(pred, truth, border=b))  # looked up per call (device guards wrap it)
    ref_err = float(metric_fns.hdr_error(ref, truth, border=b))
    ratio = err / ref_err if ref_err > 0 else (1.0 if err == 0 else math.inf)
    return err, ratio


def evaluate(
    method: Any,
    images: Iterable[Any],
    pattern: CFAPattern | str | None = None,
    *,
    border: int = 12,
    report: ReportSpec | None = None,
    compare: Sequence[str] = (),
    save_exr: bool = False,
    hdr_gain: float = 4.0,
    hdr_probe_size: int = 256,
    device: str | torch.device = "cpu",
) -> EvalResult:
    """Evaluate a model or baseline on ground-truth images.

    Args:
        method: Anything with ``pattern`` and ``demosaic(cfa (1, H, W)) -> (3, H, W)``: a
            :class:`~demosaic.models.base.DemosaicModel` (moved to ``device``, eval mode) or a
            baseline of :mod:`demosaic.models.baselines`.
        images: Iterable of ``(name, rgb_linear)`` or ``(name, rgb_linear, info)`` with
            ``rgb_linear`` a ``(3, H, W)`` linear-light array/tensor (white 1.0, unclamped)
            and ``info`` optionally holding ``type_id``/``type_name`` (torture);
            :func:`images_from_dataset` adapts a dataset.
        pattern: CFA to mosaic with; default (and it must equal) ``method.pattern``.
        border: px excluded on every side by the metrics.
        report: Names, worst crops, output folder, progress bar and extra ``results.json``
            fields (:class:`~demosaic.evaluation.report.ReportSpec`; default: its defaults, nothing written).
        compare: Baseline names (:func:`demosaic.models.baselines.build_method`) shown next
            to the output in the crops; a baseline that cannot run is skipped with a warning.
        save_exr: Also write each output as ``exr/<name>.exr`` (linear float32).
        hdr_gain: Exposure gain of the HDR probe; 0 disables it.
        hdr_probe_size: Side of the centre crop the HDR probe uses (px).
        device: Torch device for models.

    Returns:
        The :class:`~demosaic.evaluation.report.EvalResult` (also written as JSON and Markdown when ``out_dir`` is set).

    Raises:
        ConfigError: bad arguments or images; CFAError: mismatched pattern.
    """
    dev = torch.device(device)
    rep = report or ReportSpec()
    pat = _check_method(method, pattern, border)
    p = pat.period
    crop_size, evalset = rep.crop_size // p * p, rep.evalset
    if rep.worst_crops and crop_size < p:
        raise ConfigError(f"crop_size must be at least one CFA period ({p} px)")
    if isinstance(method, torch.nn.Module):
        method = method.to(dev).eval()
    label, out_path = rep.label(method), rep.out_path

    def measure(index: int, name: str, rgb: np.ndarray) -> Measured:
        return _evaluate_image(method, label, name, rgb, pat, border, hdr_gain, hdr_probe_size,
                               dev, warm_up=index == 0)

    def write_exr(index: int, name: str, m: Measured) -> None:
        from demosaic.io.images import write_exr as write

        write(out_path / "exr" / f"{name}.exr", m.pred, half=False,  # type: ignore[operator]
              metadata={"method": label, "evalset": evalset})

    with torch.inference_mode():
        out = run_loop(images, measure, desc=f"eval {label}", progress=rep.progress, period=p,
                       border=border, crop_size=crop_size, keep=rep.crops_to_keep(),
                       evalset=evalset, on_image=write_exr if out_path is not None and save_exr else None)
    meta = _clean_meta(dev, border, hdr_gain, hdr_probe_size, out.images, out.mean, p, rep.info)
    result = EvalResult(label, rep.kind_of(method), pat.name, evalset, border, out.images, out.mean,
                        out.megapixels_per_s, per_type(out.images), [], meta,
                        str(out_path) if out_path is not None else None)
    panels = comparison_panels(compare, label, pat, crop_size) if out.candidates else None
    publish(result, out.candidates, out_path, rep.zoom, crop_size, panels)
    log.info("%s on %s (%d images): PSNR %.3f dB, sRGB PSNR %.3f dB, SSIM %.4f, %.2f MP/s",
             label, evalset or "images", len(out.images), out.mean.get("psnr", float("nan")),
             out.mean.get("psnr_srgb", float("nan")), out.mean.get("ssim", float("nan")),
             out.megapixels_per_s)
    return result


def _clean_meta(dev: torch.device, border: int, hdr_gain: float, hdr_probe_size: int,
                images: Sequence[ImageResult], mean: dict[str, float], period: int,
                info: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``info`` of a clean-protocol :class:`~demosaic.evaluation.report.EvalResult`."""
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(dev), "torch_threads": torch.get_num_threads(),
        "versions": {"demosaic": demosaic.__version__, "torch": torch.__version__},
        "protocol": {"border": border, "mosaic": "linear light, noise-free, canonical phase",
                     "hdr_gain": hdr_gain, "hdr_probe_size": hdr_probe_size},
        "flagged_images": [r.name for r in images if r.metrics.get("periodic_artifact_flag")],
        "verdicts": set_verdicts(mean, period),
        **dict(info or {}),
    }


def _check_method(method: Any, pattern: CFAPattern | str | None, border: int) -> CFAPattern:
    """The CFA to evaluate with (the method's own); raises on a method that cannot demosaic,
    another pattern or a negative border."""
    if not hasattr(method, "demosaic") or not hasattr(method, "pattern"):
        raise ConfigError(f"cannot evaluate {type(method).__name__}: it needs .pattern and .demosaic()")
    pat = cfa_mod.get_pattern(pattern) if pattern is not None else method.pattern
    if pat != method.pattern:
        raise cfa_mod.CFAError(f"evaluation pattern {pat.name!r} differs from the method's "
                               f"{method.pattern.name!r}; evaluate with the method's own CFA")
    if border < 0:
        raise ConfigError(f"border={border} must be >= 0")
    return pat


def _evaluate_image(method: Any, label: str, img_name: str, rgb: np.ndarray, pat: CFAPattern,
                    border: int, hdr_gain: float, hdr_probe_size: int, dev: torch.device,
                    warm_up: bool) -> Measured:
    """Mosaic one image (cropped to whole periods), demosaic it (timed) and measure it.

    Returns:
        :class:`~demosaic.evaluation.loop.Measured`: truth and prediction ``(3, h, w)``
        linear, the timed seconds, the metrics; the truth is kept as the crops' context.
    """
    p = pat.period
    h, w = rgb.shape[1] // p * p, rgb.shape[2] // p * p
    if h < p or w < p:
        raise ConfigError(f"image {img_name!r} ({rgb.shape[1]}x{rgb.shape[2]}) is smaller "
                          f"than one CFA period")
    truth_np = np.ascontiguousarray(rgb[:, :h, :w])
    truth = torch.from_numpy(truth_np)
    cfa = cfa_mod.mosaic(truth, pat).to(dev)
    if warm_up:  # first-call costs (allocators, lazy init) stay out of the timing
        method.demosaic(cfa[..., : min(h, 8 * p), : min(w, 8 * p)])
    synchronize(dev)
    t0 = time.perf_counter()
    pred = method.demosaic(cfa)
    synchronize(dev)
    dt = time.perf_counter() - t0
    pred = pred.float().cpu()
    if pred.shape != truth.shape:
        raise DemosaicError(f"{label} returned {tuple(pred.shape)} for a "
                            f"{tuple(truth.shape)} image {img_name!r}")
    metrics = report_metrics(pred, truth, border, p)
    if hdr_gain > 0:
        metrics["hdr_probe_error"], metrics["hdr_probe_ratio"] = _hdr_probe(
            method, truth_np, pat, hdr_gain, hdr_probe_size, border, dev)
    metrics["periodic_levels"] = periodic_error_levels(pred.numpy(), truth_np, border, p)
    metrics["periodic_artifact_flag"] = image_artifact_flag(metrics)
    return Measured(truth_np, pred.numpy(), dt, metrics, context=truth_np)


def comparison_panels(compare: Sequence[str], label: str, pattern: CFAPattern, size: int
                      ) -> PanelMaker | None:
    """The crops' comparison panels: each ``compare`` baseline (other than ``label``; one
    that cannot be built is skipped with a warning) demosaics the region around a crop, with
    ``4 * period`` px of context (the region's origin stays a multiple of the period), and
    its ``size`` px crop is shown. ``None`` without baselines to compare."""
    from demosaic.models.baselines import build_method

    others: list[tuple[str, Any]] = []
    for cname in compare:
        if cname == label:
            continue
        try:
            others.append((cname, build_method(cname, pattern.name)))
        except DemosaicError as exc:
            log.warning("comparison baseline %s skipped: %s", cname, exc)
    if not others:
        return None
    margin = 4 * pattern.period

    def panels(entry: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
        truth, y, x = entry["context"], entry["y"], entry["x"]
        h, w = truth.shape[1:]
        y0, x0 = max(0, y - margin), max(0, x - margin)
        y1, x1 = min(h, y + size + margin), min(w, x + size + margin)
        region = torch.from_numpy(np.ascontiguousarray(truth[:, y0:y1, x0:x1]))
        out = []
        for cname, other in others:
            try:
                with torch.inference_mode():
                    res = other.demosaic(cfa_mod.mosaic(region, pattern))
            except DemosaicError as exc:
                log.warning("comparison baseline %s failed on %s: %s", cname, entry["name"], exc)
                continue
            out.append((cname, res.float().cpu().numpy()[:, y - y0:y - y0 + size, x - x0:x - x0 + size]))
        return out

    return panels


__all__ = ["comparison_panels", "evaluate", "images_from_dataset"]
