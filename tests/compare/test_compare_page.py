"""The comparison page and contact sheet: every method's crops, self-contained, size budget."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from demosaic.compare.crops import Crop
from demosaic.compare.methods import MethodImage
from demosaic.compare.page import PAGE_BUDGET, FileComparison, build_page, write_page
from demosaic.compare.sheet import contact_sheet, write_sheet


def _comparison(images: list[np.ndarray], crops: list[Crop], name: str = "photo.raf"
                ) -> FileComparison:
    methods = [MethodImage(f"method{i}", im, {"description": f"what {i}", "checkpoint": "x.pt",
                                              "run": "run1", "step": "7"}, {"tile": 3072}, 0.5)
               for i, im in enumerate(images)]
    return FileComparison.cut(Path(name), methods, crops)


def _small() -> FileComparison:
    rng = np.random.default_rng(1)
    images = [rng.random((3, 120, 160), dtype=np.float32) for _ in range(3)]
    return _comparison(images, [Crop(0, 0, 32, 32), Crop(64, 40, 48, 30, "user")])


def test_the_page_holds_every_methods_crops_and_is_self_contained(tmp_path):
    fc = _small()
    page = build_page([fc, fc], exposure=0.5)
    assert len(re.findall(r"data:image/png;base64,", page)) == 2 * 2 * 3
    assert len(re.findall(r"data:image/jpeg;base64,", page)) == 2  # thumbnails
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(script|img|link)[^>]+(src|href)=['\"](?!data:)", page)
    for i in range(3):
        assert f"method{i}" in page and f"what {i}" in page
    assert "run1" in page and "x.pt" in page and "0.50 s" in page
    assert page.count("class='box'") == 4 and page.count("class='crop'") == 4
    out = write_page(tmp_path / "p.html", page)
    assert out.read_text(encoding="utf-8") == page


def test_page_size_of_a_24_mp_file_stays_in_the_budget():
    """Worst case: incompressible noise, the defaults (3 methods, 6 crops of 192 px)."""
    base = np.random.default_rng(0).random((3, 4000, 6000), dtype=np.float32)
    images = [base, base[:, ::-1], base[:, :, ::-1]]  # views: no copies
    crops = [Crop(x, y, 192, 192) for x in (0, 2000, 4000) for y in (0, 2000)]
    page = build_page([_comparison(images, crops)])
    assert len(page.encode()) <= PAGE_BUDGET, len(page.encode())


def test_contact_sheet_has_a_cell_per_method_and_crop(tmp_path):
    fc = _small()
    sheet = contact_sheet([fc])
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3
    assert sheet.shape[0] >= 32 + 30 and sheet.shape[1] >= 3 * 48
    from PIL import Image

    out = write_sheet(tmp_path / "s.png", [fc], scale=2)
    assert Image.open(out).size[0] > sheet.shape[1]
