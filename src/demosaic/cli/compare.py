"""``demosaic-compare INPUT... OUT.html``: several demosaicking methods on your own raw
files, side by side in one self-contained HTML page (and ``OUT.png``, a contact sheet).

Examples::

    demosaic-compare photo.raf compare.html     # Markesteijn 3-pass, default, quality
    demosaic-compare ~/raws/ cmp.html --methods markesteijn3 vng default ckpt:best.pt
    demosaic-compare photo.raf cmp.html --crops auto 1200,800,256,256 --exposure 1

Every network develops the file through ``demosaic-infer``'s path (as-shot white balance,
highlights clip, the file's colour matrix to linear sRGB); LibRaw's methods through the one
LibRaw develop. The crops are chosen where the methods disagree most and where fine colour
detail is, spread over the frame, plus any ``x,y,w,h`` given (upright pixels). Exit status 0,
or 2 on a bad file, method or crop (nothing written).
"""

from __future__ import annotations

import argparse
import logging

from demosaic.cli.common import report_errors, setup_logging
from demosaic.compare.crops import DEFAULT_CROP_SIZE, parse_crop
from demosaic.compare.methods import DEFAULT_METHODS, LIBRAW_METHODS, NETWORK_METHODS
from demosaic.compare.run import compare_files

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="demosaic-compare",
        description="Compare demosaicking methods and checkpoints on camera raw files in one "
                    "self-contained HTML page (crops side by side, blink with keys 1-9, "
                    "before/after slider, exposure) and a PNG contact sheet beside it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="INPUT... OUT.html",
                   help="raw files, folders or quoted glob patterns, then the page to write")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), metavar="METHOD",
                   help=f"up to 9 of: LibRaw {', '.join(LIBRAW_METHODS)}; networks "
                        f"{', '.join(NETWORK_METHODS)}; ckpt:PATH (a checkpoint)")
    p.add_argument("--crops", nargs="+", default=["auto"], metavar="auto|x,y,w,h",
                   help="auto (chosen where the methods disagree and fine colour detail is) "
                        "and/or crops x,y,w,h in upright pixels")
    p.add_argument("--crop-size", type=int, default=DEFAULT_CROP_SIZE,
                   help="side of the automatic crops in px")
    p.add_argument("--exposure", type=float, default=0.0,
                   help="exposure in EV baked into the page's images (the page adjusts more)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


@report_errors
def main(argv: list[str] | None = None) -> int:
    """Console entry point (``demosaic-compare``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    if len(args.paths) < 2:
        parser.error("give at least one INPUT and the page OUT.html")
    *inputs, output = args.paths
    auto = "auto" in args.crops
    crops = [parse_crop(c) for c in args.crops if c != "auto"]
    result = compare_files(inputs, output, methods=args.methods, crops=crops, auto_crops=auto,
                           crop_size=args.crop_size, exposure=args.exposure, device=args.device)
    log.info("compared %d file(s), %d crop(s): %s (%.2f MB) and %s", len(result.files),
             result.crops, result.page, result.bytes / 1e6, result.sheet)
    return 0


__all__ = ["build_parser", "main"]
