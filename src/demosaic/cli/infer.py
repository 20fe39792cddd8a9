"""``demosaic-infer INPUT OUTPUT``: demosaic camera raw files into linear EXR, 16-bit TIFF or
a linear DNG.

Single file::

    demosaic-infer DSCF0001.RAF out.exr --checkpoint best.pt
    demosaic-infer DSCF0001.RAF out/ --model bilinear        # writes out/DSCF0001.exr

Batch (a folder, a glob pattern or several files; OUTPUT is a folder)::

    demosaic-infer ~/photos/ out/ --checkpoint best.pt --color-space srgb
    demosaic-infer '~/photos/**/*.RAF' out/ --format tiff

Argparse rather than Hydra: file names may contain ``=``, ``,`` or brackets, which Hydra's
override grammar would misread. In batch mode existing outputs are skipped unless
``--overwrite``; a single named OUTPUT file is always (atomically) replaced. Whatever the
flags, no output ever replaces an input (same path, link, or name in another letter case on a
case-insensitive file system): such a plan is refused before any work.
Exit status: 0 on success, 2 on an input/config error or when any batch file failed.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from demosaic.allocator import keep_freed_memory
from demosaic.cli.common import EXIT_USAGE, exit_without_teardown, report_errors, setup_logging
from demosaic.inference.batch import infer_batch, is_glob
from demosaic.inference.highlights import HIGHLIGHT_MODES
from demosaic.inference.run import infer_file
from demosaic.inference.settings import COLOR_SPACES, WHITE_BALANCES, check_white_balance
from demosaic.inference.tiling import DEFAULT_TILE
from demosaic.io.icc import TRANSFERS
from demosaic.io.images import EXR_COMPRESSIONS
from demosaic.models.ensemble import VIEW_COUNTS
from demosaic.models.zoo import MODEL_NAMES
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

_EXT = {"exr": ".exr", "tiff": ".tif", "dng": ".dng"}


def _white_balance(value: str) -> str:
    """argparse type of ``--white-balance``: a named balance or ``R,G,B`` multipliers."""
    try:
        check_white_balance(value, "--white-balance")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="demosaic-infer",
        description="Demosaic camera raw files (X-Trans RAF, DNG, Bayer raws) with a trained "
                    "model into linear EXR (highlights kept), 16-bit TIFF or a linear DNG "
                    "for raw editors, carrying the camera's metadata.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", nargs="+",
                   help="raw file(s), a folder of raw files, or a quoted glob pattern")
    p.add_argument("output", help="output file (.exr, .tif, .tiff, .dng: a linear DNG for raw editors) for one input, else a folder")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", "-c", default=None,
                     help="checkpoint .pt (default: the model shipped with the package, if any)")
    src.add_argument("--model", choices=MODEL_NAMES, default=None,
                     help="instead of a checkpoint: quality (X-Trans: the packaged quality "
                          "network run on 2 flips/rotations of the mosaic and averaged, about "
                          "10x the default's network time; Bayer: the default model on 8), "
                          "bilinear (parameter-free), or a tag of the packaged weights that "
                          "fixes the CFA family (xtrans.default, xtrans.quality, bayer.default)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--views", type=int, choices=VIEW_COUNTS, default=None,
                   help="run the trained model on this many flips/rotations of the mosaic and "
                        "average them (time x views; default 1; --model quality: 2 for X-Trans, "
                        "8 for Bayer)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help="tile side in px (aligned to the CFA period and the model); 0 = whole image")
    p.add_argument("--overlap", type=int, default=None,
                   help="context px discarded on each inner tile side (default: the model's "
                        "receptive field, so tiles stitch exactly; smaller is faster)")
    p.add_argument("--color-space", choices=COLOR_SPACES, default="srgb",
                   help="output colours, all linear: srgb (Rec.709 primaries, D65), rec2020, "
                        "acescg (AP1, ACES white, Bradford-adapted) or camera (the camera's own "
                        "RGB, labelled with its primaries)")
    p.add_argument("--white-balance", type=_white_balance, default="as_shot",
                   metavar="{" + ",".join(WHITE_BALANCES) + ",R,G,B}",
                   help="the network always sees the mosaic balanced with the file's as-shot "
                        "multipliers; the output keeps them (as_shot), or is rescaled to the "
                        "camera's daylight balance (daylight), to multipliers R,G,B (e.g. "
                        "2.1,1,1.5), or divided back to unbalanced camera RGB (none). With "
                        "--highlights clip, clipped areas stay neutral under the new balance")
    p.add_argument("--highlights", choices=HIGHLIGHT_MODES, default="clip",
                   help="clipped raw channels: clip (neutral, like LibRaw; unclipped values "
                        "above 1.0 kept), reconstruct (recover from unclipped channels), none")
    p.add_argument("--format", choices=sorted(_EXT), default=None,
                   help="output format in batch mode (default exr); single files use the extension")
    p.add_argument("--float", dest="float32", action="store_true",
                   help="32-bit float EXR instead of half")
    p.add_argument("--exr-compression", choices=EXR_COMPRESSIONS, default="piz",
                   help="lossless EXR compression (default piz: fast, small for photographs)")
    p.add_argument("--tiff-encoding", choices=TRANSFERS, default="srgb",
                   help="TIFF values: srgb-encoded or linear (an ICC profile for either is embedded)")
    p.add_argument("--amp", action="store_true", help="float16 autocast on CUDA/MPS")
    p.add_argument("--denoise", type=float, default=1.0, metavar="STRENGTH",
                   help="noise removal of a noise-aware model (--model xtrans.denoise): 0 = "
                        "demosaic only, the grain kept; 1 = the file's noise level; between "
                        "scales the level; above 1 adds chroma smoothing (more removes more)")
    p.add_argument("--noise", default=None, metavar="S,O",
                   help="the file's noise level, variance S*x+O of a pixel of mean x in "
                        "normalised raw units before white balance (or six numbers "
                        "S_R,O_R,S_G,O_G,S_B,O_B); default: the DNG NoiseProfile, else "
                        "estimated from the raw data")
    p.add_argument("--overwrite", action="store_true",
                   help="batch mode: redo files whose output already exists (earlier outputs "
                        "only: an output never replaces a source file)")
    p.add_argument("--suffix", default="",
                   help="appended to each output's stem when OUTPUT is a folder (e.g. _dm: "
                        "DSCF0001.RAF -> DSCF0001_dm.exr), so outputs can share the raw files' "
                        "folder even as DNGs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _is_batch(inputs: list[str], output: str) -> bool:
    if len(inputs) > 1 or Path(inputs[0]).is_dir():
        return True
    if Path(inputs[0]).is_file():
        return False
    return is_glob(inputs[0])


@report_errors
def main(argv: list[str] | None = None) -> int:
    """Console entry point (``demosaic-infer``)."""
    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    keep_freed_memory()  # tiles reuse freed memory instead of faulting it in again
    if args.tile < 0 or (args.overlap is not None and args.overlap < 0):
        raise ConfigError(f"--tile {args.tile} and --overlap {args.overlap} must be >= 0")
    common = dict(checkpoint=args.checkpoint, model=args.model, device=args.device,
                  views=args.views,
                  exr_compression=args.exr_compression,
                  tile=args.tile or None, overlap=args.overlap, color_space=args.color_space,
                  white_balance=args.white_balance, highlights=args.highlights, float32=args.float32,
                  tiff_encoding=args.tiff_encoding, amp=args.amp, noise=args.noise,
                  denoise=args.denoise)
    out = Path(args.output)
    if _is_batch(args.input, args.output):
        if out.suffix.lower() in (".exr", ".tif", ".tiff") and not out.is_dir():
            raise ConfigError(f"several inputs ({', '.join(args.input)}) need an output folder, "
                              f"got the file name {out}")
        ext = _EXT[args.format or "exr"]
        result = infer_batch(args.input, out, ext=ext, suffix=args.suffix, overwrite=args.overwrite,
                             progress=not args.no_progress, **common)
        if result.failed:
            log.error("%d of %d file(s) failed: %s", len(result.failed),
                      len(result.failed) + len(result.done) + len(result.skipped),
                      ", ".join(p.name for p, _ in result.failed))
            return EXIT_USAGE
        if not result.done and result.skipped:
            log.warning("nothing written: all %d output(s) already exist in %s (pass "
                        "--overwrite to redo them, or --suffix to write new names beside them)",
                        len(result.skipped), out)
        return 0
    inp = Path(args.input[0])
    if out.is_dir() or args.output.endswith(("/", "\\")) or not out.suffix:
        out = out / (inp.stem + args.suffix + _EXT[args.format or "exr"])
    elif args.suffix:
        raise ConfigError(f"--suffix {args.suffix} names outputs written into a folder; "
                          f"OUTPUT {out} is a file name already: drop --suffix or name the file")
    elif args.format and _EXT[args.format] != out.suffix.lower().replace(".tiff", ".tif"):
        raise ConfigError(f"--format {args.format} contradicts the output name {out}")
    infer_file(inp, out, progress=not args.no_progress, **common)
    return 0


def run() -> None:
    """The ``demosaic-infer`` console script: :func:`main`, then an immediate exit
    (:func:`~demosaic.cli.common.exit_without_teardown`): every output is written and renamed
    and the folder mode's threads are joined by the time :func:`main` returns."""
    exit_without_teardown(main)


if __name__ == "__main__":  # pragma: no cover
    run()
