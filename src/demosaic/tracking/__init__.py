"""Experiment tracking: one JSON run record per training run (:mod:`.records`: names,
statuses, transitions, the ``logs/runs/`` folder), and ``docs/EXPERIMENTS.md`` rendered from
the records (:mod:`.dashboard`: status legend, metrics dashboard, experiment log, hand-written
notes kept). Every public name of both is importable from here (``tracking.start_run``).
"""

from demosaic.tracking.dashboard import (
    DASHBOARD_EVALSETS, FIXED_BLOCKS, HDR_OK, HDR_PARTIAL, HDR_RATIO_OK, HDR_RATIO_PARTIAL, HEADER,
    artifact_label, dashboard_row, extract_notes, hdr_label, regenerate, render_experiments,
)
from demosaic.tracking.records import (
    DEFAULT_RUNS_DIR, RUNS_ENV, STATUS_LABELS, STATUS_MEANINGS, STATUSES, RunName, RunRecord,
    TrackingError, base_name, check_status, display_name, fail_run, finish_run, list_runs,
    load_run, mark_run, now_iso, parse_run_name, record_eval, record_path, resolve_runs_dir,
    save_run, start_run,
)

__all__ = ["DASHBOARD_EVALSETS", "DEFAULT_RUNS_DIR", "FIXED_BLOCKS", "HDR_OK", "HDR_PARTIAL",
           "HDR_RATIO_OK", "HDR_RATIO_PARTIAL", "HEADER", "RUNS_ENV", "STATUSES", "STATUS_LABELS",
           "STATUS_MEANINGS", "RunName", "RunRecord", "TrackingError", "artifact_label",
           "base_name", "check_status", "dashboard_row", "display_name", "extract_notes",
           "fail_run", "finish_run", "hdr_label", "list_runs", "load_run", "mark_run", "now_iso",
           "parse_run_name", "record_eval", "record_path", "regenerate", "render_experiments",
           "resolve_runs_dir", "save_run", "start_run"]
