"""``demosaic-report``: regenerate docs/EXPERIMENTS.md from the run records, mark runs.

Examples::

    demosaic-report                                   # rewrite docs/EXPERIMENTS.md
    demosaic-report --check                           # exit 1 if it is out of date
    demosaic-report mark v5.0_ssim SUCCESS --note "sharper than v4, no grid"
    demosaic-report mark v5.1_mixed PLANNED --note "90% real + 10% torture"
    demosaic-report list                              # one line per run

Records are read from ``logs/runs/`` (``--runs-dir`` or ``$DEMOSAIC_RUNS_DIR``). Marking
regenerates the Markdown too unless ``--no-render`` is given. Plain argparse: run names and
notes are free text that Hydra's override grammar would mangle.
"""

from __future__ import annotations

import argparse
import logging
import sys

from demosaic import tracking
from demosaic.cli.common import report_errors, setup_logging

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="demosaic-report",
        description="Regenerate docs/EXPERIMENTS.md from run records; mark runs.")
    parser.add_argument("--runs-dir", default=None,
                        help=f"folder of run records (default ${tracking.RUNS_ENV} or logs/runs)")
    parser.add_argument("--out", default="docs/EXPERIMENTS.md", help="Markdown file to (re)write")
    parser.add_argument("--prefer", default=",".join(tracking.DASHBOARD_EVALSETS),
                        help="comma-separated evaluation sets the dashboard shows, in order")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the file is out of date")
    sub = parser.add_subparsers(dest="command")
    mark = sub.add_parser("mark", help="set a run's status (and regenerate)")
    mark.add_argument("name", help="run name, e.g. v5.0_ssim (a _status suffix is ignored)")
    mark.add_argument("status", type=str.upper, choices=tracking.STATUSES)
    mark.add_argument("--note", default=None, help="why (kept in the record and the log)")
    mark.add_argument("--no-render", action="store_true", help="do not rewrite the Markdown")
    sub.add_parser("list", help="print one line per run record")
    return parser


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and act; returns the exit status (tests call this)."""
    args = build_parser().parse_args(argv)
    prefer = tuple(s.strip() for s in args.prefer.split(",") if s.strip())
    if args.command == "list":
        for rec in tracking.list_runs(args.runs_dir):
            sys.stdout.write(f"{rec.display_name:32s} {tracking.STATUS_LABELS[rec.status]:14s} "
                             f"{(rec.updated or '')[:19]}\n")
        return 0
    if args.command == "mark":
        rec = tracking.mark_run(args.name, args.status, args.note, runs_dir=args.runs_dir)
        log.info("%s is now %s", rec.display_name, rec.status)
        if args.no_render:
            return 0
    path, changed = tracking.regenerate(args.out, args.runs_dir, prefer, check=args.check)
    if args.check:
        if changed:
            log.error("%s is out of date; run demosaic-report", path)
            return 1
        log.info("%s is up to date", path)
        return 0
    log.info("%s %s", path, "updated" if changed else "unchanged")
    return 0


@report_errors
def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    setup_logging()
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
