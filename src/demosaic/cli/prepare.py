"""``demosaic-prepare``: build datasets on disk (raw-teacher shards, sharpness lists, torture).

Usage (Hydra-like ``key=value`` arguments after a mode; ``dataset=MODE`` works as the mode)::

    demosaic-prepare raw_teacher source=RAW_DIR out=SHARD_DIR [pairing=downsample|native]
                     [factor=4] [algorithm=dht] [workers=2] [recursive=true]
                     [extensions=[.raf,.dng]] [progress=true]
    demosaic-prepare sharpness root=SHARD_DIR [top=200] [out=FILE]
    demosaic-prepare torture out=DIR [count=5000] [patch_size=96] [seed=0] [types=[0,3,12]]

``raw_teacher`` reads every raw file under ``source`` (RAF, DNG, any LibRaw raw), computes
the LibRaw teacher (what LibRaw actually runs is recorded: DHT on X-Trans is Markesteijn
3-pass) and writes float16 shards + ``manifest.json`` to ``out``. Running it again resumes:
done files are skipped; failed files are reported and retried. ``sharpness`` writes the
``top`` sharpest items (Laplacian variance) to ``SHARD_DIR/top{top}_sharp.json`` (the
``raw_teacher`` dataset's ``select`` key). ``torture`` exports torture v2 samples with each
sample's type in ``manifest.json`` (the ``torture`` dataset's ``root`` key).

Exit status: 0 on success (also when some raw files failed: they are listed), 2 for a bad
argument or missing folder.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Optional

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from demosaic.cli.common import report_errors, setup_logging
from demosaic.errors import ConfigError
from demosaic.schema import merge_into

log = logging.getLogger(__name__)


@dataclass
class RawTeacherArgs:
    """Arguments of ``demosaic-prepare raw_teacher``."""

    source: str = MISSING
    out: str = MISSING
    pairing: str = "downsample"
    factor: int = 4
    algorithm: str = "dht"
    workers: int = 0
    recursive: bool = True
    extensions: Optional[list[str]] = None
    progress: bool = True


@dataclass
class SharpnessArgs:
    """Arguments of ``demosaic-prepare sharpness``."""

    root: str = MISSING
    top: int = 200
    out: Optional[str] = None


@dataclass
class TortureArgs:
    """Arguments of ``demosaic-prepare torture``."""

    out: str = MISSING
    count: int = 5000
    patch_size: int = 96
    seed: int = 0
    types: Optional[list[int]] = None
    progress: bool = True


MODES: dict[str, type] = {"raw_teacher": RawTeacherArgs, "sharpness": SharpnessArgs,
                          "torture": TortureArgs}


def parse(argv: Sequence[str]) -> tuple[str, Any]:
    """Split ``argv`` into a mode and its validated arguments dataclass.

    Raises:
        ConfigError: for a missing/unknown mode, a malformed or unknown key, a wrong type,
            or a missing required key.
    """
    args = list(argv)
    mode = None
    if args and "=" not in args[0]:
        mode = args.pop(0)
    overrides = []
    for a in args:
        if "=" not in a:
            raise ConfigError(f"argument {a!r} is not key=value; see demosaic-prepare --help")
        k, v = a.split("=", 1)
        if k == "dataset":
            mode = v
        else:
            overrides.append(a)
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r}: choose one of {sorted(MODES)} as the first argument "
                          "(or dataset=MODE); see demosaic-prepare --help")
    schema = MODES[mode]
    try:
        dotlist = OmegaConf.from_dotlist(overrides)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"demosaic-prepare {mode}: {str(exc).splitlines()[0]}") from None
    merged = merge_into(schema, dotlist, f"demosaic-prepare {mode}")
    missing = [f.name for f in fields(schema) if OmegaConf.is_missing(merged, f.name)]
    if missing:
        raise ConfigError(f"demosaic-prepare {mode}: missing {', '.join(f'{k}=...' for k in missing)}")
    return mode, OmegaConf.to_object(merged)


def run(mode: str, args: Any) -> Any:
    """Execute a parsed command; returns the library function's result."""
    if mode == "raw_teacher":
        from demosaic.data.shards import RAW_EXTENSIONS, build_raw_teacher

        report = build_raw_teacher(
            args.source, args.out, pairing=args.pairing, factor=args.factor,
            algorithm=args.algorithm, workers=args.workers, recursive=args.recursive,
            extensions=args.extensions or RAW_EXTENSIONS, progress=args.progress)
        log.info("manifest: %s (%d built, %d skipped, %d failed)", report.manifest,
                 len(report.built), len(report.skipped), len(report.failed))
        return report
    if mode == "sharpness":
        from demosaic.data.shards import rank_sharpness

        path = rank_sharpness(args.root, top=args.top, out=args.out)
        log.info("wrote %s", path)
        return path
    from demosaic.data.torture import export_torture

    path = export_torture(args.out, count=args.count, patch_size=args.patch_size,
                          seed=args.seed, types=args.types, progress=args.progress)
    log.info("wrote %s", path)
    return path


@report_errors
def _main(argv: Sequence[str]) -> None:
    mode, args = parse(argv)
    run(mode, args)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="demosaic-prepare", description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", help="raw_teacher | sharpness | torture")
    parser.add_argument("overrides", nargs="*", help="key=value arguments")
    if any(a in ("-h", "--help") for a in argv):
        parser.print_help()
        return
    setup_logging()
    _main(argv)


if __name__ == "__main__":  # pragma: no cover
    main()
