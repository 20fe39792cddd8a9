"""Forgetting report: what a fine-tune gained on the new data and lost on the original set.

Inputs are evaluation runs (``results.json`` written by :func:`demosaic.evaluation.report.
write_results`, or the folder holding it): the starting model and each fine-tuned model,
each evaluated on the **original** validation set (e.g. CBSD68) and on the **new** data
(e.g. a torture set or the fine-tune's validation data). For each fine-tuned run and metric:

- ``forgetting = before_original - after_original`` for metrics where higher is better
  (PSNR, SSIM), ``after_original - before_original`` where lower is better (periodic-artifact
  score, false colour), and for the texture score (ideal 1.0) the growth of its distance
  from 1, ``|after - 1| - |before - 1|``; positive = the original task got worse;
- ``gain``: the same comparison on the new data, signed so that positive = improved.

:func:`forgetting_report` writes ``forgetting.json`` and ``forgetting.md``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from demosaic.evaluation.report import load_results
from demosaic.errors import ConfigError
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: Metrics reported by default and their direction: ``higher`` / ``lower`` is better, or
#: ``one``: the ideal is 1.0 (distance from 1 is the error). Unknown metrics count as ``higher``.
METRICS: dict[str, str] = {
    "psnr": "higher", "psnr_srgb": "higher", "ssim": "higher", "texture_score": "one",
    "periodic_artifact_score": "lower", "false_colour_score": "lower",
}


def _worse_by(before: float, after: float, direction: str) -> float:
    """How much worse ``after`` is than ``before`` (positive = worse)."""
    if direction == "lower":
        return after - before
    if direction == "one":
        return abs(after - 1.0) - abs(before - 1.0)
    return before - after

Source = str | os.PathLike[str] | Mapping[str, Any]


def _means(source: Source, where: str) -> dict[str, float]:
    data = source if isinstance(source, Mapping) else load_results(source)
    means = data.get("summary") or data.get("mean")
    if not isinstance(means, Mapping):
        raise ConfigError(f"{where}: {source if not isinstance(source, Mapping) else 'results'} holds no "
                          "'summary' or 'mean' metrics; pass a results.json of demosaic-eval")
    return {k: float(v) for k, v in means.items() if isinstance(v, (int, float))}


def compute_forgetting(before: Mapping[str, Source], after: Mapping[str, Source],
                       metrics: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Per metric: before/after values on both sets, ``forgetting`` and ``gain``.

    Args:
        before, after: ``{"original": results, "new": results}`` of the starting and the
            fine-tuned model (paths to results.json / folders, or loaded dicts).
        metrics: Metric keys (default: those of :data:`METRICS` present in all four runs).

    Returns:
        ``{metric: {"before_original", "after_original", "before_new", "after_new",
        "forgetting", "gain"}}``.
    """
    for name, side in (("before", before), ("after", after)):
        missing = {"original", "new"} - set(side)
        if missing:
            raise ConfigError(f"forgetting report: {name} needs results for {sorted(missing)} "
                              "(evaluations on the original validation set and on the new data)")
    runs = {f"{b}_{s}": _means(src[s], f"{b}.{s}") for b, src in (("before", before), ("after", after))
            for s in ("original", "new")}
    names = list(metrics) if metrics else [m for m in METRICS if all(m in r for r in runs.values())]
    out: dict[str, dict[str, float]] = {}
    for m in names:
        missing = [k for k, r in runs.items() if m not in r]
        if missing:
            raise ConfigError(f"forgetting report: metric {m!r} is missing from {missing}")
        direction = METRICS.get(m, "higher")
        row = {k: runs[k][m] for k in ("before_original", "after_original", "before_new", "after_new")}
        row["forgetting"] = _worse_by(row["before_original"], row["after_original"], direction)
        row["gain"] = -_worse_by(row["before_new"], row["after_new"], direction)
        out[m] = row
    return out


def _fmt(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.4g}"


def render_markdown(report: Mapping[str, Any]) -> str:
    """Markdown tables of a :func:`forgetting_report` result."""
    lines = ["# Forgetting report\n",
             "forgetting = drop on the original validation set (positive = worse); "
             "gain = improvement on the new data (positive = better).\n"]
    for label, rows in report["runs"].items():
        lines.append(f"\n## {label}\n")
        lines.append("| metric | before orig. | after orig. | **forgetting** | before new | after new | **gain** |")
        lines.append("|---|---|---|---|---|---|---|")
        for m, r in rows.items():
            lines.append(f"| {m} | {_fmt(r['before_original'])} | {_fmt(r['after_original'])} | "
                         f"**{_fmt(r['forgetting'])}** | {_fmt(r['before_new'])} | {_fmt(r['after_new'])} | "
                         f"**{_fmt(r['gain'])}** |")
    return "\n".join(lines) + "\n"


def forgetting_report(before: Mapping[str, Source], runs: Mapping[str, Mapping[str, Source]],
                      out_dir: str | os.PathLike[str] | None = None,
                      metrics: Sequence[str] | None = None) -> dict[str, Any]:
    """Forgetting and gain of each fine-tuned run against the same starting model.

    Args:
        before: ``{"original": ..., "new": ...}`` evaluations of the starting model.
        runs: ``{label: {"original": ..., "new": ...}}`` evaluations of each fine-tuned model.
        out_dir: Where to write ``forgetting.json`` and ``forgetting.md`` (None: nothing).
        metrics: Metric keys (see :func:`compute_forgetting`).

    Returns:
        ``{"runs": {label: {metric: row}}, "sources": {...}}``.
    """
    if not runs:
        raise ConfigError("forgetting report: no fine-tuned run given; pass at least one LABEL=orig,new")
    report: dict[str, Any] = {
        "runs": {label: compute_forgetting(before, after, metrics) for label, after in runs.items()},
        "sources": {"before": {k: str(v) for k, v in before.items() if not isinstance(v, Mapping)},
                    **{label: {k: str(v) for k, v in a.items() if not isinstance(v, Mapping)}
                       for label, a in runs.items()}},
    }
    if out_dir is not None:
        out = Path(out_dir)
        with atomic_path(out / "forgetting.json") as tmp:
            tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        with atomic_path(out / "forgetting.md") as tmp:
            tmp.write_text(render_markdown(report), encoding="utf-8")
        log.info("wrote %s and %s", out / "forgetting.json", out / "forgetting.md")
    return report


__all__ = ["compute_forgetting", "forgetting_report", "render_markdown", "METRICS"]
