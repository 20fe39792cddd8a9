"""Quality/speed pairs of inference optimisations for one checkpoint.

Usage::

    python scripts/speed_report.py CHECKPOINT --int8 static --tiling IMAGE --tile 96

``--int8 static|dynamic``: export to ONNX float and INT8 (needs the ``export`` extra) and time
both with onnxruntime on one thread; ``--tiling IMAGE``: whole-image vs uniform vs adaptive
tiling on the mosaic of IMAGE (any file demosaic.io.images.read_image reads; linear light).
Prints Markdown tables and writes ``speed.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--int8", choices=["static", "dynamic"], default=None)
    parser.add_argument("--size", nargs=2, type=int, default=[192, 288])
    parser.add_argument("--tiling", default=None, help="image for the tiling comparison")
    parser.add_argument("--tile", type=int, default=96)
    parser.add_argument("--smooth-threshold", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="logs/research/speed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import torch

    from demosaic.engine.checkpoint import load_model
    from demosaic.io.atomic import atomic_path
    from demosaic.research.speed import compare_tiling, int8_quality_speed

    torch.set_num_threads(args.threads)
    result: dict = {"checkpoint": args.checkpoint, "threads": args.threads}
    if args.int8:
        r = int8_quality_speed(args.checkpoint, tuple(args.size), args.int8, threads=args.threads)
        result["int8"] = r
        sys.stdout.write("| model | PSNR (dB) | s per frame | MP/s |\n|---|---|---|---|\n")
        sys.stdout.write(f"| ONNX float | {r['psnr_float_db']:.2f} | {r['seconds_float']:.4f} | {r['mp_per_s_float']:.2f} |\n")
        sys.stdout.write(f"| ONNX INT8 ({args.int8}) | {r['psnr_int8_db']:.2f} | {r['seconds_int8']:.4f} | "
                         f"{r['mp_per_s_int8']:.2f} |\n")
        sys.stdout.write(f"INT8 vs float PSNR {r['psnr_int8_vs_float_db']:.2f} dB, speed-up x{r['speedup']:.2f} "
                         f"({r['size'][0]}x{r['size'][1]})\n\n")
    if args.tiling:
        from demosaic.io.images import read_image_linear

        rgb = read_image_linear(args.tiling)
        model = load_model(args.checkpoint)
        rows = compare_tiling(model, rgb, tile=args.tile, smooth_threshold=args.smooth_threshold)
        result["tiling"] = rows
        sys.stdout.write("| strategy | s | pixels computed | PSNR vs whole (dB) | PSNR vs truth (dB) |\n"
                         "|---|---|---|---|---|\n")
        for r in rows:
            sys.stdout.write(f"| {r['strategy']} | {r['seconds']:.3f} | {r['pixels_computed']} | "
                             f"{r['psnr_vs_whole_db']:.2f} | {r['psnr_vs_truth_db']:.2f} |\n")
    out = Path(args.out) / "speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
