"""White-balance insensitivity: one scene stored at as-shot multipliers (1, 1, 1) and at
(2.2, 1, 1.7), through ``demosaic-infer``'s path, against the same truth.

For each truth image (linear sRGB, cropped to the 6 px period) two X-Trans DNGs are written
(16-bit, black 0, white 65535, no noise, canonical phase): file A holds the mosaic with
``AsShotNeutral = (1, 1, 1)``; file B holds the mosaic divided by (2.2, 1, 1.7) per pixel
colour with ``AsShotNeutral = (1/2.2, 1, 1/1.7)``, as a camera whose red and blue read 1/2.2
and 1/1.7 of green would store it. Both go through :func:`demosaic.inference.run.infer_file`
(camera RGB, as-shot white balance, float EXR), and each output's linear PSNR against the
truth (12 px border) is reported with the difference. Before white balance moved in front of
the network, B was demosaicked unbalanced.

Usage::

    python scripts/benchmarks/bench_wb.py ../shared/data/kodak24 [--checkpoint PATH] [--max-images N]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--checkpoint", default=None, help="default: the packaged model")
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--multipliers", type=float, nargs=3, default=(2.2, 1.0, 1.7))
    parser.add_argument("--highlights", default="clip", choices=("clip", "reconstruct", "none"),
                        help="demosaic-infer's highlight mode (file A's whites sit at the white "
                             "level and count as clipped; file B's red and blue do not)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from demosaic import cfa
    from demosaic.io.dng import write_dng
    from demosaic.io.images import read_exr, read_image_linear
    from demosaic.inference.run import infer_file
    from demosaic.metrics import psnr
    from demosaic.models.zoo import ModelSource

    files = sorted(p for p in args.folder.iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"))
    if args.max_images:
        files = files[: args.max_images]
    mult = np.asarray(args.multipliers, dtype=np.float64)
    mult = mult / mult[1]
    source = ModelSource(args.checkpoint, None, "cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            truth = read_image_linear(f)
            h, w = truth.shape[1] // 6 * 6, truth.shape[2] // 6 * 6
            truth = np.clip(truth[:, :h, :w], 0.0, None)
            # Plain mosaics, not demosaic.sim.raw_files.write_camera_raw: the test needs the
            # truth itself in the file (no noise, no colour matrix, 16 bits, black 0) and
            # nothing but the stored as-shot multipliers differing between files A and B.
            idx = np.tile(cfa.XTRANS.array, (h // 6, w // 6))
            mosaic = np.take_along_axis(truth, idx[None], 0)[0]
            a = write_dng(Path(tmp) / "a.dng", mosaic, cfa.XTRANS, as_shot_neutral=(1, 1, 1))
            b = write_dng(Path(tmp) / "b.dng", mosaic / mult[idx], cfa.XTRANS,
                          as_shot_neutral=1.0 / mult)
            scores = []
            for path in (a, b):
                out = Path(tmp) / (path.stem + ".exr")
                infer_file(path, out, source=source, float32=True, highlights=args.highlights)
                scores.append(float(psnr(read_exr(out)[0], truth, border=12)))
            rows.append({"image": f.stem, "psnr_unit": scores[0], "psnr_scaled": scores[1],
                         "diff": scores[1] - scores[0]})
            print(f"{f.stem}: {scores[0]:.3f} dB at (1, 1, 1), {scores[1]:.3f} dB at "
                  f"{tuple(round(float(v), 3) for v in mult)}")
    diffs = np.array([r["diff"] for r in rows])
    summary = {"images": len(rows), "mean_unit": float(np.mean([r["psnr_unit"] for r in rows])),
               "mean_scaled": float(np.mean([r["psnr_scaled"] for r in rows])),
               "max_abs_diff": float(np.abs(diffs).max()), "highlights": args.highlights,
               "model": source.info_for("xtrans")["description"],
               "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
