"""``demosaic-research TOOL [args]``: the research tools of docs/RESEARCH.md under one command.

Tools, with an example each (``demosaic-research TOOL --help`` for the details)::

    # cfa-stats: CFA statistics of training datasets (synthetic vs raw-teacher), as PNG plots
    demosaic-research cfa-stats synthetic=cbsd432 raw_teacher=$DEMOSAIC_DATA/raw_teacher \\
        --out logs/research/cfa_stats --items 64

    # forgetting: forgetting report from evaluation runs before and after fine-tuning
    demosaic-research forgetting --before ORIG_EVAL_DIR NEW_EVAL_DIR \\
        --run plain_ft ORIG_EVAL_DIR NEW_EVAL_DIR --out logs/research/forgetting

    # periodic-timeline: the periodic-artifact score of training runs, step by step
    demosaic-research periodic-timeline logs/metrics_v4.1_ft.jsonl --plot logs/research/periodic_timeline.png

    # speed: quality/speed pairs of INT8 and adaptive tiling for one checkpoint
    demosaic-research speed CHECKPOINT --int8 static --tiling IMAGE --tile 96

    # proxy-raws: X-Trans DNGs rendered from photographs (a stand-in for raw files)
    demosaic-research proxy-raws ../shared/data/sun_hays80 logs/research/proxy_raws --count 24

    # eval-table: one Markdown table of several evaluation runs
    demosaic-research eval-table logs/research/eval/base_cbsd68 logs/research/eval/v5.0_ssim_cbsd68

Argparse, like ``demosaic-infer``; heavy imports (torch, the research modules) happen inside
each tool, so ``demosaic-research --help`` is fast. The library code stays in
:mod:`demosaic.research` and elsewhere; this module only parses arguments and prints results.
Exit status: 0 on success, 2 on a usage, input or config error.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demosaic.cli.common import report_errors, setup_logging
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

_CFA_STATS_DOC = """Compare the CFA statistics of training datasets (synthetic vs raw-teacher), as PNG plots.

Each positional argument is ``LABEL=PRESET`` (a file of configs/dataset/, its ``train`` node)
or ``LABEL=PATH`` to a raw-teacher shard folder. Datasets are built with augmentation and
exposure changes as configured by the preset (``--no-augment`` turns them off).

Usage::

    demosaic-research cfa-stats synthetic=cbsd432 raw_teacher=$DEMOSAIC_DATA/raw_teacher \\
        --out logs/research/cfa_stats --items 64

Writes ``cfa_stats.json``, ``histograms.png``, ``spectra.png`` and ``phase_means.png`` in
``--out`` and prints a Markdown summary table (docs/RESEARCH.md).
"""

_FORGETTING_DOC = """Forgetting report from evaluation runs (``demosaic-eval`` results.json or their folders).

Usage::

    demosaic-research forgetting \\
        --before ORIG_EVAL_DIR NEW_EVAL_DIR \\
        --run plain_ft ORIG_EVAL_DIR NEW_EVAL_DIR \\
        --run ewc ORIG_EVAL_DIR NEW_EVAL_DIR \\
        --out logs/research/forgetting

``--before``: the starting model evaluated on the original validation set and on the new
data; each ``--run LABEL``: a fine-tuned model on the same two sets. Writes
``forgetting.json`` and ``forgetting.md`` (printed too).
"""

_PERIODIC_TIMELINE_DOC = """When does a CFA-period grid appear? Tabulate (and plot) the periodic-artifact score of runs.

Reads the trainer's ``metrics_<run>.jsonl`` files (``val/psnr``, ``val/periodic_artifact``:
mean over the validation images; ``snapshot/periodic_artifact``: the fixed snapshot crop,
logged every ``snapshot_every`` steps next to ``logs/snapshots/<run>/step_*.png``).

Usage::

    demosaic-research periodic-timeline logs/metrics_v4.1_ft.jsonl logs/metrics_v4.1_ft_noaug.jsonl \\
        --plot logs/research/periodic_timeline.png

Prints one Markdown table per run. Scores near 1 mean no periodic component in the error;
the evaluation flags a grid above ``demosaic.metrics.PERIODIC_ARTIFACT_THRESHOLD``.
"""

_SPEED_DOC = """Quality/speed pairs of inference optimisations for one checkpoint.

Usage::

    demosaic-research speed CHECKPOINT --int8 static --tiling IMAGE --tile 96

``--int8 static|dynamic``: export to ONNX float and INT8 (needs the ``export`` extra) and time
both with onnxruntime on one thread; ``--tiling IMAGE``: whole-image vs uniform vs adaptive
tiling on the mosaic of IMAGE (any file demosaic.io.images.read_image reads; linear light).
Prints Markdown tables and writes ``speed.json`` into ``--out``.
"""

_PROXY_RAWS_DOC = """Render X-Trans DNGs from photographs: a stand-in for raw files when none are at hand.

Each image is decoded to linear light, mosaicked with the X-Trans pattern (canonical phase)
and written as a 12-bit DNG (black 256, white 4095) that LibRaw reads as X-Trans. Building
raw-teacher shards from them (``demosaic-prepare raw_teacher source=OUT ...``) runs the real
raw-teacher pipeline (LibRaw Markesteijn + downsampling), so its statistics can be compared
with synthetic mosaics of the same photographs. It is a PROXY: real RAFs differ by sensor
noise, optics, white balance and scene content; say so wherever its numbers are used.

Usage::

    demosaic-research proxy-raws ../shared/data/sun_hays80 logs/research/proxy_raws --count 24
"""

_EVAL_TABLE_DOC = """One Markdown table of several evaluation runs (``results.json`` files or their folders).

Usage::

    demosaic-research eval-table logs/research/eval/base_cbsd68 logs/research/eval/v5.0_ssim_cbsd68

Columns: PSNR (linear), sRGB PSNR, SSIM, texture score, periodic-artifact score, MP/s.
"""

#: eval-table columns: (summary key, title, format spec).
EVAL_TABLE_COLUMNS = (("psnr", "PSNR (dB)", ".2f"), ("psnr_srgb", "sRGB PSNR (dB)", ".2f"),
                      ("ssim", "SSIM", ".4f"), ("texture_score", "texture", ".3f"),
                      ("periodic_artifact_score", "periodic", ".2f"),
                      ("megapixels_per_s", "MP/s", ".2f"))


# --------------------------------------------------------------------------------------
# cfa-stats
# --------------------------------------------------------------------------------------


def _dataset_cfg(spec: str, patch: int, no_augment: bool) -> dict[str, Any]:
    """The train dataset mapping of a preset of the packaged configs/dataset/, or a
    raw-teacher mapping for a shard folder."""
    path = Path(spec)
    if path.is_dir():
        cfg: dict[str, Any] = {"name": "raw_teacher", "root": str(path), "patch_size": patch,
                               "samples_per_epoch": 10**6}
    else:
        # configs/dataset/ as packaged (demosaic.configs, read through importlib.resources)
        from demosaic.data import load_dataset_config

        preset = load_dataset_config(spec)
        if "train" not in preset:
            raise ConfigError(f"dataset preset {spec!r} has no 'train' node (an eval/ set?); "
                              f"name a file of configs/dataset/ such as cbsd432, or a shard folder")
        cfg = dict(preset["train"])
        cfg["patch_size"] = patch
    if no_augment:
        for key, value in (("augment", False), ("exposure_range", [1.0, 1.0]), ("highlight_prob", 0.0)):
            if key in cfg:
                cfg[key] = value
    return cfg


def _cfa_stats(args: argparse.Namespace) -> int:
    from demosaic.cfa import get_pattern
    from demosaic.data import DATASETS
    from demosaic.research.cfa_stats import compare_cfa_statistics, summary_table

    datasets = {}
    for spec in args.datasets:
        label, _, value = spec.partition("=")
        if not value:
            raise ConfigError(f"argument {spec!r}: expected LABEL=PRESET or LABEL=FOLDER")
        cfg = _dataset_cfg(value, args.patch, args.no_augment)
        datasets[label] = DATASETS.build(cfg, where=label, pattern=args.pattern, split="train", seed=args.seed)
    period = get_pattern(args.pattern).period
    stats = compare_cfa_statistics(datasets, args.out, period=period, max_items=args.items)
    sys.stdout.write(summary_table(stats))
    sys.stdout.write("plots: " + ", ".join(stats["plots"]) + "\n")
    return 0


def _add_cfa_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("datasets", nargs="+", help="LABEL=PRESET or LABEL=SHARD_FOLDER")
    p.add_argument("--out", default="logs/research/cfa_stats")
    p.add_argument("--items", type=int, default=64)
    p.add_argument("--patch", type=int, default=96)
    p.add_argument("--pattern", default="xtrans")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)


# --------------------------------------------------------------------------------------
# forgetting
# --------------------------------------------------------------------------------------


def _forgetting(args: argparse.Namespace) -> int:
    from demosaic.research.forgetting import forgetting_report, render_markdown

    before = {"original": args.before[0], "new": args.before[1]}
    runs = {label: {"original": o, "new": n} for label, o, n in args.run}
    report = forgetting_report(before, runs, args.out, metrics=args.metrics)
    sys.stdout.write(render_markdown(report))
    return 0


def _add_forgetting(p: argparse.ArgumentParser) -> None:
    p.add_argument("--before", nargs=2, required=True, metavar=("ORIGINAL", "NEW"))
    p.add_argument("--run", nargs=3, action="append", required=True, metavar=("LABEL", "ORIGINAL", "NEW"))
    p.add_argument("--out", default="logs/research/forgetting")
    p.add_argument("--metrics", nargs="*", default=None)


# --------------------------------------------------------------------------------------
# periodic-timeline
# --------------------------------------------------------------------------------------


def _read_metrics(path: str) -> dict[int, dict[str, float]]:
    """The rows of a trainer ``metrics_<run>.jsonl``, merged by step."""
    rows: dict[int, dict[str, float]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the metrics file {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            rows.setdefault(int(r["step"]), {}).update(r)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} line {number}: not a metrics row with a 'step' "
                              f"({type(exc).__name__}: {exc})") from None
    return rows


def _cell(r: dict[str, float], key: str, spec: str) -> str:
    return format(r[key], spec) if key in r and math.isfinite(r[key]) else "-"


def _periodic_timeline(args: argparse.Namespace) -> int:
    from demosaic.metrics import PERIODIC_ARTIFACT_THRESHOLD

    series = {}
    for path in args.metrics:
        rows = _read_metrics(path)
        run = Path(path).stem.removeprefix("metrics_")
        sys.stdout.write(f"\n{run} (flag threshold {PERIODIC_ARTIFACT_THRESHOLD:g})\n\n"
                         "| step | val PSNR (dB) | val periodic | snapshot periodic |\n|---|---|---|---|\n")
        xs, ys = [], []
        for step in sorted(rows):
            r = rows[step]
            if "val/psnr" not in r and "snapshot/periodic_artifact" not in r:
                continue
            sys.stdout.write(f"| {step} | {_cell(r, 'val/psnr', '.2f')} | "
                             f"{_cell(r, 'val/periodic_artifact', '.2f')} | "
                             f"{_cell(r, 'snapshot/periodic_artifact', '.2f')} |\n")
            if "val/periodic_artifact" in r:
                xs.append(step)
                ys.append(r["val/periodic_artifact"])
        series[run] = (xs, ys)
    if args.plot:
        from demosaic.research.plots import line_plot

        line_plot(args.plot, series, title="validation periodic-artifact score", xlabel="step",
                  ylabel="score")
        sys.stdout.write(f"\nplot: {args.plot}\n")
    return 0


def _add_periodic_timeline(p: argparse.ArgumentParser) -> None:
    p.add_argument("metrics", nargs="+", help="metrics_<run>.jsonl files")
    p.add_argument("--plot", default=None, help="PNG of val/periodic_artifact against step")


# --------------------------------------------------------------------------------------
# speed
# --------------------------------------------------------------------------------------


def _speed(args: argparse.Namespace) -> int:
    import torch

    from demosaic.models.checkpoint import load_model
    from demosaic.io.atomic import atomic_path
    from demosaic.research.speed import compare_tiling, int8_quality_speed

    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"checkpoint": args.checkpoint, "threads": args.threads}
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
    return 0


def _add_speed(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint")
    p.add_argument("--int8", choices=["static", "dynamic"], default=None)
    p.add_argument("--size", nargs=2, type=int, default=[192, 288])
    p.add_argument("--tiling", default=None, help="image for the tiling comparison")
    p.add_argument("--tile", type=int, default=96)
    p.add_argument("--smooth-threshold", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="logs/research/speed")


# --------------------------------------------------------------------------------------
# proxy-raws
# --------------------------------------------------------------------------------------


def _proxy_raws(args: argparse.Namespace) -> int:
    from demosaic import cfa
    from demosaic.io.dng import write_dng
    from demosaic.io.images import read_image_linear

    source = Path(args.source)
    if not source.is_dir():
        raise ConfigError(f"proxy-raws: the source {source} is not a folder of photographs "
                          f"(.jpg, .jpeg, .png)")
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    out = Path(args.out)
    for path in files[: args.count]:
        rgb = read_image_linear(path)
        h, w = rgb.shape[1] // 6 * 6, rgb.shape[2] // 6 * 6
        mosaic = cfa.mosaic(rgb[:, :h, :w], cfa.XTRANS)
        write_dng(out / f"{path.stem}.dng", mosaic, cfa.XTRANS, black_level=256, white_level=4095)
    log.info("wrote %d DNGs to %s", min(len(files), args.count), out)
    return 0


def _add_proxy_raws(p: argparse.ArgumentParser) -> None:
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--count", type=int, default=24)


# --------------------------------------------------------------------------------------
# eval-table
# --------------------------------------------------------------------------------------


def _eval_table(args: argparse.Namespace) -> int:
    from demosaic.evaluation.report import load_results

    cols = EVAL_TABLE_COLUMNS
    sys.stdout.write("| run | images | " + " | ".join(c[1] for c in cols) + " |\n")
    sys.stdout.write("|---|---|" + "---|" * len(cols) + "\n")
    for path in args.results:
        s = load_results(path)["summary"]
        cells = [format(s[k], spec) if isinstance(s.get(k), (int, float)) and math.isfinite(s[k]) else "-"
                 for k, _, spec in cols]
        sys.stdout.write(f"| {Path(path).name} | {int(s.get('images', 0))} | " + " | ".join(cells) + " |\n")
    return 0


def _add_eval_table(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+")


# --------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------

_Tool = tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

#: (name, description, add its arguments, run it) of every tool.
TOOLS: tuple[_Tool, ...] = (
    ("cfa-stats", _CFA_STATS_DOC, _add_cfa_stats, _cfa_stats),
    ("forgetting", _FORGETTING_DOC, _add_forgetting, _forgetting),
    ("periodic-timeline", _PERIODIC_TIMELINE_DOC, _add_periodic_timeline, _periodic_timeline),
    ("speed", _SPEED_DOC, _add_speed, _speed),
    ("proxy-raws", _PROXY_RAWS_DOC, _add_proxy_raws, _proxy_raws),
    ("eval-table", _EVAL_TABLE_DOC, _add_eval_table, _eval_table),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="demosaic-research",
        description="Research tools of docs/RESEARCH.md, one subcommand each "
                    "(demosaic-research TOOL --help for a tool's options).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    for name, doc, add_arguments, run in TOOLS:
        tool = sub.add_parser(name, help=doc.split("\n", 1)[0], description=doc,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(tool)
        tool.set_defaults(tool_function=run)  # not 'run': forgetting has a --run option
    return p


@report_errors
def main(argv: list[str] | None = None) -> int:
    """Console entry point (``demosaic-research``)."""
    args = build_parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    run: Callable[[argparse.Namespace], int] = args.tool_function
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
