"""The one evaluation loop both protocols run: images in, per-image results, set means,
throughput and the worst regions out.

A protocol supplies ``measure(index, name, rgb) -> Measured``: how one truth image
``(3, H, W)`` (linear light, white 1.0) becomes a demosaicked output, its wall time and its
metrics. The clean protocol (:mod:`demosaic.evaluation.clean`) mosaics the truth at the
canonical phase; the camera protocol (:mod:`demosaic.evaluation.camera`) captures it as a
DNG and develops that. Everything else is shared: the item format, the progress bar, the
per-image :class:`~demosaic.evaluation.report.ImageResult`, the means (non-finite values
ignored), megapixels per second and the worst-window bookkeeping.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from demosaic.errors import ConfigError
from demosaic.evaluation.report import Candidate, ImageResult, push_worst, worst_window

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Measured:
    """One image's outcome, as a protocol's ``measure`` returns it.

    Attributes:
        truth, pred: ``(3, h, w)`` float32 images in the space worst regions are judged and
            shown in (linear light; the camera protocol's linear-sRGB view).
        seconds: Wall time of the demosaicking.
        metrics: Metric name -> value.
        context: Optional whole image kept with a worst region (the clean protocol's truth,
            from which comparison baselines demosaic the region).
    """

    truth: np.ndarray
    pred: np.ndarray
    seconds: float
    metrics: dict[str, float]
    context: np.ndarray | None = None


@dataclasses.dataclass
class LoopOutput:
    """What :func:`run_loop` gathered.

    Attributes:
        images: Per-image results, in order.
        mean: Per-key means over images (:func:`mean_metrics`).
        megapixels_per_s: Evaluated pixels over total demosaicking time (``nan`` if no time).
        candidates: Kept worst regions (a min-heap; :func:`~demosaic.evaluation.report.save_crops`
            sorts them).
        windows: Image name -> ``[score, y, x]`` of its worst window (when recorded).
    """

    images: list[ImageResult]
    mean: dict[str, float]
    megapixels_per_s: float
    candidates: list[Candidate]
    windows: dict[str, list[float]]


def normalise_item(item: Any, index: int) -> tuple[str, np.ndarray, dict[str, Any]]:
    """An evaluation item ``(name, rgb_linear)`` or ``(name, rgb_linear, info)`` as
    ``(name, (3, H, W) float32 array, info dict)``; raises :class:`ConfigError` naming the
    item otherwise."""
    import torch

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


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per-key mean over rows, ignoring non-finite values (``nan`` if none is finite)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if k in r and math.isfinite(float(r[k]))]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def per_type(results: Sequence[ImageResult]) -> dict[str, dict[str, float]]:
    """Mean metrics per torture type, keyed ``<type id>_<type name>`` in id order, each with
    its ``count`` (empty for sets without types)."""
    if not any(r.type_name for r in results):
        return {}
    groups: dict[str, list[dict[str, float]]] = {}
    for r in results:
        groups.setdefault(f"{r.type_id}_{r.type_name}", []).append(r.metrics)
    return {k: mean_metrics(v) | {"count": float(len(v))}
            for k, v in sorted(groups.items(), key=lambda kv: int(kv[0].split("_")[0]))}


def run_loop(images: Iterable[Any], measure: Callable[[int, str, np.ndarray], Measured], *,
             desc: str, progress: bool, period: int, border: int, crop_size: int, keep: int,
             record_windows: bool = False, evalset: str = "",
             on_image: Callable[[int, str, Measured], None] | None = None) -> LoopOutput:
    """Measure every image and gather the set's results.

    Args:
        images: ``(name, rgb_linear[, info])`` items (:func:`normalise_item`).
        measure: ``(index, name, rgb (3, H, W) float32) -> Measured``.
        desc, progress: Progress-bar text and whether to show it.
        period, border: CFA period and excluded border (px) of the worst windows.
        crop_size: Side of the worst windows (px, a multiple of ``period``; under one
            period: none).
        keep: Worst regions to keep for crops (0: none).
        record_windows: Record every image's worst window in ``windows``.
        evalset: Set name for the error on an empty set.
        on_image: Called after each image (writing outputs, per-image records).

    Raises:
        ConfigError: a malformed item or an empty set.
    """
    from tqdm import tqdm

    results: list[ImageResult] = []
    candidates: list[Candidate] = []
    windows: dict[str, list[float]] = {}
    total_px, total_s = 0, 0.0
    items = (normalise_item(it, i) for i, it in enumerate(images))
    for index, (name, rgb, extra) in enumerate(tqdm(items, desc=desc, unit="img", disable=not progress)):
        m = measure(index, name, rgb)
        h, w = m.truth.shape[1:]
        total_px += h * w
        total_s += m.seconds
        results.append(ImageResult(name, h, w, m.seconds, m.metrics, extra.get("type_id"),
                                   extra.get("type_name")))
        if on_image is not None:
            on_image(index, name, m)
        if (keep > 0 or record_windows) and crop_size >= period:
            _track_worst(candidates, windows if record_windows else None, keep, index, name, m,
                         crop_size, border, period)
    if not results:
        raise ConfigError(f"evaluation set {evalset or '?'} has no images")
    mps = total_px / total_s / 1e6 if total_s > 0 else float("nan")
    return LoopOutput(results, mean_metrics([r.metrics for r in results]), mps, candidates, windows)


def _track_worst(candidates: list[Candidate], windows: dict[str, list[float]] | None, keep: int,
                 index: int, name: str, m: Measured, size: int, border: int, period: int) -> None:
    """Find the image's worst window; record it in ``windows`` (if given) and push it onto
    the min-heap of the ``keep`` worst regions."""
    found = worst_window(m.pred, m.truth, size, border, period)
    if found is None:
        return
    score, y, x = found
    if windows is not None:
        windows[name] = [score, float(y), float(x)]
    if keep > 0:
        entry = {"name": name, "y": y, "x": x,
                 "truth": m.truth[:, y:y + size, x:x + size].copy(),
                 "pred": m.pred[:, y:y + size, x:x + size].copy()}
        if m.context is not None:
            entry["context"] = m.context
        push_worst(candidates, keep, score, index, entry)


__all__ = ["LoopOutput", "Measured", "mean_metrics", "normalise_item", "per_type", "run_loop"]
