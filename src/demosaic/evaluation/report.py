"""What an evaluation reports, for both protocols: the result records, ``results.json`` and
``results.md``, the worst-region PNG crops, and the Markdown tables other reports reuse.

The clean protocol (:mod:`demosaic.evaluation.clean`) and the camera protocol
(:mod:`demosaic.evaluation.camera`) both produce an :class:`EvalResult` and write it here:

- ``results.json``: :meth:`EvalResult.to_dict` through :func:`jsonable` (non-finite floats
  become ``null``), ``indent=1``;
- ``results.md``: :func:`render_markdown` (the camera protocol adds one line of its own,
  :func:`render_camera_markdown`);
- ``crops/worst<rank>_<image>_y<y>_x<x>.png``: the worst regions of the set (largest mean
  squared error of sRGB-encoded values in a window whose origin is a multiple of the CFA
  period, :func:`worst_window`), as panels truth | output | comparisons, side by side,
  magnified ``zoom`` times (nearest neighbour), separated by 4 px white gaps.

:func:`markdown_table`, :func:`fmt_number` and :func:`jsonable` are the one table writer,
number format and JSON cleaner of the package (run records and benchmark scripts use them).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demosaic.errors import ConfigError
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
# Plain values
# --------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON values: mappings and sequences recursively, non-finite floats
    ``None``, numpy/torch scalars ``float``, anything else ``str``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:  # numpy / torch scalars
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f if math.isfinite(f) else None


def safe_name(name: str) -> str:
    """A file-name-safe version of an image name (letters, digits, ``-_.``; others ``_``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name)) or "image"


def fmt_number(v: Any, spec: str) -> str:
    """``v`` formatted with ``spec``, or ``-`` when it is missing or not finite."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return f"{f:{spec}}" if math.isfinite(f) else "-"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub Markdown table, ending in a newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class ImageResult:
    """Metrics of one image.

    Attributes:
        name: Image name (file stem, or ``<index>_<type>`` for torture samples).
        height, width: Evaluated size in px (after cropping to the period).
        seconds: Wall time of the method's demosaicking of the image.
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
        return jsonable(dataclasses.asdict(self) | {"summary": self.summary})

    def to_markdown(self) -> str:
        return render_markdown(self)


def method_name(method: Any) -> str:
    """A short name for a model or baseline (its registry name when known)."""
    spec = getattr(method, "spec", None)
    if isinstance(spec, Mapping) and spec.get("name"):
        return str(spec["name"])
    return str(getattr(method, "name", type(method).__name__))


@dataclasses.dataclass(frozen=True)
class ReportSpec:
    """How an evaluation is named and what it writes, for both protocols
    (:func:`demosaic.evaluation.clean.evaluate` and
    :func:`demosaic.evaluation.camera.evaluate_camera`).

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
        import torch

        return self.kind or ("model" if isinstance(method, torch.nn.Module) else "baseline")

    @property
    def out_path(self) -> Path | None:
        return Path(self.out_dir) if self.out_dir is not None else None

    def crops_to_keep(self) -> int:
        """How many worst regions to keep: ``worst_crops`` when writing, else 0."""
        return self.worst_crops if self.out_dir is not None else 0


# --------------------------------------------------------------------------------------
# Worst regions
# --------------------------------------------------------------------------------------

#: A kept worst region: ``(score, image index, entry)``; the entry holds ``name``, ``y``,
#: ``x``, ``truth`` and ``pred`` crops ``(3, size, size)`` and optionally ``context``.
Candidate = tuple[float, int, dict[str, Any]]


def worst_window(pred: np.ndarray, truth: np.ndarray, size: int, border: int, period: int
                 ) -> tuple[float, int, int] | None:
    """``(score, y, x)`` of the ``size`` px window of ``(3, H, W)`` linear images (origin a
    multiple of ``period``, inside the border) with the largest mean squared error of the
    sRGB-encoded, [0, 1]-clipped values; ``None`` if none fits."""
    import torch
    import torch.nn.functional as F

    from demosaic.color import linear_to_srgb

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


def push_worst(candidates: list[Candidate], keep: int, score: float, index: int,
               entry: dict[str, Any]) -> None:
    """Keep ``candidates`` a min-heap of the ``keep`` highest-scoring entries."""
    if len(candidates) < keep:
        heapq.heappush(candidates, (score, index, entry))
    elif score > candidates[0][0]:
        heapq.heapreplace(candidates, (score, index, entry))


#: Extra panels of a crop: ``entry -> [(name, (3, size, size) image), ...]``.
PanelMaker = Callable[[dict[str, Any]], list[tuple[str, np.ndarray]]]


def save_crops(candidates: Sequence[Candidate], label: str, size: int, zoom: int, out_dir: Path,
               extra_panels: PanelMaker | None = None) -> list[CropResult]:
    """Write the kept worst regions as PNGs under ``out_dir/crops``, worst first.

    Each PNG shows truth | ``label``'s output | ``extra_panels(entry)`` (e.g. baselines),
    magnified ``zoom`` times, 4 px white gaps between panels.
    """
    from demosaic.io.images import write_png

    crops = []
    ranked = sorted(candidates, key=lambda c: -c[0])
    for rank, (score, _, entry) in enumerate(ranked, start=1):
        panels = [("truth", entry["truth"]), (label, entry["pred"])]
        panels += extra_panels(entry) if extra_panels is not None else []
        gap = np.ones((3, size * zoom, 4), np.float32)
        row: list[np.ndarray] = []
        for i, (_, panel) in enumerate(panels):
            big = np.repeat(np.repeat(panel, zoom, axis=1), zoom, axis=2)
            row += [big] if i == 0 else [gap, big]
        y, x = entry["y"], entry["x"]
        rel = Path("crops") / f"worst{rank:02d}_{safe_name(entry['name'])}_y{y}_x{x}.png"
        write_png(out_dir / rel, np.concatenate(row, axis=2))
        crops.append(CropResult(entry["name"], y, x, size, score, rel.as_posix(),
                                [name for name, _ in panels]))
    return crops


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------


def summary_header() -> list[str]:
    return ["Method", "Set", "Images"] + [title for _, title, _ in SUMMARY_COLUMNS]


def summary_row(result: EvalResult) -> list[str]:
    """One Markdown table row of the set averages (see :data:`SUMMARY_COLUMNS`)."""
    s = result.summary
    return [result.method, result.evalset or "-", str(len(result.images))] + [
        fmt_number(s.get(k), spec) for k, _, spec in SUMMARY_COLUMNS]


def _heading(result: EvalResult) -> list[str]:
    """The title and the bullet lines (CFA, names, periodic-artifact verdict)."""
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
    return out


def render_markdown(result: EvalResult) -> str:
    """``results.md``: summary, per-type (torture), per-image tables, worst crops."""
    cols = [(k, t, s) for k, t, s in SUMMARY_COLUMNS if k != "megapixels_per_s"]
    out = _heading(result)
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


def render_camera_markdown(result: EvalResult) -> str:
    """``results.md`` of a camera-protocol result: :func:`render_markdown` plus a line stating
    the capture settings and metric spaces (from ``info["camera_protocol"]``)."""
    cp = result.info.get("camera_protocol", {})
    text = render_markdown(result)
    head, sep, rest = text.partition("\n\n")
    line = (f"- Camera protocol: {cp.get('camera', '?')}, ISO {cp.get('iso', '?'):g}, seed "
            f"{cp.get('seed', '?')}, random CFA phase and margins <= {cp.get('max_margin', '?')} px, "
            f"route `{cp.get('route', '?')}` (highlights {cp.get('highlights', '?')}); PSNR in "
            "balanced camera RGB (peak 1.0), sRGB PSNR / SSIM / periodic / false colour on the "
            "body-matrix sRGB view\n")
    return head + sep + line + rest if sep else text + line


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def write_results(result: EvalResult, out_dir: str | os.PathLike[str],
                  render: Callable[[EvalResult], str] | None = None) -> tuple[Path, Path]:
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


def publish(result: EvalResult, candidates: Sequence[Candidate], out_dir: Path | None,
            zoom: int, size: int, extra_panels: PanelMaker | None = None,
            render: Callable[[EvalResult], str] | None = None) -> None:
    """Save the worst-region crops into ``result.crops`` and write the results files into
    ``out_dir`` (nothing when it is ``None``)."""
    if out_dir is None:
        return
    if candidates:
        result.crops = save_crops(candidates, result.method, size, zoom, out_dir, extra_panels)
    write_results(result, out_dir, render)


def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``results.json`` (or the folder holding it) as a dict."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read evaluation results {p}: {exc}") from None


__all__ = ["CropResult", "EvalResult", "ImageResult", "ReportSpec", "SUMMARY_COLUMNS",
           "fmt_number", "jsonable", "load_results", "markdown_table", "method_name", "publish",
           "push_worst", "render_camera_markdown", "render_markdown", "safe_name", "save_crops",
           "summary_header", "summary_row", "worst_window", "write_results"]
