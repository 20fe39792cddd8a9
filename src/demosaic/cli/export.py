"""``demosaic-export CKPT --format onnx|torchscript|checkpoint --out PATH [--int8 [static|dynamic]] [--half]``.

Exports a checkpoint's model (or ``quality``: the packaged ``quality`` model of ``--cfa``'s
family, :data:`demosaic.models.zoo.ENSEMBLES`; or a tag of the packaged weights,
:data:`demosaic.models.zoo.TAGS`), runs the exported file on the same inputs
as PyTorch and fails (exit status 2, no file written) when they differ by more than ``--tolerance``.
With ``--int8`` (ONNX only) also writes ``<out stem>.int8.onnx`` and prints its measured
quality change on a synthetic test scene. Argparse, not Hydra: paths may contain ``=``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from demosaic.cli.common import report_errors, setup_logging
from demosaic.export import DEFAULT_TOLERANCE, FORMATS, INT8_MODES, OPSET, export_model
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="demosaic-export",
        description="Export a demosaic checkpoint to ONNX, TorchScript or a release checkpoint "
                    "(inference weights only) and verify it against PyTorch. ONNX needs: pip "
                    "install 'demosaic[export]'.")
    p.add_argument("checkpoint", help="checkpoint .pt written by demosaic-train, 'quality' "
                                      "(the packaged quality model, as demosaic-infer --model "
                                      "quality runs it), or a tag of the packaged weights "
                                      "(xtrans.default, xtrans.quality, bayer.default)")
    p.add_argument("--cfa", default="xtrans",
                   help="with 'quality': whose shipped model (xtrans or bayer_rggb)")
    p.add_argument("--format", "-f", choices=FORMATS, default="onnx", help="export format")
    p.add_argument("--out", "-o", required=True, help="output file (.onnx or .pt)")
    p.add_argument("--half", action="store_true",
                   help="with --format checkpoint: store the weights as float16 (half the file)")
    p.add_argument("--int8", nargs="?", const="static", choices=INT8_MODES, default=None,
                   help="also write an INT8-quantized ONNX model (<out stem>.int8.onnx); "
                        "'static' (default, calibrated) or 'dynamic'")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=(192, 288),
                   help="trace/check input size in px (rounded to the model's size multiple)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="largest allowed max-abs difference from PyTorch")
    p.add_argument("--opset", type=int, default=OPSET, help="ONNX opset version")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


@report_errors
def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns 0 on success (errors exit with status 2)."""
    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    if args.tolerance <= 0:
        raise ConfigError(f"--tolerance {args.tolerance} must be positive")
    report = export_model(args.checkpoint, args.format, args.out, int8=args.int8, half=args.half,
                          size=tuple(args.size), tolerance=args.tolerance, opset=args.opset,
                          cfa=args.cfa)
    sys.stdout.write((json.dumps(report.to_dict(), indent=2) if args.json else report.summary()) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
