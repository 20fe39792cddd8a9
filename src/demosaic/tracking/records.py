"""Run records: one JSON file per training run, its status and history.

A **run record** lives at ``<runs_dir>/<name>.json`` (default ``logs/runs/``; the environment
variable ``DEMOSAIC_RUNS_DIR`` or an explicit ``runs_dir`` argument overrides it). It holds
the run's name, status, dates, resolved config, checkpoint and log paths, metrics, the
results of ``demosaic-eval`` on named sets, dated notes and the status history.

Status legend (the research log's)::

    SUCCESS   working, ready for use          WIP       in progress
    FAILED    finished but broken, do not use ANALYSIS  finished, results being analysed
    PLANNED   planned, not started

Transitions: :func:`start_run` sets WIP (training starts or resumes), :func:`finish_run`
sets ANALYSIS (training ended), :func:`fail_run` sets FAILED (e.g. the loss became NaN),
:func:`mark_run` sets any status with a note (a person's verdict: SUCCESS or FAILED;
PLANNED creates a record for a run that has not started).

Names follow ``v{major}.{minor}_{variant}_{status}`` (``v5.0_ssim_wip``). The status part
changes over a run's life while its checkpoint folder must not, so records are keyed by the
name **without** a status suffix, and :func:`display_name` appends the current status.
Other names (``quickstart``) are accepted and shown as they are, with a logged warning.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from demosaic.errors import ConfigError, DemosaicError
from demosaic.evaluation.report import jsonable
from demosaic.io.atomic import atomic_path

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("SUCCESS", "WIP", "FAILED", "ANALYSIS", "PLANNED")
STATUS_LABELS: dict[str, str] = {
    "SUCCESS": "✓ SUCCESS",
    "WIP": "⚠️ WIP",
    "FAILED": "✗ FAILED",
    "ANALYSIS": "📊 ANALYSIS",
    "PLANNED": "🔍 PLANNED",
}
STATUS_MEANINGS: dict[str, str] = {
    "SUCCESS": "working, ready for use",
    "WIP": "work in progress (training or incomplete)",
    "FAILED": "completed but failed or broken, do not use",
    "ANALYSIS": "completed, analysing results",
    "PLANNED": "planned but not started",
}
DEFAULT_RUNS_DIR = Path("logs") / "runs"
RUNS_ENV = "DEMOSAIC_RUNS_DIR"

_NAME_RE = re.compile(
    r"^v(?P<major>\d+)\.(?P<minor>\d+)_(?P<variant>[A-Za-z0-9][A-Za-z0-9_.-]*?)"
    r"(?:_(?P<status>success|wip|failed|analysis|planned))?$",
    re.IGNORECASE,
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class TrackingError(DemosaicError):
    """A run record is missing, unreadable or would be given an invalid status."""


# --------------------------------------------------------------------------------------
# Names, dates, paths
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunName:
    """The parts of a conventional run name ``v{major}.{minor}_{variant}[_{status}]``."""

    major: int
    minor: int
    variant: str
    status: str | None


def parse_run_name(name: str) -> RunName | None:
    """Split a conventional name; ``None`` when ``name`` does not follow the convention."""
    m = _NAME_RE.match(name)
    if not m:
        return None
    status = m.group("status")
    return RunName(int(m.group("major")), int(m.group("minor")), m.group("variant"),
                   status.upper() if status else None)


def base_name(name: str) -> str:
    """``name`` without a trailing ``_{status}`` (``v5.0_ssim_wip`` -> ``v5.0_ssim``)."""
    parsed = parse_run_name(name)
    if parsed is None or parsed.status is None:
        return name
    return f"v{parsed.major}.{parsed.minor}_{parsed.variant}"


def display_name(name: str, status: str) -> str:
    """The conventional name with the current status (``v5.0_ssim`` + WIP -> ``v5.0_ssim_wip``);
    names outside the convention are returned unchanged."""
    base = base_name(name)
    if parse_run_name(base) is None:
        return base
    return f"{base}_{status.lower()}"


def check_status(status: str, key: str = "status") -> str:
    """Upper-cased ``status`` if it is one of :data:`STATUSES`, else :class:`ConfigError`."""
    up = str(status).upper()
    if up not in STATUSES:
        raise ConfigError(f"{key}: {status!r} is not a status; choose one of {list(STATUSES)}")
    return up


def now_iso() -> str:
    """Current UTC time, ISO 8601, seconds resolution."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def resolve_runs_dir(runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """``runs_dir`` if given, else ``$DEMOSAIC_RUNS_DIR``, else ``logs/runs`` (relative to
    the working directory)."""
    if runs_dir is not None:
        return Path(runs_dir)
    env = os.environ.get(RUNS_ENV)
    return Path(env) if env else DEFAULT_RUNS_DIR


def record_path(name: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the record of run ``name`` (status suffix stripped)."""
    key = base_name(name)
    if not _SAFE_NAME.match(key):
        raise ConfigError(f"run name {name!r} is not usable as a file name; use letters, digits "
                          "and _ . + - (convention v{major}.{minor}_{variant}, e.g. v5.0_ssim)")
    return resolve_runs_dir(runs_dir) / f"{key}.json"


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunRecord:
    """One training run (the JSON file's content).

    Attributes:
        name: Run name without status suffix (the record's file name).
        status: One of :data:`STATUSES`.
        created, updated: ISO dates of the record's creation and last change.
        started, finished: ISO dates of the training's start and end (``None`` if not yet).
        config: The resolved training config.
        checkpoint_dir, log_path: Where the run's checkpoints and text log are.
        metrics: Final training/validation metrics (floats; ``None`` for non-finite).
        evals: ``{evalset: {"metrics": {...}, "results": path, "date": iso}}`` from demosaic-eval.
        notes: ``[{"date", "status", "text"}]``, oldest first.
        history: ``[{"date", "status", "event"}]``, every status change, oldest first.
    """

    name: str
    status: str = "PLANNED"
    created: str = ""
    updated: str = ""
    started: str | None = None
    finished: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    checkpoint_dir: str | None = None
    log_path: str | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    evals: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def display_name(self) -> str:
        return display_name(self.name, self.status)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "run record") -> RunRecord:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            log.warning("%s: ignoring unknown keys %s", source, sorted(unknown))
        if "name" not in data:
            raise TrackingError(f"{source} has no 'name'; it is not a demosaic run record")
        rec = cls(**{k: v for k, v in data.items() if k in fields})
        rec.status = check_status(rec.status, f"{source}: status")
        return rec

    def set_status(self, status: str, event: str, when: str | None = None) -> None:
        when = when or now_iso()
        self.status = check_status(status)
        self.history.append({"date": when, "status": self.status, "event": event})
        self.updated = when

    def add_note(self, text: str, when: str | None = None) -> None:
        when = when or now_iso()
        self.notes.append({"date": when, "status": self.status, "text": str(text)})
        self.updated = when


def load_run(name: str, runs_dir: str | os.PathLike[str] | None = None) -> RunRecord:
    """Read the record of run ``name``.

    Raises:
        TrackingError: when it does not exist (listing the known runs) or is not valid JSON.
    """
    path = record_path(name, runs_dir)
    if not path.is_file():
        known = [p.stem for p in sorted(path.parent.glob("*.json"))] if path.parent.is_dir() else []
        raise TrackingError(f"no run record {path} for run {name!r}; known runs in {path.parent}: "
                            f"{known or 'none'} (training creates records; `demosaic-report mark "
                            f"{name} PLANNED` creates a planned one)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TrackingError(f"run record {path} cannot be read ({exc}); fix or delete it") from None
    if not isinstance(data, dict):
        raise TrackingError(f"run record {path} is not a JSON object; fix or delete it")
    return RunRecord.from_dict(data, str(path))


def save_run(record: RunRecord, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write ``record`` atomically to its JSON file; returns the path."""
    path = record_path(record.name, runs_dir)
    text = json.dumps(record.to_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.debug("run record %s: %s", path, record.status)
    return path


def list_runs(runs_dir: str | os.PathLike[str] | None = None) -> list[RunRecord]:
    """All readable records, oldest first (by creation date, then name). Unreadable files
    are skipped with a warning."""
    folder = resolve_runs_dir(runs_dir)
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(load_run(path.stem, folder))
        except DemosaicError as exc:
            log.warning("skipping %s", exc)
    return sorted(records, key=lambda r: (r.created, r.name))


def _try_load(name: str, runs_dir: str | os.PathLike[str] | None) -> RunRecord | None:
    return load_run(name, runs_dir) if record_path(name, runs_dir).is_file() else None


def start_run(name: str, config: Mapping[str, Any] | None = None, ckpt_dir: str | None = None,
              log_path: str | None = None, *, runs_dir: str | os.PathLike[str] | None = None,
              note: str | None = None) -> RunRecord:
    """Create (or reopen, on resume) the record of a training run, status WIP.

    Args:
        name: Run name (``v5.0_ssim`` or ``v5.0_ssim_wip``; the status suffix is dropped).
        config: Resolved training config (JSON-able mapping).
        ckpt_dir: Folder of the run's checkpoints.
        log_path: The run's text log.
        runs_dir: Folder of the records (default :func:`resolve_runs_dir`).
        note: Optional note recorded with the start.
    """
    if parse_run_name(base_name(name)) is None:
        log.warning("run name %r does not follow v{major}.{minor}_{variant} (e.g. v5.0_ssim); "
                    "it is recorded as it is", name)
    when = now_iso()
    rec = _try_load(name, runs_dir)
    event = "resumed" if rec is not None and rec.started else "started"
    if rec is None:
        rec = RunRecord(name=base_name(name), created=when)
    rec.started = rec.started or when
    rec.finished = None
    if config is not None:
        rec.config = jsonable(dict(config))
    rec.checkpoint_dir = ckpt_dir if ckpt_dir is not None else rec.checkpoint_dir
    rec.log_path = log_path if log_path is not None else rec.log_path
    rec.set_status("WIP", event, when)
    if note:
        rec.add_note(note, when)
    save_run(rec, runs_dir)
    log.info("run record %s: WIP (%s)", rec.name, event)
    return rec


def finish_run(name: str, metrics: Mapping[str, Any] | None = None, status: str = "ANALYSIS", *,
               runs_dir: str | os.PathLike[str] | None = None, note: str | None = None) -> RunRecord:
    """Record the end of training: metrics merged in, status ANALYSIS (by default).

    A run with no record yet (training started without tracking) gets one.
    """
    when = now_iso()
    rec = _try_load(name, runs_dir) or RunRecord(name=base_name(name), created=when)
    rec.metrics.update(jsonable(dict(metrics or {})))
    rec.finished = when
    rec.set_status(status, "finished", when)
    if note:
        rec.add_note(note, when)
    save_run(rec, runs_dir)
    log.info("run record %s: %s", rec.name, rec.status)
    return rec


def fail_run(name: str, reason: str, *, runs_dir: str | os.PathLike[str] | None = None) -> RunRecord:
    """Mark a run FAILED with ``reason`` as a note (e.g. a non-finite loss)."""
    when = now_iso()
    rec = _try_load(name, runs_dir) or RunRecord(name=base_name(name), created=when)
    rec.finished = rec.finished or when
    rec.set_status("FAILED", "failed", when)
    rec.add_note(reason, when)
    save_run(rec, runs_dir)
    log.info("run record %s: FAILED (%s)", rec.name, reason)
    return rec


def mark_run(name: str, status: str, note: str | None = None, *,
             runs_dir: str | os.PathLike[str] | None = None) -> RunRecord:
    """Set a run's status by hand (``SUCCESS``/``FAILED`` verdicts, ``PLANNED`` new runs).

    Raises:
        ConfigError: unknown status.
        TrackingError: no record for ``name`` and ``status`` is not PLANNED.
    """
    status = check_status(status)
    when = now_iso()
    rec = _try_load(name, runs_dir)
    if rec is None:
        if status != "PLANNED":
            load_run(name, runs_dir)  # raises the descriptive TrackingError
        rec = RunRecord(name=base_name(name), created=when)
    rec.set_status(status, "marked", when)
    if note:
        rec.add_note(note, when)
    save_run(rec, runs_dir)
    log.info("run record %s: %s", rec.name, status)
    return rec


def record_eval(name: str, evalset: str, metrics: Mapping[str, Any], results_path: str | None = None,
                *, runs_dir: str | os.PathLike[str] | None = None) -> RunRecord | None:
    """Attach an evaluation summary to run ``name``'s record; ``None`` if it has no record
    (e.g. a checkpoint from elsewhere). The status does not change."""
    if not name or not _SAFE_NAME.match(base_name(name)):
        return None
    rec = _try_load(name, runs_dir)
    if rec is None:
        return None
    when = now_iso()
    rec.evals[evalset] = {"metrics": jsonable(dict(metrics)), "results": results_path, "date": when}
    rec.updated = when
    save_run(rec, runs_dir)
    return rec


__all__ = ["DEFAULT_RUNS_DIR", "RUNS_ENV", "STATUSES", "STATUS_LABELS", "STATUS_MEANINGS",
           "RunName", "RunRecord", "TrackingError", "base_name", "check_status", "display_name",
           "fail_run", "finish_run", "list_runs", "load_run", "mark_run", "now_iso",
           "parse_run_name", "record_eval", "record_path", "resolve_runs_dir", "save_run",
           "start_run"]
