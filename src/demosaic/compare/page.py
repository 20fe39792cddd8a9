"""The comparison page: one self-contained HTML file (images embedded as base64 data URIs, no
network; it opens from disk).

Per file: the full frame as a thumbnail (JPEG, :data:`THUMB_SIDE` px) with the crop boxes
numbered; a table of the methods (key, name, description, checkpoint and run, settings,
time); per crop, every method side by side at 1:1, then zoomed views (2:1 by default,
nearest neighbour, shared zoom and pan), a blink view (keys 1-9) and a before/after slider
between two methods. The crops are 8-bit sRGB PNGs (lossless) with ``--exposure`` baked in;
the page's exposure control adjusts from there (:mod:`demosaic.compare.page_assets`).

Size: a crop costs at most about ``4/3 * 3 * side^2`` bytes (base64 of an incompressible
PNG), so the defaults (3 methods, 6 crops of 192 px) stay under :data:`PAGE_BUDGET` per file
whatever the photograph's size; the thumbnail adds a JPEG of at most 1024 px.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from demosaic.color import linear_to_srgb
from demosaic.compare.crops import Crop
from demosaic.compare.methods import MethodImage
from demosaic.compare.page_assets import SCRIPT, STYLE
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: Longest side of the full-frame thumbnail in px.
THUMB_SIDE = 1024
#: Page bytes per file for the defaults (3 methods, 6 crops of 192 px), any photograph size.
PAGE_BUDGET = 3_500_000


@dataclass
class FileComparison:
    """One raw file's comparison, light enough to keep for many 24 MP files: its path,
    upright ``(H, W)``, each method (same order as the page's; ``rgb`` dropped), the crops,
    ``pieces[crop][method]`` (each a ``(3, h, w)`` linear sRGB copy) and the first method's
    ``thumb`` (:func:`thumbnail`). Made by :meth:`cut`."""

    path: Path
    size: tuple[int, int]
    methods: list[MethodImage]
    crops: list[Crop] = field(default_factory=list)
    pieces: list[list[np.ndarray]] = field(default_factory=list)
    thumb: np.ndarray = field(default_factory=lambda: np.zeros((3, 1, 1), np.float32))

    @classmethod
    def cut(cls, path: Path, images: list[MethodImage], crops: list[Crop]) -> FileComparison:
        """Keep of ``images`` (full upright frames) only the crops and a thumbnail."""
        h, w = images[0].rgb.shape[1:]
        pieces = [[np.ascontiguousarray(c.take(m.rgb)) for m in images] for c in crops]
        light = [MethodImage(m.name, np.zeros((3, 0, 0), np.float32), m.info, m.settings,
                             m.seconds) for m in images]
        return cls(Path(path), (int(h), int(w)), light, list(crops), pieces,
                   np.ascontiguousarray(thumbnail(images[0].rgb), dtype=np.float32))


def encode_srgb8(rgb: np.ndarray, exposure: float = 0.0) -> np.ndarray:
    """``(3, H, W)`` linear sRGB -> ``(H, W, 3)`` uint8 sRGB, times ``2**exposure``, clipped."""
    v = linear_to_srgb(np.clip(np.nan_to_num(rgb * np.float32(2.0 ** exposure)), 0.0, 1.0))
    return np.ascontiguousarray(np.rint(np.moveaxis(v, 0, -1) * 255.0).astype(np.uint8))


def data_uri(pixels: np.ndarray, fmt: str = "PNG") -> str:
    """A ``data:`` URI of ``(H, W, 3)`` uint8 pixels as PNG or JPEG."""
    from PIL import Image

    buf = io.BytesIO()
    opts = {"quality": 85} if fmt == "JPEG" else {"optimize": False, "compress_level": 9}
    Image.fromarray(pixels).save(buf, format=fmt, **opts)
    kind = "png" if fmt == "PNG" else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """An area-averaged ``(3, h, w)`` copy of ``rgb`` whose longer side is at most ``side``
    (an integer factor)."""
    h, w = rgb.shape[1:]
    k = max(1, -(-max(h, w) // side))
    hh, ww = h // k * k, w // k * k
    if k == 1:
        return rgb
    return rgb[:, :hh, :ww].reshape(3, hh // k, k, ww // k, k).mean(axis=(2, 4))


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _method_rows(fc: FileComparison) -> str:
    rows = []
    for i, m in enumerate(fc.methods):
        run = " ".join(f"{k} {m.info[k]}" for k in ("run", "step") if m.info.get(k))
        settings = ", ".join(f"{k}={v}" for k, v in m.settings.items())
        rows.append(f"<tr><td>{i + 1}</td><td>{_esc(m.name)}</td>"
                    f"<td>{_esc(m.info.get('description', ''))}</td>"
                    f"<td>{_esc(m.info.get('checkpoint', ''))}</td><td>{_esc(run)}</td>"
                    f"<td>{_esc(settings)}</td><td>{m.seconds:.2f} s</td></tr>")
    head = ("<tr><th>key</th><th>method</th><th>what</th><th>checkpoint</th><th>run</th>"
            "<th>settings</th><th>time</th></tr>")
    return f"<table class='methods'>{head}{''.join(rows)}</table>"


def _boxes(fc: FileComparison) -> str:
    h, w = fc.size
    out = []
    for i, c in enumerate(fc.crops):
        out.append(f"<div class='box' style='left:{100 * c.x / w:.3f}%;top:{100 * c.y / h:.3f}%;"
                   f"width:{100 * c.w / w:.3f}%;height:{100 * c.h / h:.3f}%'>{i + 1}</div>")
    return "".join(out)


def _canvas(f: int, c: int, m: int, cls: str) -> str:
    return f"<canvas class='{cls}' data-f='{f}' data-c='{c}' data-m='{m}'></canvas>"


def _crop_html(f: int, c: int, crop: Crop, names: list[str]) -> str:
    """One crop's block: 1:1 row, zoomed row, blink view and before/after slider."""
    def fig(caption: str, body: str) -> str:
        return f"<figure><figcaption>{caption}</figcaption>{body}</figure>"

    one = "".join(fig(f"{m + 1} {_esc(n)} 1:1", _canvas(f, c, m, "one"))
                  for m, n in enumerate(names))
    zoomed = "".join(fig(f"{m + 1} {_esc(n)}", f"<div class='view'>{_canvas(f, c, m, 'z')}</div>")
                     for m, n in enumerate(names))
    blink = fig("blink (keys 1-9): <span class='bname'></span>",
                f"<div class='view'>{_canvas(f, c, 0, 'z blink')}</div>")
    ab = fig("before | after: <span class='abname'></span>",
             f"<div class='view'><div class='ab'>{_canvas(f, c, 0, 'z a')}"
             f"{_canvas(f, c, 1 if len(names) > 1 else 0, 'z b')}</div></div>"
             "<input type='range' class='split' min='0' max='100' value='50'>")
    title = (f"crop {c + 1}: x {crop.x}, y {crop.y}, {crop.w}x{crop.h} px "
             f"({'yours' if crop.why == 'user' else f'auto, score {crop.score:.2f}'})")
    return (f"<div class='crop' id='f{f}c{c}'><h3>{_esc(title)}</h3><div class='row'>{one}</div>"
            f"<div class='row'>{zoomed}{blink}{ab}</div></div>")


def _file_html(f: int, fc: FileComparison, thumb_uri: str) -> str:
    names = [m.name for m in fc.methods]
    crops = "".join(_crop_html(f, c, crop, names) for c, crop in enumerate(fc.crops))
    h, w = fc.size
    return (f"<section class='file'><h2>{_esc(fc.path.name)} <small>({w}x{h} px)</small></h2>"
            f"<div class='thumb'><img alt='{_esc(fc.path.name)}' src='{thumb_uri}'>"
            f"{_boxes(fc)}</div>{_method_rows(fc)}{crops}</section>")


def _controls(names: list[str], exposure: float) -> str:
    opts = "".join(f"<option value='{i}'>{i + 1} {_esc(n)}</option>" for i, n in enumerate(names))
    opts_b = "".join(f"<option value='{i}'{' selected' if i == min(1, len(names) - 1) else ''}>"
                     f"{i + 1} {_esc(n)}</option>" for i, n in enumerate(names))
    return ("<header><label>exposure <input id='ev' type='range' min='-4' max='4' step='0.1' "
            f"value='0'> +<span id='evv'>0.0</span> EV (on top of {exposure:+.1f})</label>"
            "<label>zoom <select id='zoom'><option value='1'>1:1</option>"
            "<option value='2' selected>2:1</option><option value='4'>4:1</option>"
            "<option value='8'>8:1</option></select></label>"
            f"<label>before <select id='sla'>{opts}</select></label>"
            f"<label>after <select id='slb'>{opts_b}</select></label>"
            "<span>keys 1-9: blink; drag a view to pan (all views of a crop follow)</span>"
            "</header>")


def _file_data(fc: FileComparison, exposure: float) -> dict[str, object]:
    crops = []
    for c, pieces in zip(fc.crops, fc.pieces):
        crops.append({"x": c.x, "y": c.y, "w": c.w, "h": c.h, "why": c.why,
                      "images": [data_uri(encode_srgb8(p, exposure)) for p in pieces]})
    return {"name": fc.path.name, "crops": crops}


def build_page(files: list[FileComparison], *, exposure: float = 0.0,
               title: str = "demosaic-compare") -> str:
    """The page's HTML for ``files`` (every file has the same methods, in order)."""
    names = [m.name for m in files[0].methods] if files else []
    sections, data = [], []
    for f, fc in enumerate(files):
        thumb = data_uri(encode_srgb8(fc.thumb, exposure), "JPEG")
        sections.append(_file_html(f, fc, thumb))
        data.append(_file_data(fc, exposure))
    payload = json.dumps({"methods": names, "exposure": exposure, "files": data})
    payload = payload.replace("</", "<\\/")  # never closes the script element early
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
            f"{_controls(names, exposure)}{''.join(sections)}<pre id='selftest'></pre>"
            f"<script type='application/json' id='data'>{payload}</script>"
            f"<script>{SCRIPT}</script></body></html>")


def write_page(path: str | os.PathLike[str], page: str) -> Path:
    """Write ``page`` to ``path`` atomically (UTF-8)."""
    out = Path(path)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s (%.2f MB)", out, len(page.encode()) / 1e6)
    return out


__all__ = ["FileComparison", "PAGE_BUDGET", "THUMB_SIDE", "build_page", "data_uri",
           "encode_srgb8", "thumbnail", "write_page"]
