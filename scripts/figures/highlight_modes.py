"""The picture of docs/CAMERA.md: what each highlight mode does to clipped raw channels.

A bundled sample photograph is exposed 2.5x and given a lamp (a spot far above the white
level), then captured by the camera simulation (Fujifilm X-T3 matrix, daylight, ISO 100,
14 bits) and written as a DNG. ``demosaic-infer``'s path (:func:`demosaic.inference.run.infer_file`,
linear sRGB EXR) runs it with ``--highlights none | clip | reconstruct``; LibRaw's own clip
mode (Markesteijn 3-pass, as-shot white balance, sRGB) is shown beside them. Each panel is
shown twice: as is (top row) and 2 stops darker (bottom row), where the values above 1.0 that
a mode kept become visible (the PNG is halved in size). Pictures under 512 px are mirrored out to 516 px first (LibRaw's
Markesteijn refuses smaller ones).

Usage::

    python scripts/figures/highlight_modes.py docs/img/highlight_modes.png [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", default=None, help="default: the packaged model")
    parser.add_argument("--image", default=None, help="default: a bundled sample image")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from PIL import Image, ImageDraw

    from demosaic import cfa
    from demosaic.color import linear_to_srgb
    from demosaic.data.common import SAMPLES_DIR
    from demosaic.inference.run import infer_file
    from demosaic.io.atomic import atomic_path
    from demosaic.io.images import read_exr, read_image_linear
    from demosaic.io.libraw import libraw_params
    from demosaic.io.raw import open_raw
    from demosaic.sim.raw_files import write_camera_raw

    src = Path(args.image) if args.image else sorted((SAMPLES_DIR / "val").glob("*.png"))[0]
    rgb = read_image_linear(src)
    # LibRaw's Markesteijn needs >= 512 px per side: mirror small pictures out to 516 px
    ph, pw = max(0, 516 - rgb.shape[1]), max(0, 516 - rgb.shape[2])
    rgb = np.pad(rgb, ((0, 0), (0, ph), (0, pw)), mode="reflect")
    h, w = rgb.shape[1] // 6 * 6, rgb.shape[2] // 6 * 6
    rgb = rgb[:, :h, :w] * np.float32(2.5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lamp = np.exp(-((yy - h * 0.35) ** 2 + (xx - w * 0.3) ** 2) / (2 * (min(h, w) * 0.08) ** 2))
    rgb = rgb + np.float32(6.0) * lamp[None] * np.array([1.0, 0.95, 0.85], np.float32)[:, None, None]
    panels, labels = [], []
    with tempfile.TemporaryDirectory() as tmp:
        dng, _ = write_camera_raw(Path(tmp) / "scene.dng", rgb, cfa.XTRANS, iso=100, body="X-T3",
                                  rng=np.random.default_rng(0), model="highlights X-T3")
        for mode in ("none", "clip", "reconstruct"):
            out = Path(tmp) / f"{mode}.exr"
            infer_file(dng, out, checkpoint=args.checkpoint, device="cpu", color_space="srgb",
                       highlights=mode, float32=True)
            panels.append(read_exr(out)[0])
            labels.append(f"--highlights {mode}")
        with open_raw(dng) as raw:
            lib = raw.postprocess(libraw_params("DHT", white_balance="camera", output="srgb"))
        panels.append(lib.astype(np.float32).transpose(2, 0, 1) / 65535.0)
        labels.append("LibRaw clip (Markesteijn)")
    rows = []
    for exposure in (1.0, 0.25):
        tiles = [np.rint(np.clip(linear_to_srgb(np.clip(p * exposure, 0, None)), 0, 1) * 255)
                 .astype(np.uint8).transpose(1, 2, 0) for p in panels]
        rows.append(np.concatenate([np.pad(t, ((0, 4), (0, 4), (0, 0)), constant_values=255)
                                    for t in tiles], axis=1))
    grid = np.concatenate(rows, axis=0)
    small = Image.fromarray(grid).resize((grid.shape[1] // 2, grid.shape[0] // 2), Image.LANCZOS)
    img = Image.fromarray(np.pad(np.asarray(small), ((14, 0), (0, 0), (0, 0)), constant_values=255))
    draw = ImageDraw.Draw(img)
    for i, label in enumerate(labels):
        draw.text((i * (w + 4) // 2 + 2, 1), label, fill=(0, 0, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp_png:
        img.save(tmp_png, format="PNG")
    print(f"wrote {args.out} ({src.name}; top: as is, bottom: 2 stops darker)")


if __name__ == "__main__":
    main()
