"""The whole comparison: :func:`compare_files` (``demosaic-compare INPUT... OUT.html``).

Order, so that a bad plan fails before any work and nothing is half-written:

1. the inputs (files, folders, glob patterns: :func:`demosaic.inference.batch.collect_inputs`),
   the methods (:func:`~demosaic.compare.methods.parse_methods`) and the user's crops are
   checked; the planned outputs (the page and its contact sheet, ``OUT.png``) against the
   inputs and checkpoints (:func:`demosaic.io.clash.check_outputs`);
2. per file: read once, every method run, the crops chosen
   (:func:`~demosaic.compare.crops.choose_crops`), the images cut down to the crops and the
   thumbnail (a 24 MP file's full images are not kept past its turn);
3. the page and the sheet written atomically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from demosaic.compare.crops import AUTO_CROPS, DEFAULT_CROP_SIZE, Crop, check_crop, choose_crops
from demosaic.compare.methods import DEFAULT_METHODS, MethodSpec, parse_methods, run_method
from demosaic.compare.page import FileComparison, build_page, write_page
from demosaic.compare.sheet import write_sheet
from demosaic.errors import ConfigError
from demosaic.inference.batch import collect_inputs
from demosaic.inference.colour import plan_colour
from demosaic.inference.writers import upright_size
from demosaic.io.clash import check_outputs
from demosaic.io.raw import read_raw

log = logging.getLogger(__name__)

CLASH_HINT = "name the page (OUT.html) apart from the raw files and checkpoints"


@dataclass
class CompareResult:
    """What :func:`compare_files` wrote: the page, the sheet, the files compared."""

    page: Path
    sheet: Path
    files: list[Path]
    crops: int
    bytes: int


def sheet_path(page: Path) -> Path:
    """The contact sheet written beside the page: ``OUT.html`` -> ``OUT.png``."""
    return page.with_suffix(".png")


def _compare_one(path: Path, specs: list[MethodSpec], user_crops: list[Crop], auto: bool,
                 size: int) -> FileComparison:
    """Read ``path``, run every method, choose the crops, keep the crops and a thumbnail."""
    raw = read_raw(path)
    colour = plan_colour(raw, "srgb", "as_shot")
    _ = colour.matrix  # a file without a usable matrix fails here, before any method
    frame = upright_size(raw.cfa[None], raw.orientation)  # every method's output size
    for c in user_crops:  # before any method runs
        check_crop(c, frame, path)
    images = [run_method(s, raw, colour) for s in specs]
    crops = choose_crops([m.rgb for m in images], AUTO_CROPS if auto else 0, size, user_crops)
    return FileComparison.cut(path, images, crops)


def compare_files(inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], *,
                  methods: Sequence[str] = DEFAULT_METHODS, crops: Sequence[Crop] = (),
                  auto_crops: bool = True, crop_size: int = DEFAULT_CROP_SIZE,
                  exposure: float = 0.0, device: str = "auto") -> CompareResult:
    """Compare ``methods`` on the raw files of ``inputs`` into the page ``output`` (``.html``)
    and its contact sheet (:func:`sheet_path`).

    Raises:
        ConfigError: a bad output name, crop size, method or crop (naming it), no raw file.
        OutputClashError: an output would replace an input or a checkpoint.
        RawReadError: an unreadable raw file (naming it); nothing is written.
    """
    page = Path(output)
    if page.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"output {page}: the page must end in .html")
    if crop_size < 16:
        raise ConfigError(f"--crop-size {crop_size}: give at least 16 px")
    if not auto_crops and not crops:
        raise ConfigError("no crops: give --crops auto, or x,y,w,h crops, or both")
    files = collect_inputs(list(inputs))
    specs = parse_methods(list(methods), device)
    ckpts = [s.checkpoint for s in specs if s.checkpoint is not None]
    check_outputs([*files, *ckpts], [page, sheet_path(page)], hint=CLASH_HINT)
    compared = [_compare_one(p, specs, list(crops), auto_crops, crop_size) for p in files]
    html = build_page(compared, exposure=exposure)
    sheet = write_sheet(sheet_path(page), compared, exposure=exposure)
    write_page(page, html)
    return CompareResult(page, sheet, files, sum(len(fc.crops) for fc in compared),
                         len(html.encode()))


__all__ = ["CLASH_HINT", "CompareResult", "compare_files", "sheet_path"]
