"""Forgetting report from evaluation runs (``demosaic-eval`` results.json or their folders).

Usage::

    python scripts/forgetting_report.py \
        --before ORIG_EVAL_DIR NEW_EVAL_DIR \
        --run plain_ft ORIG_EVAL_DIR NEW_EVAL_DIR \
        --run ewc ORIG_EVAL_DIR NEW_EVAL_DIR \
        --out logs/research/forgetting

``--before``: the starting model evaluated on the original validation set and on the new
data; each ``--run LABEL``: a fine-tuned model on the same two sets. Writes
``forgetting.json`` and ``forgetting.md`` (printed too).
"""

from __future__ import annotations

import argparse
import logging
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", nargs=2, required=True, metavar=("ORIGINAL", "NEW"))
    parser.add_argument("--run", nargs=3, action="append", required=True, metavar=("LABEL", "ORIGINAL", "NEW"))
    parser.add_argument("--out", default="logs/research/forgetting")
    parser.add_argument("--metrics", nargs="*", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from demosaic.research.forgetting import forgetting_report, render_markdown

    before = {"original": args.before[0], "new": args.before[1]}
    runs = {label: {"original": o, "new": n} for label, o, n in args.run}
    report = forgetting_report(before, runs, args.out, metrics=args.metrics)
    sys.stdout.write(render_markdown(report))


if __name__ == "__main__":
    main()
