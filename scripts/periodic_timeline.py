"""When does a CFA-period grid appear? Tabulate (and plot) the periodic-artifact score of runs.

Reads the trainer's ``metrics_<run>.jsonl`` files (``val/psnr``, ``val/periodic_artifact``:
mean over the validation images; ``snapshot/periodic_artifact``: the fixed snapshot crop,
logged every ``snapshot_every`` steps next to ``logs/snapshots/<run>/step_*.png``).

Usage::

    python scripts/periodic_timeline.py logs/metrics_v4.1_ft.jsonl logs/metrics_v4.1_ft_noaug.jsonl \
        --plot logs/research/periodic_timeline.png

Prints one Markdown table per run. Scores near 1 mean no periodic component in the error;
the evaluation flags a grid above ``demosaic.metrics.PERIODIC_ARTIFACT_THRESHOLD``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", help="metrics_<run>.jsonl files")
    parser.add_argument("--plot", default=None, help="PNG of val/periodic_artifact against step")
    args = parser.parse_args()

    from demosaic.metrics import PERIODIC_ARTIFACT_THRESHOLD

    series = {}
    for path in args.metrics:
        rows: dict[int, dict[str, float]] = {}
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            rows.setdefault(int(r["step"]), {}).update(r)
        run = Path(path).stem.removeprefix("metrics_")
        sys.stdout.write(f"\n{run} (flag threshold {PERIODIC_ARTIFACT_THRESHOLD:g})\n\n"
                         "| step | val PSNR (dB) | val periodic | snapshot periodic |\n|---|---|---|---|\n")
        xs, ys = [], []
        for step in sorted(rows):
            r = rows[step]
            if "val/psnr" not in r and "snapshot/periodic_artifact" not in r:
                continue
            f = lambda k, spec: format(r[k], spec) if k in r and math.isfinite(r[k]) else "-"  # noqa: E731
            sys.stdout.write(f"| {step} | {f('val/psnr', '.2f')} | {f('val/periodic_artifact', '.2f')} | "
                             f"{f('snapshot/periodic_artifact', '.2f')} |\n")
            if "val/periodic_artifact" in r:
                xs.append(step)
                ys.append(r["val/periodic_artifact"])
        series[run] = (xs, ys)
    if args.plot:
        from demosaic.research.plots import line_plot

        line_plot(args.plot, series, title="validation periodic-artifact score", xlabel="step",
                  ylabel="score")
        sys.stdout.write(f"\nplot: {args.plot}\n")


if __name__ == "__main__":
    main()
