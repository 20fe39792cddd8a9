"""Experiment tracking: one JSON run record per training run, and ``docs/EXPERIMENTS.md``.

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

:func:`render_experiments` turns the records into Markdown (dashboard + experiment log);
:func:`regenerate` rewrites ``docs/EXPERIMENTS.md`` keeping every hand-written block
between ``<!-- notes:KEY -->`` and ``<!-- /notes:KEY -->`` markers. Rendering is a pure
function of the records and those blocks, so regenerating twice changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from demosaic.errors import ConfigError, DemosaicError
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
#: Evaluation sets preferred for the dashboard, in order (test sets report, never select).
DASHBOARD_EVALSETS: tuple[str, ...] = ("kodak24", "mcmaster", "cbsd68")
#: HDR probe ratio (error exposed / error scaled, see demosaic.evaluation.clean) limits.
HDR_RATIO_OK, HDR_RATIO_PARTIAL = 1.5, 3.0
#: Relative error on a set's own regions above 1.0, used when no probe ratio exists.
HDR_OK, HDR_PARTIAL = 0.05, 0.20

_NAME_RE = re.compile(
    r"^v(?P<major>\d+)\.(?P<minor>\d+)_(?P<variant>[A-Za-z0-9][A-Za-z0-9_.-]*?)"
    r"(?:_(?P<status>success|wip|failed|analysis|planned))?$",
    re.IGNORECASE,
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_NOTES_RE = re.compile(r"<!-- notes:(?P<key>[^ >]+) -->\n?(?P<body>.*?)<!-- /notes:(?P=key) -->", re.DOTALL)


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


def _jsonable(value: Any) -> Any:
    """Plain JSON values: non-finite floats become ``None``, unknown objects ``str``."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:  # numpy / torch scalars
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return f if math.isfinite(f) else None


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
        return _jsonable(dataclasses.asdict(self))

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
        rec.config = _jsonable(dict(config))
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
    rec.metrics.update(_jsonable(dict(metrics or {})))
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
    rec.evals[evalset] = {"metrics": _jsonable(dict(metrics)), "results": results_path, "date": when}
    rec.updated = when
    save_run(rec, runs_dir)
    return rec


# --------------------------------------------------------------------------------------
# EXPERIMENTS.md
# --------------------------------------------------------------------------------------

HEADER = """# Experiments

<!-- Generated by `demosaic-report` from the run records (logs/runs/*.json) and evaluation
results. Edit only between `notes` markers: everything else is rewritten. -->
"""
#: Hand-written blocks that always exist, in the order they appear.
FIXED_BLOCKS: tuple[tuple[str, str], ...] = (
    ("intro", ""),
    ("history", "## History (before this package)"),
    ("questions", "## Open questions"),
    ("next", "## Next experiments"),
)
_EMPTY_NOTE = "_(no notes yet)_\n"


def extract_notes(text: str) -> dict[str, str]:
    """Hand-written blocks of an existing EXPERIMENTS.md: ``{key: body}`` (body verbatim)."""
    return {m.group("key"): m.group("body") for m in _NOTES_RE.finditer(text)}


def _block(key: str, notes: Mapping[str, str]) -> str:
    body = notes.get(key, _EMPTY_NOTE)
    if body and not body.endswith("\n"):
        body += "\n"
    return f"<!-- notes:{key} -->\n{body}<!-- /notes:{key} -->\n"


def _fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    if value is None:
        return "?"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{f:{spec}}{suffix}" if math.isfinite(f) else "?"


def _pick_eval(rec: RunRecord, prefer: Iterable[str]) -> tuple[str, dict[str, Any]] | None:
    """The evaluation shown in the dashboard: first preferred set evaluated, else any."""
    for key in list(prefer) + sorted(rec.evals):
        entry = rec.evals.get(key)
        if entry and isinstance(entry.get("metrics"), Mapping):
            return key, dict(entry["metrics"])
    return None


def artifact_label(metrics: Mapping[str, Any]) -> str:
    """Artifacts column text from an evaluation's metrics (periodic-artifact detector)."""
    flagged = metrics.get("periodic_artifact_flag")
    score = metrics.get("periodic_artifact_score")
    if flagged is None and score is None:
        return "?"
    period = metrics.get("period")
    grid = f"{int(period)}×{int(period)} grid" if period else "periodic grid"
    levels = metrics.get("periodic_levels")
    detail = _fmt(score, ".3g") + (f", {_fmt(levels, '.2f')} lv" if levels is not None else "")
    return f"{grid} ({detail})" if flagged else f"None ({detail})"


def hdr_label(metrics: Mapping[str, Any]) -> str:
    """HDR Support column text.

    Prefers ``hdr_probe_ratio`` from demosaic-eval's HDR probe (error on regions above 1.0 of
    an exposure-boosted crop / error of the plain crop's output scaled alike: 1 = output
    scales with exposure): Yes below :data:`HDR_RATIO_OK`, Partial below
    :data:`HDR_RATIO_PARTIAL`, else No. Without it, ``hdr_error`` of a set with real
    highlights (relative error): Yes below :data:`HDR_OK`, Partial below :data:`HDR_PARTIAL`.
    """
    def num(key: str) -> float | None:
        try:
            v = float(metrics[key])
        except (KeyError, TypeError, ValueError):
            return None
        return v if not math.isnan(v) else None

    ratio = num("hdr_probe_ratio")
    if ratio is not None:
        word = "Yes" if ratio < HDR_RATIO_OK else ("Partial" if ratio < HDR_RATIO_PARTIAL else "No")
        return f"{word} (×{ratio:.2f})" if math.isfinite(ratio) else f"{word} (×inf)"
    err = num("hdr_error")
    if err is None or not math.isfinite(err):
        return "?"
    word = "Yes" if err < HDR_OK else ("Partial" if err < HDR_PARTIAL else "No")
    return f"{word} ({100 * err:.1f}%)"


def dashboard_row(rec: RunRecord, prefer: Iterable[str] = DASHBOARD_EVALSETS) -> list[str]:
    """Experiment | PSNR | SSIM | Texture Score | HDR Support | Artifacts | Status."""
    picked = _pick_eval(rec, prefer)
    if picked is not None:
        where, m = picked
        psnr = f"{_fmt(m.get('psnr'))} ({where})"
        ssim = _fmt(m.get("ssim"), ".4f")
        texture = _fmt(m.get("texture_score"), ".3f")
        hdr, artifacts = hdr_label(m), artifact_label(m)
    else:
        m = rec.metrics
        val = m.get("psnr", m.get("best_psnr"))
        psnr = f"{_fmt(val)} (val)" if val is not None else "-"
        ssim = _fmt(m.get("ssim"), ".4f") if m.get("ssim") is not None else "-"
        texture, hdr, artifacts = "-", "-", "-"
    return [f"[{rec.display_name}](#{_anchor(rec)})", psnr, ssim, texture, hdr, artifacts,
            STATUS_LABELS[rec.status]]


def _anchor(rec: RunRecord) -> str:
    return "run-" + re.sub(r"[^a-z0-9_-]", "", rec.name.lower().replace(".", "-"))


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _config_summary(config: Mapping[str, Any]) -> str:
    """One line naming the parts of a training config that tell runs apart."""
    parts = []
    model = config.get("model")
    if isinstance(model, Mapping) and model.get("name"):
        extra = ", ".join(f"{k}={v}" for k, v in model.items() if k != "name")
        parts.append(f"model `{model['name']}`" + (f" ({extra})" if extra else ""))
    dataset = config.get("dataset")
    if isinstance(dataset, Mapping):
        train = dataset.get("train")
        if isinstance(train, Mapping) and train.get("name"):
            parts.append(f"data `{train['name']}`")
    loss = config.get("loss")
    if isinstance(loss, Mapping):
        terms = loss.get("terms", loss)
        if isinstance(terms, Mapping):
            desc = []
            for k, v in terms.items():
                w = v.get("weight") if isinstance(v, Mapping) else v
                if isinstance(w, (int, float)) and not isinstance(w, bool):
                    desc.append(f"{w:g}×{k}")
            if desc:
                parts.append("loss " + " + ".join(desc))
    trainer = config.get("trainer")
    if isinstance(trainer, Mapping):
        if trainer.get("max_steps") is not None:
            parts.append(f"{trainer['max_steps']} steps")
        optim = trainer.get("optim")
        if isinstance(optim, Mapping) and optim.get("lr") is not None:
            parts.append(f"lr {optim['lr']:g}" if isinstance(optim["lr"], (int, float)) else "")
        if trainer.get("init_from"):
            parts.append(f"from `{trainer['init_from']}`")
    return "; ".join(p for p in parts if p) or "-"


def _eval_line(evalset: str, entry: Mapping[str, Any]) -> str:
    m = entry.get("metrics", {}) if isinstance(entry, Mapping) else {}
    bits = [f"PSNR {_fmt(m.get('psnr'))} dB", f"sRGB PSNR {_fmt(m.get('psnr_srgb'))} dB",
            f"SSIM {_fmt(m.get('ssim'), '.4f')}", f"texture {_fmt(m.get('texture_score'), '.3f')}",
            f"artifacts {artifact_label(m)}", f"HDR {hdr_label(m)}"]
    if m.get("megapixels_per_s") is not None:
        bits.append(f"{_fmt(m.get('megapixels_per_s'))} MP/s")
    res = entry.get("results") if isinstance(entry, Mapping) else None
    return f"- `{evalset}`: " + ", ".join(bits) + (f" ([results]({res}))" if res else "")


def _run_section(rec: RunRecord, notes: Mapping[str, str]) -> str:
    out = [f'<a id="{_anchor(rec)}"></a>\n', f"### {rec.display_name} — {STATUS_LABELS[rec.status]}\n\n"]
    dates = (rec.started or rec.created or "?")[:10]
    if rec.finished:
        dates += f" to {rec.finished[:10]}"
    out.append(f"- **Run:** `{rec.name}` · **Dates:** {dates}\n")
    if rec.checkpoint_dir or rec.log_path:
        out.append(f"- **Checkpoints:** `{rec.checkpoint_dir or '-'}` · **Log:** `{rec.log_path or '-'}`\n")
    if rec.config:
        out.append(f"- **Config:** {_config_summary(rec.config)}\n")
    if rec.metrics:
        shown = ", ".join(f"{k} {_fmt(v, '.4g')}" for k, v in sorted(rec.metrics.items()))
        out.append(f"- **Training metrics:** {shown}\n")
    if rec.evals:
        out.append("- **Evaluations:**\n")
        out.extend("  " + _eval_line(k, rec.evals[k]) + "\n" for k in sorted(rec.evals))
    if rec.notes:
        out.append("- **Status notes:**\n")
        out.extend(f"  - {n.get('date', '?')[:10]} ({n.get('status', '?')}): {n.get('text', '')}\n"
                   for n in rec.notes)
    out.append("\n")
    out.append(_block(f"run:{rec.name}", notes))
    return "".join(out)


def render_experiments(records: Iterable[RunRecord], notes: Mapping[str, str] | None = None,
                       prefer: Iterable[str] = DASHBOARD_EVALSETS) -> str:
    """The whole EXPERIMENTS.md as a string.

    Args:
        records: Run records (shown in the given order; :func:`list_runs` sorts oldest first).
        notes: Hand-written blocks (:func:`extract_notes` of the previous file); blocks whose
            key matches no section are kept under "Orphaned notes" so nothing is lost.
        prefer: Evaluation sets the dashboard prefers, in order.
    """
    notes = dict(notes or {})
    records = list(records)
    prefer = tuple(prefer)
    parts = [HEADER, "\n", _block("intro", notes), "\n## Status legend\n\n"]
    parts += [f"- {STATUS_LABELS[s]}: {STATUS_MEANINGS[s]}\n" for s in STATUSES]
    parts.append(
        "\n## Metrics dashboard\n\n"
        f"PSNR (linear light, 12 px border excluded) on the first evaluated set of "
        f"{', '.join(prefer) or 'any'}, "
        "else the training validation PSNR `(val)`. SSIM and texture score (Laplacian-variance "
        "ratio output/truth, 1 = as sharp as the truth) come from the same evaluation. HDR "
        "Support: demosaic-eval's HDR probe, the error on regions above 1.0 of a crop exposed "
        "×4 divided by the plain crop's error scaled alike (×1 = highlights pass through; "
        f"Yes < ×{HDR_RATIO_OK:g}, Partial < ×{HDR_RATIO_PARTIAL:g}). Artifacts: the "
        "periodic-artifact detector, flagging a grid when the error's spectral peaks at the CFA period's harmonics (score) and its periodic amplitude "
        "(lv: 8-bit sRGB levels) both exceed their limits; both in brackets.\n\n")
    if records:
        header = ["Experiment", "PSNR (dB)", "SSIM", "Texture Score", "HDR Support", "Artifacts", "Status"]
        parts.append(_table(header, [dashboard_row(r, prefer) for r in records]))
    else:
        parts.append("_No run records yet: `demosaic-train` creates them in logs/runs/._\n")
    parts.append("\n## Experiment log\n\n")
    if not records:
        parts.append("_No runs recorded yet._\n\n")
    for rec in records:
        parts.append(_run_section(rec, notes))
        parts.append("\n")
    for key, title in FIXED_BLOCKS[1:]:
        parts.append(f"{title}\n\n")
        parts.append(_block(key, notes))
        parts.append("\n")
    used = {k for k, _ in FIXED_BLOCKS} | {f"run:{r.name}" for r in records}
    orphans = sorted(k for k in notes if k not in used)
    if orphans:
        parts.append("## Orphaned notes\n\nNotes of runs whose records are gone (kept, not lost).\n\n")
        for key in orphans:
            parts.append(_block(key, notes))
            parts.append("\n")
    return "".join(parts).rstrip("\n") + "\n"


def regenerate(out: str | os.PathLike[str] = "docs/EXPERIMENTS.md",
               runs_dir: str | os.PathLike[str] | None = None,
               prefer: Iterable[str] = DASHBOARD_EVALSETS, check: bool = False) -> tuple[Path, bool]:
    """Rewrite ``out`` from the records, keeping its hand-written blocks.

    Args:
        out: The Markdown file (created if missing).
        runs_dir: Folder of the run records.
        prefer: Evaluation sets the dashboard prefers.
        check: Only report whether the file would change; write nothing.

    Returns:
        ``(path, changed)``. The file is only written when its content changes.
    """
    path = Path(out)
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    new = render_experiments(list_runs(runs_dir), extract_notes(old), prefer)
    changed = new != old
    if changed and not check:
        with atomic_path(path) as tmp:
            tmp.write_text(new, encoding="utf-8")
        log.info("wrote %s", path)
    return path, changed
