"""Synthetic-CFA vs raw-teacher CFA statistics (research log, priority 2, step 1).

The v4_ft fine-tune (synthetic mosaics of JPEG photographs) grew a 6x6 grid that v4 (raw
files with a LibRaw teacher) never showed. If the two kinds of training mosaic differ in a
way a network can see per CFA phase, that difference is a candidate cause. This module
measures, for any number of datasets (``DATASETS`` registry mappings; items
``{"cfa" (1, H, W), "mask" (3, H, W), "target" (3, H, W)}``, canonical phase):

- ``histograms``: per colour channel, the distribution of mosaic values at that channel's
  sites (log-spaced bins from 1e-4 to 8, plus the fraction of values <= 0 and >= 1);
- ``phase_means``: mean mosaic value at each of the ``period x period`` CFA positions divided
  by the mean of that channel's sites (1.0 everywhere = no phase-dependent bias);
- ``spectrum``: the mosaic's mean power spectrum along rows and along columns (cycles/px),
  after removing each sample's per-channel means, normalised to total power 1;
- ``harmonics``: the share of spectral power exactly at the CFA harmonics
  ``(ky / period, kx / period)`` (DC excluded) of the *target* minus its local mean, i.e. how
  much image content sits at the frequencies where CFA aliasing lands;
- ``target_highfreq``: the share of target power above 0.25 cycles/px (sharpness: a
  demosaicked LibRaw teacher is softer than a downsampled JPEG).

:func:`compare_cfa_statistics` writes ``cfa_stats.json`` and three PNGs (histograms,
spectra, phase means) with :func:`demosaic.research.plots.line_plot`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from demosaic.io.atomic import atomic_path
from demosaic.research.plots import line_plot

log = logging.getLogger(__name__)

#: Histogram bin edges (log-spaced, linear-light values).
BIN_EDGES = np.logspace(-4, np.log10(8.0), 49)
CHANNELS = ("R", "G", "B")


def _spectra(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column power spectra of ``x (H, W)``: mean over the other axis, ``(W,), (H,)``."""
    row = (np.abs(np.fft.fft(x, axis=1)) ** 2).mean(0)
    col = (np.abs(np.fft.fft(x, axis=0)) ** 2).mean(1)
    return row, col


def dataset_statistics(dataset: Any, period: int, max_items: int = 64) -> dict[str, Any]:
    """Statistics of up to ``max_items`` items of ``dataset`` (see the module docstring).

    All items must have the same size (training patches do). Returns plain lists/floats.
    """
    n = min(max_items, len(dataset))
    if n == 0:
        from demosaic.errors import ConfigError

        raise ConfigError("cfa statistics: the dataset is empty; check its root")
    hist = np.zeros((3, len(BIN_EDGES) - 1))
    le0 = np.zeros(3)
    ge1 = np.zeros(3)
    count = np.zeros(3)
    phase_sum = np.zeros((period, period))
    phase_n = 0
    chan_of_phase = None
    row_p = col_p = None
    harm = total = hf = hf_total = 0.0
    for i in range(n):
        item = dataset[i]
        cfa = item["cfa"][0].numpy().astype(np.float64)
        mask = item["mask"].numpy() > 0.5
        target = item["target"].numpy().astype(np.float64)
        h, w = (cfa.shape[0] // period) * period, (cfa.shape[1] // period) * period
        cfa, mask, target = cfa[:h, :w], mask[:, :h, :w], target[:, :h, :w]
        for c in range(3):
            v = cfa[mask[c]]
            hist[c] += np.histogram(v, bins=BIN_EDGES)[0]
            le0[c] += (v <= 0).sum()
            ge1[c] += (v >= 1).sum()
            count[c] += v.size
        phase_sum += cfa.reshape(h // period, period, w // period, period).mean(axis=(0, 2))
        phase_n += 1
        if chan_of_phase is None:
            chan_of_phase = mask[:, :period, :period].argmax(0)
        centred = cfa.copy()
        for c in range(3):
            centred[mask[c]] -= cfa[mask[c]].mean()
        r, cl = _spectra(centred)
        row_p = r if row_p is None else row_p + r
        col_p = cl if col_p is None else col_p + cl
        lum = target.mean(0)
        power = np.abs(np.fft.fft2(lum - lum.mean())) ** 2
        sy, sx = h // period, w // period
        grid = power[::sy, ::sx].copy()
        grid[0, 0] = 0.0
        harm += float(grid.sum())
        total += float(power.sum())
        fy = np.abs(np.fft.fftfreq(h))[:, None]
        fx = np.abs(np.fft.fftfreq(w))[None, :]
        hf += float(power[np.maximum(fy, fx) > 0.25].sum())
        hf_total += float(power.sum())
    phase = phase_sum / phase_n
    chan_mean = np.array([phase[chan_of_phase == c].mean() for c in range(3)])
    phase_rel = phase / chan_mean[chan_of_phase]
    freqs_row = np.fft.fftfreq(len(row_p))
    freqs_col = np.fft.fftfreq(len(col_p))
    keep_r, keep_c = freqs_row >= 0, freqs_col >= 0
    row_p, col_p = row_p / row_p.sum(), col_p / col_p.sum()
    return {
        "items": n,
        "size": [int(h), int(w)],
        "histograms": {CHANNELS[c]: (hist[c] / max(count[c], 1)).tolist() for c in range(3)},
        "fraction_le0": {CHANNELS[c]: float(le0[c] / max(count[c], 1)) for c in range(3)},
        "fraction_ge1": {CHANNELS[c]: float(ge1[c] / max(count[c], 1)) for c in range(3)},
        "channel_means": {CHANNELS[c]: float(chan_mean[c]) for c in range(3)},
        "phase_means": phase_rel.tolist(),
        "phase_spread": float(phase_rel.max() - phase_rel.min()),
        "spectrum_rows": {"freq": freqs_row[keep_r].tolist(), "power": row_p[keep_r].tolist()},
        "spectrum_cols": {"freq": freqs_col[keep_c].tolist(), "power": col_p[keep_c].tolist()},
        "harmonics": harm / max(total, 1e-30),
        "target_highfreq": hf / max(hf_total, 1e-30),
    }


def compare_cfa_statistics(datasets: Mapping[str, Any], out_dir: str | os.PathLike[str], period: int,
                           max_items: int = 64) -> dict[str, Any]:
    """Statistics of each named dataset, written as ``cfa_stats.json`` + PNG plots.

    Args:
        datasets: ``{label: dataset}`` (e.g. ``{"synthetic": ..., "raw_teacher": ...}``).
        out_dir: Output folder (created).
        period: CFA period (6 for X-Trans).
        max_items: Items read from each dataset.

    Returns:
        ``{label: statistics}`` as written to the JSON, plus ``"plots": [paths]``.
    """
    out = Path(out_dir)
    stats = {label: dataset_statistics(ds, period, max_items) for label, ds in datasets.items()}
    centres = np.sqrt(BIN_EDGES[:-1] * BIN_EDGES[1:])
    plots = []
    series = {f"{label} {ch}": (np.log10(centres), s["histograms"][ch])
              for label, s in stats.items() for ch in CHANNELS}
    plots.append(line_plot(out / "histograms.png", series, title="mosaic values per channel",
                           xlabel="log10 linear value", ylabel="fraction of sites", vlines=[0.0]))
    series = {}
    for label, s in stats.items():
        series[f"{label} rows"] = (s["spectrum_rows"]["freq"], s["spectrum_rows"]["power"])
        series[f"{label} cols"] = (s["spectrum_cols"]["freq"], s["spectrum_cols"]["power"])
    plots.append(line_plot(out / "spectra.png", series, logy=True,
                           title=f"mosaic power spectrum (dashed: CFA harmonics k/{period})",
                           xlabel="cycles / px", ylabel="power share",
                           vlines=[k / period for k in range(1, period // 2 + 1)]))
    series = {label: (np.arange(period * period), np.asarray(s["phase_means"]).ravel())
              for label, s in stats.items()}
    plots.append(line_plot(out / "phase_means.png", series, title="mean value per CFA position / channel mean",
                           xlabel=f"position y*{period}+x", ylabel="relative mean"))
    result = {**stats, "plots": [str(p) for p in plots]}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "cfa_stats.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", out / "cfa_stats.json")
    return result


def summary_table(stats: Mapping[str, Any]) -> str:
    """Markdown table of the scalar statistics of each dataset."""
    rows = ["| set | R mean | G mean | B mean | >=1 (G) | phase spread | harmonic share | target >0.25 cyc/px |",
            "|---|---|---|---|---|---|---|---|"]
    for label, s in stats.items():
        if label == "plots":
            continue
        m = s["channel_means"]
        rows.append(f"| {label} | {m['R']:.4f} | {m['G']:.4f} | {m['B']:.4f} | {s['fraction_ge1']['G']:.4f} | "
                    f"{s['phase_spread']:.4f} | {s['harmonics']:.2e} | {s['target_highfreq']:.4f} |")
    return "\n".join(rows) + "\n"


__all__ = ["dataset_statistics", "compare_cfa_statistics", "summary_table", "BIN_EDGES"]
