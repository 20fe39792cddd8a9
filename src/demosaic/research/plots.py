"""Line plots for research reports, drawn with matplotlib (the optional extra ``plots``).

Output: a PNG written atomically. Without matplotlib a :class:`~demosaic.errors.ConfigError`
says which extra to install.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demosaic.errors import ConfigError
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: Dots per inch of the written PNGs (``size`` is in pixels).
DPI = 100


def have_matplotlib() -> bool:
    """Whether the real matplotlib is importable (colour-science puts a ``MagicMock`` in
    ``sys.modules["matplotlib"]`` when it is not installed)."""
    try:
        import matplotlib
    except ImportError:
        return False
    return isinstance(getattr(matplotlib, "__version__", None), str)


def pyplot() -> Any:
    """matplotlib's pyplot with the non-interactive Agg backend.

    Raises:
        ConfigError: matplotlib is not installed (names the extra).
    """
    if not have_matplotlib():
        raise ConfigError("plots need matplotlib: pip install 'demosaic[plots]'")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write a matplotlib figure as an 8-bit RGB PNG of its exact pixel size (figure size x
    :data:`DPI`), atomically, and close it."""
    from PIL import Image

    plt = pyplot()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.set_dpi(DPI)
        fig.canvas.draw()
        rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
        with atomic_path(out) as tmp:
            Image.fromarray(rgb).save(tmp, format="PNG")
    finally:
        plt.close(fig)
    log.info("wrote plot %s", out)
    return out


def line_plot(path: str | os.PathLike[str], series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
              *, title: str = "", xlabel: str = "", ylabel: str = "", logy: bool = False,
              vlines: Sequence[float] = (), size: tuple[int, int] = (720, 420)) -> Path:
    """Draw ``{label: (x, y)}`` curves on shared axes and write a PNG.

    Args:
        path: Output ``.png``.
        series: Curves; non-finite points are skipped (and non-positive ones when ``logy``).
        title, xlabel, ylabel: Text; ``logy``: log y axis.
        vlines: x positions of dashed grey reference lines (e.g. CFA harmonics).
        size: ``(width, height)`` in px.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(size[0] / DPI, size[1] / DPI))
    for name, (x, y) in series.items():
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        ok = np.isfinite(x) & np.isfinite(y) & ((y > 0) if logy else True)
        style = "-" if ok.sum() > 1 else "o"
        ax.plot(x[ok], y[ok], style, label=name, linewidth=1.5, markersize=3)
    for vx in vlines:
        ax.axvline(vx, color="0.6", linestyle="--", linewidth=0.8)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if series:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["line_plot", "pyplot", "save_figure", "have_matplotlib"]
