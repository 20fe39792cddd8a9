"""darktable develops our linear DNG like the source raw: colour difference and detail crops.

The whole user path, with darktable's default settings for both files:

1. the test chart (:func:`demosaic.data.chart.colour_chart`: 24 ColorChecker patches and a
   detail strip) is captured by the camera simulation (a real body's colour matrix, daylight
   white balance, Poisson-Gaussian noise at the given ISO, 14 bits) and written as an X-Trans
   CFA DNG with EXIF (ISO, exposure, lens, date);
2. ``demosaic-infer chart.dng chart_linear.dng`` (the shipped model, a subprocess exactly as a
   user runs it) writes the linear DNG;
3. ``darktable-cli`` renders the source DNG (darktable's own X-Trans demosaic, Markesteijn) and
   our linear DNG to 16-bit sRGB TIFFs, each with a fresh configuration and the same
   workflow (:func:`demosaic.io.tools.darktable_render`): display-referred for the verdict,
   and darktable's default scene-referred too, reported beside it (darktable gives a linear
   DNG different default modules there);
4. CIEDE2000 of each flat patch's mean colour between the two renders
   (:func:`demosaic.data.chart.patch_delta_e`), and a picture: the two renders side by side
   with enlarged detail crops underneath.

Usage::

    python scripts/figures/darktable_compare.py --out logs/darktable [--picture docs/img/darktable_linear_dng.png]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np


def levels_check(linear_dng: Path, out: Path, chart_patches: dict) -> dict[str, float]:
    """Why the linear DNG has black level 0 and a lowered white level: the same image data
    re-written (a) with black level 1024 and (b) with an extra 3.0 spot (white level lowered
    to fit it), each rendered by darktable against the plain copy (mean CIEDE2000)."""
    import tifffile

    from demosaic.data.chart import patch_delta_e
    from demosaic.io import dng
    from demosaic.io.tools import darktable_render

    with tifffile.TiffFile(linear_dng) as tif:
        page, ifd0 = tif.pages.first.pages[0], tif.pages.first
        black, white = page.tags["BlackLevel"].value, page.tags["WhiteLevel"].value
        rgb = (page.asarray().astype(np.float32).transpose(2, 0, 1) - black) / (white - black)
        def rationals(tag: str) -> np.ndarray:
            pairs = np.asarray(ifd0.tags[tag].value, dtype=np.float64).reshape(-1, 2)
            return pairs[:, 0] / pairs[:, 1]

        neutral, matrix = rationals("AsShotNeutral"), rationals("ColorMatrix1").reshape(3, 3)
    spot = rgb.copy()
    spot[:, :4, :4] = 3.0
    variants = {"plain": (rgb, 0), "black1024": (rgb, 1024), "spot3": (spot, 0)}
    renders = {}
    saved = dng.LINEAR_BLACK
    try:
        for name, (data, level) in variants.items():
            dng.LINEAR_BLACK = level
            path = dng.write_linear_dng(out / f"levels_{name}.dng", data, xyz_to_cam=matrix,
                                        as_shot_neutral=neutral)
            renders[name] = read_render(darktable_render(path, out / f"levels_{name}.tif"))
    finally:
        dng.LINEAR_BLACK = saved
    result = {}
    for name in ("black1024", "spot3"):
        de = np.array(list(patch_delta_e(renders["plain"], renders[name], chart_patches).values()))
        result[name] = {"mean_de2000": round(float(de.mean()), 4), "max_de2000": round(float(de.max()), 4)}
        print(f"levels check, {name} vs plain: mean CIEDE2000 {de.mean():.4f}, max {de.max():.4f}")
    return result


def read_render(path: Path) -> np.ndarray:
    """``(H, W, 3)`` sRGB-encoded values in [0, 1] of a darktable TIFF."""
    from demosaic.io.images import read_image

    return read_image(path)


def picture(src: np.ndarray, ours: np.ndarray, detail: tuple[int, int, int, int],
            out: Path, scores: tuple[float, float]) -> None:
    """Two renders side by side (labelled), with enlarged crops of the detail strip below."""
    from PIL import Image, ImageDraw

    def u8(a: np.ndarray) -> Image.Image:
        return Image.fromarray(np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8))

    y0, x0, y1, x1 = detail
    crop = (y0 + 24, x0 + 150, y0 + 24 + 64, x0 + 150 + 108)  # star centre and its left side
    h, w = src.shape[:2]
    cw, chh = crop[3] - crop[1], crop[2] - crop[0]
    crops = [u8(r[crop[0]:crop[2], crop[1]:crop[3]]).resize((w, chh * w // cw), Image.NEAREST)
             for r in (src, ours)]
    ch = crops[0].height
    canvas = Image.new("RGB", (2 * w + 8, h + ch + 8 + 22), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (img, cr) in enumerate(zip((src, ours), crops)):
        canvas.paste(u8(img), (i * (w + 8), 22))
        canvas.paste(cr, (i * (w + 8), h + 30))
    draw.text((4, 4), "darktable (display-referred): source X-Trans DNG (its Markesteijn)",
              fill="black")
    draw.text((w + 12, 4), f"darktable: our linear DNG (mean dE00 {scores[0]:.2f}, max {scores[1]:.2f})",
              fill="black")
    canvas.save(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("logs/darktable"))
    parser.add_argument("--camera", default="X-T3")
    parser.add_argument("--iso", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--picture", type=Path, default=None)
    parser.add_argument("--levels-check", action="store_true",
                        help="also measure why the linear DNG's black level is 0 (see levels_check)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from demosaic.data.chart import colour_chart, false_colour, patch_delta_e, write_chart_dng
    from demosaic.io.tools import darktable_render

    args.out.mkdir(parents=True, exist_ok=True)
    src, lin = args.out / "chart.dng", args.out / "chart_linear.dng"
    info = write_chart_dng(src, args.camera, args.iso, args.seed)
    cmd = ["demosaic-infer", str(src), str(lin), "--no-progress"]
    if args.checkpoint:
        cmd += ["--checkpoint", args.checkpoint]
    subprocess.run(cmd, check=True)
    chart = colour_chart()
    result: dict[str, object] = {**info, "command": " ".join(cmd)}
    renders = {}
    for workflow in ("display-referred", "scene-referred"):
        a, b = (read_render(darktable_render(p, args.out / f"{p.stem}_{workflow}.tif",
                                             workflow=workflow)) for p in (src, lin))
        if a.shape[:2] != chart.rgb.shape[1:] or b.shape != a.shape:
            print(f"render sizes {a.shape} / {b.shape} differ from the chart {chart.rgb.shape}",
                  file=sys.stderr)
            return 1
        de = patch_delta_e(a, b, chart.patches)
        values = np.array(list(de.values()))
        chroma = [false_colour(r, chart) for r in (a, b)]
        result[workflow] = {"false_colour_source": round(chroma[0], 3),
                            "false_colour_linear_dng": round(chroma[1], 3),
                            "mean_de2000": round(float(values.mean()), 4),
                            "max_de2000": round(float(values.max()), 4),
                            "worst_patch": max(de, key=de.get),
                            "per_patch": {k: round(v, 3) for k, v in de.items()}}
        renders[workflow] = (a, b, float(values.mean()), float(values.max()))
        print(f"{workflow}: CIEDE2000 over {len(values)} patches: mean {values.mean():.3f}, "
              f"max {values.max():.3f} ({max(de, key=de.get)}); false colour (mean C*ab on the "
              f"neutral detail) source {chroma[0]:.2f}, linear DNG {chroma[1]:.2f}")
    if args.levels_check:
        result["levels_check"] = levels_check(lin, args.out, chart.patches)
    (args.out / "result.json").write_text(json.dumps(result, indent=1))
    if args.picture:
        a, b, mean, worst = renders["display-referred"]
        picture(a, b, chart.detail, args.picture, (mean, worst))
        print(f"wrote {args.picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
