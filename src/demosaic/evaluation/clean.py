"""Evaluation of a model or baseline on a set of ground-truth images.

Protocol (the same for every method, see docs/BENCHMARKS.md):

1. Each truth image ``(3, H, W)`` is linear light (8-bit sRGB files are decoded by the
   dataset); it is cropped at the bottom/right to multiples of the CFA period, so its
   top-left pixel is the pattern's canonical phase ``(0, 0)``.
2. It is mosaicked in linear light with the method's CFA (:func:`demosaic.cfa.mosaic`): the
   mosaic holds the exact truth value of each pixel's filter colour (noise-free).
3. The method demosaics it (``method.demosaic(cfa)`` under :func:`torch.inference_mode`); the
   wall time of that call gives the throughput (megapixels per second).
4. :func:`demosaic.metrics.compute_all` compares output and truth with ``border`` px
   excluded on every side: PSNR (linear and sRGB-encoded), SSIM, texture score, periodic-
   artifact score, false-colour score, HDR error; :func:`periodic_error_levels` adds the
   amplitude of the CFA-periodic error (8-bit levels). A grid artifact is flagged when both
   the spectral score and that amplitude exceed their limits (:func:`artifact_flag`). Set
   averages are means over images.
5. HDR probe (``hdr_gain > 0``): a centre crop of at most ``hdr_probe_size`` px of the truth
   is multiplied by ``hdr_gain`` (pushing much of it above 1.0), mosaicked and demosaicked;
   ``hdr_probe_error`` is the relative error on the regions above 1.0 (``hdr_error``) and
   ``hdr_probe_ratio`` that error divided by the error of the unexposed crop's output times
   ``hdr_gain`` on the same pixels: 1.0 when the output scales with exposure (highlights
   pass through), far above 1 when the method clips or saturates.
6. The worst regions (largest mean squared error of sRGB-encoded values in a
   ``crop_size`` window) are saved as PNG comparisons: truth | output | each ``compare``
   baseline, side by side, magnified ``zoom`` times (nearest neighbour).

Outputs in ``out_dir``: ``results.json`` (everything), ``results.md`` (tables),
``crops/*.png`` and, with ``save_exr``, ``exr/<image>.exr`` (linear float32 outputs).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import heapq
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import demosaic
from demosaic import cfa as cfa_mod
from demosaic.cfa import CFAPattern
from demosaic.color import linear_to_srgb
from demosaic.devices import synchronize
from demosaic.errors import ConfigError, DemosaicError
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: Metric keys shown in the summary tables, with their column titles and formats.
SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("psnr", "PSNR (dB)", ".2f"),
    ("psnr_srgb", "sRGB PSNR (dB)", ".2f"),
    ("ssim", "SSIM", ".4f"),
    ("texture_score", "Texture", ".3f"),
    ("periodic_artifact_score", "Periodic score", ".3g"),
    ("periodic_levels", "Periodic levels", ".2f"),
    ("false_colour_score", "False colour", ".3g"),
    ("hdr_probe_error", "HDR probe err", ".3g"),
    ("hdr_probe_ratio", "HDR ratio", ".2f"),
    ("megapixels_per_s", "MP/s", ".2f"),
)


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class ImageResult:
    """Metrics of one image.

    Attributes:
        name: Image name (file stem, or ``<index>_<type>`` for torture samples).
        height, width: Evaluated size in px (after cropping to the period).
        seconds: Wall time of the method's ``demosaic`` call.
        metrics: Metric name -> value (``nan`` where undefined, e.g. no highlights).
        type_id, type_name: Torture pattern type, if the set has types.
    """

    name: str
    height: int
    width: int
    seconds: float
    metrics: dict[str, float]
    type_id: int | None = None
    type_name: str | None = None


@dataclasses.dataclass
class CropResult:
    """A saved comparison crop of a worst region.

    Attributes:
        image: Image name; ``y``, ``x``: top-left of the crop in the evaluated image (px);
        size: Crop side (px); score: mean squared sRGB error in the crop; path: PNG path
        (relative to ``out_dir``); panels: what the panels show, left to right.
    """

    image: str
    y: int
    x: int
    size: int
    score: float
    path: str
    panels: list[str]


@dataclasses.dataclass
class EvalResult:
    """Everything one evaluation produced (``to_dict`` is what ``results.json`` holds)."""

    method: str
    kind: str
    pattern: str
    evalset: str
    border: int
    images: list[ImageResult]
    mean: dict[str, float]
    megapixels_per_s: float
    per_type: dict[str, dict[str, float]]
    crops: list[CropResult]
    info: dict[str, Any]
    out_dir: str | None = None

    @property
    def summary(self) -> dict[str, float]:
        """Mean metrics plus throughput and the artifact verdict (what run records store)."""
        out = dict(self.mean)
        out["megapixels_per_s"] = self.megapixels_per_s
        out["images"] = float(len(self.images))
        out.update({k: v for k, v in self.info.get("verdicts", {}).items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self) | {"summary": self.summary})

    def to_markdown(self) -> str:
        return render_markdown(self)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f if math.isfinite(f) else None


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


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


def _normalise_item(item: Any, index: int) -> tuple[str, np.ndarray, dict[str, Any]]:
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise ConfigError(f"evaluation image #{index}: expected (name, rgb_linear) or "
                          f"(name, rgb_linear, info), got {type(item).__name__}")
    name, rgb = item[0], item[1]
    info = dict(item[2]) if len(item) == 3 and item[2] else {}
    arr = rgb.detach().cpu().numpy() if isinstance(rgb, torch.Tensor) else np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ConfigError(f"evaluation image {name!r}: expected a (3, H, W) linear image, got "
                          f"shape {arr.shape}")
    return str(name), arr.astype(np.float32, copy=False), info


def method_name(method: Any) -> str:
    """A short name for a model or baseline (its registry name when known)."""
    spec = getattr(method, "spec", None)
    if isinstance(spec, Mapping) and spec.get("name"):
        return str(spec["name"])
    return str(getattr(method, "name", type(method).__name__))


@dataclasses.dataclass(frozen=True)
class ReportSpec:
    """How an evaluation is named and what it writes, for both protocols
    (:func:`evaluate` and :func:`demosaic.evaluation.camera.evaluate_camera`).

    Attributes:
        evalset: Name of the set in reports.
        name, kind: Method name (default :func:`method_name`) and kind (``checkpoint``/
            ``model``/``baseline``; default ``model`` for an ``nn.Module``, else ``baseline``).
        worst_crops: Worst regions saved as PNG comparisons under ``out_dir/crops`` (0: none).
        crop_size: Side of those regions in px (rounded down to the CFA period).
        zoom: Nearest-neighbour magnification of the PNG panels.
        out_dir: Where ``results.json``/``results.md`` go; ``None`` writes nothing.
        progress: Show a progress bar.
        info: Extra fields for ``results.json`` (checkpoint path, run name ...).
    """

    evalset: str = ""
    name: str | None = None
    kind: str | None = None
    worst_crops: int = 4
    crop_size: int = 96
    zoom: int = 2
    out_dir: str | os.PathLike[str] | None = None
    progress: bool = True
    info: Mapping[str, Any] | None = None

    def label(self, method: Any) -> str:
        """The method's name in reports."""
        return self.name or method_name(method)

    def kind_of(self, method: Any) -> str:
        """The method's kind in reports."""
        return self.kind or ("model" if isinstance(method, torch.nn.Module) else "baseline")

    @property
    def out_path(self) -> Path | None:
        return Path(self.out_dir) if self.out_dir is not None else None


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


def _metrics_of(pred: torch.Tensor, target: torch.Tensor, border: int, period: int) -> dict[str, float]:
    from demosaic.metrics import compute_all

    values = compute_all(pred, target, border=border, period=period)
    return {_METRIC_ALIASES.get(k, k): float(v) for k, v in values.items()}


#: Periodic error amplitude (8-bit sRGB levels, :func:`periodic_error_levels`) below which a
#: spectral periodic-artifact peak is not reported as a grid artifact. Clean classical
#: X-Trans demosaicking leaves 0.2-1.2 levels (Markesteijn ~0.2-0.4, bilinear up to ~1.2 on
#: Kodak); a visible grid is several levels.
PERIODIC_LEVELS_FLOOR = 1.5


def periodic_error_levels(pred: np.ndarray, truth: np.ndarray, border: int, period: int) -> float:
    """Amplitude of the CFA-periodic part of the display error, in 8-bit levels.

    The error of the sRGB-encoded (clipped to [0, 1]) images, inside ``border``, is averaged
    over all ``period x period`` cells (its mean at each CFA phase), the channel mean is
    removed, and the RMS over phases and channels is returned times 255. Unlike the spectral
    peak-to-background score, it does not grow as the rest of the error shrinks, so it tells a
    visible grid (several levels) from the faint phase dependence every demosaicker has.
    NaN when fewer than one cell fits.
    """
    e = linear_to_srgb(np.clip(pred, 0.0, 1.0)) - linear_to_srgb(np.clip(truth, 0.0, 1.0))
    if border:
        e = e[:, border:-border, border:-border]
    if e.shape[1] < period or e.shape[2] < period:
        return float("nan")
    cells = cfa_mod.periodic_component(e, period)
    return float(255.0 * np.sqrt(np.mean(cells ** 2)))


def set_verdicts(mean: Mapping[str, float], period: int) -> dict[str, float]:
    """The set-level periodic-artifact verdict of mean metrics, with the limits it used (what
    ``results.json`` stores under ``verdicts``)."""
    from demosaic.metrics import PERIODIC_ARTIFACT_THRESHOLD

    return {
        "periodic_artifact_flag": float(artifact_flag(mean.get("periodic_artifact_score", 0.0),
                                                      mean.get("periodic_levels", 0.0),
                                                      PERIODIC_ARTIFACT_THRESHOLD)),
        "periodic_artifact_threshold": float(PERIODIC_ARTIFACT_THRESHOLD),
        "periodic_levels_floor": PERIODIC_LEVELS_FLOOR,
        "period": float(period),
    }


def artifact_flag(score: float, levels: float, threshold: float) -> bool:
    """The periodic-artifact verdict: a spectral peak at the CFA harmonics above
    ``threshold`` (:data:`demosaic.metrics.PERIODIC_ARTIFACT_THRESHOLD`) **and** a periodic
    error of at least :data:`PERIODIC_LEVELS_FLOOR` 8-bit levels."""
    return bool(score > threshold and levels >= PERIODIC_LEVELS_FLOOR)


#: compute_all's short keys -> the names used in reports (both spellings are accepted).
_METRIC_ALIASES = {"texture": "texture_score", "periodic_artifact": "periodic_artifact_score",
                   "false_colour": "false_colour_score"}


def _hdr_probe(method: Any, rgb: np.ndarray, pattern: CFAPattern, gain: float, size: int,
               border: int, device: torch.device) -> tuple[float, float]:
    """HDR probe on a centre crop: ``(error, ratio)``.

    ``error`` is :func:`~demosaic.metrics.hdr_error` of the method on the crop exposed
    ``gain`` times (regions above 1.0 only); ``ratio`` divides it by the error of the
    unexposed crop's output scaled by ``gain`` on the same pixels: 1.0 for a method whose
    output scales with exposure (HDR passes through), much more for one that clips.
    """
    from demosaic.metrics import hdr_error

    p = pattern.period
    h, w = rgb.shape[1:]
    sh, sw = min(h, size) // p * p, min(w, size) // p * p
    y0, x0 = (h - sh) // 2 // p * p, (w - sw) // 2 // p * p
    base = torch.from_numpy(np.ascontiguousarray(rgb[:, y0:y0 + sh, x0:x0 + sw]))
    truth = base * gain
    b = min(border, max(0, (min(sh, sw) - 2 * p) // 2))
    pred = method.demosaic(cfa_mod.mosaic(truth, pattern).to(device)).float().cpu()
    ref = method.demosaic(cfa_mod.mosaic(base, pattern).to(device)).float().cpu() * gain
    err = float(hdr_error(pred, truth, border=b))
    ref_err = float(hdr_error(ref, truth, border=b))
    ratio = err / ref_err if ref_err > 0 else (1.0 if err == 0 else math.inf)
    return err, ratio


def _sync(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA and MPS), so timings measure work, not launches."""
    synchronize(device)


def _worst_window(pred: np.ndarray, truth: np.ndarray, size: int, border: int, period: int
                  ) -> tuple[float, int, int] | None:
    """``(score, y, x)`` of the ``size`` window (origin a multiple of ``period``, inside the
    border) with the largest mean squared sRGB error, or ``None`` if none fits."""
    h, w = truth.shape[1:]
    b0 = -(-border // period) * period
    if h - 2 * b0 < size or w - 2 * b0 < size:
        return None
    enc_p = linear_to_srgb(np.clip(pred, 0.0, 1.0))
    enc_t = linear_to_srgb(np.clip(truth, 0.0, 1.0))
    err = torch.from_numpy(((enc_p - enc_t) ** 2).mean(axis=0)[b0:h - b0, b0:w - b0].astype(np.float32))
    stride = max(period, size // 2 // period * period)
    pooled = F.avg_pool2d(err[None, None], kernel_size=size, stride=stride)[0, 0]
    idx = int(torch.argmax(pooled))
    iy, ix = divmod(idx, pooled.shape[1])
    return float(pooled[iy, ix]), b0 + iy * stride, b0 + ix * stride


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
            fields (:class:`ReportSpec`; default: its defaults, nothing written).
        compare: Baseline names (:func:`demosaic.models.baselines.build_method`) shown next
            to the output in the crops; a baseline that cannot run is skipped with a warning.
        save_exr: Also write each output as ``exr/<name>.exr`` (linear float32).
        hdr_gain: Exposure gain of the HDR probe; 0 disables it.
        hdr_probe_size: Side of the centre crop the HDR probe uses (px).
        device: Torch device for models.

    Returns:
        The :class:`EvalResult` (also written as JSON and Markdown when ``out_dir`` is set).

    Raises:
        ConfigError: bad arguments or images; CFAError: mismatched pattern.
    """
    from tqdm import tqdm

    dev = torch.device(device)
    rep = report or ReportSpec()
    pat = _check_method(method, pattern, border)
    p = pat.period
    crop_size, worst_crops, evalset = rep.crop_size // p * p, rep.worst_crops, rep.evalset
    if worst_crops and crop_size < p:
        raise ConfigError(f"crop_size must be at least one CFA period ({p} px)")
    if isinstance(method, torch.nn.Module):
        method = method.to(dev).eval()
    label, kind, out_path = rep.label(method), rep.kind_of(method), rep.out_path

    results: list[ImageResult] = []
    candidates: list[tuple[float, int, dict[str, Any]]] = []  # min-heap of worst crops
    total_px, total_s = 0, 0.0
    items = (_normalise_item(it, i) for i, it in enumerate(images))
    with torch.inference_mode():
        for index, (img_name, rgb, extra) in enumerate(tqdm(items, desc=f"eval {label}", unit="img",
                                                           disable=not rep.progress)):
            truth_np, pred_np, dt, metrics = _evaluate_image(
                method, label, img_name, rgb, pat, border, hdr_gain, hdr_probe_size, dev,
                warm_up=index == 0)
            h, w = truth_np.shape[1:]
            total_px += h * w
            total_s += dt
            results.append(ImageResult(img_name, h, w, dt, metrics, extra.get("type_id"),
                                       extra.get("type_name")))
            if out_path is not None and save_exr:
                from demosaic.io.images import write_exr

                write_exr(out_path / "exr" / f"{img_name}.exr", pred_np, half=False,
                          metadata={"method": label, "evalset": evalset})
            if out_path is not None and worst_crops > 0:
                _keep_worst(candidates, worst_crops, index, img_name, pred_np, truth_np,
                            crop_size, border, p)
    if not results:
        raise ConfigError(f"evaluation set {evalset or '?'} has no images")

    mean = _mean([r.metrics for r in results])
    mps = total_px / total_s / 1e6 if total_s > 0 else float("nan")
    meta = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(dev), "torch_threads": torch.get_num_threads(),
        "versions": {"demosaic": demosaic.__version__, "torch": torch.__version__},
        "protocol": {"border": border, "mosaic": "linear light, noise-free, canonical phase",
                     "hdr_gain": hdr_gain, "hdr_probe_size": hdr_probe_size},
        "flagged_images": [r.name for r in results if r.metrics.get("periodic_artifact_flag")],
        "verdicts": set_verdicts(mean, p),
        **dict(rep.info or {}),
    }
    result = EvalResult(label, kind, pat.name, evalset, border, results, mean, mps,
                        _per_type(results), [], meta, str(out_path) if out_path is not None else None)
    if out_path is not None:
        if candidates:
            worst = [e for _, _, e in sorted(candidates, key=lambda c: -c[0])]
            scores = sorted((c[0] for c in candidates), reverse=True)
            result.crops = _save_crops(worst, scores, label, pat, compare, crop_size, rep.zoom,
                                       out_path, dev)
        write_results(result, out_path)
    log.info("%s on %s (%d images): PSNR %.3f dB, sRGB PSNR %.3f dB, SSIM %.4f, %.2f MP/s",
             label, evalset or "images", len(results), mean.get("psnr", float("nan")),
             mean.get("psnr_srgb", float("nan")), mean.get("ssim", float("nan")), mps)
    return result


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
                    warm_up: bool) -> tuple[np.ndarray, np.ndarray, float, dict[str, float]]:
    """Mosaic one image (cropped to whole periods), demosaic it (timed) and measure it.

    Returns:
        ``(truth (3, h, w), prediction (3, h, w), seconds, metrics)``.
    """
    from demosaic.metrics import PERIODIC_ARTIFACT_THRESHOLD

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
    _sync(dev)
    t0 = time.perf_counter()
    pred = method.demosaic(cfa)
    _sync(dev)
    dt = time.perf_counter() - t0
    pred = pred.float().cpu()
    if pred.shape != truth.shape:
        raise DemosaicError(f"{label} returned {tuple(pred.shape)} for a "
                            f"{tuple(truth.shape)} image {img_name!r}")
    metrics = _metrics_of(pred, truth, border, p)
    if hdr_gain > 0:
        metrics["hdr_probe_error"], metrics["hdr_probe_ratio"] = _hdr_probe(
            method, truth_np, pat, hdr_gain, hdr_probe_size, border, dev)
    metrics["periodic_levels"] = periodic_error_levels(pred.numpy(), truth_np, border, p)
    metrics["periodic_artifact_flag"] = float(artifact_flag(
        metrics.get("periodic_artifact_score", 0.0), metrics["periodic_levels"],
        PERIODIC_ARTIFACT_THRESHOLD))
    return truth_np, pred.numpy(), dt, metrics


def _keep_worst(candidates: list[tuple[float, int, dict[str, Any]]], keep: int, index: int,
                img_name: str, pred_np: np.ndarray, truth_np: np.ndarray, crop_size: int,
                border: int, period: int) -> None:
    """Push this image's worst window onto the min-heap of the ``keep`` worst so far."""
    found = _worst_window(pred_np, truth_np, crop_size, border, period)
    if found is None:
        return
    score, y, x = found
    push_worst(candidates, keep, score, index,
               {"name": img_name, "y": y, "x": x, "truth_np": truth_np,
                "pred": pred_np[:, y:y + crop_size, x:x + crop_size].copy()})


def push_worst(candidates: list[tuple[float, int, dict[str, Any]]], keep: int, score: float,
               index: int, entry: dict[str, Any]) -> None:
    """Keep ``candidates`` a min-heap of the ``keep`` highest-scoring entries."""
    if len(candidates) < keep:
        heapq.heappush(candidates, (score, index, entry))
    elif score > candidates[0][0]:
        heapq.heapreplace(candidates, (score, index, entry))


def _per_type(results: Sequence[ImageResult]) -> dict[str, dict[str, float]]:
    """Mean metrics per torture type (empty for sets without types)."""
    if not any(r.type_name for r in results):
        return {}
    groups: dict[str, list[dict[str, float]]] = {}
    for r in results:
        groups.setdefault(f"{r.type_id}_{r.type_name}", []).append(r.metrics)
    return {k: _mean(v) | {"count": float(len(v))}
            for k, v in sorted(groups.items(), key=lambda kv: int(kv[0].split("_")[0]))}


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per-key mean over rows, ignoring non-finite values (``nan`` if none is finite)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if k in r and math.isfinite(float(r[k]))]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


# --------------------------------------------------------------------------------------
# Comparison crops
# --------------------------------------------------------------------------------------


def _save_crops(worst: list[dict[str, Any]], scores: list[float], label: str, pattern: CFAPattern,
                compare: Sequence[str], size: int, zoom: int, out_dir: Path,
                device: torch.device) -> list[CropResult]:
    from demosaic.io.images import write_png
    from demosaic.models.baselines import build_method

    others: list[tuple[str, Any]] = []
    for cname in compare:
        if cname == label:
            continue
        try:
            others.append((cname, build_method(cname, pattern.name)))
        except DemosaicError as exc:
            log.warning("comparison baseline %s skipped: %s", cname, exc)
    margin = 4 * pattern.period  # context around the crop for the baselines' interpolation
    crops = []
    for rank, (entry, score) in enumerate(zip(worst, scores), start=1):
        truth_np, y, x = entry["truth_np"], entry["y"], entry["x"]
        h, w = truth_np.shape[1:]
        panels = [truth_np[:, y:y + size, x:x + size], entry["pred"]]
        names = ["truth", label]
        y0, x0 = max(0, y - margin), max(0, x - margin)  # multiples of the period
        y1, x1 = min(h, y + size + margin), min(w, x + size + margin)
        region = torch.from_numpy(np.ascontiguousarray(truth_np[:, y0:y1, x0:x1]))
        for cname, other in others:
            try:
                with torch.inference_mode():
                    out = other.demosaic(cfa_mod.mosaic(region, pattern))
            except DemosaicError as exc:
                log.warning("comparison baseline %s failed on %s: %s", cname, entry["name"], exc)
                continue
            out = out.float().cpu().numpy()
            panels.append(out[:, y - y0:y - y0 + size, x - x0:x - x0 + size])
            names.append(cname)
        gap = np.ones((3, size * zoom, 4), np.float32)
        row = []
        for i, panel in enumerate(panels):
            big = np.repeat(np.repeat(panel, zoom, axis=1), zoom, axis=2)
            row += [big] if i == 0 else [gap, big]
        rel = Path("crops") / f"worst{rank:02d}_{_safe(entry['name'])}_y{y}_x{x}.png"
        write_png(out_dir / rel, np.concatenate(row, axis=2))
        crops.append(CropResult(entry["name"], y, x, size, score, rel.as_posix(), names))
    return crops


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def fmt_number(v: Any, spec: str) -> str:
    """``v`` formatted with ``spec``, or ``-`` when it is missing or not finite."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return f"{f:{spec}}" if math.isfinite(f) else "-"


def summary_header() -> list[str]:
    return ["Method", "Set", "Images"] + [title for _, title, _ in SUMMARY_COLUMNS]


def summary_row(result: EvalResult) -> list[str]:
    """One Markdown table row of the set averages (see :data:`SUMMARY_COLUMNS`)."""
    s = result.summary
    return [result.method, result.evalset or "-", str(len(result.images))] + [
        fmt_number(s.get(k), spec) for k, _, spec in SUMMARY_COLUMNS]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def render_markdown(result: EvalResult) -> str:
    """``results.md``: summary, per-type (torture), per-image tables, worst crops."""
    cols = [(k, t, s) for k, t, s in SUMMARY_COLUMNS if k != "megapixels_per_s"]
    out = [f"# Evaluation: {result.method} on {result.evalset or 'images'}\n\n",
           f"- CFA `{result.pattern}`, {len(result.images)} images, border {result.border} px, "
           f"{result.kind}, {result.info.get('device', '?')}, {result.info.get('date', '?')}\n"]
    for key in ("checkpoint", "run_name"):
        if result.info.get(key):
            out.append(f"- {key}: `{result.info[key]}`\n")
    verdict = result.info.get("verdicts", {})
    flagged = result.info.get("flagged_images", [])
    out.append(f"- Periodic artifacts: {'FLAGGED' if verdict.get('periodic_artifact_flag') else 'none'} "
               f"(mean spectral score {fmt_number(result.mean.get('periodic_artifact_score'), '.3g')}, "
               f"threshold {fmt_number(verdict.get('periodic_artifact_threshold'), '.3g')}; mean periodic "
               f"error {fmt_number(result.mean.get('periodic_levels'), '.2f')} 8-bit levels, floor "
               f"{fmt_number(verdict.get('periodic_levels_floor'), '.2g')}; {len(flagged)} image(s) flagged)\n\n")
    out.append("## Summary\n\n" + markdown_table(summary_header(), [summary_row(result)]) + "\n")
    if result.per_type:
        out.append("## Per pattern type\n\n")
        rows = [[k, str(int(v.get("count", 0)))] + [fmt_number(v.get(c), s) for c, _, s in cols]
                for k, v in result.per_type.items()]
        out.append(markdown_table(["Type", "Count"] + [t for _, t, _ in cols], rows) + "\n")
    out.append("## Per image\n\n")
    rows = [[r.name, f"{r.width}x{r.height}"] + [fmt_number(r.metrics.get(c), s) for c, _, s in cols]
            + [fmt_number(r.height * r.width / r.seconds / 1e6 if r.seconds > 0 else None, ".2f")]
            for r in result.images]
    out.append(markdown_table(["Image", "Size"] + [t for _, t, _ in cols] + ["MP/s"], rows) + "\n")
    if result.crops:
        out.append("## Worst regions\n\n")
        for c in result.crops:
            out.append(f"- `{c.image}` at (y {c.y}, x {c.x}), {c.size} px, sRGB MSE {c.score:.3g}; "
                       f"panels: {' | '.join(c.panels)}\n\n  ![{c.image}]({c.path})\n")
    return "".join(out)


def write_results(result: EvalResult, out_dir: str | os.PathLike[str],
                  render: Any = None) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir`` (atomically); ``render``
    turns the result into the Markdown (default :func:`render_markdown`)."""
    out = Path(out_dir)
    js, md = out / "results.json", out / "results.md"
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    with atomic_path(md) as tmp:
        tmp.write_text((render or render_markdown)(result), encoding="utf-8")
    log.info("wrote %s and %s", js, md)
    return js, md


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``results.json`` (or the folder holding it) as a dict."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read evaluation results {p}: {exc}") from None
